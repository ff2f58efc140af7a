import type { WorkflowModule } from '../core/builder.js'
import { approvalWorkflow } from './approval.js'

/** The workflows every tickflow function registers. Add yours here. */
export const workflows: readonly WorkflowModule[] = [approvalWorkflow]
