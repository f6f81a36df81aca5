/**
 * Utp: peer connections over uTP (BEP 29), as ordinary `Socket.Socket`s, so
 * that PeerSession, Encryption and the Monitor run over them unchanged.
 *
 * An `Endpoint` owns one UDP socket: it reads batches of datagrams, gives
 * uTP packets to their `UtpConnection` (by connection id and address) and
 * everything else (the DHT's KRPC, bencoded: 'd') to a `DatagramSocket` of
 * its own, so the DHT shares the port as libtorrent does; a SYN opens an
 * incoming connection; a packet for no connection is answered with RESET.
 * After each batch every connection sends the ack it owes (one per batch,
 * not per packet), and the packets of the batch go out in one `writeAll`.
 * A timer every `tickMillis` resends what timed out.
 *
 * `make(network, options)` decorates a `Network`: `listen` listens on TCP
 * as before and opens the endpoint on the same UDP port (without uTP when
 * that port is taken: a warning); `datagram` bound to that port is the
 * endpoint's non-uTP side; `connect` dials by `policy`:
 *
 * - `prefer`: uTP and TCP raced, uTP with a head start: the uTP SYN goes
 *   out at once, TCP is dialled `tcpDelayMillis` (250 ms, RFC 8305's
 *   connection attempt delay) later or as soon as uTP is refused, and the
 *   first connection to open is the one kept (the other is closed, a uTP
 *   dial still waiting is reset). uTP first, as libtorrent prefers it: a
 *   peer reached over uTP is cheaper to the network (it yields to TCP
 *   traffic) and passes NATs TCP does not; and with the head start it wins
 *   whenever the peer answers its SYN, at any round trip (TCP needs one
 *   too). Raced rather than tried in turn (libtorrent waits for its
 *   `utp_connect_timeout`, 3 s, which we did too): a peer without uTP, as
 *   aria2c, costs the dial 250 ms rather than 3 s.
 * - `only`: uTP only.
 * - `disable`: TCP only, no endpoint (the DHT has the port to itself).
 *
 * Incoming connections are accepted over both whatever the policy, and
 * handed to the same `onConnection`: the manager routes them by info-hash.
 * Connection ids are 16-bit and keyed with the address, so a clash is two
 * peers picking the same id, refused with RESET (1 in 65536).
 */
import { Clock, Deferred, Effect, Equal, Exit, Queue, Random, Result, Schema, Scope } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as NetAddress from "effect/net/NetAddress"
import * as DatagramSocket from "effect/socket/DatagramSocket"
import * as Socket from "effect/socket/Socket"
import * as Utp from "../protocol/Utp.ts"
import { type Address, type Connection, Network } from "./Network.ts"
import { UtpConnection } from "./UtpConnection.ts"

/** `prefer`: uTP, then TCP; `only`: uTP; `disable`: TCP. */
export type Policy = "prefer" | "only" | "disable"

export const policies: ReadonlyArray<Policy> = ["prefer", "only", "disable"]

export const tcpDelayMillis = 250
/**
 * A few windows of bursts, as libtorrent sizes its socket's buffers: lost
 * to a full buffer, a packet costs a retransmission and halves the window.
 */
const socketBuffers = { kernelBytes: 4 * 1024 * 1024, datagrams: 4096 }
const tickMillis = 50

export class UtpError extends Schema.TaggedError<UtpError>()("UtpError", {
  peer: Schema.String,
  reason: Schema.Literals(["Timeout", "Refused", "Reset", "NoEndpoint"])
}) {
  override get message() {
    return `uTP peer ${this.peer} ${reasons[this.reason]}`
  }
}

const reasons: Record<UtpError["reason"], string> = {
  Timeout: "did not answer",
  Refused: "refused the connection (RESET)",
  Reset: "reset the connection",
  NoEndpoint: "cannot be dialled: no uTP socket is open (its UDP port was taken)"
}

/** What a connection's congestion control is at (tests, diagnostics). */
export interface Stats {
  readonly peer: string
  readonly window: number
  /** Queueing delay of the last ack (µs). */
  readonly delay: number
  readonly rtt: number
}

