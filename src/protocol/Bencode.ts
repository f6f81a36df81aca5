/**
 * Bencode (BEP 3) for untrusted input.
 *
 * Decoding is our own: bencode@4's decoder has no limits, reports no byte
 * offsets and cannot tell us where a dictionary started, which we need for the
 * info-hash (SHA-1 of the original `info` bytes). Encoding uses bencode@4.
 *
 * Limits (defaults, after libtorrent): input 10 MiB, nesting depth 100,
 * 3,000,000 tokens. Integers must be safe JS integers.
 */
import bencode from "bencode"
import { Result, Schema } from "effect"

export class BencodeError extends Schema.TaggedError<BencodeError>()("BencodeError", {
  offset: Schema.Number,
  problem: Schema.String
}) {
  override get message() {
    return `invalid bencode at byte ${this.offset}: ${this.problem}`
  }
}

export type BValue = number | Uint8Array | ReadonlyArray<BValue> | BDict
export interface BDict {
  readonly [key: string]: BValue
}

export interface Limits {
  readonly maxBytes: number
  readonly maxDepth: number
  readonly maxTokens: number
}

export const defaultLimits: Limits = { maxBytes: 10 * 1024 * 1024, maxDepth: 100, maxTokens: 3_000_000 }

/**
 * The original bytes of each decoded dictionary (a view on the input), kept in
 * a non-enumerable symbol property. Not a WeakMap: V8 slows down badly with
 * millions of WeakMap entries, which a hostile input of empty dictionaries
 * ("dede…") reaches within the token limit (75 s for 6 MB).
 */
const source: unique symbol = Symbol("effect-torrent/Bencode/source")

/** The exact bytes a decoded dictionary was read from. */
export const sourceBytes = (dict: BDict): Uint8Array | undefined => (dict as { readonly [source]?: Uint8Array })[source]

const utf8 = new TextDecoder("utf-8")

const D = 0x64, L = 0x6c, I = 0x69, E = 0x65, COLON = 0x3a, MINUS = 0x2d, ZERO = 0x30, NINE = 0x39

/**
 * Decodes exactly one value spanning the whole input. Never throws: bad input
 * is a `BencodeError` naming the byte offset (use `Effect.fromResult` in
 * Effect code).
 */
export const decode = (bytes: Uint8Array, limits: Limits = defaultLimits): Result.Result<BValue, BencodeError> =>
  Result.flatMap(decodePrefix(bytes, limits), ({ end, value }) =>
    end === bytes.length
      ? Result.succeed(value)
      : Result.fail(new BencodeError({ offset: end, problem: "trailing data after the value" })))

/**
 * Decodes the one value at the start of the input and returns it with the
 * offset after it: BEP 9 metadata messages carry raw bytes after a dictionary.
 */
export const decodePrefix = (
  bytes: Uint8Array,
  limits: Limits = defaultLimits
): Result.Result<{ readonly value: BValue; readonly end: number }, BencodeError> => {
  if (bytes.length > limits.maxBytes) {
    return Result.fail(
      new BencodeError({ offset: 0, problem: `input is ${bytes.length} bytes; the limit is ${limits.maxBytes}` })
    )
  }
  try {
    // A first pass only checks the input: a bomb (millions of tokens) fails
    // there, before millions of values are built and held.
    new Parser(bytes, limits, false).value(0)
    const parser = new Parser(bytes, limits, true)
    const value = parser.value(0)
    return Result.succeed({ value, end: parser.pos })
  } catch (error) {
    if (error instanceof BencodeError) return Result.fail(error)
    throw error
  }
}

export const encode = (value: unknown): Uint8Array => bencode.encode(value)

/**
 * A dictionary from its entries' keys (text or bytes) and encoded values, the
 * keys in byte order as BEP 3 wants: bencode@4 sorts keys as JS strings,
 * which is another order past ASCII and loses binary keys (v2's piece roots).
 */
export const encodeDict = (entries: ReadonlyArray<readonly [string | Uint8Array, Uint8Array]>): Uint8Array => {
  const keyed = entries.map(([key, value]) => [typeof key === "string" ? Buffer.from(key) : key, value] as const)
  keyed.sort(([a], [b]) => Buffer.compare(a, b))
  const parts: Array<Uint8Array> = [Buffer.from("d")]
  for (const [key, value] of keyed) parts.push(Buffer.from(`${key.length}:`), key, value)
  parts.push(Buffer.from("e"))
  return Buffer.concat(parts)
}

const noBytes = new Uint8Array(0)

class Parser {
  pos = 0
  tokens = 0
  /** With `build` false, values are checked but not kept (strings are empty, lists and dictionaries hold nothing). */
  constructor(readonly bytes: Uint8Array, readonly limits: Limits, readonly build: boolean) {}

  fail(offset: number, problem: string): never {
    throw new BencodeError({ offset, problem })
  }

