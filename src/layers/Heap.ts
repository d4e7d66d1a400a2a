/**
 * A min-priority queue for the memory store's run queues: a binary min-heap over parallel arrays,
 * beside a *run*, a FIFO of the items pushed in order. An item whose key (with its tie-break)
 * comes at or after the run's last goes on the run in O(1); any other goes in the heap in
 * O(log n). The top is the first of the run's head and the heap's top.
 *
 * A queue's pushes are nearly always in order: tasks submitted one after another at one priority
 * become due in submission order, and leases run out in the order they were taken. With the
 * heap alone, each pop of a 100,000-task backlog sifted down 17 levels (about 0.7 us a task, of
 * the engine's 10); on the run it is an index increment. No allocation per item: a key and a
 * version number sit in arrays beside the item. The arrays are owned by the store that created
 * the queue and changed only inside its `Effect.sync` sections.
 *
 * @since 0.1.0
 * @internal
 */

/** @internal */
export interface Heap<A> {
  readonly items: Array<A>
  readonly keys: Array<number>
  readonly versions: Array<number>
  /** The run: items pushed in order, from `runHead` on. */
  readonly runItems: Array<A>
  readonly runKeys: Array<number>
  readonly runVersions: Array<number>
  runHead: number
  /** The tie-break between equal keys: true when `a` goes first. */
  readonly tieBefore: (a: A, b: A) => boolean
}

/** @internal */
export const make = <A>(tieBefore: (a: A, b: A) => boolean): Heap<A> => ({
  items: [],
  keys: [],
  versions: [],
  runItems: [],
  runKeys: [],
  runVersions: [],
  runHead: 0,
  tieBefore
})

/** @internal */
export const size = <A>(heap: Heap<A>): number => heap.items.length + heap.runItems.length - heap.runHead

const before = <A>(heap: Heap<A>, ka: number, a: A, kb: number, b: A): boolean =>
  ka < kb || (ka === kb && heap.tieBefore(a, b))

/** Whether the top is the run's head (else the heap's top); the queue must not be empty. */
const topInRun = <A>(heap: Heap<A>): boolean => {
  const h = heap.runHead
  if (h === heap.runItems.length) return false
  if (heap.items.length === 0) return true
  return !before(heap, heap.keys[0]!, heap.items[0]!, heap.runKeys[h]!, heap.runItems[h]!)
}

/** The top item; the queue must not be empty. @internal */
export const peekItem = <A>(heap: Heap<A>): A => topInRun(heap) ? heap.runItems[heap.runHead]! : heap.items[0]!

/** The top item's key; the queue must not be empty. @internal */
export const peekKey = <A>(heap: Heap<A>): number => topInRun(heap) ? heap.runKeys[heap.runHead]! : heap.keys[0]!

/** The top item's version; the queue must not be empty. @internal */
export const peekVersion = <A>(heap: Heap<A>): number =>
  topInRun(heap) ? heap.runVersions[heap.runHead]! : heap.versions[0]!

/** @internal */
export const push = <A>(heap: Heap<A>, item: A, key: number, version: number): void => {
  const { runItems, runKeys } = heap
  const last = runItems.length - 1
  if (last < heap.runHead || !before(heap, key, item, runKeys[last]!, runItems[last]!)) {
    runItems.push(item)
    runKeys.push(key)
    heap.runVersions.push(version)
    return
  }
  const { items, keys, versions } = heap
  let i = items.length
  items.push(item)
  keys.push(key)
  versions.push(version)
  while (i > 0) {
    const parent = (i - 1) >> 1
    const pItem = items[parent]!
    const pKey = keys[parent]!
    if (!before(heap, key, item, pKey, pItem)) break
    items[i] = pItem
    keys[i] = pKey
    versions[i] = versions[parent]!
    i = parent
  }
  items[i] = item
  keys[i] = key
  versions[i] = version
}

/** Drops the run's head; the consumed prefix is let go of once it is most of the arrays. */
const shiftRun = <A>(heap: Heap<A>): void => {
  const head = ++heap.runHead
  const n = heap.runItems.length
  if (head === n) {
    heap.runItems.length = 0
    heap.runKeys.length = 0
    heap.runVersions.length = 0
    heap.runHead = 0
  } else if (head >= 1024 && head * 2 >= n) {
    heap.runItems.splice(0, head)
    heap.runKeys.splice(0, head)
    heap.runVersions.splice(0, head)
    heap.runHead = 0
  }
}

/** Removes the top item (see `peekItem`, `peekKey`, `peekVersion` before). @internal */
export const pop = <A>(heap: Heap<A>): void => {
  if (topInRun(heap)) {
    shiftRun(heap)
    return
  }
  const { items, keys, versions } = heap
  const lastItem = items.pop()
  const lastKey = keys.pop()!
  const lastVersion = versions.pop()!
  const n = items.length
  if (n === 0 || lastItem === undefined) return
  let i = 0
  while (true) {
    const left = 2 * i + 1
    if (left >= n) break
    const right = left + 1
    const child = right < n && before(heap, keys[right]!, items[right]!, keys[left]!, items[left]!) ? right : left
    if (!before(heap, keys[child]!, items[child]!, lastKey, lastItem)) break
    items[i] = items[child]!
    keys[i] = keys[child]!
    versions[i] = versions[child]!
    i = child
  }
  items[i] = lastItem
  keys[i] = lastKey
  versions[i] = lastVersion
}
