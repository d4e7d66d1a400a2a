/**
 * A binary min-heap over a plain array, for the memory store's run queues: O(log n) push and
 * pop, O(1) peek. The array is owned by the store that created it and changed only inside its
 * `Effect.sync` sections.
 *
 * @since 0.1.0
 * @internal
 */

/** @internal */
export interface Heap<A> {
  readonly items: Array<A>
  readonly before: (a: A, b: A) => boolean
}

/** @internal */
export const make = <A>(before: (a: A, b: A) => boolean): Heap<A> => ({ items: [], before })

/** @internal */
export const size = <A>(heap: Heap<A>): number => heap.items.length

/** @internal */
export const peek = <A>(heap: Heap<A>): A | undefined => heap.items[0]

/** @internal */
export const push = <A>(heap: Heap<A>, item: A): void => {
  const { before, items } = heap
  let i = items.length
  items.push(item)
  while (i > 0) {
    const parent = (i - 1) >> 1
    const p = items[parent]!
    if (!before(item, p)) break
    items[i] = p
    i = parent
  }
  items[i] = item
}

/** @internal */
export const pop = <A>(heap: Heap<A>): A | undefined => {
  const { before, items } = heap
  const top = items[0]
  const last = items.pop()
  if (items.length === 0 || last === undefined) return top
  const n = items.length
  let i = 0
  while (true) {
    const left = 2 * i + 1
    if (left >= n) break
    const right = left + 1
    const child = right < n && before(items[right]!, items[left]!) ? right : left
    if (!before(items[child]!, last)) break
    items[i] = items[child]!
    i = child
  }
  items[i] = last
  return top
}
