/**
 * Torrent: one torrent from start to stop, as a service.
 *
 * Its layer builds the torrent's core (Synchronizer, DiskWriter,
 * Orchestrator, Monitor) in the layer's scope; `run` checks what is already
 * on disk, then runs peer discovery (trackers, plus any addresses given) into
 * the Monitor until the download is done (or, seeding, its goal reached).
 * When `run` ends every session ends, resume data is saved, the files are
 * flushed and the trackers hear `stopped`; closing the layer's scope closes
 * the files.
 */
import {
  Cause,
  Context,
  Deferred,
  Effect,
  Layer,
  Option,
  Schedule,
  type FileSystem,
  type Path,
  Schema,
  Semaphore,
  Stream
} from "effect"
import type { Digest } from "effect/crypto"
import * as HttpClient from "effect/http/HttpClient"
import * as InfoHash from "../protocol/InfoHash.ts"
import type * as Metainfo from "../protocol/Metainfo.ts"
import type { Address } from "../peer/Network.ts"
import type * as PeerSession from "../peer/PeerSession.ts"
import * as Tracker from "../tracker/Tracker.ts"
import { DiskError, DiskWriter } from "./DiskWriter.ts"
import * as Discovery from "./Discovery.ts"
import * as FileStream from "./FileStream.ts"
import { Monitor } from "./Monitor.ts"
import type { Bans } from "./Bans.ts"
import { Orchestrator, type ProgressReader } from "./Orchestrator.ts"
import { PeerExchange } from "./PeerExchange.ts"
import * as PeerHost from "./PeerHost.ts"
import type * as RateLimit from "./RateLimit.ts"
import { RateLimits } from "./RateLimit.ts"
import * as Resume from "./Resume.ts"
import { Storage } from "./Storage.ts"
import { type FilePriority, Synchronizer } from "./Synchronizer.ts"
import { TorrentConfig } from "./TorrentConfig.ts"
import { TorrentEvents } from "./TorrentEvents.ts"
import * as WebSeed from "./WebSeed.ts"

export class TorrentError extends Schema.TaggedError<TorrentError>()("TorrentError", {
  name: Schema.String,
  detail: Schema.String,
  /** The disk error that stopped the torrent, if one did (e.g. reason "NoSpace" or "UnsafePath"). */
  disk: Schema.optional(DiskError)
}) {
  override get message() {
    return `${this.name}: ${this.detail}`
  }
}

export interface Options {
  /** Which files to download, by index (default: all). */
  readonly selected?: ReadonlyArray<number> | undefined
  /** Peers to dial besides those the trackers return. */
  readonly peers?: ReadonlyArray<Address> | undefined
  /** Peer sources besides trackers and PEX (the DHT, local discovery): never used for private torrents. */
  readonly sources?: ReadonlyArray<Stream.Stream<Address>> | undefined
  /** Pieces in order instead of rarest first (to play a file as it comes). */
  readonly sequential?: boolean | undefined
  /** Each file's priority ("skip" deselects it); overrides `selected`. */
  readonly priorities?: ReadonlyArray<FilePriority> | undefined
  /** Keep running after completion (seeding)... */
  readonly seed?: boolean | undefined
  /** ...until uploaded / size reaches this ratio, or `seedMillis` pass (whichever first; default: until interrupted). */
  readonly seedRatio?: number | undefined
  readonly seedMillis?: number | undefined
  /** Peers banned for corrupt data, kept by the manager across pause and resume. */
  readonly bans?: Bans | undefined
  /** Rate limits to apply (the manager passes its global buckets and this torrent's). */
  readonly limits?: RateLimit.Limits | undefined
}

export class Torrent extends Context.Service<Torrent, {
  readonly meta: Metainfo.Metainfo
  /** The metadata once every piece layer is in: a v2 magnet link's come from peers after it. */
  readonly layersIn: Effect.Effect<Metainfo.Metainfo>
  readonly progress: ProgressReader
  /** Takes over an incoming connection whose handshake named this torrent; refused until the data on disk is checked. */
  readonly accept: PeerSession.Accept
  /** Downloads only these files (by index) from now on; pieces they share with others come whole. */
  readonly select: (files: ReadonlyArray<number>) => Effect.Effect<void>
  /** Sets each file's priority ("skip" deselects it); higher ones come first. */
  readonly prioritize: (files: ReadonlyArray<FilePriority>) => Effect.Effect<void>
  /** Pieces in order instead of rarest first. */
  readonly setSequential: (on: boolean) => Effect.Effect<void>
  /** A file's bytes as they are verified, its missing pieces fetched first while it is read (see FileStream). */
  readonly stream: (file: number, range?: FileStream.Range) => Stream.Stream<Uint8Array, FileStream.FileStreamError>
  /**
   * Downloads (and with `seed`, keeps serving). Succeeds when the selected
   * files are complete and verified, or with `seed` when its goal is reached;
   * without a goal, runs until interrupted.
   */
  readonly run: Effect.Effect<void, TorrentError>
}>()("effect-torrent/torrent/Torrent") {
  /**
   * Needs TorrentConfig, Storage, Tracker, TorrentEvents, FileSystem, Path,
   * Digest, Network and Admission; the DHT node if one runs (public torrents).
   */
  static readonly layer = (meta: Metainfo.Metainfo, options: Options = {}) =>
    Layer.effect(Torrent, Effect.suspend(() => make(meta, options)))
}