export interface Endpoint {
  /** The UDP port bound. */
  readonly port: number
  /** Whether the socket is IPv6 (else IPv4). */
  readonly ipv6: boolean
  /** A uTP connection to `address`, dialled when its reader is acquired (failing after `timeoutMillis`). */
  readonly connect: (address: Address, timeoutMillis: number) => Socket.Socket
  /** Incoming connections go to `onConnection` while the scope is open (refused with RESET otherwise). */
  readonly accept: (onConnection: (connection: Connection) => void) => Effect.Effect<void, never, Scope.Scope>
  /** The datagrams that are not uTP, and the same socket to send on (the DHT's). */
  readonly datagram: DatagramSocket.DatagramSocket
  readonly stats: () => ReadonlyArray<Stats>
}

/** `inner` with uTP by `policy` (see the module's comment). */
export const make = (inner: Network["Service"], policy: Policy): Network["Service"] => {
  if (policy === "disable") return inner
  let endpoint: Endpoint | undefined
  return Network.of({
    connect: (address, timeoutMillis, options) =>
      Effect.suspend(() => {
        if (policy === "only") {
          return Effect.succeed(endpoint === undefined ? noEndpoint(address) : endpoint.connect(address, timeoutMillis))
        }
        const tcp = inner.connect(address, timeoutMillis, options)
        return endpoint === undefined ? tcp : Effect.succeed(race(endpoint.connect(address, timeoutMillis), tcp))
      }),
    listen: (options, onConnection) =>
      Effect.gen(function*() {
        const port = yield* inner.listen(options, onConnection)
        // The address peers are taken on, or every IPv4 one (uTP over IPv6 only with an IPv6 `listenHost`).
        const host = options.host ?? "0.0.0.0"
        const ipv6Only = host.includes(":")
        const opened = yield* inner.datagram({ bind: { host, port }, ipv6Only, buffers: socketBuffers }).pipe(
          Effect.flatMap(makeEndpoint),
          Effect.result
        )
        if (Result.isFailure(opened)) {
          yield* Effect.logWarning(`no uTP: cannot open UDP port ${port}: ${opened.failure.message}`)
          return port
        }
        endpoint = opened.success
        yield* Effect.addFinalizer(() => Effect.sync(() => (endpoint = undefined)))
        yield* endpoint.accept(onConnection)
        return port
      }),
    datagram: (options) =>
      endpoint !== undefined && options.connect === undefined && options.bind?.port === endpoint.port &&
        options.bind.host.includes(":") === endpoint.ipv6
        ? Effect.succeed(endpoint.datagram)
        : inner.datagram(options)
  })
}

const noEndpoint = (address: Address) =>
  Socket.make({
    reader: Effect.fail(
      new Socket.SocketError({
        reason: new Socket.SocketOpenError({
          kind: "Unknown",
          cause: new UtpError({ peer: `${address.host}:${address.port}`, reason: "NoEndpoint" })
        })
      })
    ),
    writer: Effect.succeed({ write: () => Effect.fail(hungUp()), writeAll: () => Effect.fail(hungUp()) })
  })

const hungUp = () => new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: 1006 }) })

/** An opened socket's reader and writer. */
interface Opened {
  readonly reader: Socket.Reader
  readonly writer: Socket.Writer
}

/**
 * `prefer`'s dial: `utp`, raced by `tcp` from `tcpDelayMillis` on (or from
 * uTP's failure); the first to open is the socket read and written, the
 * other is closed. Both failing is TCP's failure (the last one tried).
 */
