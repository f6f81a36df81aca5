/**
 * uTP (BEP 29): the packet codec, and two endpoints over the in-memory UDP
 * network under TestClock: transfers both ways through loss, duplication,
 * reordering and delay arrive byte for byte; LEDBAT keeps the queueing
 * delay of a rate-limited path near its target and shrinks the window when
 * delay is added; dials to nobody time out, to a closed port are refused;
 * the DHT's datagrams share the socket; `prefer` races uTP and TCP, so a
 * peer without uTP costs 250 ms, not a timeout. And whole managers (the testing
 * Swarm) under `utp: "only"` over a lossy network: PeerSession, the Monitor
 * and the torrent run over uTP unchanged, the same run every time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Queue, Random, Result } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import * as DatagramSocket from "effect/socket/DatagramSocket"
import * as Socket from "effect/socket/Socket"
import { TestClock } from "effect/testing"
import * as MemoryNetwork from "../../src/peer/MemoryNetwork.ts"
import * as MemoryUdp from "../../src/peer/MemoryUdp.ts"
import { type Connection, Network } from "../../src/peer/Network.ts"
import * as Utp from "../../src/peer/Utp.ts"
import { loopbackMss, mss, UtpConnection } from "../../src/peer/UtpConnection.ts"
import * as UtpPacket from "../../src/protocol/Utp.ts"
import { Swarm } from "../../src/testing.ts"

describe("Utp packets", () => {
  it("round-trips a header with a selective ack, and tells uTP from KRPC by the first byte", () => {
    const packet = new Uint8Array(UtpPacket.headerLength(4) + 3)
    UtpPacket.write(packet, UtpPacket.Type.Data, 0xbeef, 4_000_000_000, 12345, 65536, 0xfffe, 7, 4)
    packet[UtpPacket.baseHeaderLength + 2] = 0b101 // acks 9 and 11
    packet[UtpPacket.baseHeaderLength + 5] = 0x80 // acks 40
    packet.set([1, 2, 3], UtpPacket.headerLength(4))
    const decoded = Result.getOrThrow(UtpPacket.decode(packet))
    assert.strictEqual(decoded.type, UtpPacket.Type.Data)
    assert.strictEqual(decoded.connectionId, 0xbeef)
    assert.strictEqual(decoded.timestamp, 4_000_000_000)
    assert.strictEqual(decoded.timestampDifference, 12345)
    assert.strictEqual(decoded.windowSize, 65536)
    assert.strictEqual(decoded.seq, 0xfffe)
    assert.strictEqual(decoded.ack, 7)
    assert.deepStrictEqual(decoded.sacked, [9, 11, 40])
    assert.deepStrictEqual([...decoded.payload], [1, 2, 3])
    assert.isTrue(UtpPacket.isUtp(packet))
    assert.isFalse(
      UtpPacket.isUtp(new TextEncoder().encode("d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe"))
    )
  })

  it("carries the large-payload offer after empty extension bits (libutp drops a first extension above 2)", () => {
    const syn = new Uint8Array(UtpPacket.baseHeaderLength + UtpPacket.largeExtensionLength)
    UtpPacket.write(syn, UtpPacket.Type.Syn, 9, 0, 0, 65536, 1, 0, 0, 16384)
    assert.strictEqual(syn[1], 2, "the first extension: extension bits")
    const decoded = Result.getOrThrow(UtpPacket.decode(syn))
    assert.strictEqual(decoded.largePayload, 16384)
    assert.strictEqual(decoded.payloadOffset, syn.length)
  })

  it("names what is wrong with a bad packet", () => {
    const good = new Uint8Array(UtpPacket.baseHeaderLength)
    UtpPacket.write(good, UtpPacket.Type.State, 1, 0, 0, 0, 0, 0, 0)
    const reason = (bytes: Uint8Array) => {
      const decoded = UtpPacket.decode(bytes)
      return Result.isFailure(decoded) ? decoded.failure.reason : "ok"
    }
    const edit = (f: (b: Uint8Array) => void, extra = 0) => {
      const b = new Uint8Array(good.length + extra)
      b.set(good)
      f(b)
      return b
    }
    assert.strictEqual(reason(good), "ok")
    assert.strictEqual(reason(good.subarray(0, 19)), "TooShort")
    assert.strictEqual(reason(edit((b) => (b[0] = 0x22))), "Version")
    assert.strictEqual(reason(edit((b) => (b[0] = 0x51))), "Type")
    assert.strictEqual(reason(edit((b) => (b[1] = 1))), "Extension")
    assert.strictEqual(
      reason(edit((b) => {
        b[1] = 1
        b[21] = 3
      }, 5)),
      "SackLength"
    )
    assert.strictEqual(reason(edit(() => {}, 1)), "Payload")
    const error = UtpPacket.decode(good.subarray(0, 5))
    assert.isTrue(Result.isFailure(error) && error.failure.message.includes("shorter than the 20-byte header"))
  })
})

/** Deterministic bytes. */
const data = (length: number, seed: number) =>
  Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 7 + (i >> 9)) & 0xff)

