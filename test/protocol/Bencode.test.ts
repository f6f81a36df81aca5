import { assert, describe, it } from "@effect/vitest"
import bencode from "bencode"
import { Arbitrary, Effect, Result, Schema } from "effect"
import * as Bencode from "../../src/protocol/Bencode.ts"

// ---------------------------------------------------------------- generators

type BValue = Bencode.BValue

const Value: Schema.Codec<BValue> = Schema.Union([
  Schema.Int,
  Schema.Literals([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 32, -(2 ** 31)]),
  Schema.Uint8Array,
  Schema.Array(Schema.suspend((): Schema.Codec<BValue> => Value)),
  Schema.Record(Schema.String, Schema.suspend((): Schema.Codec<BValue> => Value))
])

const isList = (v: BValue): v is ReadonlyArray<BValue> => Array.isArray(v)
const isDict = (v: BValue): v is Bencode.BDict => typeof v === "object" && !(v instanceof Uint8Array) && !isList(v)

/**
 * Makes a generated value representable: bencode has no -0, and a key is
 * UTF-8 on the wire, so a lone surrogate cannot survive (keep well-formed text).
 */
const representable = (v: BValue): BValue => {
  if (typeof v === "number") return Object.is(v, -0) ? 0 : v
  if (v instanceof Uint8Array) return v
  if (isList(v)) return v.map(representable)
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [Buffer.from(k, "utf8").toString("utf8"), representable(x)])
  )
}

/**
 * bencode@4's decoder assigns keys into a plain `{}` (so "__proto__" sets the
 * prototype) and turns keys holding U+FFFD into hex: keep those keys out when
 * comparing with it. Our decoder handles both (tested below).
 */
const withoutQuirkyKeys = (v: BValue): BValue => {
  if (typeof v === "number" || v instanceof Uint8Array) return v
  if (isList(v)) return v.map(withoutQuirkyKeys)
  return Object.fromEntries(
    Object.entries(v).filter(([k]) => !hasQuirk(k)).map(([k, x]) => [k, withoutQuirkyKeys(x)])
  )
}
const hasQuirk = (key: string) => key === "__proto__" || key.includes("\uFFFD")

const value = Arbitrary.schema(Value).pipe(Arbitrary.map(representable))
const plainValue = value.pipe(Arbitrary.map(withoutQuirkyKeys))

/** A comparable form: exact about types and bytes, blind to key order and prototypes. */
type Canon = { i: number } | { s: string } | { l: Array<Canon> } | { d: Array<[string, Canon]> }
const canon = (v: unknown): Canon => {
  if (typeof v === "number") return { i: v }
  if (v instanceof Uint8Array) return { s: Buffer.from(v).toString("hex") }
  if (Array.isArray(v)) return { l: v.map(canon) }
  if (typeof v === "object" && v !== null) {
    const record = v as Record<string, unknown>
    return { d: Object.keys(record).sort().map((k): [string, Canon] => [k, canon(record[k])]) }
  }
  throw new Error(`not a bencode value: ${String(v)}`)
}

const dictsOf = (v: BValue): Array<Bencode.BDict> =>
  isList(v) ? v.flatMap(dictsOf) : isDict(v) ? [v, ...Object.values(v).flatMap(dictsOf)] : []

// ------------------------------------------------------------------- helpers

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"))

const decodeOk = (input: string | Uint8Array, limits?: Bencode.Limits): BValue => {
  const result = Bencode.decode(typeof input === "string" ? bytes(input) : input, limits)
  if (Result.isFailure(result)) assert.fail(`expected success, got: ${result.failure.message}`)
  return result.success
}

const decodeErr = (input: string | Uint8Array, limits?: Bencode.Limits): Bencode.BencodeError => {
  const result = Bencode.decode(typeof input === "string" ? bytes(input) : input, limits)
  if (Result.isSuccess(result)) assert.fail(`expected a failure, got ${JSON.stringify(canon(result.success))}`)
  return result.failure
}

const assertError = (input: string | Uint8Array, offset: number, problem: string, limits?: Bencode.Limits) => {
  const error = decodeErr(input, limits)
  assert.deepStrictEqual({ offset: error.offset, problem: error.problem }, { offset, problem })
  assert.strictEqual(error.message, `invalid bencode at byte ${offset}: ${problem}`)
}

const limits = (overrides: Partial<Bencode.Limits>): Bencode.Limits => ({ ...Bencode.defaultLimits, ...overrides })

// --------------------------------------------------------------------- tests

