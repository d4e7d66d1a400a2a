import { it } from "@effect/vitest"
import { layerMemory } from "../src/layers/MemoryTaskStore.js"
import { taskStoreContract } from "./TaskStoreContract.js"

// the layer is built per test: each test has a fresh, empty store
taskStoreContract(it, layerMemory)