const concat = (chunks: ReadonlyArray<Uint8Array>) => new Uint8Array(Buffer.concat(chunks))

/** Everything read from `socket` until the peer closes. */
const readAll = (pull: Effect.Effect<ReadonlyArray<Uint8Array>, Socket.SocketError>) =>
  Effect.gen(function*() {
    const chunks: Array<Uint8Array> = []
    yield* pull.pipe(
      Effect.tap((read) => Effect.sync(() => chunks.push(...read.map((c) => c.slice())))),
      Effect.forever,
      Effect.catchReason("SocketError", "SocketCloseError", () => Effect.void)
    )
    return concat(chunks)
  })

/** Writes `bytes` in pieces of varied sizes (as peer messages come), then closes. */
const writeAll = (socket: Socket.Socket, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const writer = yield* socket.writer
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const size = [17, 16397, 5, 3000, 68, 1400][i % 6]!
      yield* writer.write(bytes.slice(at, at + size))
      at += size
    }
  })

/** Two endpoints, "10.0.0.1" and "10.0.0.2", over `link`. */
const endpoints = (link: MemoryUdp.Options["link"]) =>
  Effect.gen(function*() {
    const udp = yield* MemoryUdp.makeNetworkWith({ link })
    const a = yield* Utp.makeEndpoint(yield* udp.socket("10.0.0.1", 6881))
    const b = yield* Utp.makeEndpoint(yield* udp.socket("10.0.0.2", 6881))
    const incoming = yield* Queue.unbounded<Connection>()
    yield* b.accept((connection) => Queue.offerUnsafe(incoming, connection))
    return { a, b, incoming, udp }
  })

/** Advances the clock in `stepMillis` steps until `fiber` ends (at most `maxSteps`). */
const runToEnd = <A, E>(fiber: Fiber.Fiber<A, E>, stepMillis: number, maxSteps: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < maxSteps && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust(stepMillis)
    assert.isDefined(fiber.pollUnsafe(), `not done after ${(maxSteps * stepMillis) / 1000} s`)
    return yield* Fiber.join(fiber)
  })

