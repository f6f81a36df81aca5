import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { Rc4 } from "../../src/protocol/Rc4.ts"

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")

/** `length` bytes of the keystream of `key` from `offset` on. */
const keystream = (key: string, offset: number, length: number) => {
  const rc4 = new Rc4(Buffer.from(key, "hex"))
  rc4.discard(offset)
  const out = new Uint8Array(length)
  rc4.process(out)
  return hex(out)
}

const encrypt = (key: string, text: string) => {
  const bytes = new Uint8Array(Buffer.from(text, "latin1"))
  new Rc4(Buffer.from(key, "latin1")).process(bytes)
  return hex(bytes)
}

/** The textbook algorithm, a byte at a time: what the fast path must agree with. */
const reference = (key: Uint8Array, data: Uint8Array) => {
  const s = Array.from({ length: 256 }, (_, i) => i)
  let j = 0
  for (let i = 0; i < 256; i++) {
    j = (j + s[i]! + key[i % key.length]!) % 256
    ;[s[i], s[j]] = [s[j]!, s[i]!]
  }
  const out = new Uint8Array(data.length)
  let i = 0
  j = 0
  for (let k = 0; k < data.length; k++) {
    i = (i + 1) % 256
    j = (j + s[i]!) % 256
    ;[s[i], s[j]] = [s[j]!, s[i]!]
    out[k] = data[k]! ^ s[(s[i]! + s[j]!) % 256]!
  }
  return out
}

describe("Rc4", () => {
  it("gives RFC 6229's keystream for a 40-bit key", () => {
    assert.strictEqual(keystream("0102030405", 0, 16), "b2396305f03dc027ccc3524a0a1118a8")
    assert.strictEqual(keystream("0102030405", 16, 16), "6982944f18fc82d589c403a47a0d0919")
    assert.strictEqual(keystream("0102030405", 1536, 16), "d8729db41882259bee4f825325f5a130")
    assert.strictEqual(keystream("0102030405", 4096, 16), "ff25b58995996707e51fbdf08b34d875")
  })

  it("gives RFC 6229's keystream for a 200-bit key", () => {
    const key = "0102030405060708090a0b0c0d0e0f10111213141516171819"
    assert.strictEqual(keystream(key, 0, 16), "7452b16f0c7a707299e2fe5b153da501")
    assert.strictEqual(keystream(key, 4080, 16), "4e699f4bb71379ea141344611eca750d")
  })

  it("encrypts the classic examples", () => {
    assert.strictEqual(encrypt("Key", "Plaintext"), "bbf316e8d940af0ad3")
    assert.strictEqual(encrypt("Wiki", "pedia"), "1021bf0420")
    assert.strictEqual(encrypt("Secret", "Attack at dawn"), "45a01f645fc35b383552544b9bf5")
  })

  it("works in place on a view, leaving the bytes around it alone", () => {
    const buffer = new Uint8Array(64).fill(7)
    const view = buffer.subarray(3, 50) // unaligned start and end
    new Rc4(Buffer.from("0102030405", "hex")).process(view)
    assert.strictEqual(hex(view.subarray(0, 16)), "b53e6402f73ac720cbc4554d0d161faf") // keystream xor 07
    assert.deepStrictEqual([...buffer.subarray(0, 3)], [7, 7, 7])
    assert.deepStrictEqual([...buffer.subarray(50)], new Array(14).fill(7))
  })

  it("decrypts what it encrypted", () => {
    const data = new Uint8Array(Buffer.from("the quick brown fox jumps over the lazy dog".repeat(50)))
    const copy = data.slice()
    new Rc4(new Uint8Array([1, 2, 3])).process(copy)
    assert.notDeepEqual(copy, data)
    new Rc4(new Uint8Array([1, 2, 3])).process(copy)
    assert.deepStrictEqual(copy, data)
  })

  it("refuses an empty or over-long key", () => {
    assert.throws(() => new Rc4(new Uint8Array(0)), /1 to 256 bytes/)
    assert.throws(() => new Rc4(new Uint8Array(257)), /1 to 256 bytes/)
  })

  it.prop(
    "agrees with the textbook algorithm however the data is split and aligned",
    [
      Schema.Uint8Array.check(Schema.isBetweenLength(1, 64)),
      Schema.Uint8Array.check(Schema.isMaxLength(300)),
      Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 300 }))).check(Schema.isMaxLength(6)),
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 7 }))
    ],
    ([key, data, cuts, shift]) => {
      const expected = reference(key, data)
      // The data at `shift` bytes into a buffer, so word alignment varies.
      const buffer = new Uint8Array(data.length + shift)
      buffer.set(data, shift)
      const view = buffer.subarray(shift)
      const rc4 = new Rc4(key)
      const points = [0, ...cuts.map((c) => Math.min(c, data.length)).sort((a, b) => a - b), data.length]
      for (let p = 1; p < points.length; p++) rc4.process(view.subarray(points[p - 1], points[p]))
      assert.deepStrictEqual(view, expected)
    }
  )

  it("discard skips keystream exactly", () => {
    const key = new Uint8Array([9, 8, 7, 6, 5])
    const whole = reference(key, new Uint8Array(1024 + 40)).subarray(1024)
    const rc4 = new Rc4(key)
    rc4.discard(1024)
    const out = new Uint8Array(40)
    rc4.process(out)
    assert.deepStrictEqual(out, whole)
  })
})
