/**
 * Transmission's RPC (its `rpc-spec`, version 15) at `POST /transmission/rpc`,
 * enough for `transmission-remote` and the download managers that talk to
 * Transmission: `session-get`, `session-set` (limits), `session-stats`,
 * `torrent-get` (the common fields), `torrent-add` (a magnet link, an
 * http(s) URL of a .torrent, fetched as the API's add by URL does, or
 * `metainfo` in base64; `download-dir`, `paused`, `files-unwanted`),
 * `torrent-start`, `torrent-stop`, `torrent-remove` (`delete-local-data`) and
 * `torrent-set` (files wanted and unwanted, limits).
 *
 * Every request must carry the `X-Transmission-Session-Id` the daemon gave:
 * without it the answer is 409 with the id (the client then asks again), as
 * Transmission does against CSRF. Speeds are in kB/s (1000 bytes), as
 * Transmission counts them. A request that is not JSON, or not an RPC
 * request, is a 400; a failed method answers 200 with its reason in
 * `result`, as Transmission does.
 */
import { Effect, Schema } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import * as NodeCrypto from "node:crypto"
import type { FilePriority } from "../torrent/Synchronizer.ts"
import type { TorrentDetail, TorrentInfo } from "./Api.ts"
import * as FetchTorrent from "./FetchTorrent.ts"
import { Session } from "./Session.ts"

const Request = Schema.Struct({
  method: Schema.String,
  arguments: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
  tag: Schema.optionalKey(Schema.Number)
})
const decodeRequest = Schema.decodeUnknownEffect(Schema.fromJsonString(Request))

/** `ids`: a number, a hash, a list of them, or absent for all (and "recently-active", taken as all). */
const IdList = Schema.Union([Schema.Number, Schema.String, Schema.Array(Schema.Union([Schema.Number, Schema.String]))])
const Ids = Schema.optionalKey(IdList)

const Indexes = Schema.optionalKey(Schema.Array(Schema.Int))

const TorrentGet = Schema.Struct({ ids: Ids, fields: Schema.Array(Schema.String) })
const TorrentAdd = Schema.Struct({
  filename: Schema.optionalKey(Schema.String),
  metainfo: Schema.optionalKey(Schema.String),
  "download-dir": Schema.optionalKey(Schema.String),
  paused: Schema.optionalKey(Schema.Boolean),
  "files-unwanted": Indexes
})
const TorrentIds = Schema.Struct({ ids: Ids })
const TorrentRemove = Schema.Struct({ ids: Ids, "delete-local-data": Schema.optionalKey(Schema.Boolean) })
const Speed = Schema.optionalKey(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0)))
const Flag = Schema.optionalKey(Schema.Boolean)
const TorrentSet = Schema.Struct({
  ids: Ids,
  "files-wanted": Indexes,
  "files-unwanted": Indexes,
  downloadLimit: Speed,
  downloadLimited: Flag,
  uploadLimit: Speed,
  uploadLimited: Flag
})
const SessionSet = Schema.Struct({
  "speed-limit-down": Speed,
  "speed-limit-down-enabled": Flag,
  "speed-limit-up": Speed,
  "speed-limit-up-enabled": Flag
})

/** A method's failure: its reason goes in `result`. */
class RpcFailure extends Schema.TaggedError<RpcFailure>()("RpcFailure", { result: Schema.String }) {}

const kB = 1000

/** Transmission's status numbers: 0 stopped, 2 checking, 4 downloading, 6 seeding. */
const statusOf = (info: TorrentInfo) =>
  info.paused === true || info.state === "stopped" || info.state === "complete"
    ? 0
    : info.state === "checking"
    ? 2
    : info.state === "seeding"
    ? 6
    : 4

/** The torrent-get fields we know, from a torrent's detail. */
const fieldsOf = (t: TorrentDetail): Record<string, unknown> => {
  const wanted = t.wanted ?? 0
  const done = t.done ?? 0
  const size = t.files.reduce((n, file) => n + file.length, 0)
  return {
    id: t.id,
    hashString: t.infoHash,
    name: t.name,
    status: statusOf(t),
    error: 0,
    errorString: "",
    totalSize: size,
    sizeWhenDone: wanted,
    leftUntilDone: wanted - done,
    haveValid: done,
    percentDone: wanted === 0 ? 0 : done / wanted,
    metadataPercentComplete: t.state === "fetching metadata" ? 0 : 1,
    isFinished: false,
    isStalled: t.state === "stalled",
    rateDownload: t.downloadRate,
    rateUpload: t.uploadRate,
    eta: t.eta ?? -1,
    uploadRatio: wanted === 0 ? 0 : (t.uploaded ?? 0) / wanted,
    downloadedEver: t.downloaded,
    uploadedEver: t.uploaded,
    downloadDir: t.downloadDir,
    addedDate: Math.floor((t.addedAt ?? 0) / 1000),
    peersConnected: t.peers,
    peersGettingFromUs: t.uploadingTo,
    peersSendingToUs: t.downloadingFrom,
    queuePosition: t.id,
    downloadLimit: Math.round((t.limits?.download ?? 0) / kB),
    downloadLimited: (t.limits?.download ?? 0) > 0,
    uploadLimit: Math.round((t.limits?.upload ?? 0) / kB),
    uploadLimited: (t.limits?.upload ?? 0) > 0,
    files: t.files.map((file) => ({ name: file.path, length: file.length, bytesCompleted: file.done })),
    fileStats: t.files.map((file) => ({
      bytesCompleted: file.done,
      wanted: file.priority !== "skip",
      priority: file.priority === "high" ? 1 : file.priority === "low" ? -1 : 0
    })),
    wanted: t.files.map((file) => (file.priority === "skip" ? 0 : 1)),
    priorities: t.files.map((file) => (file.priority === "high" ? 1 : file.priority === "low" ? -1 : 0))
  }
}

