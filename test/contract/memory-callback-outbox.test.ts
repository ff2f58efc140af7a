import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { describeCallbackOutboxContract } from './callback-outbox-contract.js'

describeCallbackOutboxContract('MemoryStore', async () => new MemoryStore())
