/**
 * Our library as the leecher in interop tests: a TorrentManager
 * (`layerNode`, real TCP, trackers and disk) downloading one torrent, with
 * what its progress showed along the way.
 */
import { Cause, Deferred, Effect, Fiber, Layer, References, Stream } from "effect"
import type { Address } from "../../src/peer/Network.ts"
import type * as Metainfo from "../../src/protocol/Metainfo.ts"
import type { Progress } from "../../src/torrent/Orchestrator.ts"
import type { Settings } from "../../src/torrent/TorrentConfig.ts"
import { type TorrentHandle, TorrentManager } from "../../src/TorrentManager.ts"
import { freePort } from "./Swarm.ts"

/** TorrentManager.layerNode on `downloadDir`, announcing a port nobody listens on; logs at Warn and above. */
export const managerLayer = (downloadDir: string, settings: Partial<Settings> = {}) =>
  Layer.unwrap(
    Effect.map(
      freePort,
      (port) => TorrentManager.layerNode({ downloadDir, port, listenHost: "127.0.0.1", ...settings })
    )
  ).pipe(
    Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
  )

export interface Observed {
  /** Every progress value seen, in order. */
  readonly history: Array<Progress>
  readonly last: () => Progress
  readonly maxPeers: () => number
}

/** Records the handle's progress in the current scope. */
export const observe = (handle: TorrentHandle) =>
  Effect.gen(function*() {
    const history: Array<Progress> = [yield* handle.progress.get]
    yield* handle.progress.changes.pipe(
      Stream.runForEach((p) => Effect.sync(() => history.push(p))),
      Effect.forkScoped
    )
    return {
      history,
      last: () => history[history.length - 1]!,
      maxPeers: () => Math.max(...history.map((p) => p.peers))
    } satisfies Observed
  })

/** Dies with `what` and the last progress if `effect` takes longer than `millis`. */
export const within =
  (millis: number, what: string, observed?: Observed) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.timeoutOrElse({
        duration: millis,
        orElse: () =>
          Effect.die(
            new Error(`${what} did not finish within ${millis} ms; last progress: ${JSON.stringify(observed?.last())}`)
          )
      })
    )

/**
 * Downloads `torrent` (a Metainfo or a magnet link) into `downloadDir` with a
 * TorrentManager of its own (closed afterwards); returns what the progress
 * showed, and the metadata.
 */
export const download = (
  torrent: Metainfo.Metainfo | string,
  options: {
    readonly downloadDir: string
    readonly peers?: ReadonlyArray<Address>
    readonly selected?: ReadonlyArray<number>
    readonly timeoutMillis?: number
    readonly settings?: Partial<Settings>
  }
) =>
  Effect.gen(function*() {
    const manager = yield* TorrentManager
    const handle = yield* manager.add(torrent, { peers: options.peers, selected: options.selected })
    const observed = yield* observe(handle)
    yield* handle.completed.pipe(within(options.timeoutMillis ?? 60_000, `downloading ${yield* handle.name}`, observed))
    // The final value, in case the subscriber has not seen it yet.
    observed.history.push(yield* handle.progress.get)
    return Object.assign(observed, { meta: yield* handle.metadata })
  }).pipe(Effect.scoped, Effect.provide(managerLayer(options.downloadDir, options.settings)))

/**
 * A TorrentManager of its own, in a fiber that runs until interrupted
 * (interrupting it stops every torrent and closes the manager) or until the
 * scope closes — before anything acquired earlier in it, such as the
 * download folder, is released. Dies if the manager fails to start.
 */
export const startManager = (downloadDir: string, settings: Partial<Settings> = {}) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<TorrentManager["Service"]>()
    const fiber = yield* Effect.gen(function*() {
      yield* Deferred.succeed(started, yield* TorrentManager)
      return yield* Effect.never
    }).pipe(Effect.provide(managerLayer(downloadDir, settings)), Effect.forkScoped)
    const ended = Effect.flatMap(
      Fiber.await(fiber),
      (exit) =>
        Effect.die(
          new Error(
            `the TorrentManager ended as it started: ${exit._tag === "Failure" ? Cause.pretty(exit.cause) : "?"}`
          )
        )
    )
    const manager = yield* Effect.raceFirst(Deferred.await(started), ended).pipe(
      within(30_000, "starting the TorrentManager")
    )
    return { fiber, manager }
  })
