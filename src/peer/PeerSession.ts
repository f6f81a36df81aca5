/**
 * PeerSession: the life of one peer connection.
 *
 * Handshake (with a deadline), then three fibers in the session's scope: the
 * reader (one socket read → one event to the Orchestrator), the writer (drains
 * the session's outbox into one write per batch, with keep-alives), and a
 * once-a-second tick (request timeouts, pipeline size, idle and snub checks).
 * The session handles its own failures: whatever ends it, the Orchestrator
 * gets one `Disconnected` event with the requests it leaves unanswered, and
 * closing the scope closes the socket.
 */
import { Cause, Clock, Effect, Option, Queue, Schema } from "effect"
import type * as Socket from "effect/socket/Socket"
import * as Bitfield from "../protocol/Bitfield.ts"
import * as Frame from "../protocol/Frame.ts"
import * as Handshake from "../protocol/Handshake.ts"
import type { WireMessage } from "../protocol/WireMessage.ts"
import type { BlockRequest } from "../torrent/Synchronizer.ts"
import { Orchestrator } from "../torrent/Orchestrator.ts"
import { TorrentConfig } from "../torrent/TorrentConfig.ts"
import * as Coordinator from "./Coordinator.ts"
import type { PeerCommand, PeerKey } from "./PeerEvent.ts"
import * as PeerIo from "./PeerIo.ts"

export class PeerError extends Schema.TaggedError<PeerError>()("PeerError", {
  peer: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `peer ${this.peer}: ${this.detail}`
  }
}

/** Blocks sent that we never asked for (late after a cancel, or hostile) before we hang up. */
const maxUnrequested = 256

export interface Options {
  readonly peer: PeerKey
  readonly socket: Effect.Effect<Socket.Socket>
  readonly infoHash: Uint8Array
  readonly pieceCount: number
  /** Called once the handshake is done (the Monitor counts half-open connections). */
  readonly onHandshake?: Effect.Effect<void>
}

/** How a session ended, for the Monitor's choice of whether and when to dial again. */
export interface Outcome {
  readonly handshaken: boolean
  readonly reason: string
}

/** Runs one session to its end; never fails (see the module comment). */
export const run = (options: Options): Effect.Effect<Outcome, never, Orchestrator | TorrentConfig> =>
  Effect.gen(function*() {
    const orchestrator = yield* Orchestrator
    let coordinator: Coordinator.State | undefined
    const exit = yield* session(options, (c) => (coordinator = c)).pipe(Effect.scoped, Effect.exit)
    const reason = exit._tag === "Success" ? "closed" : describe(exit.cause)
    if (coordinator !== undefined) {
      yield* orchestrator.offer({ _tag: "Disconnected", peer: options.peer, reason, released: coordinator.clear() })
    }
    return { handshaken: coordinator !== undefined, reason }
  }).pipe(Effect.annotateLogs({ peer: options.peer }))

const describe = (cause: Cause.Cause<unknown>): string => {
  if (Cause.hasInterruptsOnly(cause)) return "interrupted"
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}

