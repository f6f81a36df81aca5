/**
 * MemorySocket: two connected in-memory `Socket.Socket`s, each direction a
 * Queue of byte chunks.
 *
 * Like a TCP connection: what one side writes the other side's `pull`
 * returns (every chunk written since the last pull, in order). Closing one
 * side (releasing its reader's scope, writing a `CloseEvent`, or `close`)
 * makes the other side's pull fail with `SocketError(SocketCloseError)` once
 * it has read what was already written, and fails a pull suspended on the
 * closing side itself (as `Socket.make` requires). Writes after the
 * connection is closed fail with `SocketCloseError` too.
 *
 * A `Link` can give the connection a latency and a rate: each chunk arrives
 * when the clock (TestClock in tests) reaches the time it would have taken
 * to cross; writes never wait (the sender's own limits bound what is in
 * flight).
 */
import { Clock, Effect, Queue } from "effect"
import * as Socket from "effect/socket/Socket"
import { Network } from "./Network.ts"

export const closeError = (code = 1000): Socket.SocketError =>
  new Socket.SocketError({ reason: new Socket.SocketCloseError({ code }) })

export interface End {
  readonly socket: Socket.Socket
  /** Closes the connection from this side. */
  readonly close: Effect.Effect<void>
  /** Whether the connection is closed (by either side). */
  readonly isClosed: Effect.Effect<boolean>
  /** How many times this side's reader was acquired (a dial, for an outgoing socket). */
  readonly opened: () => number
}

export interface Pair {
  /** Our side, e.g. given to `PeerSession.run`. */
  readonly local: End
  /** The remote side, played by the test (see FakePeer). */
  readonly remote: End
}

/** How a connection's bytes travel, each direction alike (default: at once). */
export interface Link {
  readonly latencyMillis?: number | undefined
  /** Bytes per second; absent: unlimited. */
  readonly bytesPerSecond?: number | undefined
}

/** A chunk and the time (ms) it reaches the other side. */
interface InFlight {
  readonly bytes: Uint8Array
  readonly arrives: number
}

/** A connected pair of in-memory sockets over `link`. */
export const makePairWith = (link: Link): Effect.Effect<Pair> =>
  Effect.gen(function*() {
    const toRemote = yield* Queue.unbounded<InFlight, Socket.SocketError>()
    const toLocal = yield* Queue.unbounded<InFlight, Socket.SocketError>()
    let closed = false
    const close = Effect.suspend(() => {
      closed = true
      return Effect.all([Queue.fail(toRemote, closeError()), Queue.fail(toLocal, closeError())], { discard: true })
    })
    const isClosed = Effect.sync(() => closed)
    return {
      local: makeEnd(toLocal, toRemote, close, isClosed, link),
      remote: makeEnd(toRemote, toLocal, close, isClosed, link)
    }
  })

/** A connected pair of in-memory sockets, bytes arriving at once. */
export const makePair: Effect.Effect<Pair> = makePairWith({})

const makeEnd = (
  incoming: Queue.Queue<InFlight, Socket.SocketError>,
  outgoing: Queue.Queue<InFlight, Socket.SocketError>,
  close: Effect.Effect<void>,
  isClosed: Effect.Effect<boolean>,
  link: Link
): End => {
  let opened = 0
  /** When our direction of the link has sent everything written so far (ms). */
  let busyUntil = 0
  const arrival = (now: number, length: number) => {
    busyUntil = Math.max(now, busyUntil) +
      (link.bytesPerSecond === undefined ? 0 : (length * 1000) / link.bytesPerSecond)
    return busyUntil + (link.latencyMillis ?? 0)
  }
  const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> => {
    if (Socket.isCloseEvent(chunk)) return close
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk
    return Clock.currentTimeMillis.pipe(
      // A copy: the writer may reuse its buffer, as with a real socket.
      Effect.flatMap((now) => Queue.offer(outgoing, { bytes: bytes.slice(), arrives: arrival(now, bytes.length) })),
      Effect.flatMap((accepted) => accepted ? Effect.void : Effect.fail(closeError()))
    )
  }
  const writer: Socket.Writer = {
    write,
    writeAll: (chunks) => Effect.forEach(chunks, write, { discard: true })
  }
  /** Taken from the queue, not yet arrived. */
  let taken: Array<InFlight> = []
  const pull = Effect.gen(function*() {
    if (taken.length === 0) taken = yield* Queue.takeAll(incoming)
    const now = yield* Clock.currentTimeMillis
    const at = Math.max(now, taken[0]!.arrives)
    if (at > now) yield* Effect.sleep(at - now)
    const later = taken.findIndex((c) => c.arrives > at)
    const [first, ...rest] = taken.splice(0, later === -1 ? taken.length : later) as [InFlight, ...Array<InFlight>]
    return [first.bytes, ...rest.map((c) => c.bytes)] as const
  })
  const reader: Socket.Reader = {
    pull,
    upgrade: Socket.SocketUpgradeError.unsupported
  }
  return {
    socket: Socket.make({
      reader: Effect.acquireRelease(
        Effect.sync(() => {
          opened++
          return reader
        }),
        () => close
      ),
      writer: Effect.succeed(writer)
    }),
    close,
    isClosed,
    opened: () => opened
  }
}

/** A socket whose dial fails (connection refused). */
export const refused = (cause: unknown = "connection refused"): Socket.Socket =>
  Socket.make({
    reader: Effect.fail(new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause }) })),
    writer: Effect.succeed({
      write: () => Effect.fail(closeError(1006)),
      writeAll: () => Effect.fail(closeError(1006))
    })
  })

/** A Network that only dials, with `connect` (for tests of what dials). */
export const dialingNetwork = (connect: Network["Service"]["connect"]) =>
  Network.of({
    connect,
    listen: () => Effect.die("this test network does not listen"),
    datagram: () => Effect.die("this test network has no UDP")
  })
