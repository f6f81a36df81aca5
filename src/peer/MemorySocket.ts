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
 */
import { Effect, Queue } from "effect"
import * as Socket from "effect/socket/Socket"
import { Network } from "../../src/peer/Network.ts"

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

/** A connected pair of in-memory sockets. */
export const makePair: Effect.Effect<Pair> = Effect.gen(function*() {
  const toRemote = yield* Queue.unbounded<Uint8Array, Socket.SocketError>()
  const toLocal = yield* Queue.unbounded<Uint8Array, Socket.SocketError>()
  let closed = false
  const close = Effect.suspend(() => {
    closed = true
    return Effect.all([Queue.fail(toRemote, closeError()), Queue.fail(toLocal, closeError())], { discard: true })
  })
  const isClosed = Effect.sync(() => closed)
  return {
    local: makeEnd(toLocal, toRemote, close, isClosed),
    remote: makeEnd(toRemote, toLocal, close, isClosed)
  }
})

const makeEnd = (
  incoming: Queue.Queue<Uint8Array, Socket.SocketError>,
  outgoing: Queue.Queue<Uint8Array, Socket.SocketError>,
  close: Effect.Effect<void>,
  isClosed: Effect.Effect<boolean>
): End => {
  let opened = 0
  const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> => {
    if (Socket.isCloseEvent(chunk)) return close
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk
    // A copy: the writer may reuse its buffer, as with a real socket.
    return Effect.flatMap(Queue.offer(outgoing, bytes.slice()), (accepted) =>
      accepted ? Effect.void : Effect.fail(closeError()))
  }
  const writer: Socket.Writer = {
    write,
    writeAll: (chunks) => Effect.forEach(chunks, write, { discard: true })
  }
  const reader: Socket.Reader = {
    pull: Queue.takeAll(incoming),
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
