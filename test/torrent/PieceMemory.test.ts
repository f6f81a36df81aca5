import { assert, describe, it } from "@effect/vitest"
import * as PieceMemory from "../../src/torrent/PieceMemory.ts"

const kib = 1024

describe("PieceMemory", () => {
  it("opens pieces within the limit, a torrent's first always", () => {
    const pool = PieceMemory.make(512 * kib)
    const a = pool.take(256 * kib, false)!
    pool.take(256 * kib, false)
    assert.isUndefined(pool.take(256 * kib, false), "at the limit")
    assert.isDefined(pool.take(256 * kib, true), "a torrent with no piece open")
    pool.give(a, true)
    assert.isUndefined(pool.take(256 * kib, false), "still over it")
  })

  it("reuses closed pieces' buffers, for pieces of any torrent, whole again after a smaller piece", () => {
    const pool = PieceMemory.make(1024 * kib)
    const a = pool.take(256 * kib, false)!
    const b = pool.take(256 * kib, false)!
    pool.give(a, true)
    const smaller = pool.take(128 * kib, false)!
    assert.strictEqual(smaller.buffer, a.buffer, "the same memory, for a smaller piece")
    pool.give(b, false)
    assert.notStrictEqual(pool.take(256 * kib, false)!.buffer, b.buffer, "not reusable: a connection may write to it")
    pool.give(smaller, true)
    assert.strictEqual(pool.take(256 * kib, false)!.buffer, a.buffer, "a 256 KiB piece again")
  })

  it("keeps no more than was ever in use at once (or the limit)", () => {
    const pool = PieceMemory.make(256 * kib)
    const a = pool.take(256 * kib, false)!
    pool.give(a, true)
    const b = pool.take(256 * kib, true)!
    assert.strictEqual(b.buffer, a.buffer)
    const c = pool.take(256 * kib, true)!
    pool.give(b, true)
    pool.give(c, true)
    // 512 KiB were in use at once: both kept.
    assert.deepStrictEqual(
      new Set([pool.take(256 * kib, true)!.buffer, pool.take(256 * kib, true)!.buffer]),
      new Set([a.buffer, c.buffer])
    )
  })
})