describe("Utp endpoints (TestClock, in-memory UDP)", () => {
  it.effect("a transfer both ways survives loss, duplication, reordering and delay, byte for byte", () =>
    Effect.gen(function*() {
      const { a, incoming } = yield* endpoints(() => ({
        latencyMillis: 20,
        jitterMillis: 30,
        loss: 0.05,
        duplicate: 0.05
      }))
      const up = data(300_000, 1)
      const down = data(120_000, 2)
      const transfer = yield* Effect.gen(function*() {
        const dialled = a.connect({ host: "10.0.0.2", port: 6881 }, 10_000)
        const pullA = yield* Socket.readerBytes(dialled)
        const accepted = (yield* Queue.take(incoming)).socket
        const pullB = yield* Socket.readerBytes(accepted)
        const [, , gotByB, gotByA] = yield* Effect.all([
          writeAll(dialled, up).pipe(Effect.andThen((yield* dialled.writer).write(new Socket.CloseEvent()))),
          writeAll(accepted, down).pipe(Effect.andThen((yield* accepted.writer).write(new Socket.CloseEvent()))),
          readAll(pullB),
          readAll(pullA)
        ], { concurrency: "unbounded" })
        return { gotByA, gotByB }
      }).pipe(Effect.scoped, Effect.forkChild)
      const { gotByA, gotByB } = yield* runToEnd(transfer, 50, 20_000)
      assert.strictEqual(gotByB.length, up.length)
      assert.isTrue(Buffer.from(gotByB).equals(Buffer.from(up)))
      assert.strictEqual(gotByA.length, down.length)
      assert.isTrue(Buffer.from(gotByA).equals(Buffer.from(down)))
    }).pipe(Random.withSeed(7)))

  it.effect("LEDBAT holds a rate-limited path's queueing delay near 100 ms, and shrinks the window when delay is added", () =>
    Effect.gen(function*() {
      let latencyMillis = 10
      const { a, incoming } = yield* endpoints((from) =>
        from === "10.0.0.1" ? { latencyMillis, bytesPerSecond: 1_000_000 } : { latencyMillis }
      )
      const dialled = a.connect({ host: "10.0.0.2", port: 6881 }, 10_000)
      yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
        yield* Effect.asVoid(Socket.readerBytes(dialled))
        const writer = yield* dialled.writer
        const chunk = data(16384, 3)
        while (true) yield* writer.write(chunk.slice())
      })))
      yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
        const pull = yield* Socket.readerBytes((yield* Queue.take(incoming)).socket)
        return yield* Effect.forever(pull)
      })))
      const windows: Array<number> = []
      const delays: Array<number> = []
      for (let second = 0; second < 30; second++) {
        for (let i = 0; i < 20; i++) yield* TestClock.adjust(50)
        const stats = a.stats()[0]!
        windows.push(stats.window)
        delays.push(stats.delay)
      }
      // Without LEDBAT the window would fill the 1 MiB send buffer: a second of queue at 1 MB/s.
      const steady = delays.slice(10)
      for (const delay of steady) assert.isTrue(delay > 30_000 && delay < 250_000, `queueing delay ${delay} µs`)
      const before = windows[windows.length - 1]!
      assert.isTrue(before < 300_000, `window ${before}`)
      latencyMillis = 400
      for (let i = 0; i < 200; i++) yield* TestClock.adjust(50)
      const after = a.stats()[0]!.window
      assert.isTrue(after < before / 2, `window ${before} before the added delay, ${after} 10 s after`)
    }).pipe(Random.withSeed(3)))

  it.effect("packets carry up to 16 KiB between two ends on loopback, through loss; 1400 bytes to any other host", () =>
    Effect.gen(function*() {
      const udp = yield* MemoryUdp.makeNetworkWith({ link: () => ({ latencyMillis: 5, loss: 0.05 }) })
      /** An endpoint on `host` whose largest datagram sent is recorded. */
      const endpoint = Effect.fnUntraced(function*(host: string) {
        const socket = yield* udp.socket(host, 6881)
        const writer = yield* socket.writer
        const sent = { largest: 0 }
        const record = (
          datagram: DatagramSocket.OutgoingDatagram
        ) => (sent.largest = Math.max(sent.largest, datagram.payload.length))
        const spied = DatagramSocket.make({
          reader: socket.reader,
          writer: Effect.succeed({
            write: (datagram) => Effect.andThen(Effect.sync(() => record(datagram)), writer.write(datagram)),
            writeAll: (datagrams) =>
              Effect.andThen(Effect.sync(() => datagrams.forEach(record)), writer.writeAll(datagrams))
          })
        })
        const incoming = yield* Queue.unbounded<Connection>()
        const utp = yield* Utp.makeEndpoint(spied)
        yield* utp.accept((connection) => Queue.offerUnsafe(incoming, connection))
        return { utp, incoming, sent }
      })
      const upload = (from: Utp.Endpoint, to: { incoming: Queue.Queue<Connection> }, host: string) =>
        Effect.gen(function*() {
          const bytes = data(300_000, 3)
          const dialled = from.connect({ host, port: 6881 }, 10_000)
          yield* Effect.asVoid(Socket.readerBytes(dialled)) // the dial
          const pull = yield* Socket.readerBytes((yield* Queue.take(to.incoming)).socket)
          const [, got] = yield* Effect.all([
            writeAll(dialled, bytes).pipe(Effect.andThen((yield* dialled.writer).write(new Socket.CloseEvent()))),
            readAll(pull)
          ], { concurrency: "unbounded" })
          assert.isTrue(Buffer.from(got).equals(Buffer.from(bytes)), `${host}: byte for byte`)
        }).pipe(Effect.scoped, Effect.forkChild)

      const a = yield* endpoint("127.0.0.1")
      const b = yield* endpoint("127.0.0.2")
      const c = yield* endpoint("10.0.0.3")
      yield* runToEnd(yield* upload(a.utp, b, "127.0.0.2"), 50, 4000)
      assert.strictEqual(a.sent.largest, UtpPacket.baseHeaderLength + loopbackMss)
      yield* runToEnd(yield* upload(c.utp, a, "127.0.0.1"), 50, 4000)
      assert.strictEqual(c.sent.largest, UtpPacket.baseHeaderLength + mss)
    }).pipe(Random.withSeed(5)))

  it("on loopback, a SYN without the large-payload offer (libutp, libtorrent) gets 1400-byte packets", () => {
    const sent: Array<Uint8Array> = []
    const syn = UtpPacket.emptyHeader()
    syn.type = UtpPacket.Type.Syn
    syn.connectionId = 7
    const connection = new UtpConnection(8, 7, 100, (packet) => sent.push(packet), () => 0, true, syn)
    connection.write(new Uint8Array(5 * mss))
    connection.ackIfNeeded()
    const header = UtpPacket.emptyHeader()
    const sizes = sent.map((packet) => {
      assert.isUndefined(UtpPacket.read(packet, header))
      assert.strictEqual(header.largePayload, 0, "no offer made back")
      return packet.length - header.payloadOffset
    })
    assert.isAtLeast(sizes.length, 2)
    assert.strictEqual(Math.max(...sizes), mss)
  })

  it.effect("a dial to no endpoint times out; to a port with no acceptor it is refused", () =>
    Effect.gen(function*() {
      const udp = yield* MemoryUdp.makeNetwork
      const a = yield* Utp.makeEndpoint(yield* udp.socket("10.0.0.1", 6881))
      yield* Utp.makeEndpoint(yield* udp.socket("10.0.0.3", 6881)) // accepts nothing
      const outcome = (host: string) =>
        Effect.scoped(Effect.asVoid(Socket.readerBytes(a.connect({ host, port: 6881 }, 5_000)))).pipe(
          Effect.flip,
          Effect.map((error) => (error.reason as Socket.SocketOpenError).cause as Utp.UtpError),
          Effect.forkChild
        )
      const silent = yield* outcome("10.0.0.9")
      const refused = yield* outcome("10.0.0.3")
      yield* TestClock.adjust(10)
      assert.strictEqual((yield* Fiber.join(refused)).reason, "Refused")
      yield* TestClock.adjust(4_900)
      assert.isUndefined(silent.pollUnsafe())
      yield* TestClock.adjust(200)
      assert.strictEqual((yield* Fiber.join(silent)).reason, "Timeout")
    }))

  it.effect("datagrams that are not uTP (the DHT's) go to the endpoint's datagram socket, and it sends on the same port", () =>
    Effect.gen(function*() {
      const udp = yield* MemoryUdp.makeNetwork
      const a = yield* Utp.makeEndpoint(yield* udp.socket("10.0.0.1", 6881))
      const other = yield* udp.socket("10.0.0.2", 7000)
      const otherReader = yield* other.reader
      const otherWriter = yield* other.writer
      const dht = yield* a.datagram.reader
      const krpc = new TextEncoder().encode("d1:y1:qe")
      yield* otherWriter.write({ payload: krpc, address: NetAddress.inetAddressFromIpStringUnsafe("10.0.0.1", 6881) })
      const [received] = yield* dht.pull
      assert.deepStrictEqual([...received.payload], [...krpc])
      yield* (yield* a.datagram.writer).write({ payload: krpc, address: received.address })
      const [back] = yield* otherReader.pull
      assert.strictEqual(back.address.port, 6881)
    }))
})

