import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Heap from "../src/layers/Heap.js"

interface Item {
  readonly key: number
  readonly seq: number
}

const before = (a: Item, b: Item): boolean => a.key < b.key || (a.key === b.key && a.seq < b.seq)

/**
 * Pushes and pops in the given order, checking each pop against a model (the least of what is
 * queued); returns the items popped, in order.
 */
const replay = (ops: ReadonlyArray<{ readonly push: boolean; readonly key: number }>): Array<Item> => {
  const heap = Heap.make<Item>((a, b) => a.seq < b.seq)
  const model: Array<Item> = []
  const popped: Array<Item> = []
  let seq = 0
  const popOne = () => {
    let least = 0
    for (let i = 1; i < model.length; i++) if (before(model[i]!, model[least]!)) least = i
    const item = Heap.peekItem(heap)
    assert.strictEqual(item, model[least])
    assert.strictEqual(Heap.peekKey(heap), item.key)
    assert.strictEqual(Heap.peekVersion(heap), item.seq)
    Heap.pop(heap)
    model.splice(least, 1)
    popped.push(item)
  }
  for (const op of ops) {
    if (op.push) {
      const item = { key: op.key, seq: seq++ }
      Heap.push(heap, item, item.key, item.seq)
      model.push(item)
    } else if (Heap.size(heap) > 0) {
      popOne()
    }
    assert.strictEqual(Heap.size(heap), model.length)
  }
  while (Heap.size(heap) > 0) popOne()
  return popped
}

describe("Heap", () => {
  it("pops the least key first, ties in push order, whatever the mix of in-order and out-of-order pushes", () =>
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            push: fc.boolean(),
            // mostly rising keys, as a run queue sees them, with every so often one out of order
            key: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 2_000 }))
          }),
          { maxLength: 1_500 }
        ),
        (ops) => {
          const popped = replay(ops.map((op, i) => ({ push: op.push, key: op.key < 6 ? i + op.key : op.key })))
          assert.strictEqual(popped.length, ops.filter((op) => op.push).length)
        }
      ),
      { numRuns: 200 }
    ))

  it("keeps a long in-order run in order across the compactions of its consumed prefix", () => {
    const ops = Array.from({ length: 10_000 }, (_, i) => ({ push: i % 3 !== 2, key: i }))
    const popped = replay(ops)
    for (let i = 1; i < popped.length; i++) assert.isTrue(before(popped[i - 1]!, popped[i]!))
  })
})
