import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Queue, Result, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { PeerCommand, PeerEvent } from "../../src/peer/PeerEvent.ts"
import { Dht } from "../../src/dht/Dht.ts"
import * as Coordinator from "../../src/peer/Coordinator.ts"
import * as Encryption from "../../src/peer/Encryption.ts"
import * as PeerSession from "../../src/peer/PeerSession.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Extension from "../../src/protocol/Extension.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as Metadata from "../../src/protocol/Metadata.ts"
import * as WireMessage from "../../src/protocol/WireMessage.ts"
import { type BlockRequest, blockSize } from "../../src/protocol/Block.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import { PeerExchange } from "../../src/torrent/PeerExchange.ts"
import { Synchronizer } from "../../src/torrent/Synchronizer.ts"
import * as Fixtures from "../torrent/fixtures.ts"
import { RateLimits } from "../../src/torrent/RateLimit.ts"
import * as PeerHost from "../../src/torrent/PeerHost.ts"
import { TorrentConfig } from "../../src/torrent/TorrentConfig.ts"
import * as FakePeer from "../util/FakePeer.ts"
import * as MemorySocket from "../../src/peer/MemorySocket.ts"
import type * as Socket from "effect/socket/Socket"

const peer = "10.0.0.1:6881"
const fixture = Fixtures.make([7 * Fixtures.pieceLength + 1000])
const infoHash = InfoHash.toBytes(fixture.meta.infoHash)
const otherHash = new Uint8Array(20).fill(0xcd)
const ourId = new Uint8Array(20).fill(1)
const theirId = new Uint8Array(20).fill(2)
const pieceCount = 8
const pieceLength = Fixtures.pieceLength
const lastPieceLength = 1000
const data = fixture.data

const settings = {
  peerId: ourId,
  handshakeTimeoutMillis: 5_000,
  keepAliveMillis: 20_000,
  idleTimeoutMillis: 60_000,
  requestTimeoutMillis: 10_000,
  listenHost: undefined as string | undefined
}

/** Lets every runnable fiber run until it waits again. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

const isDone = <A, E>(fiber: Fiber.Fiber<A, E>) => fiber.pollUnsafe() !== undefined

/** Starts a session over an in-memory socket, with a scripted remote and a recording Orchestrator. */
const start = Effect.fnUntraced(function*(
  overrides?: Partial<typeof settings>,
  have?: ReadonlyArray<number>,
  dialled?: Socket.Socket
) {
  const pair = yield* MemorySocket.makePair
  const orchestrator = yield* FakePeer.makeOrchestrator(pieceCount, have !== undefined ? { have } : undefined)
  const remote = yield* FakePeer.make(pair.remote, { pieceCount })
  const disk = FakePeer.makeDisk(data, pieceLength)
  const fiber = yield* PeerSession.run({
    peer,
    connection: { _tag: "Outgoing", socket: Effect.succeed(dialled ?? pair.local.socket) }
  }).pipe(
    Effect.provide(
      PeerHost.layer.pipe(Layer.provideMerge(Layer.mergeAll(
        orchestrator.layer,
        Synchronizer.layer(fixture.meta),
        disk.layer,
        RateLimits.unlimited,
        PeerExchange.layer(true),
        TorrentConfig.layerWith({ ...settings, ...overrides })
      )))
    ),
    Effect.forkChild
  )
  yield* settle
  return { pair, orchestrator, remote, fiber, disk, events: orchestrator.events }
})

/** Starts a session and completes the handshake (fast extension) at the current time. */
const connected = Effect.fnUntraced(function*(overrides?: Partial<typeof settings>, have?: ReadonlyArray<number>) {
  const s = yield* start(overrides, have)
  yield* s.remote.sendHandshake({ infoHash, peerId: theirId, features: ["fast"] })
  yield* settle
  const first = s.events[0]
  assert.strictEqual(first?._tag, "Connected")
  const outbox = (first as Extract<PeerEvent, { _tag: "Connected" }>).outbox
  const send = (commands: ReadonlyArray<PeerCommand>) => Effect.andThen(Queue.offerAll(outbox, commands), settle)
  return { ...s, outbox, send }
})

