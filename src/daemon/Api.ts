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

const id = { id: Schema.String }

export class TorrentsGroup extends HttpApiGroup.make("torrents")
  .add(
    HttpApiEndpoint.get("list", "/", {
      query: { fields: Schema.optionalKey(Schema.String) },
      success: Schema.Array(TorrentInfo),
      error: BadInput
    }),
    HttpApiEndpoint.post("add", "/", { payload: AddRequest, success: TorrentInfo, error: [BadInput, DaemonFailure] }),
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

export class Api extends HttpApi.make("effect-torrent")
  .add(TorrentsGroup)
  .add(SessionGroup)
  .annotateMerge(OpenApi.annotations({
    title: "effect-torrent daemon",
    description: "Torrents of an effect-torrent daemon. Events: GET /api/v1/events (Server-Sent Events)."
  }))
{}
