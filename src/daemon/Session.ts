/**
 * Session: the daemon's torrents, over one TorrentManager, with what the
 * user chose for each (folder, paused, files, limits) kept on disk
 * (`SessionStore`) and restored when the daemon starts again. Every way in
 * (the HTTP API, Transmission's RPC, the watched folder, the web page) goes
 * through here, so each change is saved the same way.
 *
 * A change returns once it is saved. Saves are serialized and coalesced:
 * changes made while one is written go out together in the next, so adding
 * a thousand torrents at once writes the file a few times, not a thousand.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Clock, Context, Effect, FiberMap, Layer, Path, Result, Semaphore, Stream } from "effect"
import type { FileSystem, Scope } from "effect"
import type { HttpClient } from "effect/http"
import type { Served } from "../http/Served.ts"
import * as ServedTorrent from "../http/ServedTorrent.ts"
import * as Magnet from "../protocol/Magnet.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import { type ManagerEvent, type TorrentHandle, TorrentManager } from "../TorrentManager.ts"
import * as CreateTorrent from "../torrent/CreateTorrent.ts"
import type { Progress } from "../torrent/Orchestrator.ts"
import type { FilePriority } from "../torrent/Synchronizer.ts"
import {
  BadInput,
  CreateFailed,
  type Created,
  type CreateRequest,
  DaemonFailure,
  type Limits,
  type TorrentDetail,
  type TorrentInfo,
  TorrentNotFound,
  type UrlFailed
} from "./Api.ts"
import * as FetchTorrent from "./FetchTorrent.ts"
import * as SessionStore from "./SessionStore.ts"

export type Source =
  | { readonly _tag: "Torrent"; readonly bytes: Uint8Array }
  | { readonly _tag: "Magnet"; readonly uri: string }
  /** An http(s) URL of a .torrent, fetched by the daemon (`FetchTorrent`). */
  | { readonly _tag: "Url"; readonly url: string }

export interface AddOptions {
  readonly downloadDir?: string | undefined
  readonly paused?: boolean | undefined
  readonly selected?: ReadonlyArray<number> | undefined
  /** HOST:PORT peers to dial besides those found. */
  readonly peers?: ReadonlyArray<string> | undefined
}

export interface Peer {
  readonly address: string
  readonly outgoing: boolean
}

export interface Options {
  /** The session's folder. */
  readonly dir: string
  /** Where torrents go unless added with a folder of their own. */
  readonly downloadDir: string
  /** Peers every torrent dials (HOST:PORT), besides those found. */
  readonly peers?: ReadonlyArray<string> | undefined
}

interface Entry {
  record: SessionStore.TorrentRecord
  readonly handle: TorrentHandle
  /** Its metadata, once known. */
  meta: Metainfo.Metainfo | undefined
  /** Its name (the handle's), read again when the metadata comes. */
  name: string
  /** Connected peers by address: whether we dialled them. */
  readonly peers: Map<string, boolean>
  /** What it was last shown as, and from what: kept while those stay the same (see `shownOf`). */
  shown?: Shown | undefined
}

interface Shown {
  readonly progress: Progress
  readonly name: string
  readonly record: SessionStore.TorrentRecord
  readonly info: TorrentInfo
  /** `info` as JSON, made when first listed. */
  json: string | undefined
}

