import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as RateLimit from "../../src/torrent/RateLimit.ts"

describe("RateLimit", () => {
  it("a bucket allows a one-second burst, then makes takers wait to repay the debt", () => {
    const bucket = new RateLimit.Bucket(1000)
    assert.strictEqual(bucket.take(1000, 1000), 0) // full after a second
    assert.strictEqual(bucket.take(500, 1000), 500) // 500 bytes of debt: half a second
    assert.strictEqual(bucket.take(0, 1500), 0) // repaid
  })

  it("0 means unlimited, and the rate can change while running", () => {
    const bucket = new RateLimit.Bucket(0)
    assert.strictEqual(bucket.take(1e9, 0), 0)
    bucket.setRate(100)
    assert.isAbove(bucket.take(1000, 0), 0)
  })

  it.effect("take waits on the slowest bucket (global and per-torrent)", () =>
    Effect.gen(function*() {
      const global = new RateLimit.Bucket(10_000)
      const torrent = new RateLimit.Bucket(1_000)
      const fiber = yield* Effect.forkChild(RateLimit.take([global, torrent], 2_000))
      yield* TestClock.adjust(1_999)
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust(1)
      yield* Fiber.join(fiber)
    }))
})
