/**
 * Upload and download rate limits: token buckets, one global (shared by
 * every torrent of a TorrentManager) and one per torrent, adjustable while
 * running. A session takes tokens for the bytes it sends or receives and
 * waits when a bucket is in debt; pausing a socket's reads is what slows the
 * remote sender (TCP backpressure).
 */
import { Clock, Context, Effect, Layer } from "effect"

export class Bucket {
  /** Bytes per second; 0 = unlimited. */
  private rate = 0
  private tokens = 0
  private last = 0

  constructor(rate = 0) {
    this.setRate(rate)
  }

  setRate(rate: number): void {
    this.rate = Math.max(0, rate)
    this.tokens = Math.min(this.tokens, this.rate)
  }

  get limit(): number {
    return this.rate
  }

  /** Takes `n` tokens now (a bucket may go into debt) and returns how long to wait to repay it. */
  take(n: number, now: number): number {
    if (this.rate === 0) return 0
    // Refill since the last take; at most one second's worth may accumulate (the burst).
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) * this.rate) / 1000)
    this.last = now
    this.tokens -= n
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate
  }
}

export interface Limits {
  readonly upload: ReadonlyArray<Bucket>
  readonly download: ReadonlyArray<Bucket>
}

/** Waits as long as the most indebted of `buckets` needs after taking `n` bytes from each. */
export const take = (buckets: ReadonlyArray<Bucket>, n: number): Effect.Effect<void> =>
  n === 0 || buckets.every((b) => b.limit === 0)
    ? Effect.void
    : Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const wait = Math.max(...buckets.map((b) => b.take(n, now)))
      return wait > 0 ? Effect.sleep(wait) : Effect.void
    })

export class RateLimits extends Context.Service<RateLimits, Limits>()("effect-torrent/torrent/RateLimits") {
  static readonly layer = (limits: Limits) => Layer.succeed(RateLimits, RateLimits.of(limits))
  static readonly unlimited = RateLimits.layer({ upload: [], download: [] })
}
