/**
 * Coordinator: the request pipeline for one peer.
 *
 * It remembers which blocks we asked this peer for and when, sizes the
 * pipeline to the peer's rate (enough requests to cover `queueSeconds` of
 * transfer, between `minDepth` and the peer's own queue limit), hands back
 * requests that time out or are dropped by a choke, and tells a snubbing
 * peer (requests outstanding, no block for `snubMillis`) from a slow one.
 *
 * It belongs to one PeerSession and is called synchronously from its fibers.
 */
import { Context } from "effect"
import { blockKey, type BlockRequest, blockSize } from "../protocol/Block.ts"

export interface Options {
  readonly requestTimeoutMillis: number
  readonly snubMillis?: number
  /** Most outstanding requests the peer accepts (its `reqq`, else 250). */
  readonly maxDepth?: number
}

const minDepth = 32
const queueSeconds = 2

export const make = (options: Options) => {
  const outstanding = new Map<number, { readonly request: BlockRequest; readonly sentAt: number }>()
  let maxDepth = options.maxDepth ?? 250
  let depth = minDepth
  let rate = 0 // bytes/s, smoothed
  let windowBytes = 0
  let lastBlockAt = 0
  const snubMillis = options.snubMillis ?? 60_000

  return {
    get outstanding() {
      return outstanding.size
    },
    /** How many requests the pipeline should hold, for the peer's rate. */
    get depth() {
      return depth
    },
    get rate() {
      return rate
    },
    setMaxDepth: (n: number) => {
      maxDepth = Math.max(1, n)
    },
    has: (index: number, begin: number) => outstanding.has(blockKey(index, begin)),
    sent: (requests: ReadonlyArray<BlockRequest>, now: number) => {
      if (outstanding.size === 0) lastBlockAt = now
      for (const r of requests) outstanding.set(blockKey(r.index, r.begin), { request: r, sentAt: now })
    },
    /** A block arrived; false if we never asked this peer for it (or it was cancelled). */
    received: (index: number, begin: number, length: number, now: number): boolean => {
      const key = blockKey(index, begin)
      const entry = outstanding.get(key)
      if (entry === undefined || entry.request.length !== length) return false
      outstanding.delete(key)
      windowBytes += length
      lastBlockAt = now
      return true
    },
    /** We cancelled a request (endgame). */
    cancel: (index: number, begin: number) => {
      outstanding.delete(blockKey(index, begin))
    },
    /** The peer rejected a request (fast extension); returns it if it was ours. */
    rejected: (index: number, begin: number): BlockRequest | undefined => {
      const key = blockKey(index, begin)
      const entry = outstanding.get(key)
      outstanding.delete(key)
      return entry?.request
    },
    /** Every outstanding request, forgotten (the peer choked us or is gone). */
    clear: (): Array<BlockRequest> => {
      const all = [...outstanding.values()].map((e) => e.request)
      outstanding.clear()
      return all
    },
    /** Requests older than the timeout, forgotten so that others can be asked. */
    expire: (now: number): Array<BlockRequest> => {
      const out: Array<BlockRequest> = []
      for (const [key, entry] of outstanding) {
        if (now - entry.sentAt >= options.requestTimeoutMillis) {
          outstanding.delete(key)
          out.push(entry.request)
        }
      }
      return out
    },
    /** True when requests are outstanding and nothing arrived for `snubMillis`. */
    isSnubbing: (now: number) => outstanding.size > 0 && now - lastBlockAt >= snubMillis,
    /** Once per second: update the rate and resize the pipeline to it. */
    tick: (elapsedMillis: number) => {
      const instant = (windowBytes * 1000) / Math.max(1, elapsedMillis)
      windowBytes = 0
      rate = rate === 0 ? instant : rate * 0.6 + instant * 0.4
      depth = Math.min(maxDepth, Math.max(minDepth, Math.ceil((rate * queueSeconds) / blockSize)))
    }
  }
}

export type State = ReturnType<typeof make>

/** One per connection, in the session's per-connection context. */
export class Coordinator extends Context.Service<Coordinator, State>()("effect-torrent/peer/Coordinator") {}
