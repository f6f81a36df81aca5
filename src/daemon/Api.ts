/**
 * The daemon's HTTP API under `/api/v1`, as a schema (Effect's `HttpApi`):
 * the server implements it (`ApiHandlers`), `effect-torrent remote` calls it
 * through the client derived from it, and `/api/v1/openapi.json` describes
 * it. This module holds only the definition (no server code), so a client
 * can import it alone.
 *
 * A torrent is named by its info-hash (40 hex digits) or by its number (the
 * `id`, as Transmission's RPC numbers torrents; kept across restarts).
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { CreateProblem } from "../protocol/Create.ts"
import { TorrentState } from "../torrent/Orchestrator.ts"

export class TorrentNotFound
  extends Schema.TaggedError<TorrentNotFound>()("TorrentNotFound", { id: Schema.String }, { httpApiStatus: 404 })
{
  override get message() {
    return `no torrent ${this.id}`
  }
}

/** The request names something that cannot be: a bad .torrent, magnet, file index, limit or field. */
export class BadInput
  extends Schema.TaggedError<BadInput>()("BadInput", { detail: Schema.String }, { httpApiStatus: 400 })
{
  override get message() {
    return this.detail
  }
}

/** Why a .torrent could not be had from its URL (see `FetchTorrent`). */
export const UrlProblem = Schema.Literals([
  "BadUrl",
  "Unreachable",
  "Timeout",
  "Redirects",
  "Status",
  "TooLarge",
  "NotTorrent"
])
export type UrlProblem = typeof UrlProblem.Type

/** The .torrent at the URL given could not be fetched, or is not one. */
export class UrlFailed extends Schema.TaggedError<UrlFailed>()(
  "UrlFailed",
  { url: Schema.String, problem: UrlProblem, detail: Schema.String },
  { httpApiStatus: 422 }
) {
  override get message() {
    return `${this.url}: ${this.detail}`
  }
}

/** A torrent could not be made of the path given (`problem` as `CreateTorrent.create` says: Missing, Unreadable…). */
export class CreateFailed extends Schema.TaggedError<CreateFailed>()(
  "CreateFailed",
  { problem: CreateProblem, detail: Schema.String },
  { httpApiStatus: 422 }
) {
  override get message() {
    return this.detail
  }
}

/** The daemon could not do what was asked (its disk failed). */
export class DaemonFailure
  extends Schema.TaggedError<DaemonFailure>()("DaemonFailure", { detail: Schema.String }, { httpApiStatus: 500 })
{
  override get message() {
    return this.detail
  }
}

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/** Bytes per second; 0 = unlimited. */
export const Limits = Schema.Struct({ upload: Count, download: Count })
export type Limits = typeof Limits.Type

export const FilePriority = Schema.Literals(["skip", "low", "normal", "high"])

/** A torrent as listed: every field but `id` and `infoHash` may be left out by `fields`. */
export const TorrentInfo = Schema.Struct({
  id: Count,
  infoHash: Schema.String,
  name: Schema.optionalKey(Schema.String),
  /** Paused by the user (its state is then "stopped"). */
  paused: Schema.optionalKey(Schema.Boolean),
  state: Schema.optionalKey(TorrentState),
  /** Verified bytes of the selected files, and their size. */
  done: Schema.optionalKey(Count),
  wanted: Schema.optionalKey(Count),
  downloaded: Schema.optionalKey(Count),
  uploaded: Schema.optionalKey(Count),
  downloadRate: Schema.optionalKey(Count),
  uploadRate: Schema.optionalKey(Count),
  peers: Schema.optionalKey(Count),
  /** Peers we upload to (we unchoke them and they are interested). */
  uploadingTo: Schema.optionalKey(Count),
  /** Peers we download from (they unchoke us and we are interested). */
  downloadingFrom: Schema.optionalKey(Count),
  /** Seconds to completion at the current rate; null when nothing comes. */
  eta: Schema.optionalKey(Schema.NullOr(Count)),
  hashFailures: Schema.optionalKey(Count),
  downloadDir: Schema.optionalKey(Schema.String),
  limits: Schema.optionalKey(Limits),
  /** Milliseconds since 1970. */
  addedAt: Schema.optionalKey(Count)
})
export type TorrentInfo = typeof TorrentInfo.Type

export const fieldNames = Object.keys(TorrentInfo.fields) as ReadonlyArray<keyof TorrentInfo>

export const FileInfo = Schema.Struct({
  index: Count,
  /** Its path inside the torrent, with "/" between the parts. */
  path: Schema.String,
  length: Count,
  /** Verified bytes. */
  done: Count,
  priority: FilePriority
})

/** One torrent with its files (none yet while a magnet link's metadata is fetched). */
export const TorrentDetail = Schema.Struct({
  ...TorrentInfo.fields,
  files: Schema.Array(FileInfo)
})
export type TorrentDetail = typeof TorrentDetail.Type

export const Peer = Schema.Struct({ address: Schema.String, outgoing: Schema.Boolean })