const resumeEveryMillis = 10_000

/** One flag per file: whether it is among `selected`. */
const wantedOf = (meta: Metainfo.Metainfo, selected: ReadonlyArray<number>) => {
  const chosen = new Set(selected)
  return meta.files.map((_, i) => chosen.has(i))
}

const priorityOf = (wanted: boolean): FilePriority => (wanted ? "normal" : "skip")

/** The per-torrent services, built in the torrent's scope; `tiers` are its trackers (for progress). */
export const layer = (
  meta: Metainfo.Metainfo,
  options: Options,
  downloadDir: string,
  maxOpenFiles?: number,
  tiers?: Tracker.Tiers
) => {
  const wanted = options.selected === undefined ? undefined : wantedOf(meta, options.selected)
  const base = Layer.mergeAll(
    Synchronizer.layer(meta, wanted === undefined ? undefined : { wanted }),
    Layer.effect(
      DiskWriter,
      Effect.flatMap(Effect.service(Storage), (storage) =>
        storage.open(meta, {
          downloadDir,
          ...(wanted === undefined ? {} : { wanted }),
          ...(maxOpenFiles === undefined ? {} : { maxOpenFiles })
        }))
    ),
    RateLimits.layer(options.limits ?? { upload: [], download: [] }),
    PeerExchange.layer(!meta.private)
  )
  const orchestrator = Orchestrator.layer(options.bans, tiers === undefined ? undefined : () => tiers.status).pipe(
    Layer.provideMerge(base)
  )
  return Monitor.layer.pipe(Layer.provideMerge(PeerHost.layer.pipe(Layer.provideMerge(orchestrator))))
}

/** One run of the torrent, in a layer of its own: `Torrent.run` of `Torrent.layer`. */
export const run = (meta: Metainfo.Metainfo, options: Options = {}) =>
  Effect.flatMap(Effect.service(Torrent), (torrent) => torrent.run).pipe(Effect.provide(Torrent.layer(meta, options)))

const make = Effect.fnUntraced(function*(meta: Metainfo.Metainfo, options: Options) {
  const config = yield* TorrentConfig
  const tiers = yield* Tracker.makeTiers(meta.announce)
  const events = yield* TorrentEvents
  tiers.onAnnounce = (outcome) =>
    events.publish(
      outcome._tag === "Answered"
        ? { _tag: "TrackerAnnounced", peers: outcome.peers }
        : { _tag: "TrackerFailed", error: outcome.error }
    )
  // Built in the layer's scope, so it closes after `run`'s finalizers (flush, save) ran.
  const context = yield* Layer.build(layer(meta, options, config.downloadDir, config.maxOpenFiles, tiers))
  // `run` reads the data on disk, hashes it and talks to trackers with the services the layer was built with.
  const outer = yield* Effect.context<
    TorrentConfig | Tracker.Tracker | FileSystem.FileSystem | Path.Path | Digest.Digest | TorrentEvents
  >()
  const monitor = Context.get(context, Monitor)
  const orchestrator = Context.get(context, Orchestrator)
  const disk = Context.get(context, DiskWriter)
  if (options.sequential === true) yield* orchestrator.setSequential(true)
  if (options.priorities !== undefined) yield* orchestrator.prioritize(options.priorities)
  const checked = yield* Deferred.make<void>()
  return Torrent.of({
    meta,
    layersIn: Deferred.await(orchestrator.layersIn),
    progress: orchestrator.progress,
    accept: (peer, io, first) =>
      Effect.flatMap(
        Deferred.isDone(checked),
        (ready) => ready ? monitor.accept(peer, io, first) : Effect.succeed(false)
      ),
    select: (files) => orchestrator.prioritize(wantedOf(meta, files).map(priorityOf)),
    prioritize: orchestrator.prioritize,
    setSequential: orchestrator.setSequential,
    stream: (file, range) => FileStream.stream(meta, { orchestrator, disk }, file, range),
    run: body(meta, options, tiers, checked).pipe(
      Effect.provideContext(Context.merge(outer, context)),
      Effect.scoped,
      Effect.annotateLogs({ torrent: meta.name, infoHash: meta.infoHash })
    )
  })
})

