/**
 * The Range header parser: each form against RFC 9110 §14, every small case
 * against a plain reading of the RFC, and what it ignores.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ByteRange from "../../src/http/ByteRange.ts"

const part = (start: number, end: number): ByteRange.Answer => ({ _tag: "Part", start, end })
const whole: ByteRange.Answer = { _tag: "Whole" }
const unsatisfiable: ByteRange.Answer = { _tag: "Unsatisfiable" }

describe("ByteRange.parse", () => {
  it("a-b, a- and -n", () => {
    assert.deepStrictEqual(ByteRange.parse("bytes=0-99", 1000), part(0, 100))
    assert.deepStrictEqual(ByteRange.parse("bytes=500-", 1000), part(500, 1000))
    assert.deepStrictEqual(ByteRange.parse("bytes=-100", 1000), part(900, 1000))
    assert.deepStrictEqual(ByteRange.parse("bytes=-5000", 1000), part(0, 1000))
    assert.deepStrictEqual(ByteRange.parse("bytes=990-5000", 1000), part(990, 1000))
    assert.deepStrictEqual(ByteRange.parse("Bytes = 1 - 2", 1000), part(1, 3))
    assert.deepStrictEqual(ByteRange.parse(`bytes=0-${"9".repeat(300)}`, 1000), part(0, 1000))
  })

  it("past the end, or no bytes: unsatisfiable", () => {
    for (const header of ["bytes=1000-", "bytes=1000-2000", "bytes=-0", `bytes=${"9".repeat(300)}-`]) {
      assert.deepStrictEqual(ByteRange.parse(header, 1000), unsatisfiable, header)
    }
    assert.deepStrictEqual(ByteRange.parse("bytes=0-", 0), unsatisfiable)
    assert.deepStrictEqual(ByteRange.parse("bytes=-5", 0), unsatisfiable)
  })

  it("what it does not take is ignored: the whole file", () => {
    for (
      const header of [
        undefined,
        "",
        "bytes=",
        "bytes=-",
        "bytes=5-2",
        "bytes=0-1,3-4",
        "items=0-1",
        "bytes=a-b",
        "bytes=1.5-2",
        "bytes=--1",
        "bytes=0-1 x"
      ]
    ) assert.deepStrictEqual(ByteRange.parse(header, 1000), whole, String(header))
  })

  it("every range of every file up to 6 bytes, as the RFC reads", () => {
    for (let size = 0; size <= 6; size++) {
      for (let a = 0; a <= 8; a++) {
        for (let b = 0; b <= 8; b++) {
          const expected = b < a ? whole : a >= size ? unsatisfiable : part(a, Math.min(b + 1, size))
          assert.deepStrictEqual(ByteRange.parse(`bytes=${a}-${b}`, size), expected, `${a}-${b} of ${size}`)
        }
        const open = a >= size ? unsatisfiable : part(a, size)
        assert.deepStrictEqual(ByteRange.parse(`bytes=${a}-`, size), open, `${a}- of ${size}`)
        const suffix = a === 0 || size === 0 ? unsatisfiable : part(Math.max(0, size - a), size)
        assert.deepStrictEqual(ByteRange.parse(`bytes=-${a}`, size), suffix, `-${a} of ${size}`)
      }
    }
  })

  it("Content-Range", () => {
    assert.strictEqual(ByteRange.contentRange({ start: 0, end: 100 }, 1000), "bytes 0-99/1000")
    assert.strictEqual(ByteRange.unsatisfiedRange(1000), "bytes */1000")
  })
})