const race = (utp: Socket.Socket, tcp: Effect.Effect<Socket.Socket>): Socket.Socket => {
  const chosen = Deferred.makeUnsafe<Socket.Writer, Socket.SocketError>()
  const reader = Effect.gen(function*() {
    // Each attempt in a scope of its own: the loser's closed at once, the winner's with the connection.
    const scope = yield* Effect.scope
    const utpScope = yield* Scope.fork(scope)
    const tcpScope = yield* Scope.fork(scope)
    const utpFailed = Deferred.makeUnsafe<void>()
    const open = (socket: Socket.Socket): Effect.Effect<Opened, Socket.SocketError, Scope.Scope> =>
      Effect.flatMap(socket.reader, (reader) => Effect.map(socket.writer, (writer) => ({ reader, writer })))
    const overUtp = open(utp).pipe(
      Scope.provide(utpScope),
      Effect.tapError((error) =>
        Effect.andThen(Effect.logDebug(`uTP: ${error.message}; TCP at once`), Deferred.succeed(utpFailed, undefined))
      ),
      Effect.map((opened) => ({ ...opened, loser: tcpScope }))
    )
    let tcpError: Socket.SocketError | undefined
    const overTcp = Deferred.await(utpFailed).pipe(
      Effect.timeoutOption(tcpDelayMillis),
      Effect.andThen(tcp),
      Effect.flatMap(open),
      Scope.provide(tcpScope),
      Effect.tapError((error) => Effect.sync(() => (tcpError = error))),
      Effect.map((opened) => ({ ...opened, loser: utpScope }))
    )
    const won = yield* Effect.race(overUtp, overTcp).pipe(
      Effect.mapError((error) => tcpError ?? error),
      Effect.onError(() => Deferred.fail(chosen, hungUp()))
    )
    yield* Scope.close(won.loser, Exit.void)
    yield* Deferred.succeed(chosen, won.writer)
    return won.reader
  })
  return Socket.make({
    reader,
    writer: Effect.succeed({
      write: (chunk) => Effect.flatMap(Deferred.await(chosen), (writer) => writer.write(chunk)),
      writeAll: (chunks) => Effect.flatMap(Deferred.await(chosen), (writer) => writer.writeAll(chunks))
    })
  })
}

interface Entry {
  readonly connection: UtpConnection
  readonly remote: NetAddress.InetAddress
}