export const make = Effect.gen(function*() {
  const session = yield* Session
  const sessionId = NodeCrypto.randomBytes(24).toString("base64url")

  const decode = <S extends Schema.Decoder<unknown>>(schema: S, args: unknown) =>
    Schema.decodeUnknownEffect(schema)(args ?? {}).pipe(
      Effect.mapError((error) => new RpcFailure({ result: `invalid arguments: ${error.message}` }))
    )

  /** The torrents `ids` names (all when absent); unknown ones are left out, as Transmission does. */
  const select = (ids: typeof IdList.Type | undefined) =>
    Effect.gen(function*() {
      const all = yield* session.list
      if (ids === undefined || ids === "recently-active") return all.map((t) => String(t.id))
      const wanted = (Array.isArray(ids) ? ids : [ids]).map(String)
      return all.filter((t) => wanted.includes(String(t.id)) || wanted.includes(t.infoHash)).map((t) => String(t.id))
    })

  const each = (ids: typeof IdList.Type | undefined, f: (id: string) => Effect.Effect<void, unknown>) =>
    Effect.flatMap(select(ids), (selected) =>
      Effect.forEach(selected, (id) =>
        f(id).pipe(
          Effect.mapError((error) => new RpcFailure({ result: error instanceof Error ? error.message : "failed" }))
        ), { discard: true }))

  const limitsKb = Effect.map(session.limits, (limits) => ({
    "speed-limit-down": Math.round(limits.download / kB),
    "speed-limit-down-enabled": limits.download > 0,
    "speed-limit-up": Math.round(limits.upload / kB),
    "speed-limit-up-enabled": limits.upload > 0
  }))

  /** A new limit in bytes/s from Transmission's value and flag: disabled is 0, unlimited. */
  const limitOf = (value: number | undefined, enabled: boolean | undefined) =>
    enabled === false ? 0 : value === undefined ? undefined : Math.round(value * kB)

  const methods: Record<string, (args: unknown) => Effect.Effect<Record<string, unknown>, RpcFailure>> = {
    "session-get": () =>
      Effect.gen(function*() {
        return {
          version: "3.00 (effect-torrent 0.1.0)",
          "rpc-version": 15,
          "rpc-version-minimum": 1,
          "download-dir": session.downloadDir,
          "peer-port": session.port,
          "alt-speed-enabled": false,
          "seedRatioLimited": false,
          encryption: "tolerated",
          ...(yield* limitsKb)
        }
      }),
    "session-set": (args) =>
      Effect.gen(function*() {
        const set = yield* decode(SessionSet, args)
        const download = limitOf(set["speed-limit-down"], set["speed-limit-down-enabled"])
        const upload = limitOf(set["speed-limit-up"], set["speed-limit-up-enabled"])
        yield* session.setGlobalLimits({
          ...(download === undefined ? {} : { download }),
          ...(upload === undefined ? {} : { upload })
        }).pipe(Effect.mapError((error) => new RpcFailure({ result: error.message })))
        return {}
      }),
    "session-stats": () =>
      Effect.gen(function*() {
        const all = yield* session.list
        const sum = (f: (t: TorrentInfo) => number) => all.reduce((n, t) => n + f(t), 0)
        const stats = {
          uploadedBytes: sum((t) => t.uploaded ?? 0),
          downloadedBytes: sum((t) => t.downloaded ?? 0),
          filesAdded: all.length,
          sessionCount: 1,
          secondsActive: 0
        }
        return {
          activeTorrentCount: all.filter((t) => t.paused !== true).length,
          pausedTorrentCount: all.filter((t) => t.paused === true).length,
          torrentCount: all.length,
          downloadSpeed: sum((t) => t.downloadRate ?? 0),
          uploadSpeed: sum((t) => t.uploadRate ?? 0),
          "cumulative-stats": stats,
          "current-stats": stats
        }
      }),
    "torrent-get": (args) =>
      Effect.gen(function*() {
        const get = yield* decode(TorrentGet, args)
        const ids = yield* select(get.ids)
        const torrents = yield* Effect.forEach(ids, (id) => Effect.option(session.get(id)))
        return {
          torrents: torrents.flatMap((t) => {
            if (t._tag === "None") return []
            const all = fieldsOf(t.value)
            return [Object.fromEntries(get.fields.filter((field) => field in all).map((field) => [field, all[field]]))]
          })
        }
      }),
    "torrent-add": (args) =>
      Effect.gen(function*() {
        const add = yield* decode(TorrentAdd, args)
        const source = add.metainfo !== undefined
          ? { _tag: "Torrent" as const, bytes: Buffer.from(add.metainfo, "base64") }
          : add.filename?.toLowerCase().startsWith("magnet:?")
          ? { _tag: "Magnet" as const, uri: add.filename }
          : add.filename !== undefined && FetchTorrent.isHttpUrl(add.filename)
          ? { _tag: "Url" as const, url: add.filename }
          : undefined
        if (source === undefined) {
          return yield* new RpcFailure({
            result: "give metainfo, a magnet link or an http(s) URL (files on the daemon's computer are not read)"
          })
        }
        const before = (yield* session.list).length
        const added = yield* session.add(source, { downloadDir: add["download-dir"], paused: add.paused }).pipe(
          Effect.mapError((error) => new RpcFailure({ result: error.message }))
        )
        if (add["files-unwanted"] !== undefined && add["files-unwanted"].length > 0) {
          yield* unwant(String(added.id), add["files-unwanted"], [])
        }
        const duplicate = (yield* session.list).length === before
        return {
          [duplicate ? "torrent-duplicate" : "torrent-added"]: {
            id: added.id,
            name: added.name,
            hashString: added.infoHash
          }
        }
      }),
    "torrent-start": (args) =>
      Effect.as(Effect.flatMap(decode(TorrentIds, args), ({ ids }) => each(ids, session.resume)), {}),
    "torrent-start-now": (args) =>
      Effect.as(Effect.flatMap(decode(TorrentIds, args), ({ ids }) => each(ids, session.resume)), {}),
    "torrent-stop": (args) =>
      Effect.as(Effect.flatMap(decode(TorrentIds, args), ({ ids }) => each(ids, session.pause)), {}),
    "torrent-remove": (args) =>
      Effect.as(
        Effect.flatMap(
          decode(TorrentRemove, args),
          (remove) => each(remove.ids, (id) => session.remove(id, remove["delete-local-data"] === true))
        ),
        {}
      ),
    "torrent-set": (args) =>
      Effect.gen(function*() {
        const set = yield* decode(TorrentSet, args)
        const download = limitOf(set.downloadLimit, set.downloadLimited)
        const upload = limitOf(set.uploadLimit, set.uploadLimited)
        yield* each(set.ids, (id) =>
          Effect.gen(function*() {
            if (download !== undefined || upload !== undefined) {
              yield* session.setLimits(id, {
                ...(download === undefined ? {} : { download }),
                ...(upload === undefined ? {} : { upload })
              })
            }
            if (set["files-wanted"] !== undefined || set["files-unwanted"] !== undefined) {
              yield* unwant(id, set["files-unwanted"] ?? [], set["files-wanted"] ?? [])
            }
          }))
        return {}
      })
  }

  /** Skips the `unwanted` files and brings the `wanted` ones back (at normal priority), keeping the others'. */
  const unwant = (id: string, unwanted: ReadonlyArray<number>, wanted: ReadonlyArray<number>) =>
    Effect.gen(function*() {
      const { files } = yield* session.get(id)
      const priorities = files.map((file, i): FilePriority =>
        unwanted.includes(i) ? "skip" : wanted.includes(i) && file.priority === "skip" ? "normal" : file.priority
      )
      yield* session.setFiles(id, { priorities })
    }).pipe(Effect.mapError((error) => new RpcFailure({ result: error.message })))

  const reply = (body: Record<string, unknown>, status = 200) =>
    HttpServerResponse.jsonUnsafe(body, { status, headers: { "x-transmission-session-id": sessionId } })

  return (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      if (request.headers["x-transmission-session-id"] !== sessionId) {
        return HttpServerResponse.text("send the X-Transmission-Session-Id header this response gives\n", {
          status: 409,
          headers: { "x-transmission-session-id": sessionId }
        })
      }
      const text = yield* request.text.pipe(Effect.option)
      if (text._tag === "None") return HttpServerResponse.text("the body could not be read\n", { status: 400 })
      const parsed = yield* decodeRequest(text.value).pipe(Effect.option)
      if (parsed._tag === "None") {
        return HttpServerResponse.text("not an RPC request: JSON with a method name\n", { status: 400 })
      }
      const { method, tag } = parsed.value
      const run = methods[method]
      const outcome = run === undefined
        ? { result: "method name not recognized", arguments: {} }
        : yield* run(parsed.value.arguments).pipe(
          Effect.map((args) => ({ result: "success", arguments: args })),
          Effect.catch((failure) => Effect.succeed({ result: failure.result, arguments: {} }))
        )
      return reply({ ...outcome, ...(tag === undefined ? {} : { tag }) })
    })
})

/** The RPC route; needs Session. */
export const layer = HttpRouter.use(Effect.fnUntraced(function*(router) {
  const handler = yield* make
  yield* router.add("POST", "/transmission/rpc", handler)
}))
