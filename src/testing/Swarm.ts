/**
 * Swarm: whole TorrentManagers downloading from each other in one process,
 * under TestClock, over a MemoryNetwork, with their pieces in memory.
 *
 * Every run of the same options is the same run: peer ids come from a
 * counter, each manager's `Random` from a seed, SHA-1 is computed in place
 * (no worker thread whose replies could arrive in any order), no wall clock
 * is read, and no DHT, local discovery or tracker is used (each peer is
 * given the addresses of those before it). So the event log is identical on
 * every run, and a download of minutes takes the CPU time it needs.
 */
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import {
  Clock,
  Context,
  Deferred,
  Effect,
  FileSystem,
  Layer,
  Path,
  Random,
  Scheduler,
  Schema,
  type Scope,
  Stream
} from "effect"
import * as TestClock from "effect/testing/TestClock"
import type * as MemorySocket from "../peer/MemorySocket.ts"
import * as MemoryNetwork from "../peer/MemoryNetwork.ts"
import type * as MemoryUdp from "../peer/MemoryUdp.ts"
import type { ListenError } from "../peer/Network.ts"
import * as Create from "../protocol/Create.ts"
import type * as Magnet from "../protocol/Magnet.ts"
import type * as Metainfo from "../protocol/Metainfo.ts"
import { Storage } from "../torrent/Storage.ts"
import type { TorrentError } from "../torrent/Torrent.ts"
import { type Settings, TorrentConfig } from "../torrent/TorrentConfig.ts"
import type { TorrentEvent } from "../torrent/TorrentEvents.ts"
import { Tracker, TrackerError, UnsupportedUrl } from "../tracker/Tracker.ts"
import { type TorrentHandle, TorrentManager } from "../TorrentManager.ts"

export interface Torrent {
  readonly meta: Metainfo.Metainfo
  /** The torrent's bytes. */
  readonly data: Uint8Array
}

/** A single-file torrent of `size` bytes that depend only on `seed`. */
export const torrent = (options: {
  readonly size: number
  readonly pieceLength?: number | undefined
  readonly name?: string | undefined
  readonly seed?: number | undefined
}): Effect.Effect<Torrent, Create.CreateError> => {
  const data = new Uint8Array(options.size)
  let x = (options.seed ?? 1) >>> 0
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    data[i] = x >>> 24
  }
  const pieceLength = options.pieceLength ?? Create.autoPieceLength(options.size)
  const hasher = new Create.PieceHasher(pieceLength, options.size)
  hasher.update(data)
  return Effect.fromResult(Create.encode({
    name: options.name ?? "swarm.bin",
    multiFile: false,
    files: [{ path: [], length: options.size }],
    pieceLength,
    pieces: hasher.finish(),
    trackers: [],
    webSeeds: [],
    private: false,
    createdBy: Create.createdBy,
    creationDate: 0
  })).pipe(Effect.map(({ meta }) => ({ meta, data })))
}

/** Peer `n`'s id: Azureus style, the counter where the random part would be. */
export const peerId = (n: number): Uint8Array => new TextEncoder().encode(`-ET0100-${String(n).padStart(12, "0")}`)

/** The address of peer `n` (from 0) on the swarm's network: 10.0.0.1, 10.0.0.2, … */
export const hostOf = (n: number): string => `10.${((n + 1) >> 16) & 255}.${((n + 1) >> 8) & 255}.${(n + 1) & 255}`

/** A file system that holds nothing and takes every write: resume data is saved nowhere, found nowhere. */
const noFiles = FileSystem.layerNoop({
  makeDirectory: () => Effect.void,
  writeFile: () => Effect.void,
  rename: () => Effect.void
})

const noTrackers = Layer.succeed(
  Tracker,
  Tracker.of({
    announce: (url) =>
      Effect.fail(new TrackerError({ url, reason: new UnsupportedUrl({ problem: "a swarm has no trackers" }) })),
    scrape: (url) =>
      Effect.fail(new TrackerError({ url, reason: new UnsupportedUrl({ problem: "a swarm has no trackers" }) }))
  })
)

/**
 * The fibers' scheduler, counting the tasks waiting to run: `idle` waits
 * until none is left, i.e. every fiber waits for time to pass (or for
 * nothing). Moving the clock only then makes a run independent of how fast
 * the machine is.
 */
const makeIdleScheduler = (parent: Scheduler.Scheduler) => {
  let pending = 0
  let onIdle: (() => void) | undefined
  const scheduler: Scheduler.Scheduler = {
    executionMode: parent.executionMode,
    shouldYield: (fiber) => parent.shouldYield(fiber),
    makeDispatcher() {
      const dispatcher = parent.makeDispatcher()
      return {
        scheduleTask(task, priority) {
          pending++
          dispatcher.scheduleTask(() => {
            try {
              task()
            } finally {
              if (--pending === 0 && onIdle !== undefined) {
                const resume = onIdle
                onIdle = undefined
                resume()
              }
            }
          }, priority)
        },
        flush: () => dispatcher.flush()
      }
    }
  }
  const idle = Effect.callback<void>((resume) => {
    // Nothing pending: we run outside any task (started synchronously), alone.
    if (pending === 0) resume(Effect.void)
    else onIdle = () => resume(Effect.void)
  })
  return { scheduler, idle }
}