/** What to add: exactly one of `torrent` (a .torrent file, base64), `magnet` or `url` (http(s), of a .torrent). */
export const AddRequest = Schema.Struct({
  torrent: Schema.optionalKey(Schema.String),
  magnet: Schema.optionalKey(Schema.String),
  url: Schema.optionalKey(Schema.String),
  /** Its folder (default: the daemon's download folder). */
  downloadDir: Schema.optionalKey(Schema.String),
  /** Added without starting. */
  paused: Schema.optionalKey(Schema.Boolean),
  /** Only these files, by index. */
  selected: Schema.optionalKey(Schema.Array(Count)),
  /** Peers to dial, HOST:PORT, besides those found. */
  peers: Schema.optionalKey(Schema.Array(Schema.String))
})
export type AddRequest = typeof AddRequest.Type

/** Either the files to download (by index) or each file's priority. */
export const FilesRequest = Schema.Struct({
  selected: Schema.optionalKey(Schema.Array(Count)),
  priorities: Schema.optionalKey(Schema.Array(FilePriority))
})

export const SessionInfo = Schema.Struct({
  version: Schema.String,
  /** The TCP port peers reach us on. */
  port: Count,
  downloadDir: Schema.String,
  limits: Limits,
  torrents: Count
})

/** A torrent to make of a file or folder on the daemon's computer (as `effect-torrent create` makes one). */
export const CreateRequest = Schema.Struct({
  /** The file or folder, an absolute path on the daemon's computer. */
  path: Schema.String,
  /** Tracker announce URLs, each in its own tier. */
  trackers: Schema.optionalKey(Schema.Array(Schema.String)),
  /** Web seed URLs (BEP 19). */
  webSeeds: Schema.optionalKey(Schema.Array(Schema.String)),
  /** Bytes per piece, a power of two from 16 KiB to 64 MiB (default: chosen for 1000–2000 pieces). */
  pieceLength: Schema.optionalKey(Count),
  /** v1 (default), v2-only or hybrid (BEP 52). */
  version: Schema.optionalKey(Schema.Literals(["v1", "v2", "hybrid"])),
  private: Schema.optionalKey(Schema.Boolean),
  comment: Schema.optionalKey(Schema.String),
  /** Added to the daemon to seed, from where it lies. */
  seed: Schema.optionalKey(Schema.Boolean)
})
export type CreateRequest = typeof CreateRequest.Type

export const Created = Schema.Struct({
  /** The .torrent file, base64. */
  torrent: Schema.String,
  infoHash: Schema.String,
  name: Schema.String,
  magnet: Schema.String,
  /** The torrent as added, when seeded. */
  added: Schema.optionalKey(TorrentInfo)
})
export type Created = typeof Created.Type

const id = { id: Schema.String }

export class TorrentsGroup extends HttpApiGroup.make("torrents")
  .add(
    HttpApiEndpoint.get("list", "/", {
      query: { fields: Schema.optionalKey(Schema.String) },
      success: Schema.Array(TorrentInfo),
      error: BadInput
    }),
    HttpApiEndpoint.post("add", "/", {
      payload: AddRequest,
      success: TorrentInfo,
      error: [BadInput, UrlFailed, DaemonFailure]
    }),
    HttpApiEndpoint.get("get", "/:id", { params: id, success: TorrentDetail, error: TorrentNotFound }),
    HttpApiEndpoint.post("pause", "/:id/pause", { params: id, error: [TorrentNotFound, DaemonFailure] }),
    HttpApiEndpoint.post("resume", "/:id/resume", { params: id, error: [TorrentNotFound, DaemonFailure] }),
    HttpApiEndpoint.delete("remove", "/:id", {
      params: id,
      query: { deleteFiles: Schema.optionalKey(Schema.Literals(["true", "false"])) },
      error: [TorrentNotFound, DaemonFailure]
    }),
    HttpApiEndpoint.put("setFiles", "/:id/files", {
      params: id,
      payload: FilesRequest,
      error: [TorrentNotFound, BadInput, DaemonFailure]
    }),
    HttpApiEndpoint.put("setLimits", "/:id/limits", {
      params: id,
      payload: Limits,
      error: [TorrentNotFound, DaemonFailure]
    }),
    HttpApiEndpoint.get("peers", "/:id/peers", { params: id, success: Schema.Array(Peer), error: TorrentNotFound })
  )
  .prefix("/api/v1/torrents")
  .annotateMerge(OpenApi.annotations({ title: "Torrents" }))
{}

export class SessionGroup extends HttpApiGroup.make("session")
  .add(
    HttpApiEndpoint.get("get", "/", { success: SessionInfo }),
    HttpApiEndpoint.put("setLimits", "/limits", { payload: Limits, error: DaemonFailure })
  )
  .prefix("/api/v1/session")
  .annotateMerge(OpenApi.annotations({ title: "Session" }))
{}

export class CreateGroup extends HttpApiGroup.make("create")
  .add(
    HttpApiEndpoint.post("create", "/", {
      payload: CreateRequest,
      success: Created,
      error: [BadInput, CreateFailed, DaemonFailure]
    })
  )
  .prefix("/api/v1/create")
  .annotateMerge(OpenApi.annotations({ title: "Create" }))
{}

export class Api extends HttpApi.make("effect-torrent")
  .add(TorrentsGroup)
  .add(CreateGroup)
  .add(SessionGroup)
  .annotateMerge(OpenApi.annotations({
    title: "effect-torrent daemon",
    description: "Torrents of an effect-torrent daemon. Events: GET /api/v1/events (Server-Sent Events)."
  }))
{}
