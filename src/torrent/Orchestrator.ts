/**
 * Orchestrator: the one fiber that owns a torrent's download state.
 *
 * PeerSessions send it `PeerEvent`s; it updates the Synchronizer, keeps
 * each peer's interest and requests right, hands completed pieces to the
 * verifiers (SHA-1 off the event loop, then DiskWriter) and publishes
 * progress. It writes to sessions only through their outboxes, so there is
 * no shared mutable state and no lock.
 */
import {
  Clock,
  Context,
  Deferred,
  Effect,
  Layer,
  Queue,
  Random,
  Result,
  Schema,
  type Stream,
  SubscriptionRef
} from "effect"
import * as Bitfield from "../protocol/Bitfield.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import type { WireMessage } from "../protocol/WireMessage.ts"
import type { PeerCommand, PeerEvent, PeerKey } from "../peer/PeerEvent.ts"
import { Bans } from "./Bans.ts"
import * as Choker from "./Choker.ts"
import * as PieceCheck from "./PieceCheck.ts"
import * as PieceLayerFetch from "./PieceLayerFetch.ts"
import { DiskWriter, type DiskError } from "./DiskWriter.ts"
import * as SmartBan from "./SmartBan.ts"
import { blockKey, type BlockRequest } from "../protocol/Block.ts"
import { contributorsOf, type FilePriority, type OpenPiece, Synchronizer } from "./Synchronizer.ts"
import { TorrentConfig } from "./TorrentConfig.ts"
import { TorrentEvents, warn } from "./TorrentEvents.ts"
import * as Tracker from "../tracker/Tracker.ts"

/**
 * "fetching metadata": a magnet link's info dictionary is being fetched from
 * peers; "stalled": not complete, and no peer for a while (see `trackers`
 * for why); "complete": every selected piece is verified and written;
 * "seeding": complete, and still serving peers; "stopped": ended before it
 * was complete.
 */
export const TorrentState = Schema.Literals([
  "fetching metadata",
  "checking",
  "downloading",
  "stalled",
  "complete",
  "seeding",
  "stopped"
])
export type TorrentState = typeof TorrentState.Type

export const Progress = Schema.Struct({
  state: TorrentState,
  /** Verified bytes of the selected files. */
  done: Schema.Number,
  /** Bytes of the selected files. */
  wanted: Schema.Number,
  /** Verified bytes of the whole torrent (what trackers call `left`'s complement). */
  verified: Schema.Number,
  downloaded: Schema.Number,
  uploaded: Schema.Number,
  downloadRate: Schema.Number,
  uploadRate: Schema.Number,
  peers: Schema.Number,
  /** Peers we send to: unchoked by us and interested in us. */
  uploadingTo: Schema.Number,
  /** Peers we get from: they unchoke us and we are interested in them. */
  downloadingFrom: Schema.Number,
  /** Seconds to completion at the current rate (Infinity when nothing comes). */
  eta: Schema.Number,
  trackers: Tracker.Status,
  /** Verified bytes per file. */
  files: Schema.Array(Schema.Number),
  hashFailures: Schema.Number
})
export type Progress = typeof Progress.Type

/** Progress as its readers see it: the snapshot now, and every snapshot from now on (the current one first). */
export interface ProgressReader {
  readonly get: Effect.Effect<Progress>
  /** The snapshot now, read at once: for reading a thousand torrents' in one go (the daemon's listing). */
  readonly getUnsafe: () => Progress
  readonly changes: Stream.Stream<Progress>
}

/** A read-only view of a SubscriptionRef of progress. */
export const readerOf = (ref: SubscriptionRef.SubscriptionRef<Progress>): ProgressReader => ({
  get: SubscriptionRef.get(ref),
  getUnsafe: () => SubscriptionRef.getUnsafe(ref),
  changes: SubscriptionRef.changes(ref)
})

