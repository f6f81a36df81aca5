/**
 * TorrentManager: every torrent of the process.
 *
 * Each torrent runs as a supervised fiber in the manager's scope; pausing
 * interrupts it (closing its sockets and files, saving resume data), resuming
 * starts it again from what is on disk. Each run is a `Torrent` service in a
 * layer of its own. Progress is kept per torrent across pauses; callers read
 * it (`handle.progress`) and cannot write it.
 *
 * A torrent added by magnet link first fetches its metadata from peers
 * (`MetadataPhase`, progress state "fetching metadata"), then downloads like
 * one added from a .torrent; the metadata is kept across pauses.
 */
import {
  Context,
  Deferred,
  Effect,
  FiberMap,
  FiberSet,
  type FileSystem,
  Option,
  Layer,
  Path,
  PubSub,
  Queue,
  Schema,
  type Scope,
  Stream,
  SubscriptionRef
} from "effect"
import type { Digest } from "effect/crypto"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Dht } from "./dht/Dht.ts"
import { Lpd } from "./lpd/Lpd.ts"
import * as Frame from "./protocol/Frame.ts"
import * as InfoHash from "./protocol/InfoHash.ts"
import * as Magnet from "./protocol/Magnet.ts"
import * as Metainfo from "./protocol/Metainfo.ts"
import * as Admission from "./peer/Admission.ts"
import * as Encryption from "./peer/Encryption.ts"
import { type Connection, Network } from "./peer/Network.ts"
import * as Utp from "./peer/Utp.ts"
import { keyOf } from "./peer/PeerEvent.ts"
import * as PeerIo from "./peer/PeerIo.ts"
import * as PeerSession from "./peer/PeerSession.ts"
import { Bans } from "./torrent/Bans.ts"
import { type Progress, type ProgressReader, readerOf } from "./torrent/Orchestrator.ts"
import * as MetadataPhase from "./torrent/MetadataPhase.ts"
import { PieceWorker } from "./torrent/PieceWorker.ts"
import type { DiskError } from "./torrent/DiskWriter.ts"
import { Storage } from "./torrent/Storage.ts"
import * as Discovery from "./torrent/Discovery.ts"
import * as FileStream from "./torrent/FileStream.ts"
import type { FilePriority } from "./torrent/Synchronizer.ts"
import * as Torrent from "./torrent/Torrent.ts"
import * as RateLimit from "./torrent/RateLimit.ts"
import * as PieceMemory from "./torrent/PieceMemory.ts"
import { type TorrentEvent, TorrentEvents } from "./torrent/TorrentEvents.ts"
import { type Settings, TorrentConfig } from "./torrent/TorrentConfig.ts"
import * as HttpTracker from "./tracker/HttpTracker.ts"
import * as Tracker from "./tracker/Tracker.ts"
import * as UdpTracker from "./tracker/UdpTracker.ts"

export class TorrentNotFound extends Schema.TaggedError<TorrentNotFound>()("TorrentNotFound", {
  infoHash: Schema.String
}) {
  override get message() {
    return `no torrent with info-hash ${this.infoHash}`
  }
}

export class SelectionError extends Schema.TaggedError<SelectionError>()("SelectionError", {
  index: Schema.Number,
  files: Schema.Number
}) {
  override get message() {
    return `no file ${this.index}: the torrent has ${this.files} files (indexes from 0)`
  }
}

/** An event of one of the manager's torrents. */
export interface ManagerEvent {
  readonly infoHash: InfoHash.InfoHash
  readonly event: TorrentEvent
}

/**
 * Events kept for each subscriber that has not taken them yet; beyond, the
 * oldest are dropped (a slow subscriber cannot grow the engine's memory).
 */
const eventBacklog = 4096

/** Bytes per second; 0 or absent = unlimited. */
export interface RateSettings {
  readonly upload?: number | undefined
  readonly download?: number | undefined
}