describe("Utp.make, prefer (TestClock, in-memory network)", () => {
  it.effect(
    "dials uTP with a 250 ms head start: a peer without uTP is reached over TCP then, one with uTP over uTP alone",
    () =>
      Effect.gen(function*() {
        const memory = yield* MemoryNetwork.make()
        const networkOf = (host: string) => Effect.provide(Effect.service(Network), memory.layer(host))
        const ours = Utp.make(yield* networkOf("10.0.0.1"), "prefer")
        yield* ours.listen({ port: 6881 }, () => {}) // opens our uTP endpoint on UDP 6881
        const tcpOnly = yield* Queue.unbounded<Connection>()
        yield* (yield* networkOf("10.0.0.2")).listen({ port: 6881 }, (c) => Queue.offerUnsafe(tcpOnly, c))
        const both = yield* Queue.unbounded<Connection>()
        yield* Utp.make(yield* networkOf("10.0.0.3"), "prefer").listen(
          { port: 6881 },
          (c) => Queue.offerUnsafe(both, c)
        )

        /** Dials `host`; the Deferred is done once the socket opened (it stays open). */
        const dial = (host: string) =>
          Effect.gen(function*() {
            const opened = yield* Deferred.make<void, Socket.SocketError>()
            yield* ours.connect({ host, port: 6881 }, 10_000).pipe(
              Effect.flatMap(Socket.readerBytes),
              Effect.andThen(Deferred.succeed(opened, undefined)),
              Effect.andThen(Effect.never),
              Effect.catch((error) => Deferred.fail(opened, error)),
              Effect.scoped,
              Effect.forkScoped
            )
            return opened
          })

        // No UDP socket on 10.0.0.2: the SYN goes unanswered; TCP at 250 ms, not after uTP's timeout.
        const toTcpOnly = yield* dial("10.0.0.2")
        yield* TestClock.adjust(249)
        assert.isFalse(yield* Deferred.isDone(toTcpOnly), "TCP waits out uTP's head start")
        assert.strictEqual(yield* Queue.size(tcpOnly), 0)
        yield* TestClock.adjust(1)
        yield* Deferred.await(toTcpOnly)
        assert.strictEqual(yield* Queue.size(tcpOnly), 1)

        // 10.0.0.3 answers the SYN: the connection is uTP's (from our UDP port), and TCP is never dialled.
        const toBoth = yield* dial("10.0.0.3")
        yield* TestClock.adjust(100)
        assert.isTrue(yield* Deferred.isDone(toBoth), "opened over uTP within the head start")
        yield* TestClock.adjust(1000)
        const accepted = yield* Queue.takeAll(both)
        assert.deepStrictEqual(accepted.map((c) => [c.host, c.port]), [["10.0.0.1", 6881]])
      }),
    10_000
  ) // bounds the awaits
})

describe("a swarm over uTP (TestClock, in-memory network)", () => {
  it.live(
    "a seeder and three leechers dialling only uTP, through 3 % loss, duplication and jitter: the same run twice",
    () =>
      Effect.gen(function*() {
        const torrent = yield* Swarm.torrent({ size: 1024 * 1024 + 4321, pieceLength: 32 * 1024 })
        const options = {
          torrent,
          seeders: 1,
          leechers: 3,
          settings: { utp: "only" as const },
          udpLink: () => ({ latencyMillis: 15, jitterMillis: 10, loss: 0.03, duplicate: 0.02 })
        }
        const runs = [yield* Swarm.run(options), yield* Swarm.run(options)]
        for (const run of runs) {
          for (const data of run.data) assert.isTrue(Buffer.from(data).equals(torrent.data))
          assert.deepStrictEqual(run.events, runs[0]!.events)
        }
        const connected = runs[0]!.events.filter((e) => e.event._tag === "PeerConnected")
        assert.isAtLeast(connected.length, 3)
      }),
    120_000
  )
})
