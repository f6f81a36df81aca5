/**
 * The daemon's session on disk, in its folder:
 *
 * - `session.json`: the global limits and, per torrent, what the user chose
 *   (folder, paused or not, files, limits) and its number;
 * - `torrents/<info-hash>.torrent`: each torrent's metadata, once known (a
 *   magnet link's once fetched; until then the record keeps the link).
 *
 * Both are written atomically (a temporary file, synced, renamed over the
 * old one): a daemon killed at any moment leaves the old file or the new
 * one, never half of one. Which pieces are on disk is not here: the
 * torrent's own resume record (and its hashing) knows.
 */
import { Effect, FileSystem, Option, Path, Schema } from "effect"
import * as Api from "./Api.ts"

export class SessionStoreError extends Schema.TaggedError<SessionStoreError>()("SessionStoreError", {
  file: Schema.String,
  reason: Schema.Literals(["Unreadable", "Corrupt", "Unwritable"]),
  detail: Schema.String
}) {
  override get message() {
    return `${this.file}: ${
      { Unreadable: "cannot read it", Corrupt: "not a session file", Unwritable: "cannot write it" }[this.reason]
    }: ${this.detail}`
  }
}

export const TorrentRecord = Schema.Struct({
  id: Schema.Int,
  infoHash: Schema.String,
  /** The magnet link it was added by, if so. */
  magnet: Schema.optionalKey(Schema.String),
  downloadDir: Schema.String,
  paused: Schema.Boolean,
  selected: Schema.optionalKey(Schema.Array(Schema.Int)),
  priorities: Schema.optionalKey(Schema.Array(Api.FilePriority)),
  /** Peers given when it was added. */
  peers: Schema.optionalKey(Schema.Array(Schema.String)),
  limits: Api.Limits,
  addedAt: Schema.Number
})
export type TorrentRecord = typeof TorrentRecord.Type

export const SessionFile = Schema.Struct({
  version: Schema.Literal(1),
  nextId: Schema.Int,
  limits: Api.Limits,
  torrents: Schema.Array(TorrentRecord)
})
export type SessionFile = typeof SessionFile.Type

const decodeSession = Schema.decodeUnknownEffect(Schema.fromJsonString(SessionFile))

export const empty: SessionFile = { version: 1, nextId: 1, limits: { upload: 0, download: 0 }, torrents: [] }

const sessionFile = (path: Path.Path, dir: string) => path.join(dir, "session.json")
const torrentFile = (path: Path.Path, dir: string, infoHash: string) =>
  path.join(dir, "torrents", `${infoHash}.torrent`)

/** The session saved in `dir`, or an empty one when there is none yet. */
export const load = Effect.fnUntraced(function*(dir: string) {
  const fs = yield* FileSystem.FileSystem
  const file = sessionFile(yield* Path.Path, dir)
  const text = yield* fs.readFileString(file).pipe(
    Effect.map(Option.some),
    Effect.catch((error) =>
      error.reason._tag === "NotFound"
        ? Effect.succeed(Option.none<string>())
        : Effect.fail(new SessionStoreError({ file, reason: "Unreadable", detail: error.message }))
    )
  )
  if (Option.isNone(text)) return empty
  return yield* decodeSession(text.value).pipe(
    Effect.mapError((error) => new SessionStoreError({ file, reason: "Corrupt", detail: error.message }))
  )
})

/** Writes `bytes` to `file` atomically: to a temporary file, synced, then renamed over it. */
const writeAtomic = (file: string, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const temporary = `${file}.tmp`
    yield* fs.makeDirectory(path.dirname(file), { recursive: true })
    yield* Effect.scoped(Effect.gen(function*() {
      const handle = yield* fs.open(temporary, { flag: "w" })
      yield* handle.writeAll(bytes)
      yield* handle.sync
    }))
    yield* fs.rename(temporary, file)
  }).pipe(
    Effect.mapError((error) => new SessionStoreError({ file, reason: "Unwritable", detail: error.message }))
  )

export const save = Effect.fnUntraced(function*(dir: string, session: SessionFile) {
  const file = sessionFile(yield* Path.Path, dir)
  yield* writeAtomic(file, new TextEncoder().encode(JSON.stringify(session)))
})

export const saveTorrent = Effect.fnUntraced(function*(dir: string, infoHash: string, bytes: Uint8Array) {
  yield* writeAtomic(torrentFile(yield* Path.Path, dir, infoHash), bytes)
})

/** The torrent's saved metadata, if any. */
export const loadTorrent = Effect.fnUntraced(function*(dir: string, infoHash: string) {
  const fs = yield* FileSystem.FileSystem
  return yield* fs.readFile(torrentFile(yield* Path.Path, dir, infoHash)).pipe(Effect.option)
})

export const deleteTorrent = Effect.fnUntraced(function*(dir: string, infoHash: string) {
  const fs = yield* FileSystem.FileSystem
  yield* fs.remove(torrentFile(yield* Path.Path, dir, infoHash)).pipe(Effect.ignore)
})