export interface TorrentHandle {
  readonly infoHash: InfoHash.InfoHash
  /** The torrent's name: from its metadata, else the magnet's `dn`, else its info-hash. */
  readonly name: Effect.Effect<string>
  /** The metadata: at once for a .torrent; for a magnet link, once fetched (fails if the torrent fails first). */
  readonly metadata: Effect.Effect<Metainfo.Metainfo, Torrent.TorrentError>
  /**
   * The metadata with every piece layer, as a .torrent file needs it: a v2
   * magnet link's layers come from peers after the metadata, while it runs
   * (fails if the torrent fails first).
   */
  readonly wholeMetadata: Effect.Effect<Metainfo.Metainfo, Torrent.TorrentError>
  /**
   * Downloads only these files (by index, as `info` lists them) from now on:
   * while it runs, and after a pause. Pieces they share with other files come
   * whole. A magnet link's selection is checked once its metadata is in.
   */
  readonly select: (files: ReadonlyArray<number>) => Effect.Effect<void, SelectionError>
  /** Each file's priority, one per file ("skip" deselects it; higher ones come first), while it runs and after. */
  readonly prioritize: (files: ReadonlyArray<FilePriority>) => Effect.Effect<void>
  /** Pieces in order instead of rarest first (to play a file as it comes), while it runs and after. */
  readonly setSequential: (on: boolean) => Effect.Effect<void>
  /** File `index` of the torrent (as `info` lists them). */
  readonly file: (index: number) => TorrentFile
  /** Changes this torrent's own rate limits while it runs. */
  readonly setLimits: (limits: RateSettings) => Effect.Effect<void>
  /** Published every second, and as pieces are verified, peers come and go and the state changes. */
  readonly progress: ProgressReader
  /** What happens to the torrent from the moment the stream runs (see TorrentEvents). */
  readonly events: Stream.Stream<TorrentEvent>
  /** Succeeds once the selected files are complete and verified; fails with the torrent's error. */
  readonly completed: Effect.Effect<void, Torrent.TorrentError>
  /** Succeeds when the torrent stops by itself (complete, or its seeding goal reached). */
  readonly finished: Effect.Effect<void, Torrent.TorrentError>
}

export interface TorrentFile {
  /**
   * The file's bytes from `start` (default 0) to `end` (excluded; default its
   * length), as they are verified: what is there comes at once, the rest is
   * waited for in order, and fetched first while the stream runs (ending or
   * interrupting it withdraws that). Fails if the torrent stops first or the
   * file is deselected. Waits for a magnet link's metadata, and for a paused
   * torrent to resume.
   */
  readonly stream: (range?: FileStream.Range) => Stream.Stream<Uint8Array, FileStream.FileStreamError>
}

export interface AddOptions extends Omit<Torrent.Options, "limits" | "bans"> {
  readonly maxUploadRate?: number | undefined
  readonly maxDownloadRate?: number | undefined
  /** This torrent's folder (default: the manager's `downloadDir`). */
  readonly downloadDir?: string | undefined
  /** Added without starting (state "stopped"): `resume` starts it. A daemon restoring a paused torrent dials no one. */
  readonly paused?: boolean | undefined
}

export interface RemoveOptions {
  /** Delete the torrent's files (and resume record) too, once it has stopped. */
  readonly deleteFiles?: boolean | undefined
}

interface Entry extends TorrentHandle {
  /** What `progress` reads: the current run's snapshots, with the bytes of earlier runs added. */
  readonly progressRef: SubscriptionRef.SubscriptionRef<Progress>
  /** Undefined until a magnet link's metadata is fetched. */
  meta: Metainfo.Metainfo | undefined
  readonly magnet: Magnet.Magnet | undefined
  readonly fetched: Deferred.Deferred<Metainfo.Metainfo>
  /** Done once the metadata has every piece layer. */
  readonly whole: Deferred.Deferred<Metainfo.Metainfo>
  /** Changed by `select`: the next run starts with it. */
  options: Torrent.Options
  /** The run going on, if any. */
  readonly running: SubscriptionRef.SubscriptionRef<Torrent.Torrent["Service"] | undefined>
  readonly downloadDir: string
  readonly done: Deferred.Deferred<void, Torrent.TorrentError>
}