export class Session extends Context.Service<Session, {
  readonly port: number
  readonly downloadDir: string
  readonly add: (
    source: Source,
    options?: AddOptions
  ) => Effect.Effect<TorrentInfo, BadInput | UrlFailed | DaemonFailure>
  /** Makes a torrent of a file or folder here (`CreateTorrent.create`), and seeds it if asked. */
  readonly create: (
    request: CreateRequest
  ) => Effect.Effect<Created, BadInput | CreateFailed | DaemonFailure>
  readonly list: Effect.Effect<ReadonlyArray<TorrentInfo>>
  /** `list` as a JSON array (what `GET /api/v1/torrents` answers), from each torrent's kept JSON. */
  readonly listJson: Effect.Effect<string>
  readonly get: (id: string) => Effect.Effect<TorrentDetail, TorrentNotFound>
  readonly pause: (id: string) => Effect.Effect<void, TorrentNotFound | DaemonFailure>
  readonly resume: (id: string) => Effect.Effect<void, TorrentNotFound | DaemonFailure>
  readonly remove: (id: string, deleteFiles: boolean) => Effect.Effect<void, TorrentNotFound | DaemonFailure>
  /** Downloads only these files (by index), or gives each file a priority. */
  readonly setFiles: (
    id: string,
    files: { readonly selected?: ReadonlyArray<number>; readonly priorities?: ReadonlyArray<FilePriority> }
  ) => Effect.Effect<void, TorrentNotFound | BadInput | DaemonFailure>
  readonly setLimits: (id: string, limits: Partial<Limits>) => Effect.Effect<void, TorrentNotFound | DaemonFailure>
  readonly peers: (id: string) => Effect.Effect<ReadonlyArray<Peer>, TorrentNotFound>
  /** The torrent as the HTTP file server serves it (`TorrentServer`). */
  readonly served: (id: string) => Effect.Effect<Served["Service"], TorrentNotFound>
  readonly limits: Effect.Effect<Limits>
  readonly setGlobalLimits: (limits: Partial<Limits>) => Effect.Effect<void, DaemonFailure>
  /** What happens to every torrent, subscribed at once (nothing published after this returns is missed). */
  readonly subscribe: Effect.Effect<Stream.Stream<ManagerEvent>, never, Scope.Scope>
}>()("effect-torrent/daemon/Session") {
  /**
   * Restores the session saved in `dir` (if any); needs TorrentManager,
   * FileSystem and Path. Torrents added by URL are fetched with Node's HTTP
   * client.
   */
  static readonly layer = (options: Options) =>
    Layer.effect(Session, make(options)).pipe(Layer.provide(NodeHttpClient.layerNodeHttp))
}

const failure = (error: { readonly message: string }) => new DaemonFailure({ detail: error.message })

/**
 * The torrent's numbers as the API shows them (rates rounded, an endless ETA
 * as null), kept with its JSON while its progress, name and record are the
 * same objects (a progress is a new object each time it changes; a record
 * is replaced on each change): a thousand torrents waiting for peers are
 * listed from what was made for the last listing.
 */
const shownOf = (entry: Entry): Shown => {
  const p = entry.handle.progress.getUnsafe()
  const { name, record, shown } = entry
  if (shown !== undefined && shown.progress === p && shown.name === name && shown.record === record) return shown
  const { addedAt, downloadDir, id, infoHash, limits, paused } = record
  const info = {
    id,
    infoHash,
    name,
    paused,
    state: p.state,
    done: p.done,
    wanted: p.wanted,
    downloaded: p.downloaded,
    uploaded: p.uploaded,
    downloadRate: Math.round(p.downloadRate),
    uploadRate: Math.round(p.uploadRate),
    peers: p.peers,
    uploadingTo: p.uploadingTo,
    downloadingFrom: p.downloadingFrom,
    eta: Number.isFinite(p.eta) ? Math.round(p.eta) : null,
    hashFailures: p.hashFailures,
    downloadDir,
    limits,
    addedAt
  } satisfies TorrentInfo
  return (entry.shown = { progress: p, name, record, info, json: undefined })
}

const infoOf = (entry: Entry) => shownOf(entry).info

/** The torrent's info as JSON: as `TorrentInfo`'s schema encodes it (every field is a JSON value already). */
const jsonOf = (entry: Entry) => {
  const shown = shownOf(entry)
  return (shown.json ??= JSON.stringify(shown.info))
}

/** Each file's priority as the record has it: its own, else selected or not, else normal. */
const priorityOf = (record: SessionStore.TorrentRecord, index: number): FilePriority =>
  record.priorities?.[index] ??
    (record.selected === undefined || record.selected.includes(index) ? "normal" : "skip")

const parsePeers = (texts: ReadonlyArray<string>) =>
  Effect.forEach(texts, (text) => {
    const address = Magnet.parsePeer(text)
    return address === undefined
      ? Effect.fail(new BadInput({ detail: `${JSON.stringify(text)} is not HOST:PORT` }))
      : Effect.succeed(address)
  })

const checkSelection = (meta: Metainfo.Metainfo | undefined, files: ReadonlyArray<number>) => {
  const wrong = meta === undefined ? undefined : files.find((i) => i >= meta.files.length)
  return wrong === undefined
    ? Effect.void
    : Effect.fail(new BadInput({ detail: `no file ${wrong}: the torrent has ${meta!.files.length} files` }))
}

