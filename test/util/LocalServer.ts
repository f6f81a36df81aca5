/**
 * A TCP server on 127.0.0.1 (any free port) for scripted test peers: open
 * for the scope; closing it destroys the connections in `sockets` and
 * closes the server.
 */
import { Effect } from "effect"
import * as Net from "node:net"

export const listen = (onConnection: (socket: Net.Socket) => void, sockets: Iterable<Net.Socket>) =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer(onConnection)
      server.once("error", (error) => resume(Effect.die(error)))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => ({ host: "127.0.0.1", port: (server.address() as Net.AddressInfo).port })))
