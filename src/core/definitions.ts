import { ParkCode } from '../schemas/park-codes.js'
import type { WorkflowDefinition } from './definition.js'
import { DefinitionError, IllegalStateError, RegistrationError } from './errors.js'
import type { Registry } from './registry.js'
import type { DefinitionStore, InstanceRecord } from './store.js'

/**
 * Which definition an instance runs on: the registered one when the instance started with it, else the snapshot of
 * its version stored when it was created (a later deployment may have changed the type). Snapshots are stored once
 * per version and cached per process.
 */
export class Definitions {
  readonly #stored = new Map<string, Promise<void>>()
  readonly #snapshots = new Map<string, WorkflowDefinition>()

  constructor(
    readonly registry: Registry,
    readonly store: DefinitionStore,
  ) {}

  /** The graph an instance started with; with `needWorkers`, every node's worker must be registered here. */
  async of(record: Pick<InstanceRecord, 'workflowType' | 'definitionVersion'>, needWorkers: boolean) {
    const { workflowType, definitionVersion } = record
    if (this.registry.hasDefinition(workflowType)) {
      const current = needWorkers ? this.registry.definition(workflowType) : this.registry.graph(workflowType)
      if (current?.version === definitionVersion) return current
    }
    const key = `${workflowType}@${definitionVersion}`
    let snapshot = this.#snapshots.get(key)
    if (!snapshot) {
      const config = await this.store.getDefinition(workflowType, definitionVersion)
      if (!config) {
        throw new DefinitionError(
          `definition version '${definitionVersion}' of workflow type '${workflowType}' is not stored`,
          { workflowType, version: definitionVersion },
        )
      }
      snapshot = this.registry.definitionFromSnapshot(config)
      this.#snapshots.set(key, snapshot)
    }
    if (needWorkers) this.registry.assertWorkers(snapshot)
    return snapshot
  }

  /** The definition a restart needs, with its workers; a deployment without them refuses the restart (409). */
  async restartable(record: InstanceRecord): Promise<WorkflowDefinition> {
    try {
      return await this.of(record, true)
    } catch (error) {
      const code = parkCodeOf(error)
      if (!code) throw error
      throw new IllegalStateError(`workflow instance '${record.id}' cannot run here: ${(error as Error).message}`, {
        instanceId: record.id,
        code,
      })
    }
  }

  /** Stores the snapshot of a definition once per version (a failed store is tried again next time). */
  remember(definition: WorkflowDefinition): Promise<void> {
    const key = `${definition.type}@${definition.version}`
    let stored = this.#stored.get(key)
    if (!stored) {
      stored = this.store.putDefinition(definition.type, definition.version, definition.config)
      stored.catch(() => this.#stored.delete(key))
      this.#stored.set(key, stored)
    }
    return stored
  }
}

/** Why a pass cannot run here, as a parked code; undefined for errors a retry may cure. */
export const parkCodeOf = (error: unknown): ParkCode | undefined => {
  if (error instanceof RegistrationError) return ParkCode.workerMissing
  if (error instanceof DefinitionError) return ParkCode.definitionMissing
  return undefined
}
