/**
 * TorrentEvents: what happens to a torrent, as it happens, for embedders
 * (the manager's `events` stream, and each handle's). Progress is a
 * snapshot; these are the moments in between: peers coming and going (and
 * why), pieces verified or failed (and from whom), trackers answering or
 * not, the state changing (to "stalled" when no peer has been there for a
 * while), and warnings (also logged).
 *
 * The torrent's core publishes through this service; the manager provides
 * one per torrent, feeding a bounded hub (a slow subscriber loses the
 * oldest events, never the engine's memory).
 */
import { Context, Effect, Layer } from "effect"
import type { PeerKey } from "../peer/PeerEvent.ts"
import type * as PeerSession from "../peer/PeerSession.ts"
import type { TorrentState } from "./Orchestrator.ts"

export type TorrentEvent =
  | { readonly _tag: "PeerConnected"; readonly peer: PeerKey; readonly outgoing: boolean }
  | {
    readonly _tag: "PeerDisconnected"
    readonly peer: PeerKey
    readonly reason: PeerSession.Outcome["reason"]
    readonly detail: string
  }
  | { readonly _tag: "PieceVerified"; readonly index: number }
  /** A piece failed its hash check; `peers` sent its blocks. */
  | { readonly _tag: "HashFailed"; readonly index: number; readonly peers: ReadonlyArray<PeerKey> }
  /** A tracker answered an announce with `peers` addresses. */
  | { readonly _tag: "TrackerAnnounced"; readonly peers: number }
  /** Every tracker failed an announce; `error` is the last one's. */
  | { readonly _tag: "TrackerFailed"; readonly error: string }
  | { readonly _tag: "StateChanged"; readonly state: TorrentState }
  /** Something the user may want to know that did not stop the torrent (also logged as a warning). */
  | { readonly _tag: "Warning"; readonly detail: string }

export class TorrentEvents extends Context.Service<TorrentEvents, {
  readonly publish: (event: TorrentEvent) => Effect.Effect<void>
}>()("effect-torrent/torrent/TorrentEvents") {
  /** Events go nowhere (a torrent core run on its own, in tests). */
  static readonly layerDiscard = Layer.succeed(TorrentEvents, TorrentEvents.of({ publish: () => Effect.void }))
}

/** Logs a warning and publishes it as a `Warning` event. */
export const warn = (events: TorrentEvents["Service"], detail: string) =>
  Effect.andThen(Effect.logWarning(detail), events.publish({ _tag: "Warning", detail }))

/** `warn`, with the TorrentEvents of the context. */
export const warning = (detail: string) =>
  Effect.flatMap(Effect.service(TorrentEvents), (events) => warn(events, detail))
