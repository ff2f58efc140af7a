import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { describeStoreContract } from './store-contract.js'

describeStoreContract('MemoryStore', async (options) => new MemoryStore(options))