export const make = Effect.fnUntraced(function*(options: Options) {
  const manager = yield* TorrentManager
  const context = yield* Effect.context<FileSystem.FileSystem | Path.Path | HttpClient.HttpClient>()
  const path = yield* Path.Path
  const loaded = yield* SessionStore.load(options.dir)
  const entries = new Map<string, Entry>()
  const byId = new Map<number, Entry>()
  let nextId = loaded.nextId
  let limits: Limits = loaded.limits
  yield* manager.setLimits(limits)

  /** Per magnet link, the fiber saving its metadata once fetched. */
  const fetching = yield* FiberMap.make<string, void, never>()

  // Saves are coalesced: a change waits for a save begun after it.
  const lock = Semaphore.makeUnsafe(1)
  let changes = 0
  let saved = 0
  const persist = Effect.suspend(() => {
    const change = ++changes
    return lock.withPermits(1)(Effect.suspend(() => {
      if (saved >= change) return Effect.void
      const upTo = changes
      const snapshot: SessionStore.SessionFile = {
        version: 1,
        nextId,
        limits,
        torrents: [...entries.values()].map((entry) => entry.record)
      }
      return SessionStore.save(options.dir, snapshot).pipe(Effect.tap(() => Effect.sync(() => (saved = upTo))))
    }))
  }).pipe(Effect.mapError(failure), Effect.provideContext(context))

  const find = (id: string) => {
    const entry = /^\d+$/.test(id) ? byId.get(Number(id)) : entries.get(id.toLowerCase())
    return entry === undefined ? Effect.fail(new TorrentNotFound({ id })) : Effect.succeed(entry)
  }

  /** Starts the recorded torrent in the manager (paused if it was). */
  const start = (
    record: SessionStore.TorrentRecord,
    source: Metainfo.Metainfo | Magnet.Magnet,
    paused = record.paused
  ) =>
    Effect.gen(function*() {
      const peers = yield* parsePeers([...(options.peers ?? []), ...(record.peers ?? [])])
      const handle = yield* manager.add(source, {
        downloadDir: record.downloadDir,
        paused,
        selected: record.selected,
        priorities: record.priorities,
        peers,
        seed: true,
        maxUploadRate: record.limits.upload,
        maxDownloadRate: record.limits.download
      }).pipe(Effect.mapError((error) => new BadInput({ detail: error.message })))
      const entry: Entry = {
        record,
        handle,
        meta: "info" in source ? source : undefined,
        name: yield* handle.name,
        peers: new Map()
      }
      entries.set(record.infoHash, entry)
      byId.set(record.id, entry)
      // A magnet link's metadata, once fetched, is kept, and saved beside the
      // session once it has its piece layers (a v2 one's come after it).
      if (entry.meta === undefined) {
        yield* FiberMap.run(
          fetching,
          record.infoHash,
          handle.metadata.pipe(
            Effect.tap((meta) =>
              Effect.flatMap(handle.name, (name) =>
                Effect.sync(() => {
                  entry.meta = meta
                  entry.name = name
                }))
            ),
            Effect.andThen(handle.wholeMetadata),
            Effect.flatMap((meta) => SessionStore.saveTorrent(options.dir, meta.infoHash, Metainfo.encode(meta))),
            Effect.catch((error) => Effect.logWarning(`metadata of ${record.infoHash} not saved: ${error.message}`)),
            Effect.provideContext(context)
          )
        )
      }
      return entry
    })

  // Peers come and go as the manager's events say.
  const events = yield* manager.subscribe
  yield* events.pipe(
    Stream.runForEach(({ event, infoHash }) =>
      Effect.sync(() => {
        const peers = entries.get(infoHash)?.peers
        if (peers === undefined) return
        if (event._tag === "PeerConnected") peers.set(event.peer, event.outgoing)
        else if (event._tag === "PeerDisconnected") peers.delete(event.peer)
        else if (event._tag === "StateChanged" && event.state === "stopped") peers.clear()
      })
    ),
    Effect.forkScoped
  )

  // The saved torrents, as they were; one that cannot be read back is skipped with a warning. All are read,
  // then added paused, before any starts: the API answers with all of them at once, and the ones not paused
  // start in the background (reads and adds waiting behind starting torrents' work made restoring a thousand
  // take half a minute).
  const sources = yield* Effect.forEach(
    loaded.torrents,
    (record) =>
      Effect.map(SessionStore.loadTorrent(options.dir, record.infoHash), (bytes) =>
        bytes._tag === "Some"
          ? Result.getOrUndefined(Metainfo.decode(bytes.value))
          : record.magnet === undefined
          ? undefined
          : Result.getOrUndefined(Magnet.parse(record.magnet))),
    { concurrency: 16 }
  )
  for (const [i, record] of loaded.torrents.entries()) {
    const source = sources[i]
    if (source === undefined) {
      yield* Effect.logWarning(`torrent ${record.infoHash} of the saved session cannot be read back: skipped`)
      continue
    }
    yield* start(record, source, true).pipe(
      Effect.catch((error) => Effect.logWarning(`torrent ${record.infoHash} not restored: ${error.message}`))
    )
  }
  // A torrent paused or removed meanwhile is left as the user made it (pause marks the record first).
  yield* Effect.forEach(loaded.torrents, (record) =>
    Effect.suspend(() => {
      const entry = entries.get(record.infoHash)
      return entry === undefined || entry.record.paused
        ? Effect.void
        : Effect.ignore(manager.resume(entry.handle.infoHash))
    }), { discard: true }).pipe(Effect.forkScoped)

  /** What a source names: a torrent's metadata or a magnet link. */
  const resolve = (input: Source) =>
    input._tag === "Torrent"
      ? Effect.fromResult(Metainfo.decode(input.bytes)).pipe(
        Effect.mapError((error) => new BadInput({ detail: `not a .torrent file: ${error.message}` }))
      )
      : input._tag === "Url"
      ? FetchTorrent.fetch(input.url).pipe(Effect.provideContext(context))
      : Effect.fromResult(Magnet.parse(input.uri)).pipe(
        Effect.mapError((error) => new BadInput({ detail: error.message }))
      )

  /** Adds the torrent (its magnet link as given, kept to restore it) unless it is there already. */
  const addSource = Effect.fnUntraced(function*(
    source: Metainfo.Metainfo | Magnet.Magnet,
    addOptions: AddOptions,
    magnet: string | undefined
  ) {
    const existing = entries.get(source.infoHash)
    if (existing !== undefined) return infoOf(existing)
    const meta = "info" in source ? source : undefined
    if (addOptions.selected !== undefined) yield* checkSelection(meta, addOptions.selected)
    if (meta !== undefined) {
      yield* SessionStore.saveTorrent(options.dir, meta.infoHash, Metainfo.encode(meta)).pipe(
        Effect.mapError(failure),
        Effect.provideContext(context)
      )
    }
    const record: SessionStore.TorrentRecord = {
      id: nextId++,
      infoHash: source.infoHash,
      ...(magnet === undefined ? {} : { magnet }),
      downloadDir: addOptions.downloadDir ?? options.downloadDir,
      paused: addOptions.paused === true,
      ...(addOptions.selected === undefined ? {} : { selected: [...addOptions.selected] }),
      ...(addOptions.peers === undefined || addOptions.peers.length === 0 ? {} : { peers: [...addOptions.peers] }),
      limits: { upload: 0, download: 0 },
      addedAt: yield* Clock.currentTimeMillis
    }
    const entry = yield* start(record, source)
    yield* persist
    return infoOf(entry)
  })

  const add = Effect.fn("Session.add")(function*(input: Source, addOptions: AddOptions = {}) {
    return yield* addSource(yield* resolve(input), addOptions, input._tag === "Magnet" ? input.uri : undefined)
  })

  const create = Effect.fn("Session.create")(function*(request: CreateRequest) {
    if (!path.isAbsolute(request.path)) {
      return yield* new BadInput({ detail: `${JSON.stringify(request.path)} is not an absolute path` })
    }
    const { bytes, meta } = yield* CreateTorrent.create(request.path, {
      pieceLength: request.pieceLength,
      trackers: request.trackers,
      webSeeds: request.webSeeds,
      version: request.version,
      private: request.private,
      comment: request.comment
    }).pipe(
      Effect.mapError((error) => new CreateFailed({ problem: error.problem, detail: error.message })),
      Effect.provideContext(context)
    )
    // Seeded from where it lies: the torrent's name is the path's last component.
    const added = request.seed === true
      ? yield* addSource(meta, { downloadDir: path.dirname(path.resolve(request.path)) }, undefined)
      : undefined
    return {
      torrent: Buffer.from(bytes).toString("base64"),
      infoHash: meta.infoHash,
      name: meta.name,
      magnet: Magnet.format(Magnet.fromMetainfo(meta)),
      ...(added === undefined ? {} : { added })
    } satisfies Created
  })

  /** Changes the record, saved. */
  const change = (entry: Entry, f: (record: SessionStore.TorrentRecord) => SessionStore.TorrentRecord) =>
    Effect.andThen(Effect.sync(() => (entry.record = f(entry.record))), persist)

  return Session.of({
    port: manager.port,
    downloadDir: options.downloadDir,
    add,
    create,
    list: Effect.sync(() => Array.from(entries.values(), infoOf)),
    listJson: Effect.sync(() => `[${Array.from(entries.values(), jsonOf).join(",")}]`),
    get: (id) =>
      Effect.gen(function*() {
        const entry = yield* find(id)
        const info = infoOf(entry)
        const p = yield* entry.handle.progress.get
        const files = entry.meta?.files.map((file, index) => ({
          index,
          path: file.path.join("/"),
          length: file.length,
          done: p.files[index] ?? 0,
          priority: priorityOf(entry.record, index)
        })) ?? []
        return { ...info, files }
      }),
    pause: (id) =>
      Effect.gen(function*() {
        const entry = yield* find(id)
        entry.record = { ...entry.record, paused: true }
        yield* manager.pause(entry.handle.infoHash).pipe(Effect.orDie)
        yield* persist
      }),
    resume: (id) =>
      Effect.gen(function*() {
        const entry = yield* find(id)
        entry.record = { ...entry.record, paused: false }
        yield* manager.resume(entry.handle.infoHash).pipe(Effect.orDie)
        yield* persist
      }),
    remove: (id, deleteFiles) =>
      Effect.gen(function*() {
        const entry = yield* find(id)
        yield* FiberMap.remove(fetching, entry.record.infoHash)
        entries.delete(entry.record.infoHash)
        byId.delete(entry.record.id)
        yield* persist
        yield* SessionStore.deleteTorrent(options.dir, entry.record.infoHash).pipe(Effect.provideContext(context))
        yield* manager.remove(entry.handle.infoHash, { deleteFiles }).pipe(
          Effect.catchTag("TorrentNotFound", () => Effect.void),
          Effect.mapError(failure)
        )
      }),
    setFiles: (id, files) =>
      Effect.gen(function*() {
        const entry = yield* find(id)
        if (files.priorities !== undefined) {
          if (entry.meta !== undefined && files.priorities.length !== entry.meta.files.length) {
            return yield* new BadInput({
              detail: `${files.priorities.length} priorities for ${entry.meta.files.length} files`
            })
          }
          yield* entry.handle.prioritize(files.priorities)
          const { selected: _, ...rest } = entry.record
          return yield* change(entry, () => ({ ...rest, priorities: [...files.priorities!] }))
        }
        if (files.selected === undefined) return yield* new BadInput({ detail: "give selected or priorities" })
        yield* entry.handle.select(files.selected).pipe(
          Effect.mapError((error) => new BadInput({ detail: error.message }))
        )
        const { priorities: _, ...rest } = entry.record
        yield* change(entry, () => ({ ...rest, selected: [...files.selected!] }))
      }),
    setLimits: (id, changed) =>
      Effect.gen(function*() {
        const entry = yield* find(id)
        yield* entry.handle.setLimits(changed)
        yield* change(entry, (record) => ({ ...record, limits: { ...record.limits, ...changed } }))
      }),
    peers: (id) =>
      Effect.map(find(id), (entry) => [...entry.peers].map(([address, outgoing]) => ({ address, outgoing }))),
    served: (id) => Effect.map(find(id), (entry) => ServedTorrent.make(entry.handle)),
    limits: Effect.sync(() => limits),
    setGlobalLimits: (changed) =>
      Effect.andThen(
        Effect.sync(() => (limits = { ...limits, ...changed })),
        Effect.andThen(manager.setLimits(changed), persist)
      ),
    subscribe: manager.subscribe
  })
})