export interface Options {
  readonly torrent: Torrent
  /** Peers that start with the whole torrent (first on the network). */
  readonly seeders: number
  readonly leechers: number
  /** How bytes travel between two hosts (see MemorySocket.Link); default: at once. */
  readonly link?: MemorySocket.Link | ((from: string, to: string) => MemorySocket.Link) | undefined
  /** How datagrams travel between two hosts (uTP; see MemoryUdp.Link); default: at once, all of them. */
  readonly udpLink?: ((from: string, to: string) => MemoryUdp.Link) | undefined
  /** Seeds each manager's `Random` (with its number added); default 0. */
  readonly seed?: number | undefined
  /** Settings for every manager (the peer id, DHT and local discovery are the swarm's). */
  readonly settings?: Partial<Settings> | undefined
  /** How far the clock moves between looks at the leechers; default 100 ms. */
  readonly stepMillis?: number | undefined
  /** Simulated time after which the run fails; default 10 minutes. */
  readonly timeoutMillis?: number | undefined
  /**
   * What happens beside the download, started once every torrent is added
   * and before the clock first moves (e.g. reading a leecher's file with
   * `handle.file(0).stream`); it runs in the swarm's scope, under its clock.
   */
  readonly during?: ((leechers: ReadonlyArray<TorrentHandle>) => Effect.Effect<void, never, Scope.Scope>) | undefined
}

/** An event of peer `host`, at simulated time `at` (ms). */
export interface LogEntry {
  readonly at: number
  readonly host: string
  readonly event: TorrentEvent
}

export interface Outcome {
  /** Every manager's events, in the order they happened, until the last leecher completed. */
  readonly events: ReadonlyArray<LogEntry>
  /** Each leecher's bytes once complete. */
  readonly data: ReadonlyArray<Uint8Array>
  /** Simulated time the download took (ms). */
  readonly millis: number
}

export class SwarmTimeout extends Schema.TaggedError<SwarmTimeout>()("SwarmTimeout", {
  millis: Schema.Number
}) {
  override get message() {
    return `the leechers did not complete within ${this.millis} ms of simulated time`
  }
}

/**
 * Starts the swarm, advances the clock until every leecher has completed,
 * and stops it. Runs under a TestClock of its own.
 */
export const run = (
  options: Options
): Effect.Effect<Outcome, SwarmTimeout | TorrentError | ListenError | Magnet.MagnetError> => {
  const { scheduler, idle } = makeIdleScheduler(new Scheduler.MixedScheduler())
  return Effect.gen(function*() {
    const { meta, data } = options.torrent
    const link = options.link
    const network = yield* MemoryNetwork.make({
      link: typeof link === "function" ? link : () => link ?? {},
      udpLink: options.udpLink
    })
    const count = options.seeders + options.leechers
    const stores = Array.from(
      { length: count },
      (_, i) => new Map(i < options.seeders ? [[meta.infoHash as string, data.slice()]] : [])
    )
    const events: Array<LogEntry> = []
    const handles = []
    const addresses: Array<{ readonly host: string; readonly port: number }> = []
    for (let i = 0; i < count; i++) {
      const host = hostOf(i)
      const services = Layer.mergeAll(
        TorrentConfig.layerWith({ ...options.settings, peerId: peerId(i), dht: false, localDiscovery: false }),
        network.layer(host),
        Storage.layerMemory(stores[i]!),
        NodeCrypto.layerDigest,
        noFiles,
        Path.layer,
        noTrackers
      )
      const manager = yield* Layer.build(TorrentManager.layer.pipe(Layer.provide(services))).pipe(
        Effect.map((context) => Context.get(context, TorrentManager)),
        Random.withSeed((options.seed ?? 0) + i)
      )
      yield* Effect.flatMap(manager.subscribe, (stream) =>
        stream.pipe(
          Stream.runForEach(({ event }) =>
            Effect.map(Clock.currentTimeMillis, (at) => {
              events.push({ at, host, event })
            })
          ),
          Effect.forkScoped
        ))
      handles.push(yield* manager.add(meta, { peers: [...addresses], seed: true }))
      addresses.push({ host, port: manager.port })
    }
    const leechers = handles.slice(options.seeders)
    if (options.during !== undefined) yield* options.during(leechers)
    const completed = yield* Deferred.make<void, TorrentError>()
    yield* Effect.forEach(leechers, (handle) => handle.completed, { discard: true }).pipe(
      Deferred.into(completed),
      Effect.forkScoped
    )
    const timeout = options.timeoutMillis ?? 600_000
    while (!(yield* Deferred.isDone(completed))) {
      if ((yield* Clock.currentTimeMillis) >= timeout) return yield* new SwarmTimeout({ millis: timeout })
      yield* idle
      yield* TestClock.adjust(options.stepMillis ?? 100)
    }
    yield* Deferred.await(completed)
    return {
      // A copy: the managers still publish while they stop.
      events: events.slice(),
      data: leechers.map((_, i) => stores[options.seeders + i]!.get(meta.infoHash)!),
      millis: yield* Clock.currentTimeMillis
    }
  }).pipe(
    Effect.scoped,
    // The clock waits for the fibers it wakes to settle, for at most
    // `warningDelay` of real time: never give up (that would depend on the machine).
    Effect.provide(TestClock.layer({ warningDelay: "1 hour" })),
    Effect.provideService(Scheduler.Scheduler, scheduler)
  )
}