const session = Effect.fnUntraced(function*(options: Options, expose: (c: Coordinator.State) => void) {
  const config = yield* TorrentConfig
  const orchestrator = yield* Orchestrator
  const { peer } = options
  const fail = (detail: string) => new PeerError({ peer, detail })

  const socket = yield* options.socket
  const io = yield* PeerIo.make(socket, { maxFrame: Frame.maxFrameFor(options.pieceCount) })
  yield* io.sendRaw(Handshake.encode(Handshake.make({ infoHash: options.infoHash, peerId: config.peerId, features: ["fast"] })))

  // The handshake, with a deadline; messages read with it are kept.
  const first = yield* Effect.gen(function*() {
    while (true) {
      const batch = yield* io.read
      if (batch.length > 0) return batch
    }
  }).pipe(
    Effect.timeoutOrElse({ duration: config.handshakeTimeoutMillis, orElse: () => Effect.fail(fail("no handshake in time")) })
  )
  const handshake = first[0]!
  if (handshake._tag !== "Handshake") return yield* fail("sent a message before its handshake")
  if (Buffer.compare(handshake.infoHash, options.infoHash) !== 0) return yield* fail("handshake names another torrent")
  if (Buffer.compare(handshake.peerId, config.peerId) === 0) return yield* fail("that is us")
  const fast = Handshake.supports(handshake, "fast")

  const coordinator = Coordinator.make({ requestTimeoutMillis: config.requestTimeoutMillis })
  expose(coordinator)
  if (options.onHandshake !== undefined) yield* options.onHandshake
  const outbox = yield* Queue.unbounded<PeerCommand>()

  const have = yield* orchestrator.bitfield
  const opening: Array<WireMessage> = have.count() > 0
    ? [fast && have.isComplete() ? { _tag: "HaveAll" } : { _tag: "Bitfield", bytes: have.toBytes() }]
    : fast ? [{ _tag: "HaveNone" }] : []
  yield* io.send(opening)
  yield* orchestrator.offer({ _tag: "Connected", peer, handshake, outbox })

  let lastHeard = yield* Clock.currentTimeMillis
  let unrequested = 0

  /** One read's messages: the Coordinator checks blocks, the Orchestrator gets the rest. */
  const handle = Effect.fnUntraced(function*(incoming: ReadonlyArray<PeerIo.Incoming>) {
    const now = yield* Clock.currentTimeMillis
    lastHeard = now
    const messages: Array<WireMessage> = []
    const released: Array<BlockRequest> = []
    for (const m of incoming) {
      switch (m._tag) {
        case "Handshake":
          return yield* fail("sent a second handshake")
        case "KeepAlive":
          continue
        case "Piece":
          if (!coordinator.received(m.index, m.begin, m.block.length, now)) {
            if (++unrequested > maxUnrequested) return yield* fail(`sent more than ${maxUnrequested} blocks we never asked for`)
            continue
          }
          break
        case "Choke":
          released.push(...coordinator.clear())
          break
        case "RejectRequest": {
          const request = coordinator.rejected(m.index, m.begin)
          if (request !== undefined) released.push(request)
          continue
        }
        case "HaveAll":
        case "HaveNone":
        case "Suggest":
        case "AllowedFast":
          if (!fast) return yield* fail(`sent ${m._tag} without the fast extension`)
          break
        case "Have":
          if (m.index >= options.pieceCount) return yield* fail(`has piece ${m.index} of a ${options.pieceCount}-piece torrent`)
          break
        case "Bitfield": {
          const checked = Bitfield.fromBytes(m.bytes, options.pieceCount)
          if (checked._tag === "Failure") return yield* fail(checked.failure.message)
          break
        }
      }
      messages.push(m)
    }
    if (messages.length > 0 || released.length > 0) {
      yield* orchestrator.offer({ _tag: "Messages", peer, messages, released, depth: coordinator.depth })
    }
  })

  const reader = Effect.gen(function*() {
    yield* handle(first.slice(1))
    while (true) yield* handle(yield* io.read)
  })

  const writer = Effect.gen(function*() {
    while (true) {
      const batch = yield* Queue.takeAll(outbox).pipe(Effect.timeoutOption(config.keepAliveMillis))
      if (Option.isNone(batch)) {
        yield* io.send([{ _tag: "KeepAlive" }])
        continue
      }
      const now = yield* Clock.currentTimeMillis
      const messages: Array<WireMessage> = []
      const requests: Array<BlockRequest> = []
      for (const command of batch.value) {
        if (command._tag === "Disconnect") {
          yield* io.send(messages)
          return yield* fail(command.reason)
        }
        if (command._tag === "Request") requests.push(command)
        else if (command._tag === "Cancel") coordinator.cancel(command.index, command.begin)
        messages.push(command)
      }
      coordinator.sent(requests, now)
      yield* io.send(messages)
    }
  })

  const ticker = Effect.gen(function*() {
    let last = yield* Clock.currentTimeMillis
    while (true) {
      yield* Effect.sleep(1000)
      const now = yield* Clock.currentTimeMillis
      coordinator.tick(now - last)
      last = now
      if (now - lastHeard >= config.idleTimeoutMillis) return yield* fail(`silent for ${config.idleTimeoutMillis / 1000} s`)
      yield* orchestrator.offer({
        _tag: "Tick",
        peer,
        released: coordinator.expire(now),
        depth: coordinator.depth,
        rate: coordinator.rate,
        snubbing: coordinator.isSnubbing(now)
      })
    }
  })

  // The first of the three to end (always by failure) ends the session.
  return yield* Effect.raceFirst(reader, Effect.raceFirst(writer, ticker))
})
