import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as Bitfield from "../../src/protocol/Bitfield.ts"

describe("Bitfield", () => {
  it("uses BEP 3 bit order: piece 0 is the high bit of byte 0", () => {
    const bits = Bitfield.make(10)
    bits.set(0)
    bits.set(9)
    assert.deepStrictEqual(bits.toBytes(), new Uint8Array([0x80, 0x40]))
    assert.isTrue(bits.has(0))
    assert.isFalse(bits.has(1))
    assert.isTrue(bits.has(9))
  })

  it("counts set pieces through set and clear", () => {
    const bits = Bitfield.make(3)
    bits.set(1)
    bits.set(1)
    assert.strictEqual(bits.count(), 1)
    bits.set(0)
    bits.set(2)
    assert.isTrue(bits.isComplete())
    bits.clear(2)
    bits.clear(2)
    assert.strictEqual(bits.count(), 2)
    assert.isFalse(bits.isComplete())
  })

  it("full sets every piece and leaves the spare bits clear", () => {
    const bits = Bitfield.full(11)
    assert.deepStrictEqual(bits.toBytes(), new Uint8Array([0xff, 0xe0]))
    assert.strictEqual(bits.count(), 11)
    assert.isTrue(bits.isComplete())
    assert.isTrue(Bitfield.full(16).isComplete())
    assert.isTrue(Bitfield.make(0).isComplete())
  })

  it("toBytes is a copy", () => {
    const bits = Bitfield.make(8)
    const bytes = bits.toBytes()
    bits.set(0)
    assert.strictEqual(bytes[0], 0)
  })

  it("rejects an index outside the bitfield as a bug", () => {
    const bits = Bitfield.make(10)
    assert.throws(() => bits.set(10), RangeError)
    assert.throws(() => bits.clear(-1), RangeError)
  })

  it.prop("fromBytes counts with the table and copies its input", [Schema.Uint8Array], ([bytes]) => {
    const bits = Result.getOrThrow(Bitfield.fromBytes(bytes, bytes.length * 8))
    let naive = 0
    for (let i = 0; i < bytes.length * 8; i++) if (bits.has(i)) naive++
    assert.strictEqual(bits.count(), naive)
    assert.deepStrictEqual(bits.toBytes(), bytes)
    if (bytes.length > 0) {
      bytes[0] = ~bytes[0]!
      assert.notStrictEqual(bits.has(0), (bytes[0]! & 0x80) !== 0)
    }
  })

  it("fromBytes rejects a wrong byte length", () => {
    for (const length of [1, 3]) {
      const error = Result.getOrThrow(Result.flip(Bitfield.fromBytes(new Uint8Array(length), 10)))
      assert.strictEqual(error.problem, "WrongLength")
      assert.strictEqual(error.byteLength, length)
      assert.strictEqual(error.message, `bitfield of ${length} bytes for 10 pieces; expected 2`)
    }
  })

  it("fromBytes rejects spare bits", () => {
    assert.isTrue(Result.isSuccess(Bitfield.fromBytes(new Uint8Array([0xff, 0xc0]), 10)))
    const error = Result.getOrThrow(Result.flip(Bitfield.fromBytes(new Uint8Array([0xff, 0xe0]), 10)))
    assert.strictEqual(error.problem, "SpareBits")
    assert.strictEqual(error.message, "bitfield for 10 pieces has spare bits set after the last piece")
    assert.isTrue(Result.isFailure(Bitfield.fromBytes(new Uint8Array([0x01]), 7)))
  })

  it.prop(
    "notIn lists the pieces one has and the other lacks, in order",
    [Schema.Uint8Array, Schema.Uint8Array],
    ([a, b]) => {
      const size = Math.min(a.length, b.length) * 8
      const one = Result.getOrThrow(Bitfield.fromBytes(a.subarray(0, size / 8), size))
      const other = Result.getOrThrow(Bitfield.fromBytes(b.subarray(0, size / 8), size))
      const expected: Array<number> = []
      for (let i = 0; i < size; i++) if (one.has(i) && !other.has(i)) expected.push(i)
      assert.deepStrictEqual(one.notIn(other), expected)
      assert.deepStrictEqual(one.notIn(other, 1), expected.slice(0, 1))
      assert.deepStrictEqual(one.notIn(one), [])
    }
  )
})
