/**
 * PieceWorker on its real thread: SHA-1 of shared and ordinary buffers,
 * positional writes larger than one write chunk, and a failed write as a
 * typed error naming the system code.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Digest } from "effect/crypto"
import { createHash, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as PieceWorker from "../../src/torrent/PieceWorker.ts"
import { tempDir } from "../util/Files.ts"

const layer = PieceWorker.PieceWorker.layerDigest.pipe(Layer.provideMerge(PieceWorker.PieceWorker.layer))

const sha1 = (data: Uint8Array) => new Uint8Array(createHash("sha1").update(data).digest())

describe("PieceWorker", () => {
  it.live("hashes shared and ordinary buffers, and Digest uses it for large SHA-1 inputs", () =>
    Effect.gen(function*() {
      const worker = yield* PieceWorker.PieceWorker
      const shared = PieceWorker.allocate(300_000)
      shared.set(randomBytes(shared.length))
      assert.deepStrictEqual(yield* worker.sha1(shared), sha1(shared))
      const view = shared.subarray(1000, 250_000)
      assert.deepStrictEqual(yield* worker.sha1(view), sha1(view))
      const ordinary = randomBytes(70_000)
      assert.deepStrictEqual(yield* worker.sha1(ordinary), sha1(ordinary))

      const digest = yield* Digest.Digest
      assert.deepStrictEqual(yield* digest.digest(Digest.sha1, shared), sha1(shared))
      const small = randomBytes(100)
      assert.deepStrictEqual(yield* digest.digest(Digest.sha1, small), sha1(small))
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.live("writes all of a buffer at its position, in several writes", () =>
    Effect.gen(function*() {
      const worker = yield* PieceWorker.PieceWorker
      const dir = yield* tempDir("piece-worker")
      const file = join(dir, "data.bin")
      const fd = Fs.openSync(file, "w+")
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.closeSync(fd)))
      const first = PieceWorker.allocate(200_001)
      first.set(randomBytes(first.length))
      const second = randomBytes(70_000)
      yield* worker.write(fd, first.subarray(1), 5)
      yield* worker.write(fd, second, 5 + 200_000)
      const onDisk = Fs.readFileSync(file)
      assert.strictEqual(onDisk.length, 5 + 200_000 + 70_000)
      assert.isTrue(onDisk.subarray(0, 5).equals(Buffer.alloc(5)))
      assert.isTrue(onDisk.subarray(5, 200_005).equals(first.subarray(1)))
      assert.isTrue(onDisk.subarray(200_005).equals(second))
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.live("a failed write is a WriteFailed with the system code, and the worker goes on", () =>
    Effect.gen(function*() {
      const worker = yield* PieceWorker.PieceWorker
      const dir = yield* tempDir("piece-worker")
      const file = join(dir, "read-only.bin")
      Fs.writeFileSync(file, "x")
      const fd = Fs.openSync(file, "r")
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.closeSync(fd)))
      const error = yield* Effect.flip(worker.write(fd, randomBytes(10), 0))
      assert.strictEqual(error._tag, "WriteFailed")
      assert.strictEqual(error.code, "EBADF")
      const data = randomBytes(100_000)
      assert.deepStrictEqual(yield* worker.sha1(data), sha1(data))
    }).pipe(Effect.scoped, Effect.provide(layer)))
})