/** Hashing/writing a piece, done outside the Orchestrator's fiber; the result comes back as an event. */
type Internal =
  | { readonly _tag: "PieceChecked"; readonly piece: OpenPiece; readonly ok: boolean }
  | { readonly _tag: "Second" }
  | { readonly _tag: "Rechoke" }
  /** The caller changed the files' priorities (which to download, and in what order). */
  | { readonly _tag: "Prioritize"; readonly files: ReadonlyArray<FilePriority> }
  | { readonly _tag: "Sequential"; readonly on: boolean }
  /** A reader of the data waits for piece `from` and will read on to `to`. */
  | { readonly _tag: "Reading"; readonly id: number; readonly from: number; readonly to: number }
  | { readonly _tag: "DoneReading"; readonly id: number }

type Event = PeerEvent | Internal

interface PeerState {
  /** The peer id from its handshake. */
  readonly id: string
  /** We dialled the peer. */
  readonly outgoing: boolean
  readonly outbox: Queue.Queue<PeerCommand>
  has: Bitfield.Bitfield
  /** Blocks we asked this peer for (mirrors its Coordinator). */
  readonly assigned: Map<number, BlockRequest>
  /** The peer chokes us. */
  choked: boolean
  /** We are interested in the peer. */
  interested: boolean
  /** We choke the peer. */
  choking: boolean
  /** The peer is interested in us. */
  peerInterested: boolean
  depth: number
  rate: number
  uploadRate: number
  snubbing: boolean
  readonly connectedAt: number
  hashStrikes: number
  /** It downloads nothing more (BEP 21). */
  uploadOnly: boolean
}

/**
 * Failed pieces shared with other peers that a peer may contribute to before
 * it is disconnected and banned, when no good copy has told the culprit yet
 * (see SmartBan). A peer that alone sent a bad piece is banned at once.
 */
const maxHashStrikes = 3
/** Memory for pieces being downloaded. */
const openPieceBytes = 8 * 1024 * 1024
/** Seconds without a peer before a download counts as stalled (not at once: peers take a moment to connect). */
const stalledAfterSeconds = 5
/** A reader's window: the pieces of this many seconds at the current rate... */
const readAheadSeconds = 4
/** ...at least this many bytes (and two pieces: while the rate is unknown, enough to keep the peers busy)... */
const minReadAheadBytes = 8 * 1024 * 1024
/** ...and at most this many. */
const maxReadAheadBytes = 32 * 1024 * 1024
/** Seconds without a block before the download rate counts as 0 (its average only halves each second). */
const idleAfterSeconds = 3

export class Orchestrator extends Context.Service<Orchestrator, {
  readonly offer: (event: PeerEvent) => Effect.Effect<void>
  /** Our pieces, as a fresh bitfield. */
  readonly bitfield: Effect.Effect<Bitfield.Bitfield>
  /** Published every second, and as pieces are verified and peers come and go. */
  readonly progress: ProgressReader
  /** Completed when every selected piece is verified and written (failed by a write that failed). */
  readonly completed: Deferred.Deferred<void, DiskError>
  /** The metadata with the piece layers in so far (a v2 magnet link's come from peers after it): what we answer hash requests from. */
  readonly meta: () => Metainfo.Metainfo
  /** Done with the metadata once every piece layer is in (at once when none was missing). */
  readonly layersIn: Deferred.Deferred<Metainfo.Metainfo>
  /** Changes the files' priorities (one per file; "skip" deselects), as the torrent runs. */
  readonly prioritize: (files: ReadonlyArray<FilePriority>) => Effect.Effect<void>
  /** Pieces in order instead of rarest first (for playing a file as it comes). */
  readonly setSequential: (on: boolean) => Effect.Effect<void>
  /**
   * A reader of the data (id of its own) waits for piece `from` and reads on
   * to `to`: those pieces come first while it reads, until `doneReading`.
   */
  readonly reading: (id: number, from: number, to: number) => Effect.Effect<void>
  readonly doneReading: (id: number) => Effect.Effect<void>
  /** Waits until piece `index` is verified; fails if it is deselected first, or the torrent stops. */
  readonly awaitPiece: (index: number) => Effect.Effect<void, "Deselected" | "Stopped">
  /** Whether a connection with the address is refused at time `now` (see Bans). */
  readonly isBanned: (peer: PeerKey, now: number) => boolean
  /** Runs the event loop and the verifiers until interrupted. */
  readonly run: Effect.Effect<never, DiskError>
}>()("effect-torrent/torrent/Orchestrator") {
  /**
   * `bans` outlive the torrent's runs (the manager keeps them across pause and
   * resume); `trackers` tells how the torrent's trackers fare, for progress.
   */
  static readonly layer = (bans: Bans = new Bans(), trackers?: () => Tracker.Status) =>
    Layer.effect(Orchestrator, Effect.suspend(() => make(bans, trackers)))
}

