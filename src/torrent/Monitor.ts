/**
 * Monitor: the pool of peer connections for one torrent (or a magnet link's
 * metadata phase: whatever `PeerSession.Host` its sessions have).
 *
 * It keeps up to `maxPeers` sessions (at most `maxHalfOpen` still
 * connecting), each a supervised fiber in a FiberMap keyed by address, so an
 * address is never dialled twice at once and closing the torrent's scope
 * ends them all. Addresses that fail are retried with exponential backoff and
 * dropped after a few failures. Sources (trackers, and PEX above all) keep
 * announcing addresses we know, so some are never dialled, however often
 * they come: banned ones, our own (once a dial reached us), and those where a
 * peer that connected to us listens (as its extended handshake told).
 */
import { Clock, Context, Effect, Fiber, FiberMap, Layer, Queue } from "effect"
import { Admission } from "../peer/Admission.ts"
import type * as PeerIo from "../peer/PeerIo.ts"
import { type Address, Network } from "../peer/Network.ts"
import { keyOf, type PeerKey } from "../peer/PeerEvent.ts"
import * as PeerSession from "../peer/PeerSession.ts"
import { TorrentConfig } from "./TorrentConfig.ts"

interface Candidate {
  readonly address: Address
  failures: number
  retryAt: number
  /**
   * Dialled naming a hybrid torrent by its v2 hash: a peer that hung up on
   * the other may know it only by that one (a v2-only client that joined by
   * a `urn:btmh:` link and has no metadata yet).
   */
  byV2: boolean
}

/** Connection failures before an address is forgotten. */
const maxFailures = 5
const baseBackoffMillis = 15_000
/** After a working connection ends, wait this long before dialling it again. */
const reconnectMillis = 60_000
/** Most addresses remembered. */
const maxCandidates = 2000

/** The wait before the `failures`th retry of an address: 15 s · 2ⁿ⁻¹, capped at 30 min. */
export const backoffMillis = (failures: number): number =>
  Math.min(30 * 60_000, baseBackoffMillis * 2 ** Math.max(0, failures - 1))

export class Monitor extends Context.Service<Monitor, {
  /** New addresses to try (from trackers, DHT, PEX…). */
  readonly add: (addresses: Iterable<Address>) => Effect.Effect<void>
  readonly accept: PeerSession.Accept
  readonly connections: Effect.Effect<number>
  /** Dials peers until interrupted; then ends every session. */
  readonly run: Effect.Effect<never>
}>()("effect-torrent/torrent/Monitor") {
  static readonly layer = Layer.effect(Monitor, Effect.suspend(() => make))
}

export const make = Effect.gen(function*() {
  const config = yield* TorrentConfig
  const network = yield* Network
  const host = yield* PeerSession.Host
  const context = yield* Effect.context<PeerSession.Host>()
  const sessions = yield* FiberMap.make<PeerKey, void, never>()
  const candidates = new Map<PeerKey, Candidate>()
  /** Addresses where a dial reached ourselves. */
  const ours = new Set<PeerKey>()
  const wake = yield* Queue.sliding<void>(1)
  const admission = yield* Admission
  let halfOpen = 0

  const ended = (key: PeerKey, outcome: PeerSession.Outcome) =>
    Effect.gen(function*() {
      const candidate = candidates.get(key)
      if (candidate !== undefined) {
        const now = yield* Clock.currentTimeMillis
        if (outcome.handshaken) {
          candidate.failures = 0
          candidate.retryAt = now + reconnectMillis
        } else if (outcome.reason === "SelfConnection") {
          candidates.delete(key)
          ours.add(key)
        } else if (++candidate.failures >= maxFailures) {
          candidates.delete(key)
        } else {
          candidate.retryAt = now + backoffMillis(candidate.failures)
          // Hung up on before its handshake: the next dial names the torrent by its other hash.
          if (outcome.reason === "Closed" && host.infoHashV2 !== undefined) candidate.byV2 = !candidate.byV2
        }
      }
      yield* Queue.offer(wake, undefined)
    })

  const dial = Effect.fnUntraced(function*(key: PeerKey, candidate: Candidate) {
    halfOpen++
    let counted = true
    const settle = Effect.sync(() => {
      if (counted) halfOpen--
      counted = false
    })
    const infoHash = candidate.byV2 ? host.infoHashV2! : host.infoHash
    const session = PeerSession.run({
      peer: key,
      connection: {
        _tag: "Outgoing",
        socket: network.connect(candidate.address, config.connectTimeoutMillis, { infoHash }),
        infoHash
      },
      onHandshake: settle
    }).pipe(
      Effect.ensuring(Effect.andThen(settle, Effect.sync(() => admission.release()))),
      Effect.flatMap((outcome) => ended(key, outcome)),
      Effect.provideContext(context)
    )
    yield* FiberMap.run(sessions, key, session, { onlyIfMissing: true })
  })

  /**
   * Runs a session for a connection that came in (its handshake already read
   * by the listener) and waits for its end. Refused beyond `maxPeers`, from
   * banned addresses, and from an address we already talk to.
   */
  const accept = Effect.fnUntraced(
    function*(peer: PeerKey, io: PeerIo.PeerIo["Service"], first: ReadonlyArray<PeerIo.Incoming>) {
      const open = yield* FiberMap.size(sessions)
      if (
        open >= config.maxPeers || host.refuses(peer, yield* Clock.currentTimeMillis) ||
        (yield* FiberMap.has(sessions, peer))
      ) return false
      const fiber = yield* FiberMap.run(
        sessions,
        peer,
        PeerSession.run({ peer, connection: { _tag: "Incoming", io, first } }).pipe(
          Effect.asVoid,
          Effect.provideContext(context)
        ),
        { onlyIfMissing: true }
      )
      yield* Fiber.await(fiber)
      return true
    }
  )

  /** Starts sessions for the addresses due, within the limits. */
  const fill = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    let open = yield* FiberMap.size(sessions)
    // Where the peers we talk to listen (those that dialled us included).
    const swarm = host.exchange === undefined ? [] : (yield* host.exchange.swarm).values()
    const connected = new Set([...swarm].map((entry) => keyOf(entry.address)))
    for (const [key, candidate] of candidates) {
      if (open >= config.maxPeers || halfOpen >= config.maxHalfOpen) return
      if (
        candidate.retryAt > now || host.refuses(key, now) || connected.has(key) ||
        (yield* FiberMap.has(sessions, key))
      ) continue
      if (!admission.admitOutgoing()) return // every connection slot of the process is taken
      candidate.retryAt = Infinity // until the session ends
      yield* dial(key, candidate)
      open++
    }
  })

  const add = (addresses: Iterable<Address>) =>
    Effect.gen(function*() {
      for (const address of addresses) {
        const key = keyOf(address)
        if (!candidates.has(key) && !ours.has(key) && candidates.size < maxCandidates) {
          candidates.set(key, { address, failures: 0, retryAt: 0, byV2: false })
        }
      }
      yield* Queue.offer(wake, undefined)
    })

  // Stopping the Monitor ends every session it runs.
  const run = Effect.gen(function*() {
    while (true) {
      yield* fill
      yield* Queue.take(wake).pipe(Effect.timeoutOption(1000))
    }
  }).pipe(Effect.ensuring(FiberMap.clear(sessions)))

  return Monitor.of({ add, accept, connections: FiberMap.size(sessions), run })
})