const body = Effect.fnUntraced(function*(
  meta: Metainfo.Metainfo,
  options: Options,
  tiers: Tracker.Tiers,
  checked: Deferred.Deferred<void>
) {
  const config = yield* TorrentConfig
  const sync = yield* Synchronizer
  const disk = yield* DiskWriter
  const orchestrator = yield* Orchestrator
  const monitor = yield* Monitor
  const exchange = yield* PeerExchange
  const fail = (disk: DiskError) => new TorrentError({ name: meta.name, detail: disk.message, disk })

  // Saves come from a timer, completion and shutdown: one at a time.
  const saveLock = yield* Semaphore.make(1)
  const saveResume = Resume.save(sync, config.downloadDir).pipe(saveLock.withPermits(1))

  const collision = Resume.stateCollision(meta)
  if (collision !== undefined) {
    return yield* new TorrentError({
      name: meta.name,
      detail:
        `refusing to download: its files would be written into ${Resume.stateFolder}, the folder of the client's own state`
    })
  }
  yield* disk.prepare.pipe(Effect.mapError(fail))
  const found = yield* Resume.check(sync, config.downloadDir).pipe(Effect.mapError(fail))
  if (found.pieces > 0) {
    yield* Effect.logInfo(`${found.pieces} of ${meta.pieceCount} pieces already on disk (${found.hashed} hashed)`)
  }
  yield* Deferred.succeed(checked, undefined)

  if (sync.isComplete()) {
    yield* Deferred.succeed(orchestrator.completed, undefined)
  }

  const params = orchestrator.progress.get.pipe(
    Effect.map((p): Tracker.AnnounceParams => ({
      infoHash: InfoHash.toBytes(meta.infoHash),
      peerId: config.peerId,
      port: config.port,
      uploaded: p.uploaded,
      downloaded: p.downloaded,
      // From the Synchronizer, not the snapshot: right from the first announce after the check.
      left: meta.length - sync.completedBytes(),
      numWant: 50
    }))
  )
  // Finalizers run in reverse: the fibers forked below stop first (with
  // them every session), then the data is flushed and resume state saved,
  // then the trackers hear that we left.
  const swarms = yield* Discovery.swarms(meta, tiers, meta.announce, params)
  yield* Effect.addFinalizer(() => Discovery.announceStopped(swarms))
  // A failed sync is told, not dropped: the CLI stops a torrent as soon as its
  // completion is told, which may be while `run` below still syncs it.
  yield* Effect.addFinalizer(() =>
    disk.flush.pipe(
      Effect.catch((error) => Effect.logWarning(error.message)),
      Effect.andThen(saveResume)
    )
  )

  // These run until the scope ends; should one fail (a defect, e.g. the
  // PieceWorker's thread died), the download fails with it instead of waiting.
  const failsDownload = Effect.tapCause((cause: Cause.Cause<unknown>) =>
    Cause.hasInterruptsOnly(cause)
      ? Effect.void
      : Deferred.failCause(orchestrator.completed, Cause.die(Cause.squash(cause)))
  )
  yield* Effect.forkScoped(failsDownload(orchestrator.run))
  yield* Effect.forkScoped(failsDownload(monitor.run))
  yield* Discovery.peers({
    given: options.peers ?? [],
    swarms,
    private: meta.private,
    public: [exchange.discovered, ...(options.sources ?? [])]
  }).pipe(
    Stream.runForEachArray((addresses) => monitor.add(addresses)),
    Effect.forkScoped
  )
  // Web seeds (BEP 19) when an HTTP client is at hand (TorrentManager.layerNode gives one).
  const http = yield* Effect.serviceOption(HttpClient.HttpClient)
  if (Option.isSome(http) && meta.urlList.length > 0) {
    yield* WebSeed.runAll(meta.urlList).pipe(
      Effect.provideService(HttpClient.HttpClient, http.value),
      Effect.forkScoped
    )
  }
  yield* Effect.forkScoped(
    Effect.repeat(saveResume, { schedule: Schedule.spaced(resumeEveryMillis) })
  )

  const wasComplete = sync.isComplete()
  yield* Deferred.await(orchestrator.completed).pipe(Effect.mapError(fail))
  // Synced once complete (after the completion is told: see the Orchestrator's
  // `completeIfDone`), and before the resume state is saved and the trackers told.
  yield* disk.flush.pipe(Effect.mapError(fail))
  yield* saveResume
  if (!wasComplete) yield* Discovery.announceCompleted(swarms)
  if (options.seed !== true) return
  const ratio = options.seedRatio
  const ratioReached = ratio === undefined ? Effect.never : orchestrator.progress.changes.pipe(
    Stream.filter((p) => p.uploaded >= ratio * meta.length),
    Stream.take(1),
    Stream.runDrain
  )
  const timeUp = options.seedMillis === undefined ? Effect.never : Effect.sleep(options.seedMillis)
  yield* Effect.raceFirst(ratioReached, timeUp)
})