/** An endpoint on `socket`, open while the scope is. */
export const makeEndpoint = Effect.fnUntraced(function*(socket: DatagramSocket.DatagramSocket) {
  const reader = yield* socket.reader
  const writer = yield* socket.writer
  const clock = yield* Clock.Clock
  // Ids and sequence numbers from Effect's Random, resolved once: a seeded run is the same run.
  const random = yield* Random.Random
  const random16 = () => Math.floor(random.nextDoubleUnsafe() * 0x10000)
  const now = () => clock.currentTimeMillisUnsafe()
  const entries = new Map<number, Entry>()
  // Bounded: with no DHT reading them, stray datagrams must not pile up.
  const others = yield* Queue.dropping<DatagramSocket.Datagram>(1024)
  let outbox: Array<DatagramSocket.OutgoingDatagram> = []
  let onIncoming: ((connection: Connection) => void) | undefined
  const header = Utp.emptyHeader()

  const flush = Effect.suspend(() => {
    if (outbox.length === 0) return Effect.void
    const batch = outbox as unknown as NonEmptyReadonlyArray<DatagramSocket.OutgoingDatagram>
    outbox = []
    // Lost like any datagram: the connections resend.
    return Effect.ignore(writer.writeAll(batch))
  })

  /** Connections that ended are forgotten; the others send the acks they owe. */
  const settle = () => {
    for (const [id, entry] of entries) {
      if (entry.connection.finished) entries.delete(id)
      else entry.connection.ackIfNeeded()
    }
  }

  const open = (recvId: number, sendId: number, remote: NetAddress.InetAddress, syn?: Utp.Header) => {
    const send = (payload: Uint8Array) => outbox.push({ payload, address: remote })
    const firstSeq = syn === undefined ? 1 : random16()
    const connection = new UtpConnection(recvId, sendId, firstSeq, send, now, isLoopback(remote), syn)
    entries.set(recvId, { connection, remote })
    return connection
  }

  const reset = (remote: NetAddress.InetAddress, h: Utp.Header) => {
    const packet = new Uint8Array(Utp.baseHeaderLength)
    Utp.write(packet, Utp.Type.Reset, h.connectionId, (now() * 1000) % 4294967296, 0, 0, 0, h.seq, 0)
    outbox.push({ payload: packet, address: remote })
  }

  const receive = (datagram: DatagramSocket.Datagram) => {
    const bytes = datagram.payload
    if (!Utp.isUtp(bytes)) return Queue.offerUnsafe(others, datagram)
    if (Utp.read(bytes, header) !== undefined) return // not a packet we can read: as if lost
    const remote = datagram.address
    if (header.type === Utp.Type.Syn) {
      const recvId = (header.connectionId + 1) & Utp.seqMask
      const known = entries.get(recvId)
      if (known !== undefined) {
        return sameAddress(known.remote, remote) ? known.connection.receive(bytes, header) : reset(remote, header)
      }
      if (onIncoming === undefined) return reset(remote, header)
      const connection = open(recvId, header.connectionId, remote, header)
      return onIncoming({ socket: socketOf({ connection }, Effect.void), ...hostAndPort(remote) })
    }
    const entry = entries.get(header.connectionId)
    if (entry !== undefined && sameAddress(entry.remote, remote)) return entry.connection.receive(bytes, header)
    if (header.type !== Utp.Type.Reset) reset(remote, header)
  }

  yield* reader.pull.pipe(
    Effect.flatMap((datagrams) =>
      Effect.suspend(() => {
        for (const datagram of datagrams) receive(datagram)
        settle()
        return flush
      })
    ),
    Effect.forever,
    Effect.forkScoped
  )
  yield* Effect.sleep(tickMillis).pipe(
    Effect.andThen(Effect.suspend(() => {
      for (const entry of entries.values()) entry.connection.tick()
      settle()
      return flush
    })),
    Effect.forever,
    Effect.forkScoped
  )
  // Whatever is still open when the endpoint closes is reset, so peers need not time out.
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      for (const entry of entries.values()) entry.connection.reset()
      entries.clear()
      return flush
    })
  )

  /**
   * A connection as a socket: its reader runs `opening` (the dial, which sets
   * `link.connection`) and closes the connection (FIN) when released.
   */
  const socketOf = (
    link: { connection: UtpConnection | undefined },
    opening: Effect.Effect<void, Socket.SocketError>
  ): Socket.Socket => {
    const closed = () =>
      new Socket.SocketError({
        reason: new Socket.SocketCloseError({ code: link.connection?.failure === undefined ? 1000 : 1006 })
      })
    const pull: Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError> = Effect.suspend(() => {
      const connection = link.connection!
      const bytes = connection.read()
      if (bytes !== undefined) {
        connection.ackIfNeeded() // owed when much of the window reopened
        return Effect.as(flush, [bytes] as const)
      }
      if (connection.isEnded) return Effect.fail(closed())
      return Effect.andThen(
        Effect.callback<void>((resume) => {
          // Checked again here: what came between the check above and now would be no wake-up.
          if (connection.readable) return resume(Effect.void)
          connection.onReadable = () => {
            connection.onReadable = undefined
            resume(Effect.void)
          }
          return Effect.sync(() => (connection.onReadable = undefined))
        }),
        pull
      )
    })
    const writable = (connection: UtpConnection) =>
      Effect.callback<void>((resume) => {
        // Acks read while the packets were flushed may have made room already.
        if (!connection.full) return resume(Effect.void)
        connection.onWritable = () => {
          connection.onWritable = undefined
          resume(Effect.void)
        }
        return Effect.sync(() => (connection.onWritable = undefined))
      })
    const encoder = new TextEncoder()
    const writeAll = (chunks: ReadonlyArray<Uint8Array | string>): Effect.Effect<void, Socket.SocketError> =>
      Effect.suspend(() => {
        const connection = link.connection
        if (connection === undefined || connection.state !== "Connected") return Effect.fail(closed())
        for (const chunk of chunks) connection.write(typeof chunk === "string" ? encoder.encode(chunk) : chunk)
        return connection.full ? Effect.andThen(flush, writable(connection)) : flush
      })
    const close = (released: boolean) =>
      Effect.suspend(() => {
        link.connection?.close(released)
        return flush
      })
    const writer: Socket.Writer = {
      write: (chunk) => Socket.isCloseEvent(chunk) ? close(false) : writeAll([chunk]),
      writeAll
    }
    return Socket.make({
      reader: Effect.acquireRelease(
        // Interruptible, as a TCP dial is: `prefer`'s race gives up the dial that lost.
        Effect.interruptible(
          Effect.as(opening, { pull, upgrade: Socket.SocketUpgradeError.unsupported } satisfies Socket.Reader)
        ),
        () => close(true)
      ),
      writer: Effect.succeed(writer)
    })
  }

  const connect = (address: Address, timeoutMillis: number): Socket.Socket => {
    const peer = `${address.host}:${address.port}`
    const failed = (reason: UtpError["reason"]) =>
      new Socket.SocketError({
        reason: new Socket.SocketOpenError({
          kind: reason === "Timeout" ? "Timeout" : "Unknown",
          cause: new UtpError({ peer, reason })
        })
      })
    const link: { connection: UtpConnection | undefined } = { connection: undefined }
    const dial = Effect.gen(function*() {
      const remote = NetAddress.inetAddressFromIpString(address.host, address.port)
      if (remote._tag === "Failure") return yield* failed("Refused")
      let recvId = random16()
      while (entries.has(recvId) || entries.has((recvId + 1) & Utp.seqMask)) recvId = (recvId + 1) & Utp.seqMask
      const connection = open(recvId, (recvId + 1) & Utp.seqMask, remote.success)
      const connected = yield* Deferred.make<void>()
      connection.onConnect = () => Deferred.doneUnsafe(connected, Effect.void)
      yield* flush
      const answered = yield* Deferred.await(connected).pipe(
        Effect.timeoutOption(timeoutMillis),
        // A dial given up (`prefer`'s race lost to TCP) leaves no connection behind to answer later.
        Effect.onInterrupt(() => Effect.sync(() => connection.reset()))
      )
      if (answered._tag === "None") {
        connection.reset()
        return yield* failed("Timeout")
      }
      if (connection.state !== "Connected") {
        return yield* failed(connection.failure === "Refused" ? "Refused" : "Timeout")
      }
      link.connection = connection
    })
    return socketOf(link, dial)
  }

  return {
    port: reader.address.port,
    ipv6: NetAddress.isInetAddressV6(reader.address),
    connect,
    accept: (onConnection) =>
      Effect.acquireRelease(
        Effect.sync(() => (onIncoming = onConnection)),
        () => Effect.sync(() => (onIncoming = undefined))
      ).pipe(Effect.asVoid),
    datagram: DatagramSocket.make({
      reader: Effect.succeed({
        pull: Queue.takeAll(others) as unknown as Effect.Effect<NonEmptyReadonlyArray<DatagramSocket.Datagram>>,
        address: reader.address,
        dropped: () => 0,
        joinMulticast: () => Effect.die("the uTP endpoint's socket joins no multicast group")
      }),
      writer: Effect.succeed(writer)
    }),
    stats: () =>
      [...entries.values()].map(({ connection, remote }) => ({
        peer: `${hostAndPort(remote).host}:${remote.port}`,
        window: connection.ledbat.window,
        delay: connection.ledbat.delay,
        rtt: connection.ledbat.rtt
      }))
  } satisfies Endpoint
})

/** Per packet: the addresses' own comparison (`Equal.equals` would hash both first). */
const sameAddress = (a: NetAddress.InetAddress, b: NetAddress.InetAddress) =>
  a.port === b.port && a.address[Equal.symbol](b.address)

/** 127.0.0.0/8 or ::1 (also as ::ffff:127.x.y.z): a peer whose path MTU is loopback's. */
const isLoopback = (address: NetAddress.InetAddress) => {
  const host = hostAndPort(address).host
  return host.startsWith("127.") || host === "::1"
}

const hostAndPort = (address: NetAddress.InetAddress) => ({
  host: NetAddress.formatIp(address.address).replace(/^::ffff:/, ""),
  port: address.port
})
