/**
 * Listener: accepts incoming peer connections on one TCP port (IPv6 and
 * IPv4 where the system allows a dual-stack socket), trying the next ports
 * when the configured one is taken. Each connection is handed over as an
 * Effect socket; the listener closes with its scope.
 *
 * We own the connections we accept, so we destroy them: a connection when
 * the scope it is read in closes, and at the latest when the listener
 * closes. (Closing an Effect socket made from a Node socket only half-closes
 * it, and then stops reading: the connection would last until the peer hung
 * up, which a peer still sending to us never does, and the listener, which
 * waits for its connections, would never close.)
 */
import * as Net from "node:net"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Effect, Schema } from "effect"
import type * as Socket from "effect/socket/Socket"

export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  port: Schema.Number,
  detail: Schema.String
}) {
  override get message() {
    return `cannot listen for peers from port ${this.port}: ${this.detail}`
  }
}

/** Ports tried after the configured one when it is taken; then any free port. */
const fallbackPorts = 10

export interface Connection {
  readonly socket: Socket.Socket
  readonly host: string
  readonly port: number
}

const listenOn = (server: Net.Server, port: number, host: string | undefined) =>
  Effect.callback<number, Error>((resume) => {
    const onError = (error: Error) => resume(Effect.fail(error))
    server.once("error", onError)
    server.listen({ port, ...(host === undefined ? {} : { host }) }, () => {
      server.off("error", onError)
      resume(Effect.succeed((server.address() as Net.AddressInfo).port))
    })
  })

/**
 * Listens from `port` (0: any free port) and calls `onConnection` for each
 * incoming connection (in its own fiber, which the caller supervises).
 * Returns the port bound.
 */
export const listen = Effect.fnUntraced(function*(
  port: number,
  onConnection: (connection: Connection) => void,
  host?: string
) {
  const open = new Set<Net.Socket>()
  const server = Net.createServer({ noDelay: true }, (raw) => {
    if (raw.remoteAddress === undefined || raw.remotePort === undefined) return raw.destroy()
    open.add(raw)
    raw.once("close", () => open.delete(raw))
    onConnection({
      socket: Effect.runSync(NodeSocket.fromDuplex(
        Effect.acquireRelease(Effect.succeed(raw), () => Effect.sync(() => raw.destroy()))
      )),
      host: raw.remoteAddress.replace(/^::ffff:/, ""),
      port: raw.remotePort
    })
  })
  yield* Effect.addFinalizer(() =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
      // Those no session took (or still reads): `close` waits for every one.
      for (const raw of open) raw.destroy()
    })
  )
  let lastError = ""
  const candidates = port === 0 ? [0] : [...Array.from({ length: fallbackPorts + 1 }, (_, i) => port + i), 0]
  for (const candidate of candidates) {
    const bound = yield* listenOn(server, candidate, host).pipe(
      Effect.catch((error) =>
        host === undefined && (error as NodeJS.ErrnoException).code === "EAFNOSUPPORT"
          ? listenOn(server, candidate, "0.0.0.0") // no IPv6 here
          : Effect.fail(error)
      ),
      Effect.tapError((error) => Effect.sync(() => (lastError = error.message))),
      Effect.option
    )
    if (bound._tag === "Some") return bound.value
  }
  return yield* new ListenError({ port, detail: lastError })
})