describe("Bencode", () => {
  describe("round trip", () => {
    it.effect.prop("decode(encode(v)) equals v", [value], ([v]) =>
      Effect.gen(function*() {
        const decoded = yield* Effect.fromResult(Bencode.decode(Bencode.encode(v)))
        assert.deepStrictEqual(canon(decoded), canon(v))
      }))

    it.effect.prop("agrees with bencode@4's decoder on the same bytes", [plainValue], ([v]) =>
      Effect.gen(function*() {
        const encoded = Bencode.encode(v)
        const ours = yield* Effect.fromResult(Bencode.decode(encoded))
        assert.deepStrictEqual(canon(ours), canon(bencode.decode(encoded)))
      }))

    it.effect.prop(
      "sourceBytes of every decoded dict is its own (sorted) encoding",
      [value],
      ([v]) =>
        Effect.gen(function*() {
          const decoded = yield* Effect.fromResult(Bencode.decode(Bencode.encode(v)))
          for (const dict of dictsOf(decoded)) {
            assert.deepStrictEqual(Bencode.sourceBytes(dict), Bencode.encode(dict))
          }
        })
    )

    it.effect.prop(
      "every proper prefix of an encoding fails, and so does any trailing byte",
      [value],
      ([v]) =>
        Effect.sync(() => {
          const encoded = Bencode.encode(v)
          const step = Math.max(1, Math.floor(encoded.length / 200))
          for (let cut = 0; cut < encoded.length; cut += step) {
            assert.isTrue(Result.isFailure(Bencode.decode(encoded.subarray(0, cut))), `prefix of ${cut} bytes`)
          }
          const extra = new Uint8Array([...encoded, 0x65])
          const error = decodeErr(extra)
          assert.deepStrictEqual([error.offset, error.problem], [encoded.length, "trailing data after the value"])
        })
    )

    it.effect.prop(
      "on one-byte mutations: never throws, fails inside the input, and agrees with bencode@4 when it accepts",
      [
        plainValue,
        Schema.Int,
        Schema.Literals(["delete", "insert", "replace"]),
        Schema.Literals([..."0123456789:-ield"])
      ],
      ([v, at, edit, ch]) =>
        Effect.sync(() => {
          const input = [...Bencode.encode(v)]
          const i = Math.abs(at) % (input.length + 1)
          const c = ch.charCodeAt(0)
          if (edit === "delete") input.splice(i, 1)
          else if (edit === "insert") input.splice(i, 0, c)
          else input[Math.min(i, input.length - 1)] = c
          const mutated = new Uint8Array(input)
          const result = Bencode.decode(mutated)
          if (Result.isFailure(result)) {
            assert.isAtLeast(result.failure.offset, 0)
            assert.isAtMost(result.failure.offset, mutated.length)
            assert.isAbove(result.failure.problem.length, 0)
          } else if (!dictsOf(result.success).some((d) => Object.keys(d).some(hasQuirk))) {
            assert.deepStrictEqual(canon(result.success), canon(bencode.decode(mutated)))
          }
        })
    )
  })

  describe("values", () => {
    it("decodes each type", () => {
      assert.strictEqual(decodeOk("i0e"), 0)
      assert.strictEqual(decodeOk("i-42e"), -42)
      assert.strictEqual(decodeOk(`i${Number.MAX_SAFE_INTEGER}e`), Number.MAX_SAFE_INTEGER)
      assert.strictEqual(decodeOk(`i${Number.MIN_SAFE_INTEGER}e`), Number.MIN_SAFE_INTEGER)
      assert.deepStrictEqual(decodeOk("0:"), new Uint8Array(0))
      assert.deepStrictEqual(decodeOk("3:a:e"), bytes("a:e"))
      assert.deepStrictEqual(canon(decodeOk("l1:ai1elee")), { l: [{ s: "61" }, { i: 1 }, { l: [] }] })
      assert.deepStrictEqual(canon(decodeOk("d1:ai1e1:bdee")), { d: [["a", { i: 1 }], ["b", { d: [] }]] })
    })

    it("decoded dicts have no prototype, so keys like __proto__ and constructor are plain data", () => {
      const dict = decodeOk("d9:__proto__i1e11:constructori2ee") as Bencode.BDict
      assert.isNull(Object.getPrototypeOf(dict))
      assert.deepStrictEqual(Object.keys(dict), ["__proto__", "constructor"])
      // biome-ignore lint/suspicious/noProto: the key under test, read as data
      assert.strictEqual(dict["__proto__"], 1)
      assert.strictEqual(dict["constructor"], 2)
      const empty = decodeOk("de") as Bencode.BDict
      assert.isUndefined(empty["toString"])
      // biome-ignore lint/suspicious/noProto: the key under test, read as data
      assert.isUndefined(empty["__proto__"])
    })

    it("strings are views on the input, not copies", () => {
      const input = bytes("l3:abc2:dee")
      const list = decodeOk(input) as ReadonlyArray<Uint8Array>
      assert.strictEqual(list[0]!.buffer, input.buffer)
      assert.strictEqual(list[1]!.byteOffset, input.byteOffset + 8)
    })

    it("text decodes UTF-8 and replaces invalid bytes", () => {
      assert.strictEqual(Bencode.text(bytes("caf\xc3\xa9")), "café")
      assert.strictEqual(Bencode.text(bytes("caf\xe9")), "caf\uFFFD")
    })
  })

  describe("sourceBytes", () => {
    it("is exactly the original bytes of a dict with unsorted keys, not a re-encoding", () => {
      const input = bytes("d1:bi1e1:ai2ee")
      const dict = decodeOk(input) as Bencode.BDict
      assert.deepStrictEqual(Bencode.sourceBytes(dict), input)
      assert.deepStrictEqual(Object.keys(dict), ["b", "a"])
      assert.strictEqual(Buffer.from(Bencode.encode(dict)).toString("latin1"), "d1:ai2e1:bi1ee")
    })

    it("finds a nested dict's bytes inside the whole input, as a view", () => {
      const input = bytes("d8:announce3:url4:infod4:name1:x6:lengthi1ee5:zzzzzl0:deee")
      const root = decodeOk(input) as Bencode.BDict
      const info = root["info"] as Bencode.BDict
      const source = Bencode.sourceBytes(info)!
      assert.strictEqual(Buffer.from(source).toString("latin1"), "d4:name1:x6:lengthi1ee")
      assert.strictEqual(source.buffer, input.buffer)
      assert.strictEqual(source.byteOffset, input.byteOffset + 22)
      const inList = (root["zzzzz"] as ReadonlyArray<Bencode.BDict>)[1]!
      assert.strictEqual(Buffer.from(Bencode.sourceBytes(inList)!).toString("latin1"), "de")
      assert.deepStrictEqual(Bencode.sourceBytes(root), input)
    })

    it("is invisible to keys, entries and JSON, and undefined for dicts we did not decode", () => {
      const dict = decodeOk("d1:ai1ee") as Bencode.BDict
      assert.deepStrictEqual(Object.keys(dict), ["a"])
      assert.deepStrictEqual(Reflect.ownKeys(dict).filter((k) => typeof k === "string"), ["a"])
      assert.strictEqual(JSON.stringify(dict), `{"a":1}`)
      assert.isUndefined(Bencode.sourceBytes({ a: 1 }))
      assert.isUndefined(Bencode.sourceBytes({ ...dict }))
    })
  })

  describe("errors name the byte offset and the problem", () => {
    it("integers", () => {
      assertError("i03e", 0, "integer with a leading zero")
      assertError("i00e", 0, "integer with a leading zero")
      assertError("i-03e", 0, "integer with a leading zero")
      assertError("li1ei007ee", 4, "integer with a leading zero")
      assertError("i-0e", 0, "negative zero")
      assertError("ie", 0, "empty integer")
      assertError("i-e", 0, "empty integer")
      assertError("i12", 0, "unterminated integer")
      assertError("li1ei2", 4, "unterminated integer")
      assertError("i1x2e", 2, "integer has a non-digit byte 0x78")
      assertError("i--1e", 2, "integer has a non-digit byte 0x2d")
      assertError("i+1e", 1, "integer has a non-digit byte 0x2b")
      assertError("i1.5e", 2, "integer has a non-digit byte 0x2e")
      assertError(`i${"1".repeat(21)}e`, 1, "integer has too many digits")
    })

    it("unsafe integers", () => {
      assertError("i9007199254740992e", 0, "integer 9007199254740992 is outside the safe range")
      assertError("i-9007199254740992e", 0, "integer -9007199254740992 is outside the safe range")
      assertError(`i${"9".repeat(20)}e`, 0, `integer ${"9".repeat(20)} is outside the safe range`)
      assert.strictEqual(decodeOk("i9007199254740991e"), 9007199254740991)
    })

    it("strings", () => {
      assertError("01:a", 0, "string length with a leading zero")
      assertError("l00:e", 1, "string length with a leading zero")
      assertError("5:abc", 0, "string of 5 bytes runs past the end of the input (3 left)")
      assertError("l5:abce", 1, "string of 5 bytes runs past the end of the input (4 left)")
      assertError("4:", 0, "string of 4 bytes runs past the end of the input (0 left)")
      assertError(`${"9".repeat(20)}:x`, 0, `string of ${"9".repeat(20)} bytes runs past the end of the input (1 left)`)
      assertError("3", 0, "string length without ':'")
      assertError("l1:a3", 4, "string length without ':'")
      assertError("3x:abc", 1, "string length has a non-digit byte 0x78")
      assertError(`${"1".repeat(21)}:`, 0, "string length has too many digits")
    })

    it("lists and dicts", () => {
      assertError("l", 0, "unterminated list")
      assertError("li1e", 0, "unterminated list")
      assertError("lli1ee", 0, "unterminated list")
      assertError("d", 0, "unterminated dictionary")
      assertError("d1:ai1e", 0, "unterminated dictionary")
      assertError("d1:ad1:bi1ee", 0, "unterminated dictionary")
      assertError("d1:a", 4, "unexpected end of input")
      assertError("di1ei2ee", 1, "dictionary key is not a string")
      assertError("d1:ai1elei2ee", 7, "dictionary key is not a string")
      assertError("d1:ai1e1:ai2ee", 7, `duplicate key "a"`)
      assertError("d1:ad1:xi1e1:xi2eee", 11, `duplicate key "x"`)
    })

    it("stray bytes and trailing data", () => {
      assertError("", 0, "unexpected end of input")
      assertError("x", 0, "unexpected byte 0x78")
      assertError("e", 0, "unexpected byte 0x65")
      assertError("-1:a", 0, "unexpected byte 0x2d")
      assertError("i1ei2e", 3, "trailing data after the value")
      assertError("dele", 2, "trailing data after the value")
      assertError("0:\n", 2, "trailing data after the value")
    })
  })

  describe("limits", () => {
    it("nesting depth: 100 nested lists or dicts are fine, the 101st fails where it starts", () => {
      assert.isTrue(Result.isSuccess(Bencode.decode(bytes("l".repeat(100) + "e".repeat(100)))))
      assertError("l".repeat(101) + "e".repeat(101), 100, "nesting deeper than 100")
      assert.isTrue(Result.isSuccess(Bencode.decode(bytes("d1:a".repeat(100) + "0:" + "e".repeat(100)))))
      assertError("d1:a".repeat(101) + "0:" + "e".repeat(101), 400, "nesting deeper than 100")
    })

    it("nesting depth with a custom limit", () => {
      const two = limits({ maxDepth: 2 })
      assert.isTrue(Result.isSuccess(Bencode.decode(bytes("ll1:aee"), two)))
      assertError("llleee", 2, "nesting deeper than 2", two)
      assertError("ld1:alee", 5, "nesting deeper than 2", two)
      assert.strictEqual(decodeOk("i7e", limits({ maxDepth: 0 })), 7)
      assertError("le", 0, "nesting deeper than 0", limits({ maxDepth: 0 }))
    })

    it("tokens: values and keys count, the limit is inclusive, and the failing value is named", () => {
      const three = limits({ maxTokens: 3 })
      assert.isTrue(Result.isSuccess(Bencode.decode(bytes("li1ei2ee"), three)))
      assertError("li1ei2ei3ee", 7, "more than 3 tokens", three)
      // dict, key "a", value: three tokens.
      assert.isTrue(Result.isSuccess(Bencode.decode(bytes("d1:ai1ee"), three)))
      // The key "b" is the fourth token; the limit is checked at its value.
      assertError("d1:ai1e1:bi2ee", 10, "more than 3 tokens", three)
    })

    it("input size", () => {
      assert.strictEqual(decodeOk("i123456e", limits({ maxBytes: 8 })), 123456)
      assertError("i1234567e", 0, "input is 9 bytes; the limit is 8", limits({ maxBytes: 8 }))
      const big = new Uint8Array(Bencode.defaultLimits.maxBytes + 1).fill(0x6c)
      assertError(big, 0, `input is ${big.length} bytes; the limit is ${Bencode.defaultLimits.maxBytes}`)
    })

    it("a bomb of a million nested lists fails fast under the default limits, without allocating", () => {
      const bomb = new Uint8Array(1_000_000).fill(0x6c)
      const heapBefore = process.memoryUsage().heapUsed
      const start = performance.now()
      const error = decodeErr(bomb)
      const elapsed = performance.now() - start
      const grown = process.memoryUsage().heapUsed - heapBefore
      assert.deepStrictEqual([error.offset, error.problem], [100, "nesting deeper than 100"])
      assert.isBelow(elapsed, 1000)
      assert.isBelow(grown, 16 * 1024 * 1024)
    })

    it("a token bomb of 3 million empty dicts fails at the token limit in seconds, not minutes", () => {
      // "l" + "de" × 3,000,001 + "e": 6 MB, under the size limit. Keeping a
      // WeakMap entry per dict made this take 75 s; it must stay linear.
      const bomb = Buffer.alloc(2 + 2 * 3_000_001, "e").fill("de", 1, 1 + 2 * 3_000_001)
      bomb[0] = 0x6c
      const start = performance.now()
      const error = decodeErr(bomb)
      const elapsed = performance.now() - start
      assert.deepStrictEqual([error.offset, error.problem], [5_999_999, "more than 3000000 tokens"])
      assert.isBelow(elapsed, 30_000)
    }, 120_000)
  })
})
