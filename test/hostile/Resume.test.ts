/**
 * Resume on real files: a record that checks out spares the hashing (fast
 * resume), and each way a record can be wrong — damaged bytes, another
 * torrent's record, files gone or changed since — falls back to hashing, so
 * only pieces whose data is right are ever marked ours.
 */
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as Bitfield from "../../src/protocol/Bitfield.ts"
import * as DiskWriter from "../../src/torrent/DiskWriter.ts"
import { PieceWorker } from "../../src/torrent/PieceWorker.ts"
import { TorrentEvents } from "../../src/torrent/TorrentEvents.ts"
import * as Resume from "../../src/torrent/Resume.ts"
import * as Synchronizer from "../../src/torrent/Synchronizer.ts"
import { tempDir } from "../util/Files.ts"
import { startManager, within } from "../util/Leecher.ts"
import { record as recordResult } from "../util/SecurityResults.ts"
import * as Fixture from "../torrent/fixtures.ts"

/** 128 pieces of 32 KiB in two files; the first `half` pieces' data on disk, zeros after (files at full size). */
const fixture = Fixture.make([64 * 32 * 1024 + 1000, 64 * 32 * 1024 - 1000])
const meta = fixture.meta
const half = 64

const services = Layer.mergeAll(
  NodeServices.layer,
  PieceWorker.layer,
  NodeCrypto.layerDigest,
  TorrentEvents.layerDiscard
)

/** A download folder holding the first half of the data, and a resume record saved for it. */
const partialDownload = Effect.gen(function*() {
  const dir = yield* tempDir("resume")
  const data = new Uint8Array(fixture.data)
  data.fill(0, half * meta.pieceLength)
  let offset = 0
  for (const file of meta.files) {
    Fs.mkdirSync(join(dir, ...file.path.slice(0, -1)), { recursive: true })
    Fs.writeFileSync(join(dir, ...file.path), data.subarray(offset, offset + file.length))
    offset += file.length
  }
  const sync = Synchronizer.make(meta)
  for (let i = 0; i < half; i++) sync.markHave(i)
  yield* Resume.save(sync, dir)
  return dir
})

/** Runs the start-up check in `dir`: pieces found and pieces hashed. */
const check = (dir: string) =>
  Effect.gen(function*() {
    const sync = Synchronizer.make(meta)
    const disk = yield* DiskWriter.make(meta, { downloadDir: dir })
    return yield* Resume.check(sync, dir).pipe(Effect.provideService(DiskWriter.DiskWriter, disk))
  }).pipe(Effect.scoped)

const resumeFile = (dir: string) => join(dir, Resume.stateFolder, `${meta.infoHash}.resume`)

/** Rewrites the record file, keeping its outer form; `edit` changes the record. */
const rewrite = (dir: string, edit: (record: Resume.Record) => Resume.Record) => {
  const record = Resume.decode(Fs.readFileSync(resumeFile(dir)))!
  Fs.writeFileSync(resumeFile(dir), Resume.encode(edit(record)))
}

describe("Resume", () => {
  it.live("a record that checks out is trusted without hashing (fast resume)", () =>
    Effect.gen(function*() {
      const dir = yield* partialDownload
      const found = yield* check(dir)
      // Only the pieces the record does not claim are read and hashed.
      assert.deepStrictEqual(found, { pieces: half, hashed: meta.pieceCount - half })
    }).pipe(Effect.provide(services)))

  it.live("without a record every piece with data is hashed, and only the right ones count", () =>
    Effect.gen(function*() {
      const dir = yield* partialDownload
      Fs.rmSync(resumeFile(dir))
      const found = yield* check(dir)
      assert.deepStrictEqual(found, { pieces: half, hashed: meta.pieceCount })
    }).pipe(Effect.provide(services)))
})

describe("hostile resume data", () => {
  it.live("a record with flipped bytes (claiming every piece) is ignored: the data is hashed", () =>
    Effect.gen(function*() {
      const dir = yield* partialDownload
      const bytes = Fs.readFileSync(resumeFile(dir))
      // The bitfield is the record's last string: set every bit of it, as a tamperer would.
      const at = bytes.lastIndexOf(Buffer.from(`${Bitfield.byteLengthFor(meta.pieceCount)}:`))
      const start = at + `${Bitfield.byteLengthFor(meta.pieceCount)}:`.length
      bytes.fill(0xff, start, start + Bitfield.byteLengthFor(meta.pieceCount))
      Fs.writeFileSync(resumeFile(dir), bytes)
      const found = yield* check(dir)
      assert.deepStrictEqual(found, { pieces: half, hashed: meta.pieceCount })
      recordResult(
        `record with its bitfield set to all ones: ${found.pieces} of ${meta.pieceCount} pieces marked (all hashed), not ${meta.pieceCount}`
      )
    }).pipe(Effect.provide(services)))

  it.live("another torrent's record under this torrent's name is ignored", () =>
    Effect.gen(function*() {
      const dir = yield* partialDownload
      rewrite(dir, (r) => ({ ...r, infoHash: "00".repeat(20), pieces: Bitfield.full(meta.pieceCount) }))
      const found = yield* check(dir)
      assert.deepStrictEqual(found, { pieces: half, hashed: meta.pieceCount })
      recordResult(
        `a well-formed record naming another info-hash: ${found.pieces} of ${meta.pieceCount} pieces (all hashed)`
      )
    }).pipe(Effect.provide(services)))

  it.live("a record claiming pieces of files that do not exist marks none of them", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("resume-planted")
      // A well-formed record for files never written: each file stamped "missing".
      Fs.mkdirSync(join(dir, Resume.stateFolder))
      Fs.writeFileSync(
        resumeFile(dir),
        Resume.encode({
          infoHash: meta.infoHash,
          pieceLength: meta.pieceLength,
          pieceCount: meta.pieceCount,
          files: meta.files.map(() => [-1, -1] as const),
          pieces: Bitfield.full(meta.pieceCount)
        })
      )
      const found = yield* check(dir)
      assert.deepStrictEqual(found, { pieces: 0, hashed: 0 })
      recordResult(`a record claiming all ${meta.pieceCount} pieces with no file on disk: 0 pieces marked`)
    }).pipe(Effect.provide(services)))

  it.live("a record whose files changed since (size or mtime) is ignored", () =>
    Effect.gen(function*() {
      const dir = yield* partialDownload
      const file = join(dir, ...meta.files[1]!.path)
      Fs.utimesSync(file, new Date(), new Date(Date.now() + 5000))
      const found = yield* check(dir)
      assert.deepStrictEqual(found, { pieces: half, hashed: meta.pieceCount })
    }).pipe(Effect.provide(services)))
})

describe("hostile resume data › planted by a torrent", () => {
  it.live("a torrent whose files would land in the client's state folder is refused before anything is written", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("resume-collision")
      // The attack: a torrent named like the state folder, holding another torrent's record.
      const planter = Fixture.make([1000], { name: ".Effect-Torrent", file: `${meta.infoHash}.resume` })
      const { manager } = yield* startManager(dir)
      const handle = yield* manager.add(planter.meta, {})
      const error = yield* handle.completed.pipe(Effect.flip, within(10_000, "the refusal"))
      assert.include(error.message, "refusing to download")
      assert.include(error.message, Resume.stateFolder)
      assert.isFalse(Fs.existsSync(join(dir, ".Effect-Torrent")), "nothing was written")
      assert.isFalse(Fs.existsSync(join(dir, Resume.stateFolder, `${meta.infoHash}.resume`)), "no record was planted")
      recordResult(`refused: "${error.message}"; nothing written`)
    }).pipe(Effect.scoped))
})
