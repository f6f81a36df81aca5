/**
 * PieceWorker in this thread and on its real thread of its own: SHA-1 and v2
 * Merkle roots of shared and ordinary buffers, positional writes larger than
 * one write chunk, and a failed write as a typed error naming the system
 * code. The thread's program also as tsx compiles the module (as our CLI
 * runs from source), and a piece's hash posted to it as its own 20 bytes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Digest } from "effect/crypto"
import { execFileSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import { join } from "node:path"
import { Worker } from "node:worker_threads"
import { vi } from "vitest"
import * as Merkle from "../../src/protocol/Merkle.ts"
import * as PieceWorker from "../../src/torrent/PieceWorker.ts"
import { tempDir } from "../util/Files.ts"

const withDigest = (worker: Layer.Layer<PieceWorker.PieceWorker>) =>
  PieceWorker.PieceWorker.layerDigest.pipe(Layer.provideMerge(worker))

const sha1 = (data: Uint8Array) => new Uint8Array(createHash("sha1").update(data).digest())

/** 100,000 random bytes in shared memory, and the part that writes them to a new file (closed with the scope). */
const randomPiece = Effect.gen(function*() {
  const dir = yield* tempDir("piece-worker")
  const fd = Fs.openSync(join(dir, "data.bin"), "w+")
  yield* Effect.addFinalizer(() => Effect.sync(() => Fs.closeSync(fd)))
  const data = PieceWorker.allocate(100_000)
  data.set(randomBytes(data.length))
  return { data, dir, part: { fd, offset: 0, length: data.length, position: 0 } }
})