export class TorrentManager extends Context.Service<TorrentManager, {
  /** The TCP port we accept peers on. */
  readonly port: number
  /**
   * Starts a torrent from its Metainfo, or from a magnet link (parsed or as
   * text); idempotent: adding a running torrent returns its handle.
   */
  readonly add: (
    torrent: Metainfo.Metainfo | Magnet.Magnet | string,
    options?: AddOptions
  ) => Effect.Effect<TorrentHandle, Magnet.MagnetError>
  /** `add`, and `remove` when the scope closes: the torrent lives as long as the caller's scope. */
  readonly addScoped: (
    torrent: Metainfo.Metainfo | Magnet.Magnet | string,
    options?: AddOptions
  ) => Effect.Effect<TorrentHandle, Magnet.MagnetError, Scope.Scope>
  readonly pause: (infoHash: InfoHash.InfoHash) => Effect.Effect<void, TorrentNotFound>
  readonly resume: (infoHash: InfoHash.InfoHash) => Effect.Effect<void, TorrentNotFound>
  /** Stops a torrent and forgets it (its files stay). */
  readonly remove: (
    infoHash: InfoHash.InfoHash,
    options?: RemoveOptions
  ) => Effect.Effect<void, TorrentNotFound | DiskError>
  readonly list: Effect.Effect<ReadonlyArray<TorrentHandle>>
  /** Changes the limits shared by all torrents while they run. */
  readonly setLimits: (limits: RateSettings) => Effect.Effect<void>
  /** What happens to every torrent, from the moment the stream runs. */
  readonly events: Stream.Stream<ManagerEvent>
  /** The same, subscribed at once: nothing published after this returns is missed while the scope is open. */
  readonly subscribe: Effect.Effect<Stream.Stream<ManagerEvent>, never, Scope.Scope>
}>()("effect-torrent/TorrentManager") {
  /** Needs TorrentConfig, FileSystem, Path, Digest, Storage, Network and Tracker; with an HttpClient, torrents use their web seeds. */
  static readonly layer = Layer.effect(TorrentManager, Effect.suspend(() => make))

  /** Everything on Node: TCP peers, HTTP/UDP trackers, files, SHA-1 and writes in this thread (`PieceWorker.layer`). */
  static readonly layerNode = (settings: Partial<TorrentConfig["Service"]> = {}) =>
    TorrentManager.layer.pipe(
      Layer.provide(Layer.mergeAll(
        TorrentConfig.layerWith(settings),
        Network.layerNode,
        Layer.mergeAll(PieceWorker.layerDigest, PieceWorker.layerMerkle, Storage.layerNode).pipe(
          Layer.provide(PieceWorker.layer)
        ),
        Tracker.Tracker.layer.pipe(Layer.provide(Layer.mergeAll(HttpTracker.layerNode, UdpTracker.layerNode))),
        NodeHttpClient.layerNodeHttp
      )),
      Layer.provideMerge(NodeServices.layer)
    )
}

/** Before the torrent's first progress report (without metadata: fetching it, from `peers` peers). */
const starting = (meta: Metainfo.Metainfo | undefined, peers = 0): Progress => ({
  state: meta === undefined ? "fetching metadata" : "checking",
  done: 0,
  wanted: meta?.length ?? 0,
  verified: 0,
  downloaded: 0,
  uploaded: 0,
  downloadRate: 0,
  uploadRate: 0,
  peers,
  eta: Infinity,
  trackers: "none",
  files: meta?.files.map(() => 0) ?? [],
  uploadingTo: 0,
  downloadingFrom: 0,
  hashFailures: 0
})

/**
 * The DHT node of every torrent: on the UDP port of our TCP port when it is
 * free (else any), its routing table kept in the download folder. Without
 * one (it could not start) torrents still have their other peer sources.
 */
const startDht = (config: Settings, port: number) =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const start = (udpPort: number) =>
      Layer.build(Dht.layer({
        port: udpPort,
        // Both families on every address, or the one family of the address peers are taken on.
        ...(config.listenHost === undefined
          ? {}
          : config.listenHost.includes(":")
          ? { host: undefined, host6: config.listenHost }
          : { host: config.listenHost, host6: undefined }),
        ...(config.dhtBootstrap === undefined ? {} : { bootstrap: config.dhtBootstrap }),
        requireSecureIds: config.dhtRequireSecureIds,
        stateFile: path.join(config.downloadDir, ".effect-torrent", "dht.state")
      })).pipe(Effect.map((context) => Context.get(context, Dht)))
    return yield* start(port).pipe(
      Effect.catch(() => start(0)),
      Effect.catch((error) => Effect.as(Effect.logWarning(`no DHT: ${error.message}`), undefined))
    )
  })