  value(depth: number): BValue {
    const { bytes } = this
    if (this.pos >= bytes.length) this.fail(this.pos, "unexpected end of input")
    if (++this.tokens > this.limits.maxTokens) this.fail(this.pos, `more than ${this.limits.maxTokens} tokens`)
    const c = bytes[this.pos]!
    if (c === I) return this.integer()
    if (c >= ZERO && c <= NINE) return this.string()
    if (c === L || c === D) {
      if (depth >= this.limits.maxDepth) this.fail(this.pos, `nesting deeper than ${this.limits.maxDepth}`)
      return c === L ? this.list(depth + 1) : this.dict(depth + 1)
    }
    return this.fail(this.pos, `unexpected byte 0x${c.toString(16).padStart(2, "0")}`)
  }

  integer(): number {
    const start = this.pos
    const end = this.bytes.indexOf(E, start + 1)
    if (end < 0) this.fail(start, "unterminated integer")
    const digits = this.digitsAt(start + 1, end, "integer")
    const negative = this.bytes[start + 1] === MINUS
    if (negative && digits === "-0") this.fail(start, "negative zero")
    const body = negative ? digits.slice(1) : digits
    if (body.length === 0) this.fail(start, "empty integer")
    if (body.length > 1 && body.startsWith("0")) this.fail(start, "integer with a leading zero")
    const n = Number(digits)
    if (!Number.isSafeInteger(n)) this.fail(start, `integer ${digits} is outside the safe range`)
    this.pos = end + 1
    return n
  }

  /** `keep` false: checked, skipped and returned empty. */
  string(keep = this.build): Uint8Array {
    const start = this.pos
    const colon = this.bytes.indexOf(COLON, start)
    if (colon < 0) this.fail(start, "string length without ':'")
    const digits = this.digitsAt(start, colon, "string length")
    if (digits.startsWith("-")) this.fail(start, "negative string length")
    if (digits.length > 1 && digits.startsWith("0")) this.fail(start, "string length with a leading zero")
    const length = Number(digits)
    const from = colon + 1
    if (length > this.bytes.length - from) {
      this.fail(start, `string of ${digits} bytes runs past the end of the input (${this.bytes.length - from} left)`)
    }
    this.pos = from + length
    return keep ? this.bytes.subarray(from, this.pos) : noBytes
  }

  list(depth: number): ReadonlyArray<BValue> {
    const start = this.pos++
    const items: Array<BValue> = []
    while (true) {
      if (this.pos >= this.bytes.length) this.fail(start, "unterminated list")
      if (this.bytes[this.pos] === E) break
      const item = this.value(depth)
      if (this.build) items.push(item)
    }
    this.pos++
    return items
  }

  dict(depth: number): BDict {
    const start = this.pos++
    const dict: Record<string, BValue> = Object.setPrototypeOf({}, null)
    while (true) {
      if (this.pos >= this.bytes.length) this.fail(start, "unterminated dictionary")
      if (this.bytes[this.pos] === E) break
      const keyAt = this.pos
      const c = this.bytes[keyAt]!
      if (c < ZERO || c > NINE) this.fail(keyAt, "dictionary key is not a string")
      this.tokens++
      const key = utf8.decode(this.string(true))
      if (Object.hasOwn(dict, key)) this.fail(keyAt, `duplicate key "${key}"`)
      const value = this.value(depth)
      dict[key] = this.build ? value : noBytes
    }
    this.pos++
    if (this.build) Object.defineProperty(dict, source, { value: this.bytes.subarray(start, this.pos) })
    return dict
  }

  /** A dictionary's entries with their keys as the bytes they are (binary keys, e.g. v2 piece roots, do not survive text). */
  entries(): Array<readonly [Uint8Array, BValue]> {
    const out: Array<readonly [Uint8Array, BValue]> = []
    this.pos++
    while (this.bytes[this.pos] !== E) {
      const key = this.string(true)
      out.push([key, this.value(1)])
    }
    return out
  }

  digitsAt(from: number, to: number, what: string): string {
    if (to - from > 20) this.fail(from, `${what} has too many digits`)
    let s = ""
    for (let i = from; i < to; i++) {
      const c = this.bytes[i]!
      if ((c < ZERO || c > NINE) && !(c === MINUS && i === from)) {
        this.fail(i, `${what} has a non-digit byte 0x${c.toString(16).padStart(2, "0")}`)
      }
      s += String.fromCharCode(c)
    }
    return s
  }
}

export const isDict = (value: BValue): value is BDict =>
  typeof value === "object" && !(value instanceof Uint8Array) && !Array.isArray(value)

/**
 * The entries of a decoded dictionary with their keys as bytes, read again
 * from its source (which `decode` checked already).
 */
export const entries = (dict: BDict): ReadonlyArray<readonly [Uint8Array, BValue]> => {
  const bytes = sourceBytes(dict)
  return bytes === undefined
    ? Object.entries(dict).map(([key, value]) => [new TextEncoder().encode(key), value] as const)
    : new Parser(bytes, defaultLimits, true).entries()
}

/** Decodes a byte string as UTF-8 text. */
export const text = (bytes: Uint8Array): string => utf8.decode(bytes)