describe.each([
  ["in this thread", PieceWorker.PieceWorker.layer],
  ["on a thread of its own", PieceWorker.PieceWorker.layerThread]
])("PieceWorker %s", (_, pieceWorker) => {
  const layer = withDigest(pieceWorker)

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

  it.live("computes v2 Merkle roots as in place, and MerkleHasher uses it", () =>
    Effect.gen(function*() {
      const worker = yield* PieceWorker.PieceWorker
      const shared = PieceWorker.allocate(5 * Merkle.blockSize + 7)
      shared.set(randomBytes(shared.length))
      for (
        const [data, leaves] of [
          [shared, 8],
          [shared.subarray(0, 4 * Merkle.blockSize), 4],
          [randomBytes(70_000), 8]
        ] as const
      ) {
        assert.deepStrictEqual(yield* worker.merkleRoot(data, leaves), Merkle.blocksRoot(Merkle.sha256, data, leaves))
      }
      const hasher = yield* PieceWorker.MerkleHasher.pipe(Effect.provide(PieceWorker.PieceWorker.layerMerkle))
      assert.deepStrictEqual(yield* hasher.root(shared, 8), Merkle.blocksRoot(Merkle.sha256, shared, 8))
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.live("writes each part of a buffer at its position in its file, in several writes", () =>
    Effect.gen(function*() {
      const worker = yield* PieceWorker.PieceWorker
      const dir = yield* tempDir("piece-worker")
      const [a, b] = ["a.bin", "b.bin"].map((name) => Fs.openSync(join(dir, name), "w+"))
      yield* Effect.addFinalizer(() => Effect.sync(() => {
        Fs.closeSync(a!)
        Fs.closeSync(b!)
      }))
      const data = PieceWorker.allocate(270_001)
      data.set(randomBytes(data.length))
      assert.isTrue(
        yield* worker.write(data, [
          { fd: a!, offset: 1, length: 200_000, position: 5 },
          { fd: b!, offset: 200_001, length: 70_000, position: 0 }
        ])
      )
      const first = Fs.readFileSync(join(dir, "a.bin"))
      assert.strictEqual(first.length, 5 + 200_000)
      assert.isTrue(first.subarray(0, 5).equals(Buffer.alloc(5)))
      assert.isTrue(first.subarray(5).equals(data.subarray(1, 200_001)))
      assert.isTrue(Fs.readFileSync(join(dir, "b.bin")).equals(data.subarray(200_001)))
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.live("with a SHA-1, writes only data that has it", () =>
    Effect.gen(function*() {
      const worker = yield* PieceWorker.PieceWorker
      const { data, dir, part } = yield* randomPiece
      assert.isFalse(yield* worker.write(data, [part], sha1(randomBytes(10))))
      assert.strictEqual(Fs.readFileSync(join(dir, "data.bin")).length, 0)
      assert.isTrue(yield* worker.write(data, [part], sha1(data)))
      assert.isTrue(Fs.readFileSync(join(dir, "data.bin")).equals(data))
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.live("a failed write is a WriteFailed with the system code, and the worker goes on", () =>
    Effect.gen(function*() {
      const worker = yield* PieceWorker.PieceWorker
      const dir = yield* tempDir("piece-worker")
      const file = join(dir, "read-only.bin")
      Fs.writeFileSync(file, "x")
      const fd = Fs.openSync(file, "r")
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.closeSync(fd)))
      const good = Fs.openSync(join(dir, "good.bin"), "w")
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.closeSync(good)))
      const error = yield* Effect.flip(worker.write(randomBytes(20), [
        { fd: good, offset: 0, length: 10, position: 0 },
        { fd, offset: 10, length: 10, position: 0 }
      ]))
      assert.strictEqual(error._tag, "WriteFailed")
      assert.strictEqual(error.code, "EBADF")
      assert.strictEqual(error.part, 1)
      const data = randomBytes(100_000)
      assert.deepStrictEqual(yield* worker.sha1(data), sha1(data))
    }).pipe(Effect.scoped, Effect.provide(layer)))
})

describe("PieceWorker's thread", () => {
  const layer = withDigest(PieceWorker.PieceWorker.layerThread)

  it("runs its thread's program as tsx compiles it (esbuild's keepNames adds helpers the thread lacks)", () => {
    const program = [
      `import { Effect } from "effect"`,
      `import * as PieceWorker from "./src/torrent/PieceWorker.ts"`,
      `const data = new Uint8Array(100000).fill(7)`,
      `const worker = Effect.gen(function*() { return yield* PieceWorker.PieceWorker })`,
      `const root = await Effect.runPromise(worker.pipe(`,
      `  Effect.flatMap((w) => Effect.zip(w.merkleRoot(data, 8), w.sha1(data))),`,
      `  Effect.scoped, Effect.provide(PieceWorker.PieceWorker.layerThread)))`,
      `console.log(Buffer.from(root[0]).toString("hex"))`
    ].join("\n")
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", program], {
      encoding: "utf8",
      timeout: 60_000
    })
    const data = new Uint8Array(100000).fill(7)
    assert.strictEqual(out.trim(), Buffer.from(Merkle.blocksRoot(Merkle.sha256, data, 8)).toString("hex"))
  }, 60_000)

  it.live("posts a piece's hash as its 20 bytes, not the torrent's hashes under its view", () =>
    Effect.gen(function*() {
      const worker = yield* PieceWorker.PieceWorker
      const { data, part } = yield* randomPiece
      // As `Metainfo.pieceHash` gives it: a view on the pieces field (4096 pieces, this one the 8th).
      const hashes = new Uint8Array(4096 * 20)
      hashes.set(sha1(data), 7 * 20)
      const posted = vi.spyOn(Worker.prototype, "postMessage")
      yield* Effect.addFinalizer(() => Effect.sync(() => posted.mockRestore()))
      assert.isTrue(yield* worker.write(data, [part], hashes.subarray(7 * 20, 8 * 20)))
      // Posting a view copies all the memory under it (80 KiB here), with every piece.
      const sent = posted.mock.calls.flatMap(([message]) => (message as { sha1?: Uint8Array }).sha1 ?? [])
      assert.deepStrictEqual(sent.map((hash) => hash.buffer.byteLength), [20])
    }).pipe(Effect.scoped, Effect.provide(layer)))
})
