/**
 * A binary min-heap over parallel arrays, for the memory store's run queues: O(log n) push and
 * pop, O(1) peek, and no allocation per item (a key and a version number sit in arrays beside the
 * item). The arrays are owned by the store that created the heap and changed only inside its
 * `Effect.sync` sections.
 *
 * @since 0.1.0
 * @internal
 */

/** @internal */
export interface Heap<A> {
  readonly items: Array<A>
  readonly keys: Array<number>
  readonly versions: Array<number>
  /** The tie-break between equal keys: true when `a` goes first. */
  readonly tieBefore: (a: A, b: A) => boolean
}

/** @internal */
export const make = <A>(tieBefore: (a: A, b: A) => boolean): Heap<A> => ({
  items: [],
  keys: [],
  versions: [],
  tieBefore
})

/** @internal */
export const size = <A>(heap: Heap<A>): number => heap.items.length

const before = <A>(heap: Heap<A>, ka: number, a: A, kb: number, b: A): boolean =>
  ka < kb || (ka === kb && heap.tieBefore(a, b))

/** @internal */
export const push = <A>(heap: Heap<A>, item: A, key: number, version: number): void => {
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

/** Removes the top item (see `items[0]`, `keys[0]`, `versions[0]` before). @internal */
export const pop = <A>(heap: Heap<A>): void => {
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