export const make = Effect.fnUntraced(function*(bans: Bans, trackers: () => Tracker.Status = () => "none") {
  const sync = yield* Synchronizer
  const disk = yield* DiskWriter
  const config = yield* TorrentConfig
  const checkV2 = yield* PieceCheck.makeV2(() => meta)
  const published = yield* TorrentEvents
  const random = yield* Random.Random
  /** Replaced as piece layers come in from peers (a v2 magnet link's). */
  let meta = sync.meta
  /** A v2-only torrent's missing piece layers, asked of peers; its files' pieces held back meanwhile. */
  const layers = meta.pieces.length === 0 ? PieceLayerFetch.make(meta) : undefined
  for (const file of layers?.files() ?? []) sync.holdFile(file, true)
  const layersIn = yield* Deferred.make<Metainfo.Metainfo>()
  if (layers === undefined || layers.done()) yield* Deferred.succeed(layersIn, meta)
  const events = yield* Queue.unbounded<Event>()
  const checks = yield* Queue.unbounded<OpenPiece>()
  const completed = yield* Deferred.make<void, DiskError>()
  const peers = new Map<PeerKey, PeerState>()
  const smartBan = SmartBan.make()
  const maxOpen = Math.max(4, Math.floor(openPieceBytes / meta.pieceLength))
  const maxPending = Math.max(4, Math.floor(config.maxPendingBytes / meta.pieceLength))
  let downloaded = 0
  let uploaded = 0
  let uploadRate = 0
  let uploadedThisSecond = 0
  let lastDownloaded = 0
  let chokeRound = 0
  let optimistic: PeerKey | undefined
  let hashFailures = 0
  let downloadRate = 0
  /** The state the last second's check found. */
  let torrentState: TorrentState = "checking"
  /** Seconds in a row without a block, and without a peer. */
  let idleSeconds = 0
  let loneSeconds = 0

  const snapshot = (state: TorrentState): Progress => {
    lastSnapshot = { pieces: sync.haveCount, peers: peers.size, left: sync.wantedBytesLeft() }
    const left = sync.wantedBytesLeft()
    const wanted = sync.completedBytes() + left // approximate: deselected verified pieces count as done
    return {
      state,
      done: wanted - left,
      wanted,
      verified: sync.completedBytes(),
      downloaded,
      uploaded,
      downloadRate,
      uploadRate,
      peers: peers.size,
      ...exchanging(),
      eta: left === 0 ? 0 : downloadRate > 0 ? left / downloadRate : Infinity,
      trackers: trackers(),
      files: sync.fileBytes(),
      hashFailures
    }
  }
  /** How many peers we upload to and download from (a scan of the peers, once per snapshot). */
  const exchanging = () => {
    let uploadingTo = 0
    let downloadingFrom = 0
    for (const state of peers.values()) {
      if (!state.choking && state.peerInterested) uploadingTo++
      if (!state.choked && state.interested) downloadingFrom++
    }
    return { uploadingTo, downloadingFrom }
  }
  /** What the last snapshot counted, to publish one when it changes. */
  let lastSnapshot = { pieces: 0, peers: 0, left: 0 }
  const progress = yield* SubscriptionRef.make(snapshot("checking"))
  const isDone = () => sync.isComplete() && sync.pendingCount === 0
  // The last word, however the torrent ends: the seconds' snapshots miss what came after the last one.
  yield* Effect.addFinalizer(() => SubscriptionRef.set(progress, snapshot(isDone() ? "complete" : "stopped")))

  /** Readers of the data, by id: the piece each waits for, and the last it will read. */
  const readers = new Map<number, { readonly from: number; readonly to: number }>()
  const setWindows = () => {
    const bytes = Math.min(Math.max(downloadRate * readAheadSeconds, minReadAheadBytes), maxReadAheadBytes)
    const size = Math.max(2, Math.ceil(bytes / meta.pieceLength))
    sync.setReaders([...readers.values()].map(({ from, to }) => ({ from, to: Math.min(to, from + size - 1) })))
  }
  /** Readers waiting for a piece, by piece. */
  const waiters = new Map<number, Array<Deferred.Deferred<void, "Deselected" | "Stopped">>>()
  const wake = (index: number, exit: Effect.Effect<void, "Deselected" | "Stopped">) =>
    Effect.forEach(waiters.get(index) ?? [], (waiter) => Deferred.completeWith(waiter, exit)).pipe(
      Effect.andThen(Effect.sync(() => waiters.delete(index)))
    )
  yield* Effect.addFinalizer(() =>
    Effect.forEach([...waiters.keys()], (index) => wake(index, Effect.fail("Stopped" as const)), { discard: true })
  )

  const send = (state: PeerState, messages: ReadonlyArray<PeerCommand>) =>
    messages.length === 0 ? Effect.void : Queue.offerAll(state.outbox, messages)

  /** Asks the peer for the missing piece layers' runs nobody is asked for. */
  const askLayers = Effect.fnUntraced(function*(peer: PeerKey, state: PeerState) {
    if (layers === undefined || layers.done()) return
    const ranges = layers.ask(peer, yield* Clock.currentTimeMillis)
    yield* send(state, ranges.map((range): WireMessage => ({ _tag: "HashRequest", ...range })))
  })
  const askLayersOfAll = Effect.fnUntraced(function*() {
    for (const [peer, state] of peers) yield* askLayers(peer, state)
  })

  /** A piece layer is in and proven: its file's pieces can be checked, so asked for. */
  const learnLayer = Effect.fnUntraced(function*(file: number, layer: Uint8Array) {
    meta = { ...meta, files: meta.files.map((f, i) => (i === file ? { ...f, pieceLayer: layer } : f)) }
    sync.holdFile(file, false)
    returned = true
    for (const state of peers.values()) yield* updateInterest(state)
    yield* Effect.logInfo(`the piece layer of ${meta.files[file]!.path.join("/")} is in`)
    if (layers!.done()) yield* Deferred.succeed(layersIn, meta)
  })

  /** Interested exactly while the peer has a piece we need. */
  const updateInterest = (state: PeerState) => {
    const interesting = sync.isInteresting(state.has)
    if (interesting === state.interested) return Effect.void
    state.interested = interesting
    return send(state, [{ _tag: interesting ? "Interested" : "NotInterested" }])
  }

  /**
   * Tops up the peer's pipeline once it has drained by a quarter: one write
   * then carries many requests, rather than one write per block received.
   */
  const refill = (peer: PeerKey, state: PeerState) => {
    if (state.choked || !state.interested || sync.pendingCount >= maxPending) return Effect.void
    const room = state.depth - state.assigned.size
    if (state.assigned.size > 0 && room < state.depth / 4) return Effect.void
    const picks = sync.pick(state.has, room, state.assigned, maxOpen, peer)
    if (picks.length === 0) return Effect.void
    for (const r of picks) state.assigned.set(blockKey(r.index, r.begin), r)
    return send(state, picks.map((r): WireMessage => ({ _tag: "Request", ...r })))
  }

  /** Set when requests go back to the pool during a batch of events. */
  let returned = false
  const release = (state: PeerState | undefined, requests: ReadonlyArray<BlockRequest>) => {
    for (const r of requests) {
      if (state?.assigned.delete(blockKey(r.index, r.begin)) !== false) {
        sync.release(r)
        returned = true
      }
    }
  }

  /** A block arrived from `from`: cancel the same request at other peers (endgame). */
  const cancelElsewhere = Effect.fnUntraced(function*(from: PeerKey, index: number, begin: number) {
    const key = blockKey(index, begin)
    for (const [peer, state] of peers) {
      const request = peer === from ? undefined : state.assigned.get(key)
      if (request === undefined) continue
      state.assigned.delete(key)
      sync.release(request)
      yield* send(state, [{ _tag: "Cancel", ...request }])
    }
  })

  const onMessages = Effect.fnUntraced(
    function*(peer: PeerKey, state: PeerState, messages: ReadonlyArray<WireMessage>) {
      let haveChanged = false
      for (const m of messages) {
        switch (m._tag) {
          case "Piece": {
            const key = blockKey(m.index, m.begin)
            if (!state.assigned.delete(key)) {
              sync.unclaim(m.index, m.begin, m.block)
              break
            }
            downloaded += m.block.length
            const result = sync.receive(m.index, m.begin, m.block, peer)
            if (!result.fresh) break
            // Only endgame blocks are asked of several peers: no scan of every peer per block otherwise.
            if (result.shared === true) yield* cancelElsewhere(peer, m.index, m.begin)
            if (result.complete !== undefined) yield* Queue.offer(checks, result.complete)
            break
          }
          case "Have":
            if (!state.has.has(m.index)) {
              state.has.set(m.index)
              sync.addAvailable(m.index)
              haveChanged = true
            }
            break
          case "Bitfield":
          case "HaveAll":
          case "HaveNone": {
            sync.addAvailability(state.has, -1)
            state.has = m._tag === "HaveAll"
              ? Bitfield.full(meta.pieceCount)
              : m._tag === "HaveNone"
              ? Bitfield.make(meta.pieceCount)
              // The session checked the bitfield's size and spare bits already.
              : Result.getOrElse(
                Bitfield.fromBytes(m.bytes.slice(), meta.pieceCount),
                () => Bitfield.make(meta.pieceCount)
              )
            sync.addAvailability(state.has, 1)
            haveChanged = true
            break
          }
          case "Choke":
            state.choked = true
            break
          case "Unchoke":
            state.choked = false
            break
          case "Interested":
            state.peerInterested = true
            // A free upload slot is given at once rather than at the next round.
            if (state.choking && unchokedCount() < Choker.defaultSlots) yield* setChoking(state, false)
            break
          case "NotInterested":
            state.peerInterested = false
            break
          case "Hashes": {
            const { _tag, hashes, ...range } = m
            const received = layers?.receive(peer, range, hashes)
            if (received?._tag === "Bad") {
              yield* warn(published, `${peer} sent piece hashes that do not check out: ${received.error.message}`)
              yield* send(state, [{ _tag: "Disconnect", reason: "ProtocolViolation", detail: received.error.message }])
              yield* askLayersOfAll()
            } else if (received?._tag === "Kept" && received.layer !== undefined) {
              yield* learnLayer(received.file!, received.layer)
            }
            break
          }
          case "HashReject": {
            const { _tag, ...range } = m
            layers?.rejected(peer, range)
            yield* askLayersOfAll()
            break
          }
        }
      }
      if (haveChanged) yield* updateInterest(state)
    }
  )

  const onEvent = Effect.fnUntraced(function*(event: Event) {
    switch (event._tag) {
      case "Connected": {
        const id = Buffer.from(event.handshake.peerId).toString("latin1")
        // Addresses and hosts were checked before the dial or accept: a host held back since then keeps this one.
        if (bans.hasId(id)) {
          return yield* Queue.offer(event.outbox, { _tag: "Disconnect", reason: "Banned", detail: "banned" })
        }
        const twin = [...peers.values()].find((p) => p.id === id)
        if (twin !== undefined) {
          // The same client twice: one connection is enough. When both sides dialled at once, both must
          // keep the same one (else each closes the one the other kept): the one dialled by the lower peer id.
          const ours = Buffer.from(config.peerId).toString("latin1")
          const keepNew = twin.outgoing !== event.outgoing && event.outgoing === ours < id
          const drop = keepNew ? twin.outbox : event.outbox
          yield* Queue.offer(drop, { _tag: "Disconnect", reason: "Dropped", detail: "already connected to this peer" })
          if (!keepNew) return
        }
        peers.set(event.peer, {
          id,
          outgoing: event.outgoing,
          outbox: event.outbox,
          has: Bitfield.make(meta.pieceCount),
          assigned: new Map(),
          choked: true,
          interested: false,
          choking: true,
          peerInterested: false,
          depth: 16,
          rate: 0,
          uploadRate: 0,
          snubbing: false,
          connectedAt: yield* Clock.currentTimeMillis,
          hashStrikes: 0,
          uploadOnly: false
        })
        if (uploadOnly) yield* Queue.offer(event.outbox, { _tag: "UploadOnly", on: true })
        yield* published.publish({ _tag: "PeerConnected", peer: event.peer, outgoing: event.outgoing })
        return yield* askLayers(event.peer, peers.get(event.peer)!)
      }
      case "Messages": {
        const state = peers.get(event.peer)
        if (state === undefined) return
        release(state, event.released)
        state.depth = event.depth
        yield* onMessages(event.peer, state, event.messages)
        return
      }
      case "Tick": {
        const state = peers.get(event.peer)
        if (state === undefined) return
        release(state, event.released)
        state.depth = event.depth
        state.rate = event.rate
        state.uploadRate = state.uploadRate * 0.5 + event.uploaded * 0.5
        uploaded += event.uploaded
        uploadedThisSecond += event.uploaded
        state.snubbing = event.snubbing
        if (event.snubbing && peers.size > 1) {
          yield* send(state, [{ _tag: "Disconnect", reason: "Unhelpful", detail: "snubbed us" }])
        }
        return
      }
      case "Disconnected": {
        const state = peers.get(event.peer)
        peers.delete(event.peer)
        if (state === undefined) return
        release(state, [...state.assigned.values()])
        sync.addAvailability(state.has, -1)
        // What it took since the session's last tick.
        uploaded += event.uploaded
        uploadedThisSecond += event.uploaded
        yield* Effect.logDebug(`disconnected: ${event.detail}`).pipe(Effect.annotateLogs({ peer: event.peer }))
        if (layers !== undefined && !layers.done()) {
          layers.expire(yield* Clock.currentTimeMillis, event.peer)
          yield* askLayersOfAll()
        }
        yield* published.publish({
          _tag: "PeerDisconnected",
          peer: event.peer,
          reason: event.reason,
          detail: event.detail
        })
        return
      }
      case "PeerUploadOnly": {
        const state = peers.get(event.peer)
        if (state === undefined) return
        state.uploadOnly = event.on
        return uploadOnly && event.on ? yield* send(state, [neitherDownloads]) : undefined
      }
      case "PieceChecked":
        return yield* onPieceChecked(event.piece, event.ok)
      case "Rechoke":
        return yield* rechoke
      case "Prioritize": {
        sync.setFilePriorities(event.files)
        returned = true // newly wanted pieces may give any peer work
        for (const state of peers.values()) yield* updateInterest(state)
        for (const index of [...waiters.keys()]) {
          if (!sync.isWanted(index)) yield* wake(index, Effect.fail("Deselected" as const))
        }
        return yield* completeIfDone
      }
      case "Sequential":
        return sync.setSequential(event.on)
      case "Reading":
        readers.set(event.id, { from: event.from, to: event.to })
        returned = true
        return setWindows()
      case "DoneReading":
        readers.delete(event.id)
        return setWindows()
      case "Second": {
        const now = downloaded
        idleSeconds = now === lastDownloaded ? idleSeconds + 1 : 0
        loneSeconds = peers.size === 0 ? loneSeconds + 1 : 0
        downloadRate = idleSeconds >= idleAfterSeconds ? 0 : downloadRate * 0.5 + (now - lastDownloaded) * 0.5
        if (readers.size > 0) setWindows()
        uploadRate = uploadRate * 0.5 + uploadedThisSecond * 0.5
        uploadedThisSecond = 0
        lastDownloaded = now
        if (layers !== undefined && !layers.done()) {
          layers.expire(yield* Clock.currentTimeMillis)
          yield* askLayersOfAll()
        }
        torrentState = isDone() ? "complete" : loneSeconds >= stalledAfterSeconds ? "stalled" : "downloading"
        yield* SubscriptionRef.set(progress, snapshot(torrentState))
        return
      }
    }
  })

  const ban = Effect.fnUntraced(function*(peer: PeerKey) {
    const state = peers.get(peer)
    bans.ban(peer, state?.id, yield* Clock.currentTimeMillis)
    if (state !== undefined) yield* send(state, [{ _tag: "Disconnect", reason: "Banned", detail: "sent corrupt data" }])
  })

  /**
   * Whether we download nothing more (BEP 21: every selected piece is ours),
   * as the peers were told. A peer that says so too is of no use to us, nor
   * we to it: the connection goes.
   */
  let uploadOnly = false
  const neitherDownloads: PeerCommand = {
    _tag: "Disconnect",
    reason: "Unhelpful",
    detail: "neither of us downloads anything more (both upload only)"
  }
  const announceUploadOnly = Effect.gen(function*() {
    if (isDone() === uploadOnly) return
    uploadOnly = isDone()
    for (const state of peers.values()) {
      yield* send(state, [
        { _tag: "UploadOnly", on: uploadOnly },
        ...(uploadOnly && state.uploadOnly ? [neitherDownloads] : [])
      ])
    }
  })

  /**
   * Once every selected piece is verified and written, the download is
   * complete. The files are synced after (see `Torrent`): syncing a GiB just
   * written takes a third of a second, and nothing here waits on it. aria2c
   * too runs its completion hook before its sync; libtorrent does not sync.
   */
  const completeIfDone = Effect.gen(function*() {
    if (!isDone() || (yield* Deferred.isDone(completed))) return
    yield* Deferred.succeed(completed, undefined)
    yield* SubscriptionRef.set(progress, snapshot("complete"))
  })

  const onPieceChecked = Effect.fnUntraced(function*(piece: OpenPiece, ok: boolean) {
    if (ok) {
      // Before `verified`, which recycles the buffer.
      const verdict = smartBan.verified(piece.index, piece.buffer)
      for (const peer of verdict.culprits) {
        yield* warn(published, `piece ${piece.index}: ${peer} sent the bad block of its failed copy`)
        yield* ban(peer)
      }
      for (const peer of verdict.cleared) {
        const state = peers.get(peer)
        if (state !== undefined) state.hashStrikes = Math.max(0, state.hashStrikes - 1)
      }
      sync.verified(piece)
      yield* wake(piece.index, Effect.void)
      yield* published.publish({ _tag: "PieceVerified", index: piece.index })
      for (const state of peers.values()) {
        // A peer that has the piece needs no word of it (a seed gets none): each
        // write wakes the peer, and each command its session's writer.
        if (!state.has.has(piece.index)) yield* send(state, [{ _tag: "Have", index: piece.index }])
        yield* updateInterest(state)
      }
      return yield* completeIfDone
    }
    hashFailures++
    smartBan.failed(piece.index, piece.buffer, piece.senders)
    const contributors = contributorsOf(piece)
    sync.failed(piece)
    for (const state of peers.values()) yield* updateInterest(state) // the piece is needed again
    yield* warn(published, `piece ${piece.index} failed its hash check; from ${[...contributors].join(", ")}`)
    yield* published.publish({ _tag: "HashFailed", index: piece.index, peers: [...contributors] })
    // A sender already banned for corrupt data explains the failure: the
    // others get no strike. A fast liar has blocks in many pieces when it is
    // banned, and each of them failing later struck its honest co-senders.
    if ([...contributors].some((peer) => bans.banned(peer))) return
    for (const peer of contributors) {
      const state = peers.get(peer)
      if (state === undefined) continue
      if (contributors.size === 1 || ++state.hashStrikes >= maxHashStrikes) yield* ban(peer)
    }
  })

  const unchokedCount = () => {
    let n = 0
    for (const state of peers.values()) if (!state.choking) n++
    return n
  }

  const setChoking = (state: PeerState, choking: boolean) => {
    if (state.choking === choking) return Effect.void
    state.choking = choking
    return send(state, [{ _tag: choking ? "Choke" : "Unchoke" }])
  }

  const rechoke = Effect.gen(function*() {
    const round = Choker.rechoke(
      [...peers].map(([peer, s]) => ({
        peer,
        interested: s.peerInterested,
        downloadRate: s.rate,
        uploadRate: s.uploadRate,
        snubbing: s.snubbing,
        connectedAt: s.connectedAt
      })),
      {
        slots: Choker.defaultSlots,
        seeding: sync.isComplete(),
        now: yield* Clock.currentTimeMillis,
        rotate: chokeRound++ % Choker.optimisticRounds === 0,
        previousOptimistic: optimistic,
        random: () => random.nextDoubleUnsafe()
      }
    )
    optimistic = round.optimistic
    for (const [peer, state] of peers) yield* setChoking(state, !round.unchoked.has(peer))
  })

  /** Hash, then write (the DiskWriter does both): a piece is marked ours only once it is on disk. */
  const verifier = Effect.gen(function*() {
    while (true) {
      const piece = yield* Queue.take(checks)
      // The v2 tree first (hybrid, v2); the SHA-1 (v1, hybrid) is checked by the write, on the thread.
      const ok = (yield* checkV2(piece.index, piece.buffer)) &&
        (yield* disk.write(
          piece.index,
          piece.buffer,
          meta.pieces.length > 0 ? Metainfo.pieceHash(meta, piece.index) : undefined
        ).pipe(Effect.tapError((error) => Deferred.fail(completed, error))))
      yield* Queue.offer(events, { _tag: "PieceChecked", piece, ok })
    }
  })

  /**
   * After each batch of events, only peers whose events came in are given
   * more requests, unless blocks went back to the pool or pieces finished,
   * which may give work to anyone.
   */
  const loop = Effect.gen(function*() {
    while (true) {
      const batch = yield* Queue.takeAll(events)
      const pendingBefore = sync.pendingCount
      const haveBefore = sync.haveCount
      returned = false
      const touched = new Set<PeerKey>()
      for (const event of batch) {
        yield* onEvent(event)
        if ("peer" in event) touched.add(event.peer)
      }
      yield* announceUploadOnly
      const everyone = returned || sync.pendingCount !== pendingBefore || sync.haveCount !== haveBefore
      for (const [peer, state] of peers) if (everyone || touched.has(peer)) yield* refill(peer, state)
      if (
        sync.haveCount !== lastSnapshot.pieces || peers.size !== lastSnapshot.peers ||
        sync.wantedBytesLeft() !== lastSnapshot.left
      ) {
        yield* SubscriptionRef.set(progress, snapshot(isDone() ? "complete" : torrentState))
      }
    }
  })

  const every = (millis: number, event: Internal) =>
    Effect.forever(Effect.sleep(millis).pipe(Effect.andThen(Queue.offer(events, event))))

  const run = Effect.all([
    loop,
    verifier,
    verifier,
    every(1000, { _tag: "Second" }),
    every(Choker.roundMillis, { _tag: "Rechoke" })
  ], { concurrency: "unbounded", discard: true }).pipe(
    Effect.andThen(Effect.never)
  )

  return Orchestrator.of({
    offer: (event) => Queue.offer(events, event).pipe(Effect.asVoid),
    bitfield: Effect.sync(() => sync.bitfield()),
    progress: readerOf(progress),
    completed,
    meta: () => meta,
    layersIn,
    prioritize: (files) => Queue.offer(events, { _tag: "Prioritize", files }).pipe(Effect.asVoid),
    setSequential: (on) => Queue.offer(events, { _tag: "Sequential", on }).pipe(Effect.asVoid),
    reading: (id, from, to) => Queue.offer(events, { _tag: "Reading", id, from, to }).pipe(Effect.asVoid),
    doneReading: (id) => Queue.offer(events, { _tag: "DoneReading", id }).pipe(Effect.asVoid),
    awaitPiece: (index) =>
      Effect.suspend(() => {
        if (sync.has(index)) return Effect.void
        if (!sync.isWanted(index)) return Effect.fail("Deselected" as const)
        const waiter = Deferred.makeUnsafe<void, "Deselected" | "Stopped">()
        waiters.set(index, [...(waiters.get(index) ?? []), waiter])
        // A reader that goes (a closed HTTP response) leaves nothing behind.
        return Deferred.await(waiter).pipe(Effect.onInterrupt(() =>
          Effect.sync(() => {
            const left = (waiters.get(index) ?? []).filter((w) => w !== waiter)
            if (left.length === 0) waiters.delete(index)
            else waiters.set(index, left)
          })
        ))
      }),
    isBanned: (peer, now) => bans.refuses(peer, now),
    run
  })
})
