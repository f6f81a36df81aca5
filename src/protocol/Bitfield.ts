/**
 * Which pieces a peer (or we) have: one bit per piece, BEP 3 order (piece 0 is
 * the high bit of byte 0). The bytes are the wire form of the `bitfield`
 * message; the bits after the last piece ("spare bits") are always clear.
 *
 * A small mutable class: it is updated on every `have` and every verified
 * piece, so it keeps a running count and allocates nothing per bit.
 */
import { Result, Schema } from "effect"

export class BitfieldError extends Schema.TaggedError<BitfieldError>()("BitfieldError", {
  problem: Schema.Literals(["WrongLength", "SpareBits"]),
  pieceCount: Schema.Int,
  byteLength: Schema.Int
}) {
  override get message() {
    return this.problem === "WrongLength"
      ? `bitfield of ${this.byteLength} bytes for ${this.pieceCount} pieces; expected ${byteLengthFor(this.pieceCount)}`
      : `bitfield for ${this.pieceCount} pieces has spare bits set after the last piece`
  }
}

export class Bitfield {
  private setCount: number

  /**
   * Trusts its input: `bytes` is `byteLengthFor(size)` long with clear spare
   * bits, and is owned by this bitfield. Use `make`, `full` or `fromBytes`.
   */
  constructor(
    private readonly bytes: Uint8Array,
    /** Number of pieces. */
    readonly size: number
  ) {
    this.setCount = popcount(bytes)
  }

  /** False for an index outside the bitfield. */
  has(index: number): boolean {
    return (this.bytes[index >>> 3]! & (0x80 >>> (index & 7))) !== 0
  }

  /** Marks a piece; an index outside 0..size-1 is a bug (peer input is checked by the caller). */
  set(index: number): void {
    if (!this.has(this.checked(index))) {
      this.bytes[index >>> 3] |= 0x80 >>> (index & 7)
      this.setCount++
    }
  }

  clear(index: number): void {
    if (this.has(this.checked(index))) {
      this.bytes[index >>> 3] &= ~(0x80 >>> (index & 7))
      this.setCount--
    }
  }

  /** Number of pieces set: O(1), maintained by `set` and `clear`. */
  count(): number {
    return this.setCount
  }

  isComplete(): boolean {
    return this.setCount === this.size
  }

  /** The pieces this bitfield has and `other` (of the same size) lacks, in order, at most `max` of them. */
  notIn(other: Bitfield, max = Infinity): Array<number> {
    const out: Array<number> = []
    for (let i = 0; i < this.bytes.length && out.length < max; i++) {
      // The high bit is the lowest piece: take bits from the top down.
      for (let extra = this.bytes[i]! & ~other.bytes[i]! & 0xff; extra !== 0 && out.length < max;) {
        const top = 31 - Math.clz32(extra)
        out.push(i * 8 + 7 - top)
        extra &= ~(1 << top)
      }
    }
    return out
  }

  /** A copy of the bytes, for a `bitfield` message (the copy stays valid while this bitfield changes). */
  toBytes(): Uint8Array {
    return this.bytes.slice()
  }

  private checked(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`piece ${index} is outside a bitfield of ${this.size} pieces`)
    }
    return index
  }
}

export const byteLengthFor = (pieceCount: number): number => Math.ceil(pieceCount / 8)

/** An empty bitfield over `pieceCount` pieces. */
export const make = (pieceCount: number): Bitfield =>
  new Bitfield(new Uint8Array(byteLengthFor(pieceCount)), pieceCount)

/** A bitfield with every piece set (a seeder's). */
export const full = (pieceCount: number): Bitfield => {
  const bytes = new Uint8Array(byteLengthFor(pieceCount)).fill(0xff)
  const spare = bytes.length * 8 - pieceCount
  if (spare > 0) bytes[bytes.length - 1] = (0xff << spare) & 0xff
  return new Bitfield(bytes, pieceCount)
}

/**
 * Reads a peer's `bitfield` payload. The bytes are copied: the payload is a
 * view on a socket buffer and a bitfield lives as long as the session.
 */
export const fromBytes = (bytes: Uint8Array, pieceCount: number): Result.Result<Bitfield, BitfieldError> => {
  const expected = byteLengthFor(pieceCount)
  if (bytes.length !== expected) {
    return Result.fail(new BitfieldError({ problem: "WrongLength", pieceCount, byteLength: bytes.length }))
  }
  const spare = expected * 8 - pieceCount
  if (spare > 0 && (bytes[expected - 1]! & ((1 << spare) - 1)) !== 0) {
    return Result.fail(new BitfieldError({ problem: "SpareBits", pieceCount, byteLength: bytes.length }))
  }
  return Result.succeed(new Bitfield(bytes.slice(), pieceCount))
}

/** Set bits per byte value. */
const bitsIn = Uint8Array.from({ length: 256 }, (_, byte) => {
  let n = 0
  for (let b = byte; b !== 0; b &= b - 1) n++
  return n
})

const popcount = (bytes: Uint8Array): number => {
  let n = 0
  for (let i = 0; i < bytes.length; i++) n += bitsIn[bytes[i]!]!
  return n
}