/** Local service discovery (BEP 14) for every torrent; without it (it could not start) torrents have their other sources. */
const startLpd = (config: Settings) =>
  Layer.build(Lpd.layer(config.localDiscoveryGroup)).pipe(
    Effect.map((context) => Context.get(context, Lpd)),
    Effect.catch((error) => Effect.as(Effect.logWarning(`no local peer discovery: ${error.message}`), undefined))
  )

const applyLimits = (up: RateLimit.Bucket, down: RateLimit.Bucket) => (limits: RateSettings) =>
  Effect.sync(() => {
    if (limits.upload !== undefined) up.setRate(limits.upload)
    if (limits.download !== undefined) down.setRate(limits.download)
  })

export const make = Effect.gen(function*() {
  const config = yield* TorrentConfig
  // Peers over TCP and uTP by the policy (the DHT shares uTP's UDP port), and
  // every peer connection, both ways, speaks message stream encryption by the policy (torrents dial through `network`).
  const transports = Utp.make(yield* Network, config.utp)
  const { network, encryption } = Encryption.make(transports, {
    policy: config.encryption,
    stageTimeoutMillis: config.handshakeTimeoutMillis
  })
  const context = Context.add(
    yield* Effect.context<
      TorrentConfig | FileSystem.FileSystem | Path.Path | Digest.Digest | Storage | Network | Tracker.Tracker
    >(),
    Network,
    network
  )
  const storage = yield* Storage
  // Pieces being downloaded, bounded over all torrents.
  const memory = PieceMemory.make(config.maxPieceMemoryBytes)
  const globalUpload = new RateLimit.Bucket(config.maxUploadRate)
  const globalDownload = new RateLimit.Bucket(config.maxDownloadRate)
  const fibers = yield* FiberMap.make<InfoHash.InfoHash, void, never>()
  const hub = yield* PubSub.sliding<ManagerEvent>(eventBacklog)
  const publisher = (infoHash: InfoHash.InfoHash) =>
    TorrentEvents.of({ publish: (event) => PubSub.publish(hub, { infoHash, event }).pipe(Effect.asVoid) })
  /** Per torrent, the fiber turning its progress into StateChanged events. */
  const watchers = yield* FiberMap.make<InfoHash.InfoHash, void, never>()
  const entries = new Map<InfoHash.InfoHash, Entry>()
  /** Running torrents' hand-over for incoming connections, by info-hash. */
  const accepting = new Map<InfoHash.InfoHash, PeerSession.Accept>()

  // Incoming connections: read the handshake, then hand over to the torrent it names.
  const incoming = yield* Queue.unbounded<Connection>()
  const port = yield* network.listen(
    { port: config.port, host: config.listenHost, strict: config.strictPort },
    (c) => Queue.offerUnsafe(incoming, c)
  )
  const admission = Admission.make(config)
  const dht = config.dht ? yield* Effect.provideService(startDht(config, port), Network, transports) : undefined
  const lpd = config.localDiscovery ? yield* startLpd(config) : undefined
  const route = (connection: Connection) =>
    Effect.gen(function*() {
      const maxFrame = Math.max(
        Frame.maxFrameFor(1),
        ...[...entries.values()].map((e) => PeerSession.maxFrame(e.meta?.pieceCount))
      )
      const io = yield* PeerIo.make(connection.socket, { maxFrame })
      // Refused: the scope closes the socket at once.
      if (!admission.admitIncoming(connection.host)) return
      yield* Effect.addFinalizer(() => Effect.sync(() => admission.release(connection.host)))
      const peer = keyOf(connection)
      const first = yield* PeerSession.readHandshake(
        io,
        config.handshakeTimeoutMillis,
        (reason, detail) => new PeerSession.PeerError({ peer, reason, detail })
      )
      const handshake = first[0]!
      const accept = handshake._tag === "Handshake" ? accepting.get(InfoHash.fromBytes(handshake.infoHash)) : undefined
      if (accept !== undefined) yield* accept(peer, io, first)
    }).pipe(Effect.scoped, Effect.ignore)
  const connections = yield* FiberSet.make()
  yield* Queue.take(incoming).pipe(
    Effect.flatMap((connection) => FiberSet.run(connections, route(connection))),
    Effect.forever,
    Effect.forkScoped
  )

  /**
   * Incoming connections for the torrent go to `accept` while the scope is
   * open, by any of its hashes (a hybrid's v2 one too: v2-only peers name it so).
   */
  const accepts = (hashes: ReadonlyArray<InfoHash.InfoHash>, accept: PeerSession.Accept) =>
    Effect.forEach(hashes, (infoHash) =>
      Effect.andThen(
        Effect.sync(() => accepting.set(infoHash, accept)),
        Effect.andThen(
          Effect.addFinalizer(() => Effect.sync(() => accepting.delete(infoHash))),
          // Encrypted peers name the torrent by a hash of its info-hash: it must be known to be served.
          encryption.serve(InfoHash.toBytes(infoHash))
        )
      ), { discard: true })

  /** Peer sources besides trackers, under each hash the torrent is known by: the DHT and local discovery. */
  const sourcesOf = (hashes: ReadonlyArray<InfoHash.InfoHash>) => [
    ...(dht === undefined ? [] : hashes.map((hash) => Discovery.fromDht(dht, InfoHash.toBytes(hash), port))),
    ...(lpd === undefined ? [] : [lpd.peers(hashes[0]!, port)])
  ]

  /** The metadata: known, or fetched from peers (then kept). */
  const metadataOf = (entry: Entry) =>
    Effect.gen(function*() {
      if (entry.meta !== undefined) return entry.meta
      const meta: Metainfo.Metainfo = yield* MetadataPhase.run(entry.magnet!, {
        peers: entry.options.peers,
        sources: entry.options.sources,
        bans: entry.options.bans!,
        onStart: (running) =>
          Effect.andThen(
            accepts(InfoHash.swarmHashes(entry.magnet!), running.accept),
            SubscriptionRef.changes(running.peers).pipe(
              Stream.runForEach((peers) => SubscriptionRef.set(entry.progressRef, starting(undefined, peers))),
              Effect.forkScoped
            )
          )
      })
      // The magnet's files (BEP 53 `so`), unless the caller chose; its web seeds beside the torrent's.
      const selected = Magnet.selectedFiles(entry.magnet!, meta.files.length)
      if (selected !== undefined && entry.options.selected === undefined && entry.options.priorities === undefined) {
        entry.options = { ...entry.options, selected }
      }
      // A hybrid named by one hash in the link is found under both from now on.
      entry.options = { ...entry.options, sources: sourcesOf(InfoHash.swarmHashes(meta)) }
      entry.meta = entry.magnet!.webSeeds.length === 0
        ? meta
        : { ...meta, urlList: [...new Set([...meta.urlList, ...entry.magnet!.webSeeds])] }
      yield* Deferred.succeed(entry.fetched, entry.meta)
      return entry.meta
    })

  /**
   * One run of a torrent. The entry's progress is the run's, with the bytes
   * of earlier runs added, and "complete" shown as "seeding" while the
   * torrent stays to seed; when the run ends it keeps the run's last snapshot
   * ("complete" or "stopped"), taken after its sessions closed.
   */
  const start = (entry: Entry) => {
    let running: ProgressReader | undefined
    let earlier = { uploaded: 0, downloaded: 0 }
    const shown = (p: Progress): Progress => ({
      ...p,
      state: p.state === "complete" && entry.options.seed === true ? "seeding" : p.state,
      uploaded: earlier.uploaded + p.uploaded,
      downloaded: earlier.downloaded + p.downloaded
    })
    const last = Effect.suspend(() =>
      running === undefined
        ? SubscriptionRef.update(entry.progressRef, (p) => ({ ...p, state: "stopped" as const }))
        : Effect.flatMap(running.get, (p) => SubscriptionRef.set(entry.progressRef, { ...shown(p), state: p.state }))
    )
    return FiberMap.run(
      fibers,
      entry.infoHash,
      SubscriptionRef.get(entry.progressRef).pipe(
        Effect.tap((before) =>
          Effect.sync(() => (earlier = { uploaded: before.uploaded, downloaded: before.downloaded }))
        ),
        Effect.andThen(metadataOf(entry)),
        Effect.flatMap((meta) =>
          Effect.gen(function*() {
            const torrent = yield* Torrent.Torrent
            running = torrent.progress
            yield* SubscriptionRef.set(entry.running, torrent)
            yield* Effect.addFinalizer(() => SubscriptionRef.set(entry.running, undefined))
            yield* accepts(InfoHash.swarmHashes(meta), torrent.accept)
            // Piece layers learned from peers are kept: the next run starts with them, and they are saved.
            yield* torrent.layersIn.pipe(
              Effect.flatMap((whole) =>
                Effect.andThen(Effect.sync(() => (entry.meta = whole)), Deferred.succeed(entry.whole, whole))
              ),
              Effect.forkScoped
            )
            yield* torrent.progress.changes.pipe(
              Stream.runForEach((p) => SubscriptionRef.set(entry.progressRef, shown(p))),
              Effect.forkScoped
            )
            yield* torrent.run
          }).pipe(
            // Incoming connections stop coming first; then the torrent's layer closes (its sessions, then its files).
            Effect.scoped,
            Effect.provide(Torrent.Torrent.layer(meta, entry.options)),
            Effect.provideService(PieceMemory.PieceMemory, memory),
            // Sessions tell DHT peers where our node is (never in private torrents, BEP 27).
            (run) => dht === undefined || meta.private ? run : Effect.provideService(run, Dht, dht)
          )
        ),
        // The final state before `done`: whoever awaits the outcome then sees it.
        Effect.ensuring(last),
        Effect.matchCauseEffect({
          onSuccess: () => Deferred.succeed(entry.done, undefined),
          onFailure: (cause) => Deferred.failCause(entry.done, cause)
        }),
        // Torrents announce (and tell peers) the port we really listen on.
        Effect.provideService(TorrentConfig, { ...config, port, downloadDir: entry.downloadDir }),
        Effect.provideService(Admission.Admission, admission),
        Effect.provideService(TorrentEvents, publisher(entry.infoHash)),
        Effect.provideContext(context),
        Effect.asVoid
      ),
      { onlyIfMissing: true }
    )
  }

  const find = (infoHash: InfoHash.InfoHash) => {
    const entry = entries.get(infoHash)
    return entry === undefined ? Effect.fail(new TorrentNotFound({ infoHash })) : Effect.succeed(entry)
  }

  const add = Effect.fn("TorrentManager.add")(function*(
    torrent: Metainfo.Metainfo | Magnet.Magnet | string,
    options: AddOptions = {}
  ) {
    const source = typeof torrent === "string" ? yield* Effect.fromResult(Magnet.parse(torrent)) : torrent
    const meta = "info" in source ? source : undefined
    const magnet = "info" in source ? undefined : source
    const infoHash = source.infoHash
    const existing = entries.get(infoHash)
    if (existing !== undefined) return existing as TorrentHandle
    const done = yield* Deferred.make<void, Torrent.TorrentError>()
    const fetched = yield* Deferred.make<Metainfo.Metainfo>()
    if (meta !== undefined) yield* Deferred.succeed(fetched, meta)
    const whole = yield* Deferred.make<Metainfo.Metainfo>()
    if (meta !== undefined && Metainfo.missingPieceLayers(meta).length === 0) yield* Deferred.succeed(whole, meta)
    const progressRef = yield* SubscriptionRef.make<Progress>(
      options.paused === true ? { ...starting(meta), state: "stopped" } : starting(meta)
    )
    // Completion: the download finished (complete, perhaps seeding) or the torrent failed.
    const completed = Effect.raceFirst(
      SubscriptionRef.changes(progressRef).pipe(
        Stream.filter((p) => p.state === "complete" || p.state === "seeding"),
        Stream.take(1),
        Stream.runDrain
      ),
      Deferred.await(done)
    )
    const running = yield* SubscriptionRef.make<Torrent.Torrent["Service"] | undefined>(undefined)
    const upload = new RateLimit.Bucket(options.maxUploadRate ?? 0)
    const download = new RateLimit.Bucket(options.maxDownloadRate ?? 0)
    /** What `deferred` gets, or the torrent's error, or a TorrentError once it stopped first. */
    const untilStopped = (deferred: Deferred.Deferred<Metainfo.Metainfo>, detail: string) =>
      Effect.raceFirst(
        Deferred.await(deferred),
        Deferred.await(done).pipe(Effect.andThen(Effect.fail(
          new Torrent.TorrentError({ name: magnet?.name ?? infoHash, detail })
        )))
      )
    const entry: Entry = {
      infoHash,
      meta,
      magnet,
      fetched,
      whole,
      name: Effect.sync(() => entry.meta?.name ?? magnet?.name ?? infoHash),
      metadata: untilStopped(fetched, "stopped before its metadata was fetched"),
      wholeMetadata: untilStopped(whole, "stopped before its piece layers were fetched"),
      downloadDir: options.downloadDir ?? config.downloadDir,
      options: {
        ...options,
        // The magnet's `x.pe` peers are dialled for the data too.
        peers: [...(options.peers ?? []), ...(magnet === undefined ? [] : Magnet.peerAddresses(magnet))],
        bans: new Bans(),
        sources: sourcesOf(InfoHash.swarmHashes(source)),
        limits: { upload: [globalUpload, upload], download: [globalDownload, download] }
      },
      done,
      progressRef,
      progress: readerOf(progressRef),
      events: Stream.fromPubSub(hub).pipe(
        Stream.filter((e) => e.infoHash === infoHash),
        Stream.map((e) => e.event)
      ),
      completed,
      finished: Deferred.await(done),
      running,
      select: (files) =>
        Effect.gen(function*() {
          const count = entry.meta?.files.length
          const wrong = count === undefined ? undefined : files.find((i) => !Number.isInteger(i) || i < 0 || i >= count)
          if (wrong !== undefined) return yield* new SelectionError({ index: wrong, files: count! })
          entry.options = { ...entry.options, selected: [...files], priorities: undefined }
          const torrent = yield* SubscriptionRef.get(running)
          if (torrent !== undefined) yield* torrent.select(files)
        }),
      prioritize: (files) =>
        Effect.gen(function*() {
          entry.options = { ...entry.options, selected: undefined, priorities: [...files] }
          const torrent = yield* SubscriptionRef.get(running)
          if (torrent !== undefined) yield* torrent.prioritize(files)
        }),
      setSequential: (on) =>
        Effect.gen(function*() {
          entry.options = { ...entry.options, sequential: on }
          const torrent = yield* SubscriptionRef.get(running)
          if (torrent !== undefined) yield* torrent.setSequential(on)
        }),
      file: (index) => ({
        stream: (range) =>
          Stream.unwrap(
            Effect.raceFirst(
              SubscriptionRef.changes(running).pipe(
                Stream.filter((torrent) => torrent !== undefined),
                Stream.runHead,
                Effect.map((torrent) => Option.getOrThrow(torrent).stream(index, range))
              ),
              Effect.andThen(
                Deferred.await(done).pipe(Effect.exit),
                Effect.fail(
                  new FileStream.FileStreamError({ file: index, problem: "Stopped", detail: "the torrent stopped" })
                )
              )
            )
          )
      }),
      setLimits: applyLimits(upload, download)
    }
    entries.set(infoHash, entry)
    const events = publisher(infoHash)
    yield* FiberMap.run(
      watchers,
      infoHash,
      SubscriptionRef.changes(progressRef).pipe(
        Stream.map((p) => p.state),
        Stream.changes,
        Stream.runForEach((state) => events.publish({ _tag: "StateChanged", state }))
      )
    )
    if (options.paused !== true) yield* start(entry)
    return entry as TorrentHandle
  })

  /** Stops the torrent (its files flushed and resume data saved), forgets it, and with `deleteFiles` deletes its data. */
  const remove = (infoHash: InfoHash.InfoHash, options: RemoveOptions = {}) =>
    Effect.flatMap(find(infoHash), (entry) =>
      FiberMap.remove(fibers, infoHash).pipe(
        Effect.andThen(FiberMap.remove(watchers, infoHash)),
        Effect.andThen(Effect.sync(() => entries.delete(infoHash))),
        Effect.andThen(
          options.deleteFiles === true && entry.meta !== undefined
            ? storage.delete(entry.meta, entry.downloadDir)
            : Effect.void
        )
      ))

  return TorrentManager.of({
    port,
    add,
    pause: (infoHash) => Effect.flatMap(find(infoHash), () => FiberMap.remove(fibers, infoHash)),
    resume: (infoHash) => Effect.flatMap(find(infoHash), (entry) => Effect.asVoid(start(entry))),
    addScoped: (torrent, options) =>
      Effect.acquireRelease(add(torrent, options), (handle) => Effect.ignore(remove(handle.infoHash))),
    remove,
    list: Effect.sync(() => [...entries.values()]),
    setLimits: applyLimits(globalUpload, globalDownload),
    events: Stream.fromPubSub(hub),
    subscribe: Effect.map(PubSub.subscribe(hub), Stream.fromSubscription)
  })
})
