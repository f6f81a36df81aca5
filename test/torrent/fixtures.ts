/**
 * Tiny generated torrents for the engine's tests: real data, real SHA-1
 * piece hashes, decoded by `Metainfo.decode` from bytes built with
 * `Bencode.encode`.
 */
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import { Effect, Layer, Result } from "effect"
import { createHash } from "node:crypto"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import { Bans } from "../../src/torrent/Bans.ts"
import * as Orchestrator from "../../src/torrent/Orchestrator.ts"
import { Synchronizer } from "../../src/torrent/Synchronizer.ts"
import { type Settings, TorrentConfig } from "../../src/torrent/TorrentConfig.ts"
import { TorrentEvents } from "../../src/torrent/TorrentEvents.ts"
import * as FakePeer from "../util/FakePeer.ts"

export const pieceLength = 32 * 1024

export interface Fixture {
  readonly meta: Metainfo.Metainfo
  /** All files' bytes, concatenated. */
  readonly data: Uint8Array
  /** The bytes of piece `index`. */
  readonly piece: (index: number) => Uint8Array
  /** The bytes of a block. */
  readonly block: (index: number, begin: number, length: number) => Uint8Array
}

/** Deterministic, non-repeating-looking bytes. */
const bytes = (length: number, seed: number) => {
  const out = new Uint8Array(length)
  let x = seed * 2654435761 + 1
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

/** A multi-file torrent of the given file lengths (zero allowed), in 32 KiB pieces; `name` and the first file's `file` name may be given. */
export const make = (
  fileLengths: ReadonlyArray<number>,
  options?: { readonly pieceLength?: number; readonly name?: string; readonly file?: string }
): Fixture => {
  const length = fileLengths.reduce((a, b) => a + b, 0)
  const size = options?.pieceLength ?? pieceLength
  const data = bytes(length, length)
  const count = Math.ceil(length / size)
  const pieces = new Uint8Array(count * 20)
  for (let i = 0; i < count; i++) {
    pieces.set(createHash("sha1").update(data.subarray(i * size, (i + 1) * size)).digest(), i * 20)
  }
  const torrent = Bencode.encode({
    announce: "http://tracker.invalid/announce",
    info: {
      name: options?.name ?? "fixture",
      "piece length": size,
      pieces,
      files: fileLengths.map((length, i) => ({
        length,
        path: [i === 0 && options?.file !== undefined ? options.file : `file-${i}.bin`]
      }))
    }
  })
  const meta = Result.getOrThrow(Metainfo.decode(torrent))
  return {
    meta,
    data,
    piece: (index) => data.subarray(index * size, index * size + Metainfo.pieceSize(meta, index)),
    block: (index, begin, length) => data.subarray(index * size + begin, index * size + begin + length)
  }
}

/**
 * An Orchestrator (not yet running) over a fresh Synchronizer, an in-memory
 * disk holding nothing, node:crypto SHA-1 and a fixed peer id.
 */
export const orchestrator = (fixture: Fixture, settings?: Partial<Settings>) =>
  Effect.gen(function*() {
    const disk = FakePeer.makeDisk(fixture.data, fixture.meta.pieceLength)
    const layer = Layer.mergeAll(
      Synchronizer.layer(fixture.meta),
      disk.layer,
      NodeCrypto.layerDigest,
      TorrentConfig.layerWith({ peerId: new Uint8Array(20).fill(1), ...settings }),
      TorrentEvents.layerDiscard
    )
    return yield* Effect.gen(function*() {
      return { disk, sync: yield* Synchronizer, orchestrator: yield* Orchestrator.make(new Bans()) }
    }).pipe(Effect.provide(layer))
  })
