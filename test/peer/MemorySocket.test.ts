import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as MemorySocket from "../../src/peer/MemorySocket.ts"

const bytes = (...values: Array<number>) => Uint8Array.from(values)

const closeCode = (exit: Exit.Exit<unknown, unknown>) => {
  if (!Exit.isFailure(exit)) return undefined
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  const value = error?._tag === "Fail" ? (error.error as { reason?: { _tag: string; code?: number } }) : undefined
  return value?.reason?._tag === "SocketCloseError" ? value.reason.code : undefined
}

describe("MemorySocket", () => {
  it.effect("what one side writes, the other pulls, in order", () =>
    Effect.gen(function*() {
      const { local, remote } = yield* MemorySocket.makePair
      const writer = yield* local.socket.writer
      const reader = yield* remote.socket.reader
      yield* writer.write(bytes(1, 2))
      yield* writer.writeAll([bytes(3), bytes(4, 5)])
      assert.deepStrictEqual(yield* reader.pull, [bytes(1, 2), bytes(3), bytes(4, 5)])
      // And the other way.
      yield* (yield* remote.socket.writer).write(bytes(9))
      assert.deepStrictEqual(yield* (yield* local.socket.reader).pull, [bytes(9)])
      assert.strictEqual(local.opened(), 1)
    }))

  it.effect("closing one side: the other reads what was written, then fails with SocketCloseError", () =>
    Effect.gen(function*() {
      const { local, remote } = yield* MemorySocket.makePair
      const reader = yield* remote.socket.reader
      yield* (yield* local.socket.writer).write(bytes(7))
      yield* local.close
      assert.deepStrictEqual(yield* reader.pull, [bytes(7)])
      assert.strictEqual(closeCode(yield* Effect.exit(reader.pull)), 1000)
      assert.strictEqual(closeCode(yield* Effect.exit((yield* remote.socket.writer).write(bytes(1)))), 1000)
      assert.isTrue(yield* remote.isClosed)
    }))

  it.effect("releasing a reader's scope closes the connection and fails a pull suspended on either side", () =>
    Effect.gen(function*() {
      const { local, remote } = yield* MemorySocket.makePair
      const remoteReader = yield* remote.socket.reader
      const scope = yield* Scope.make()
      const localReader = yield* local.socket.reader.pipe(Scope.provide(scope))
      const waitingLocal = yield* Effect.forkChild(Effect.exit(localReader.pull))
      const waitingRemote = yield* Effect.forkChild(Effect.exit(remoteReader.pull))
      yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(closeCode(yield* Fiber.join(waitingLocal)), 1000)
      assert.strictEqual(closeCode(yield* Fiber.join(waitingRemote)), 1000)
    }))

  it.effect("over a link, a chunk arrives after the latency plus its time at the link's rate", () =>
    Effect.gen(function*() {
      const { local, remote } = yield* MemorySocket.makePairWith({ latencyMillis: 50, bytesPerSecond: 1000 })
      const reader = yield* remote.socket.reader
      yield* (yield* local.socket.writer).write(new Uint8Array(100)) // 100 ms at 1000 B/s, then 50 ms
      const pulled = yield* Effect.forkChild(reader.pull)
      yield* TestClock.adjust(149)
      assert.isUndefined(pulled.pollUnsafe(), "not yet")
      yield* TestClock.adjust(1)
      assert.deepStrictEqual((yield* Fiber.join(pulled)).map((chunk) => chunk.length), [100])
    }))

  it.effect("a refused socket fails to open", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(MemorySocket.refused().reader)
      assert.isTrue(Exit.isFailure(exit))
    }))
})
