/**
 * A TorrentManager speaking message stream encryption by its own setting
 * (`encryption`), composed as `TorrentManager.layerNode` is, optionally with
 * every dial refused.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Layer, References } from "effect"
import type * as Encryption from "../../src/peer/Encryption.ts"
import * as MemorySocket from "../../src/peer/MemorySocket.ts"
import { Network } from "../../src/peer/Network.ts"
import { PieceWorker } from "../../src/torrent/PieceWorker.ts"
import { Storage } from "../../src/torrent/Storage.ts"
import { type Settings, TorrentConfig } from "../../src/torrent/TorrentConfig.ts"
import { TorrentManager } from "../../src/TorrentManager.ts"
import * as HttpTracker from "../../src/tracker/HttpTracker.ts"
import * as Tracker from "../../src/tracker/Tracker.ts"
import * as UdpTracker from "../../src/tracker/UdpTracker.ts"

export interface Options {
  readonly policy: Encryption.Policy
  /** False: every dial is refused, so peers reach us only by dialling us (default true). */
  readonly dial?: boolean
}

/** The Network in the environment, its dials refused. */
const noDialing = Layer.effect(
  Network,
  Effect.map(
    Effect.service(Network),
    (inner) => Network.of({ ...inner, connect: () => Effect.succeed(MemorySocket.refused()) })
  )
)

/** TorrentManager on real TCP, files and trackers, encrypting by `options.policy`; logs at Warn and above. */
export const layer = (settings: Partial<Settings>, options: Options) => {
  const tcp = options.dial === false ? noDialing.pipe(Layer.provide(Network.layerNode)) : Network.layerNode
  return TorrentManager.layer.pipe(
    Layer.provide(Layer.mergeAll(
      tcp,
      TorrentConfig.layerWith({ ...settings, encryption: options.policy }),
      Layer.mergeAll(PieceWorker.layerDigest, PieceWorker.layerMerkle, Storage.layerNode).pipe(
        Layer.provide(PieceWorker.layer)
      ),
      Tracker.Tracker.layer.pipe(Layer.provide(Layer.mergeAll(HttpTracker.layerNode, UdpTracker.layerNode)))
    )),
    Layer.provideMerge(NodeServices.layer),
    Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
  )
}
