/**
 * PeerIo: framed reads and batched writes on one peer connection.
 *
 * `read` is one socket read's worth of messages (the first read yields the
 * peer's handshake first); `send` encodes a batch of messages into one buffer
 * and writes it with one call.
 */
import { Context, Effect, Result } from "effect"
import type * as Socket from "effect/socket/Socket"
import * as Frame from "../protocol/Frame.ts"
import type * as Handshake from "../protocol/Handshake.ts"
import * as WireMessage from "../protocol/WireMessage.ts"

export type Incoming = Handshake.Handshake | WireMessage.WireMessage

export class PeerIo extends Context.Service<PeerIo, {
  readonly read: Effect.Effect<Array<Incoming>, Socket.SocketError | Handshake.HandshakeError | WireMessage.WireError>
  readonly send: (messages: ReadonlyArray<WireMessage.WireMessage>) => Effect.Effect<void, Socket.SocketError>
  readonly sendRaw: (bytes: Uint8Array) => Effect.Effect<void, Socket.SocketError>
}>()("effect-torrent/peer/PeerIo") {}

/** Opens the socket's reader and writer in the current scope (for an outgoing socket this dials). */
export const make = Effect.fnUntraced(function*(socket: Socket.Socket, options: Frame.Options) {
  const reader = yield* socket.reader
  const writer = yield* socket.writer
  const decoder = Frame.FrameDecoder.makeWithHandshake(options)
  const read = Effect.flatMap(reader.pull, (chunks) => {
    const out: Array<Incoming> = []
    for (const chunk of chunks) {
      if (typeof chunk === "string") continue
      const result = decoder.push(chunk, out)
      if (Result.isFailure(result)) return Effect.fail(result.failure)
    }
    return Effect.succeed(out)
  })
  return PeerIo.of({
    read,
    send: (messages) => messages.length === 0 ? Effect.void : writer.write(WireMessage.encodeBatch(messages)),
    sendRaw: (bytes) => writer.write(bytes)
  })
})
