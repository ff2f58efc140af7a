import { loadDefinition, type NormalisedConfig, type WorkflowDefinition } from './definition.js'
import { RegistrationError, WorkflowTypeNotFoundError } from './errors.js'
import type { NodeContext } from './node-context.js'

/** A worker step. Throw a worker signal (NotReadyError, FailedWithContinueError, …) to steer the node. */
export type WorkerStep = (ctx: NodeContext) => Promise<void> | void

export interface Worker {
  /** Required: does the node's work. Not called again once it succeeded, unless the node is restarted. */
  run: WorkerStep
  /** Optional asynchronous wait-check, polled until it succeeds (an approval, a payment, a third-party job). */
  check?: WorkerStep
}

/** Definitions and workers of one engine object (never module globals). */
export class Registry {
  readonly #definitions = new Map<string, WorkflowDefinition>()
  readonly #workers = new Map<string, Map<string, Worker>>()
  /** Types whose workers were all checked against the definition. */
  readonly #checked = new Set<string>()

  registerDefinition(config: unknown): WorkflowDefinition {
    const definition = loadDefinition(config)
    const existing = this.#definitions.get(definition.type)
    if (existing) {
      if (existing.version === definition.version) return existing
      throw new RegistrationError(`workflow type '${definition.type}' is already registered with another definition`, {
        workflowType: definition.type,
      })
    }
    this.#definitions.set(definition.type, definition)
    return definition
  }

  registerWorker(workflowType: string, nodeId: string, worker: Worker): void {
    if (typeof worker?.run !== 'function') {
      throw new RegistrationError(`worker for '${workflowType}.${nodeId}' needs a run function`, {
        workflowType,
        nodeId,
      })
    }
    if (worker.check !== undefined && typeof worker.check !== 'function') {
      throw new RegistrationError(`worker for '${workflowType}.${nodeId}' has a check that is not a function`, {
        workflowType,
        nodeId,
      })
    }
    const byNode = this.#workers.get(workflowType) ?? new Map<string, Worker>()
    if (byNode.has(nodeId)) {
      throw new RegistrationError(`a worker for '${workflowType}.${nodeId}' is already registered`, {
        workflowType,
        nodeId,
      })
    }
    byNode.set(nodeId, worker)
    this.#workers.set(workflowType, byNode)
    this.#checked.delete(workflowType)
  }

  /** The current definition, with every node's worker present (checked on first use). */
  definition(workflowType: string): WorkflowDefinition {
    const definition = this.#definitions.get(workflowType)
    if (!definition) throw new WorkflowTypeNotFoundError(workflowType)
    if (!this.#checked.has(workflowType)) {
      this.assertWorkers(definition)
      this.#checked.add(workflowType)
    }
    return definition
  }

  /** The current definition without checking its workers (for reading instances, not running them). */
  graph(workflowType: string): WorkflowDefinition | undefined {
    return this.#definitions.get(workflowType)
  }

  hasDefinition(workflowType: string): boolean {
    return this.#definitions.has(workflowType)
  }

  /** Builds a definition from a stored snapshot (an older version of a registered type). */
  definitionFromSnapshot(config: NormalisedConfig): WorkflowDefinition {
    return loadDefinition(config)
  }

  assertWorkers(definition: WorkflowDefinition): void {
    const missing = definition.nodes
      .filter((node) => !node.synthetic && !this.#workers.get(definition.type)?.has(node.id))
      .map((node) => node.id)
    if (missing.length) {
      throw new RegistrationError(
        `workflow '${definition.type}' has no worker for node(s) ${missing.map((id) => `'${id}'`).join(', ')}`,
        { workflowType: definition.type, nodes: missing },
      )
    }
  }

  worker(workflowType: string, nodeId: string): Worker | undefined {
    return this.#workers.get(workflowType)?.get(nodeId)
  }

  workflowTypes(): string[] {
    return [...this.#definitions.keys()]
  }

  definitions(): WorkflowDefinition[] {
    return [...this.#definitions.values()]
  }
}