const tagsOf = (received: ReadonlyArray<{ readonly _tag: string }>) => received.map((m) => m._tag)
const ofTag = <T extends PeerEvent["_tag"]>(events: ReadonlyArray<PeerEvent>, tag: T) =>
  events.filter((e): e is Extract<PeerEvent, { _tag: T }> => e._tag === tag)

const request = (index: number, block: number): BlockRequest & { readonly _tag: "Request" } => ({
  _tag: "Request",
  index,
  begin: block * blockSize,
  length: blockSize
})
const blockOf = (r: BlockRequest): WireMessage.WireMessage => ({
  _tag: "Piece",
  index: r.index,
  begin: r.begin,
  block: new Uint8Array(r.length).fill(r.index)
})
const requestOnly = ({ index, begin, length }: BlockRequest): BlockRequest => ({ index, begin, length })

describe("PeerSession", () => {
  it.effect("metadata requests beyond a few a second are rejected, not each answered with 16 KiB", () =>
    Effect.gen(function*() {
      const s = yield* start()
      yield* s.remote.sendHandshake({ infoHash, peerId: theirId, features: ["fast", "extensions"] })
      const theirHandshake = Extension.encodeHandshake({ extensions: ["ut_metadata"], port: 1, reqq: 10 })
      const ask = Metadata.encode({ _tag: "Request", piece: 0 })
      yield* s.remote.send([
        { _tag: "Extended", id: 0, payload: theirHandshake },
        ...Array.from({ length: 40 }, (): WireMessage.WireMessage => ({ _tag: "Extended", id: 1, payload: ask }))
      ])
      yield* settle
      const answers = s.remote.received.flatMap((m) =>
        m._tag === "Extended" && m.id === 1 ? [Result.getOrThrow(Metadata.parse(m.payload))._tag] : []
      )
      assert.deepStrictEqual(answers, [...Array(16).fill("Data"), ...Array(24).fill("Reject")])
    }))

  it.effect("the address a peer says is ours (yourip) goes to our DHT node as a vote, with the peer's host", () =>
    Effect.gen(function*() {
      const seen: Array<readonly [string, string]> = []
      const dht = Dht.of({
        nodeId: new Uint8Array(20),
        port: Effect.succeed(6881),
        addresses: Effect.succeed([]),
        lookup: () => Stream.empty,
        announce: () => Effect.void,
        addNode: () => Effect.void,
        nodes: Effect.succeed(0),
        addressSeen: (host, by) => Effect.sync(() => void seen.push([host, by]))
      })
      const s = yield* start().pipe(Effect.provideService(Dht, dht))
      yield* s.remote.sendHandshake({ infoHash, peerId: theirId, features: ["fast", "extensions", "dht"] })
      const theirs = Extension.encodeHandshake({ extensions: [], port: 1, reqq: 10, peerHost: "198.51.100.7" })
      yield* s.remote.send([{ _tag: "Extended", id: 0, payload: theirs }])
      yield* settle
      assert.deepStrictEqual(seen, [["198.51.100.7", "10.0.0.1"]])
    }))

  it.effect("listening on an IPv6 address, our extended handshake tells it (ipv6)", () =>
    Effect.gen(function*() {
      const ipv6Sent = (listenHost: string) =>
        Effect.gen(function*() {
          const s = yield* start({ listenHost })
          yield* s.remote.sendHandshake({ infoHash, peerId: theirId, features: ["fast", "extensions"] })
          yield* settle
          const ours = s.remote.received.find((m) => m._tag === "Extended" && m.id === 0)
          assert.isDefined(ours)
          const payload = (ours as Extract<WireMessage.WireMessage, { _tag: "Extended" }>).payload
          return (Result.getOrThrow(Bencode.decode(payload)) as { readonly ipv6?: Uint8Array }).ipv6
        })
      assert.deepStrictEqual(yield* ipv6Sent("::1"), Uint8Array.from([...Array(15).fill(0), 1]))
      assert.isUndefined(yield* ipv6Sent("::"), "every address: none known to tell")
      assert.isUndefined(yield* ipv6Sent("127.0.0.1"))
    }))

  describe("handshake", () => {
    it.effect("sends ours, then times out exactly at handshakeTimeoutMillis", () =>
      Effect.gen(function*() {
        const { remote, fiber, events } = yield* start()
        const ours = remote.received[0]
        assert.strictEqual(ours?._tag, "Handshake")
        if (ours?._tag === "Handshake") {
          assert.deepStrictEqual(ours.infoHash, infoHash)
          assert.deepStrictEqual(ours.peerId, ourId)
          assert.isTrue(Handshake.supports(ours, "fast"))
        }

        yield* TestClock.adjust(4_999)
        assert.isFalse(isDone(fiber), "not yet 1 ms before the deadline")
        assert.isFalse(remote.closed())
        yield* TestClock.adjust(1)
        assert.isTrue(isDone(fiber), "at the deadline")
        const outcome = yield* Fiber.join(fiber)
        assert.deepStrictEqual(outcome, {
          handshaken: false,
          reason: "HandshakeTimeout",
          detail: `peer ${peer}: no handshake in time`
        })
        yield* settle
        assert.isTrue(remote.closed(), "the socket is closed")
        assert.deepStrictEqual(events, [], "no Connected, so no Disconnected either")
      }))

    it.effect("a dial whose encryption handshake failed ends with the reason, not only that it did not open", () =>
      Effect.gen(function*() {
        const failure = new Encryption.EncryptionError({ peer, reason: new Encryption.UnknownTorrent() })
        const { fiber } = yield* start(undefined, undefined, MemorySocket.refused(failure))
        const outcome = yield* Fiber.join(fiber)
        assert.deepStrictEqual(outcome, { handshaken: false, reason: "Closed", detail: failure.message })
      }))

    it.effect("a handshake naming another torrent ends the session", () =>
      Effect.gen(function*() {
        const { remote, fiber, events } = yield* start()
        yield* remote.sendHandshake({ infoHash: otherHash, peerId: theirId })
        yield* settle
        assert.isTrue(isDone(fiber))
        const outcome = yield* Fiber.join(fiber)
        assert.deepStrictEqual(outcome, {
          handshaken: false,
          reason: "HandshakeMismatch",
          detail: `peer ${peer}: handshake names another torrent`
        })
        assert.isTrue(remote.closed())
        assert.deepStrictEqual(events, [])
        assert.deepStrictEqual(tagsOf(remote.received), ["Handshake"], "nothing sent after the handshake")
      }))

    it.effect("a connection to ourselves ends the session", () =>
      Effect.gen(function*() {
        const { remote, fiber } = yield* start()
        yield* remote.sendHandshake({ infoHash, peerId: ourId })
        yield* settle
        const outcome = yield* Fiber.join(fiber)
        assert.deepStrictEqual(outcome, {
          handshaken: false,
          reason: "SelfConnection",
          detail: `peer ${peer}: that is us`
        })
      }))

    it.effect("a good handshake: HaveNone (fast, nothing yet), then Connected; messages after it are kept", () =>
      Effect.gen(function*() {
        const { remote, fiber, events } = yield* start()
        // The handshake and the first messages in one write: nothing may be lost.
        const hs = Handshake.encode(Handshake.make({ infoHash, peerId: theirId, features: ["fast"] }))
        const rest = WireMessage.encodeBatch([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
        const both = new Uint8Array(hs.length + rest.length)
        both.set(hs)
        both.set(rest, hs.length)
        yield* remote.sendRaw(both)
        yield* settle
        assert.isFalse(isDone(fiber))
        assert.deepStrictEqual(tagsOf(remote.received), ["Handshake", "HaveNone"])
        assert.deepStrictEqual(tagsOf(events), ["Connected", "Messages"])
        const messages = ofTag(events, "Messages")[0]!
        assert.deepStrictEqual(tagsOf(messages.messages), ["HaveAll", "Unchoke"])
        assert.strictEqual(
          messages.depth,
          Coordinator.make({ requestTimeoutMillis: 1 }).depth,
          "a new pipeline's depth"
        )
      }))

    it.effect("without the fast extension nothing follows our handshake, and fast messages are refused", () =>
      Effect.gen(function*() {
        const { remote, fiber, events } = yield* start()
        yield* remote.sendHandshake({ infoHash, peerId: theirId })
        yield* settle
        assert.deepStrictEqual(tagsOf(remote.received), ["Handshake"])
        yield* remote.send([{ _tag: "HaveAll" }])
        yield* settle
        const outcome = yield* Fiber.join(fiber)
        assert.deepStrictEqual(outcome, {
          handshaken: true,
          reason: "ProtocolViolation",
          detail: `peer ${peer}: sent HaveAll without the fast extension`
        })
        assert.deepStrictEqual(tagsOf(events), ["Connected", "Disconnected"])
      }))
  })

  describe("timers", () => {
    it.effect("a keep-alive goes out after keepAliveMillis of silence on our side", () =>
      Effect.gen(function*() {
        const { remote, send } = yield* connected()
        const keepAlives = () => remote.received.filter((m) => m._tag === "KeepAlive").length
        yield* remote.send([{ _tag: "KeepAlive" }]) // the peer talking does not count
        yield* TestClock.adjust(19_999)
        assert.strictEqual(keepAlives(), 0, "not yet")
        yield* TestClock.adjust(1)
        assert.strictEqual(keepAlives(), 1, "at keepAliveMillis")

        // We send something at 25 s: the next keep-alive is due 20 s after it.
        yield* TestClock.adjust(5_000)
        yield* send([{ _tag: "Interested" }])
        assert.strictEqual(remote.received.at(-1)?._tag, "Interested")
        yield* TestClock.adjust(19_999)
        assert.strictEqual(keepAlives(), 1, "not 20 s after the last keep-alive")
        yield* TestClock.adjust(1)
        assert.strictEqual(keepAlives(), 2, "20 s after the last message")
        assert.deepStrictEqual(tagsOf(remote.received), [
          "Handshake",
          "HaveNone",
          "KeepAlive",
          "Interested",
          "KeepAlive"
        ])
      }))

    it.effect("an idle peer is dropped after idleTimeoutMillis; anything it sends restarts the clock", () =>
      Effect.gen(function*() {
        const { remote, fiber, events } = yield* connected()
        yield* TestClock.adjust(30_000)
        yield* remote.send([{ _tag: "KeepAlive" }])
        yield* settle
        yield* TestClock.adjust(59_999)
        assert.isFalse(isDone(fiber), "not yet: our own keep-alives do not count, theirs does")
        assert.isTrue(remote.received.some((m) => m._tag === "KeepAlive"), "we did send keep-alives meanwhile")
        yield* TestClock.adjust(1)
        assert.isTrue(isDone(fiber), "60 s after the peer's last message")
        const outcome = yield* Fiber.join(fiber)
        assert.deepStrictEqual(outcome, { handshaken: true, reason: "Idle", detail: `peer ${peer}: silent for 60 s` })
        const disconnected = ofTag(events, "Disconnected")
        assert.deepStrictEqual(disconnected, [{
          _tag: "Disconnected",
          peer,
          reason: outcome.reason,
          detail: outcome.detail,
          released: [],
          uploaded: 0
        }])
        yield* settle
        assert.isTrue(remote.closed())
      }))

    it.effect("ticks once a second; a request unanswered for requestTimeoutMillis is released once", () =>
      Effect.gen(function*() {
        const { remote, send, events } = yield* connected()
        const r = request(1, 0)
        yield* send([r])
        assert.deepStrictEqual(remote.received.at(-1), r)

        yield* TestClock.adjust(9_999)
        const early = ofTag(events, "Tick")
        assert.strictEqual(early.length, 9)
        assert.isTrue(early.every((t) => t.released.length === 0 && t.peer === peer))
        yield* TestClock.adjust(1)
        const ticks = ofTag(events, "Tick")
        assert.strictEqual(ticks.length, 10)
        assert.deepStrictEqual(ticks[9]!.released.map(requestOnly), [requestOnly(r)])
        assert.isFalse(ticks[9]!.snubbing)
        yield* TestClock.adjust(5_000)
        assert.isTrue(ofTag(events, "Tick").slice(10).every((t) => t.released.length === 0), "released once")
        // A late answer to an expired request is not passed on.
        const before = events.length
        yield* remote.send([blockOf(r)])
        yield* settle
        assert.strictEqual(ofTag(events.slice(before), "Messages").length, 0)
      }))
  })

  describe("requests", () => {
    it.effect("answered blocks are passed on; Disconnected carries the outstanding ones", () =>
      Effect.gen(function*() {
        const { remote, send, fiber, events } = yield* connected()
        const [r1, r2, r3] = [request(2, 0), request(2, 1), request(3, 0)]
        yield* send([{ _tag: "Interested" }, r1!, r2!, r3!])
        assert.deepStrictEqual(remote.received.slice(-4), [{ _tag: "Interested" }, r1, r2, r3])
        yield* remote.send([blockOf(r2!)])
        yield* settle
        const messages = ofTag(events, "Messages")
        assert.strictEqual(messages.length, 1)
        assert.deepStrictEqual(messages[0]!.messages, [blockOf(r2!)])
        assert.deepStrictEqual(messages[0]!.released, [])

        yield* remote.close
        yield* settle
        assert.isTrue(isDone(fiber))
        const outcome = yield* Fiber.join(fiber)
        assert.isTrue(outcome.handshaken)
        const disconnected = ofTag(events, "Disconnected")
        assert.strictEqual(disconnected.length, 1)
        assert.strictEqual(disconnected[0]!.detail, outcome.detail)
        assert.deepStrictEqual(disconnected[0]!.released.map(requestOnly), [requestOnly(r1!), requestOnly(r3!)])
      }))

    it.effect("a choke releases every outstanding request; blocks sent after it are dropped", () =>
      Effect.gen(function*() {
        const { remote, send, fiber, events } = yield* connected()
        const [r1, r2] = [request(0, 0), request(0, 1)]
        yield* send([r1!, r2!])
        yield* remote.send([{ _tag: "Choke" }])
        yield* settle
        const messages = ofTag(events, "Messages")
        assert.strictEqual(messages.length, 1)
        assert.deepStrictEqual(messages[0]!.messages, [{ _tag: "Choke" }])
        assert.deepStrictEqual(messages[0]!.released.map(requestOnly), [requestOnly(r1!), requestOnly(r2!)])
        yield* remote.send([blockOf(r1!)])
        yield* settle
        assert.strictEqual(ofTag(events, "Messages").length, 1, "an unrequested block is not passed on")
        assert.isFalse(isDone(fiber), "one stray block is tolerated")
      }))

    it.effect("a Cancel cancels its Request, even in the same outbox batch", () =>
      Effect.gen(function*() {
        const { remote, send, events } = yield* connected()
        const [r1, r2] = [request(5, 0), request(6, 0)]
        yield* send([r1!])
        yield* send([{ _tag: "Cancel", ...requestOnly(r1!) }])
        // The Orchestrator asks for a block and cancels it before the writer ran.
        yield* send([r2!, { _tag: "Cancel", ...requestOnly(r2!) }])
        assert.deepStrictEqual(tagsOf(remote.received).slice(-4), ["Request", "Cancel", "Request", "Cancel"])
        // The peer sends them anyway: neither is passed on as ours.
        yield* remote.send([blockOf(r1!), blockOf(r2!)])
        yield* settle
        assert.deepStrictEqual(ofTag(events, "Messages"), [])
        // Nor does either time out later (it is not outstanding).
        yield* TestClock.adjust(settings.requestTimeoutMillis)
        assert.isTrue(ofTag(events, "Tick").every((t) => t.released.length === 0))
      }))

    it.effect("a Have goes to the peer and lets it ask for the piece", () =>
      Effect.gen(function*() {
        const { remote, send } = yield* connected()
        yield* send([{ _tag: "Unchoke" }])
        yield* remote.send([request(3, 0)])
        yield* settle
        assert.notInclude(tagsOf(remote.received), "Piece", "asked before we had it: not served")
        yield* send([{ _tag: "Have", index: 3 }])
        assert.deepStrictEqual(remote.received.flatMap((m) => m._tag === "Have" ? [m.index] : []), [3])
        // We have piece 3 now as far as the session knows: its request is served.
        yield* remote.send([request(3, 0)])
        yield* settle
        assert.deepStrictEqual(tagsOf(remote.received).slice(-1), ["Piece"])
      }))

    it.effect("a Disconnect command sends what precedes it and ends the session", () =>
      Effect.gen(function*() {
        const { remote, send, fiber, events } = yield* connected()
        const r = request(4, 0)
        yield* send([r])
        yield* send([
          { _tag: "NotInterested" },
          { _tag: "Disconnect", reason: "Banned", detail: "sent corrupt data" },
          { _tag: "Interested" }
        ])
        assert.isTrue(isDone(fiber))
        const outcome = yield* Fiber.join(fiber)
        assert.deepStrictEqual(outcome, {
          handshaken: true,
          reason: "Banned",
          detail: `peer ${peer}: sent corrupt data`
        })
        assert.deepStrictEqual(tagsOf(remote.received).slice(-2), ["Request", "NotInterested"])
        assert.isTrue(remote.closed())
        assert.deepStrictEqual(ofTag(events, "Disconnected")[0]!.released.map(requestOnly), [requestOnly(r)])
      }))

    it.effect("interrupting the session (torrent stopped) closes the socket", () =>
      Effect.gen(function*() {
        const { remote, fiber, events } = yield* connected()
        // (No Disconnected event then: the Orchestrator is stopping too.)
        yield* Fiber.interrupt(fiber)
        yield* settle
        assert.isTrue(remote.closed())
        assert.deepStrictEqual(tagsOf(events), ["Connected"])
      }))
  })
  describe("uploads", () => {
    it.effect("requests are rejected while we choke, served from disk once we unchoke", () =>
      Effect.gen(function*() {
        const { remote, send, disk, fiber, events } = yield* connected(undefined, [0, 7])
        assert.deepStrictEqual(tagsOf(remote.received), ["Handshake", "Bitfield"])
        const bitfield = remote.received[1]
        assert.deepStrictEqual(bitfield?._tag === "Bitfield" ? [...bitfield.bytes] : [], [0b1000_0001])

        const asked = { index: 0, begin: blockSize, length: blockSize }
        yield* remote.send([{ _tag: "Request", ...asked }])
        yield* settle
        assert.deepStrictEqual(remote.received.at(-1), { _tag: "RejectRequest", ...asked }, "we choke it")

        yield* send([{ _tag: "Unchoke" }])
        const last = { index: 7, begin: 0, length: lastPieceLength }
        const missing = { index: 3, begin: 0, length: blockSize }
        yield* remote.send([
          { _tag: "Request", ...asked },
          { _tag: "Request", ...missing },
          { _tag: "Request", ...last }
        ])
        yield* settle
        assert.deepStrictEqual(disk.reads, [asked, last])
        const pieces = remote.received.filter((m) => m._tag === "Piece")
        assert.deepStrictEqual(pieces, [
          { _tag: "Piece", ...({ index: 0, begin: blockSize }), block: data.subarray(blockSize, 2 * blockSize) },
          { _tag: "Piece", index: 7, begin: 0, block: data.subarray(7 * pieceLength) }
        ])
        assert.isTrue(
          remote.received.some((m) => m._tag === "RejectRequest" && m.index === 3),
          "a piece we do not have is rejected"
        )
        yield* TestClock.adjust(1000)
        assert.strictEqual(ofTag(events, "Tick")[0]!.uploaded, blockSize + lastPieceLength)

        // A request past the end of a piece is a protocol violation.
        yield* remote.send([{ _tag: "Request", index: 7, begin: 0, length: lastPieceLength + 1 }])
        yield* settle
        const outcome = yield* Fiber.join(fiber)
        assert.strictEqual(outcome.reason, "ProtocolViolation")
        assert.include(outcome.detail, "out of range")
      }))

    it.effect("bytes served since the last tick reach the host when the session ends, not lost with it", () =>
      Effect.gen(function*() {
        const { remote, send, fiber, events } = yield* connected(undefined, [0])
        yield* send([{ _tag: "Unchoke" }])
        yield* remote.send([{ _tag: "Request", index: 0, begin: 0, length: blockSize }])
        yield* settle
        assert.strictEqual(remote.received.filter((m) => m._tag === "Piece").length, 1)
        yield* send([{ _tag: "Disconnect", reason: "Dropped", detail: "done with it" }])
        yield* Fiber.join(fiber)
        assert.deepStrictEqual(ofTag(events, "Tick"), [], "no tick came in between")
        assert.strictEqual(ofTag(events, "Disconnected")[0]!.uploaded, blockSize)
      }))
  })
})
