/**
 * FetchTorrent's time bound, on the TestClock: a server that never answers
 * is given up at 30 s (not before), as a `Timeout` naming the URL.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { HttpClient } from "effect/http"
import { TestClock } from "effect/testing"
import * as FetchTorrent from "../../src/daemon/FetchTorrent.ts"

/** A client whose requests never get an answer. */
const silent = HttpClient.make(() => Effect.never)

describe("FetchTorrent", () => {
  it.effect("gives up on a server that never answers at 30 s, not before", () =>
    Effect.gen(function*() {
      const fiber = yield* FetchTorrent.fetch("http://127.0.0.1:9/x.torrent").pipe(
        Effect.provideService(HttpClient.HttpClient, silent),
        Effect.flip,
        Effect.forkChild
      )
      yield* TestClock.adjust("29 seconds")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        [error.problem, error.message],
        ["Timeout", "http://127.0.0.1:9/x.torrent: not fetched within 30 s"]
      )
    }))
})
