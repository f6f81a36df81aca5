import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as Tokens from "../../src/dht/Tokens.ts"

describe("Tokens", () => {
  it.effect("a token is accepted from its host for two rotations of 5 minutes", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens.make
      const first = tokens.issue("10.0.0.1")
      assert.strictEqual(first.length, 8)
      assert.isTrue(tokens.check("10.0.0.1", first))
      assert.isFalse(tokens.check("10.0.0.2", first), "tied to the IP address")
      assert.isFalse(tokens.check("10.0.0.1", first.subarray(0, 4)))
      assert.deepStrictEqual(tokens.issue("10.0.0.1"), first, "same secret, same token")

      yield* TestClock.adjust("5 minutes")
      const second = tokens.issue("10.0.0.1")
      assert.notDeepEqual(second, first, "the secret rotated")
      yield* TestClock.adjust("299999 millis")
      assert.isTrue(tokens.check("10.0.0.1", first), "the previous secret is still accepted")
      yield* TestClock.adjust("1 milli")
      assert.isFalse(tokens.check("10.0.0.1", first), "two rotations later it is not")
      assert.isTrue(tokens.check("10.0.0.1", second))
    }))
})
