/**
 * DiskWriter on real files: pieces larger than one write, spanning files of
 * odd sizes (and a zero-length one), written out of order and with a small
 * handle limit, land byte for byte where they belong and read back whole.
 * A symlink in the download folder is not followed, wherever it leads.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as DiskWriter from "../../src/torrent/DiskWriter.ts"
import { PieceWorker } from "../../src/torrent/PieceWorker.ts"
import { tempDir } from "../util/Files.ts"
import * as Fixture from "./fixtures.ts"

describe("DiskWriter", () => {
  it.live("writes pieces spanning odd-sized files at their positions, and reads them back", () =>
    Effect.gen(function*() {
      const lengths = [100_000, 0, 70_001, 300_000, 65_536, 1, 200_003]
      const fixture = Fixture.make(lengths, { pieceLength: 256 * 1024 })
      const dir = yield* tempDir("disk-writer")
      const disk = yield* DiskWriter.make(fixture.meta, { downloadDir: dir, maxOpenFiles: 2 })
      yield* disk.prepare
      const order = Array.from({ length: fixture.meta.pieceCount }, (_, i) => i).reverse()
      for (const index of order) yield* disk.write(index, fixture.piece(index))
      yield* disk.flush

      let offset = 0
      lengths.forEach((length, i) => {
        const onDisk = Fs.readFileSync(join(dir, "fixture", `file-${i}.bin`))
        assert.strictEqual(onDisk.length, length, `file ${i} length`)
        assert.isTrue(onDisk.equals(fixture.data.subarray(offset, offset + length)), `file ${i} bytes`)
        offset += length
      })
      for (const index of order) {
        const back = new Uint8Array(fixture.piece(index).length)
        assert.isTrue(yield* disk.read(index, back))
        assert.deepStrictEqual(back, fixture.piece(index))
      }
    }).pipe(Effect.scoped, Effect.provide([NodeServices.layer, PieceWorker.layer])))

  it.live("blocks read for uploads stay what they were while the cache reuses its buffers for other pieces", () =>
    Effect.gen(function*() {
      // 1 MiB pieces: the 8 MiB cache holds 8 of these 11, so reading them all reuses buffers.
      const fixture = Fixture.make([10 * 1024 * 1024 + 5], { pieceLength: 1024 * 1024 })
      const dir = yield* tempDir("disk-writer-cache")
      const disk = yield* DiskWriter.make(fixture.meta, { downloadDir: dir })
      for (let index = 0; index < fixture.meta.pieceCount; index++) yield* disk.write(index, fixture.piece(index))
      const blocks: Array<{ readonly index: number; readonly begin: number; readonly bytes: Uint8Array }> = []
      for (const index of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 10]) {
        const begin = index === 10 ? 1 : 4096 * index
        const length = index === 10 ? 4 : 16 * 1024
        const bytes = new Uint8Array(length)
        yield* disk.readBlock(index, begin, bytes)
        blocks.push({ index, begin, bytes })
      }
      for (const { begin, bytes, index } of blocks) {
        assert.deepStrictEqual(bytes, fixture.piece(index).subarray(begin, begin + bytes.length), `piece ${index}`)
      }
    }).pipe(Effect.scoped, Effect.provide([NodeServices.layer, PieceWorker.layer])))

  // Linux: elsewhere (no /proc/self/fd) a symlink leading inside is followed.
  it.live.skipIf(process.platform !== "linux")(
    "refuses a symlink in the download folder even when it leads inside",
    () =>
      Effect.gen(function*() {
        const fixture = Fixture.make([1000])
        const dir = yield* tempDir("disk-writer-link")
        Fs.mkdirSync(join(dir, "elsewhere"))
        Fs.symlinkSync(join(dir, "elsewhere"), join(dir, "fixture"))
        const disk = yield* DiskWriter.make(fixture.meta, { downloadDir: dir })
        yield* disk.prepare
        const error = yield* disk.write(0, fixture.piece(0)).pipe(Effect.flip)
        assert.strictEqual(error.reason, "UnsafePath")
        assert.strictEqual(
          error.message,
          `refusing to write ${join(dir, "fixture", "file-0.bin")}: ${join(dir, "fixture")} is not a folder ` +
            "(symlinks in the download folder are not followed)"
        )
        assert.deepStrictEqual(Fs.readdirSync(join(dir, "elsewhere")), [])
      }).pipe(Effect.scoped, Effect.provide([NodeServices.layer, PieceWorker.layer]))
  )
})
