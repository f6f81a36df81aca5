/**
 * Ledbat: uTP's congestion control (BEP 29, RFC 6817) for one connection:
 * the congestion window in bytes, driven by the one-way delay the peer
 * reports, and the retransmission timeout from round-trip samples.
 *
 * - **Delay**: each ack carries the peer's measure of how long our packet
 *   took (plus the clocks' offset, which cancels out): the lowest measure of
 *   the last two minutes is the base delay (one minimum per minute, so a
 *   route change is forgotten); a sample minus the base is queueing delay.
 * - **Window**: below the 100 ms target the window grows, above it it
 *   shrinks, by at most `gain` bytes per round trip, in proportion to how
 *   far off target the delay is and to how much of the window was acked
 *   (libtorrent and libutp grow by 3000 bytes per RTT). It starts in slow
 *   start (doubling per round trip) until a loss or until the delay reaches
 *   half the target.
 * - **Loss** (three duplicate acks, or the selective ack showing a hole)
 *   halves the window, once per window of data; a **timeout** drops it to
 *   one packet and doubles the timeout, until an ack comes.
 * - **Timeout**: RTT + 4 × variance as RFC 6298, at least 500 ms (BEP 29).
 */

/** Queueing delay LEDBAT aims at (BEP 29: 100 ms). */
export const targetMicros = 100_000
/** Most the window grows per round trip at zero delay (BEP 29's MAX_CWND_INCREASE_BYTES_PER_RTT). */
export const gain = 3000
export const minTimeoutMillis = 500
const maxTimeoutMillis = 30_000
/** Base delay minima kept, one per minute. */
const historyMinutes = 2

const wrapped = (a: number, b: number) => (a - b) >>> 0
/** Whether u32 timestamp `a` is below `b` (wrap-aware). */
const below = (a: number, b: number) => a !== b && wrapped(b, a) < 0x80000000

export class Ledbat {
  /** Bytes that may be in flight. */
  window: number
  /** Queueing delay of the last sample (µs), for stats and tests. */
  delay = 0
  /** Smoothed round trip (ms); 0 until the first sample. */
  rtt = 0
  private rttVariance = 0
  /** Retransmission timeout (ms), doubled by each timeout. */
  timeout = 1000
  private slowStart = true
  private readonly history: Array<number> = []
  private minute = -1

  constructor(
    /** Bytes in one full packet: the window's floor. */
    readonly packetSize: number,
    /** The window's ceiling (what the send buffer holds). */
    readonly maxWindow: number
  ) {
    this.window = 2 * packetSize
  }

  /** Lowest delay sample of the last minutes. */
  get baseDelay() {
    let base = this.history[0] ?? 0
    for (const sample of this.history) if (below(sample, base)) base = sample
    return base
  }

  /** `acked` bytes were acked; `sample` is the peer's timestamp difference (µs) on that ack, 0 when it sent none. */
  onAck(acked: number, sample: number, nowMillis: number) {
    if (sample !== 0) this.recordDelay(sample, nowMillis)
    const offTarget = (targetMicros - this.delay) / targetMicros
    if (this.slowStart) {
      if (this.delay < targetMicros / 2) {
        this.window = Math.min(this.maxWindow, this.window + acked)
        return
      }
      this.slowStart = false
    }
    const windowFactor = Math.min(acked, this.window) / Math.max(this.window, acked)
    const next = this.window + gain * Math.max(-1, offTarget) * windowFactor
    this.window = Math.min(this.maxWindow, Math.max(this.packetSize, next))
  }

  /** A packet was lost (fast retransmit): the window halves. */
  onLoss() {
    this.slowStart = false
    this.window = Math.max(this.packetSize, this.window / 2)
  }

  /** The oldest packet in flight timed out. */
  onTimeout() {
    this.slowStart = false
    this.window = this.packetSize
    this.timeout = Math.min(maxTimeoutMillis, this.timeout * 2)
  }

  /** A round trip measured on a packet sent once (Karn: never on a retransmitted one). */
  onRtt(millis: number) {
    if (this.rtt === 0) {
      this.rtt = millis
      this.rttVariance = millis / 2
    } else {
      this.rttVariance += (Math.abs(this.rtt - millis) - this.rttVariance) / 4
      this.rtt += (millis - this.rtt) / 8
    }
    this.timeout = Math.min(maxTimeoutMillis, Math.max(minTimeoutMillis, this.rtt + 4 * this.rttVariance))
  }

  private recordDelay(sample: number, nowMillis: number) {
    const minute = Math.floor(nowMillis / 60_000)
    if (minute !== this.minute) {
      this.minute = minute
      this.history.push(sample)
      if (this.history.length > historyMinutes) this.history.shift()
    } else if (below(sample, this.history[this.history.length - 1]!)) {
      this.history[this.history.length - 1] = sample
    }
    this.delay = wrapped(sample, this.baseDelay)
  }
}
