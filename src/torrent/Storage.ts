/**
 * Storage: where a torrent's pieces live. Each torrent asks it for its
 * DiskWriter when it starts: `layerNode` gives one on files (through the
 * PieceWorker), `layerMemory` one on bytes in memory (tests and
 * simulations: no files).
 */
import { Context, Effect, type FileSystem, Layer, type Path, Scope } from "effect"
import { createHash } from "node:crypto"
import * as NodeFs from "node:fs/promises"
import * as NodePath from "node:path"
import * as Metainfo from "../protocol/Metainfo.ts"
import * as DiskWriter from "./DiskWriter.ts"
import type { PieceWorker } from "./PieceWorker.ts"
import * as Resume from "./Resume.ts"

export class Storage extends Context.Service<Storage, {
  /** The DiskWriter of torrent `meta`, closed with the scope. */
  readonly open: (
    meta: Metainfo.Metainfo,
    options: DiskWriter.Options
  ) => Effect.Effect<DiskWriter.DiskWriter["Service"], never, Scope.Scope>
  /** Deletes torrent `meta`'s data (and its resume record) from `downloadDir`; what is not there is skipped. */
  readonly delete: (meta: Metainfo.Metainfo, downloadDir: string) => Effect.Effect<void, DiskWriter.DiskError>
}>()("effect-torrent/torrent/Storage") {
  /** Files under the download folder. */
  static readonly layerNode = Layer.effect(
    Storage,
    Effect.gen(function*() {
      const context = yield* Effect.context<FileSystem.FileSystem | Path.Path | PieceWorker>()
      return Storage.of({
        // The DiskWriter's files close with the caller's scope (the torrent's), not with this layer's,
        // whose scope is in `context`: so the caller's is provided innermost.
        open: (meta, options) =>
          Effect.flatMap(
            Effect.scope,
            (scope) => DiskWriter.make(meta, options).pipe(Scope.provide(scope), Effect.provideContext(context))
          ),
        delete: deleteFiles
      })
    })
  )

  /**
   * Each torrent's bytes in `store`, by info-hash: a torrent found there is
   * complete (a seeder's data), one that is not gets zeros that its verified
   * pieces fill (read them back from `store`).
   */
  static readonly layerMemory = (store: Map<string, Uint8Array>) =>
    Layer.succeed(
      Storage,
      Storage.of({
        open: (meta) => Effect.sync(() => makeMemory(meta, store)),
        delete: (meta) => Effect.sync(() => void store.delete(meta.infoHash))
      })
    )
}

/**
 * Unlinks each of the torrent's files, then the folders it made that are
 * left empty, then its resume record. A file is deleted only where the real
 * path of its folder is inside the download folder, and never through a
 * symlink: a folder swapped for a link cannot make us delete elsewhere.
 */
const deleteFiles = (meta: Metainfo.Metainfo, downloadDir: string) =>
  Effect.tryPromise({
    try: async () => {
      const root = await NodeFs.realpath(NodePath.resolve(downloadDir))
      const inside = (real: string) => real === root || real.startsWith(root + NodePath.sep)
      const folders = new Set<string>()
      for (const file of meta.files) {
        const target = NodePath.join(root, ...file.path)
        const folder = await NodeFs.realpath(NodePath.dirname(target)).catch(() => undefined)
        if (folder === undefined || !inside(folder)) continue
        const info = await NodeFs.lstat(NodePath.join(folder, NodePath.basename(target))).catch(() => undefined)
        if (info?.isFile() === true) await NodeFs.unlink(NodePath.join(folder, NodePath.basename(target)))
        for (let dir = NodePath.dirname(target); dir !== root; dir = NodePath.dirname(dir)) folders.add(dir)
      }
      // Deepest first; a folder with anything else in it stays.
      for (const dir of [...folders].sort((a, b) => b.length - a.length)) await NodeFs.rmdir(dir).catch(() => {})
      await NodeFs.rm(NodePath.join(root, Resume.stateFolder, `${meta.infoHash}.resume`), { force: true })
    },
    catch: (error) =>
      new DiskWriter.DiskError({
        reason: "Io",
        path: meta.name,
        detail: `could not delete its files: ${String(error)}`
      })
  })

const makeMemory = (meta: Metainfo.Metainfo, store: Map<string, Uint8Array>): DiskWriter.DiskWriter["Service"] => {
  const given = store.get(meta.infoHash)
  const data = given ?? new Uint8Array(meta.length)
  store.set(meta.infoHash, data)
  const present = new Uint8Array(meta.pieceCount).fill(given === undefined ? 0 : 1)
  const range = (index: number, begin = 0, length = Metainfo.pieceSize(meta, index) - begin) => {
    const start = index * meta.pieceLength + begin
    return data.subarray(start, start + length)
  }
  return DiskWriter.DiskWriter.of({
    prepare: Effect.void,
    write: (index, piece, sha1) =>
      Effect.sync(() => {
        if (sha1 !== undefined && !createHash("sha1").update(piece).digest().equals(sha1)) return false
        range(index).set(piece)
        present[index] = 1
        return true
      }),
    read: (index, into) =>
      Effect.sync(() => {
        if (present[index] === 1) into.set(range(index))
        return present[index] === 1
      }),
    readBlock: (index, begin, into) =>
      present[index] === 1
        ? Effect.sync(() => into.set(range(index, begin, into.length)))
        : Effect.fail(
          new DiskWriter.DiskError({ reason: "Io", path: meta.name, detail: `piece ${index} is not stored` })
        ),
    flush: Effect.void
  })
}
