/**
 * PeerIo: framed reads and batched writes on one peer connection.
 *
 * `read` is one socket read's worth of messages (the first read yields the
 * peer's handshake first); `send` encodes a batch of messages into one buffer
 * and writes it with one call.
 */
import { Channel, Context, Effect, Pull, Stream } from "effect"
import * as Socket from "effect/socket/Socket"
import * as Frame from "../protocol/Frame.ts"
import type * as Handshake from "../protocol/Handshake.ts"
import * as WireMessage from "../protocol/WireMessage.ts"

export type Incoming = Handshake.Handshake | WireMessage.WireMessage

export class PeerIo extends Context.Service<PeerIo, {
  readonly read: Effect.Effect<
    ReadonlyArray<Incoming>,
    Socket.SocketError | Handshake.HandshakeError | WireMessage.WireError
  >
  readonly send: (messages: ReadonlyArray<WireMessage.WireMessage>) => Effect.Effect<void, Socket.SocketError>
  readonly sendRaw: (bytes: Uint8Array) => Effect.Effect<void, Socket.SocketError>
  /** Where blocks read from now on are written (see `Frame.Claim`). */
  readonly claimBlocks: (claim: Frame.Claim) => void
}>()("effect-torrent/peer/PeerIo") {}

/**
 * Opens the socket's reader and writer in the current scope (for an outgoing
 * socket this dials, and a refused dial fails here). Reads are the socket's
 * bytes through the frame decoder (`Frame.decodeWithHandshake`), pulled one
 * socket read at a time.
 */
export const make = Effect.fnUntraced(function*(socket: Socket.Socket, options: Frame.Options) {
  const bytes = yield* Socket.readerBytes(socket)
  const writer = yield* socket.writer
  let claim: Frame.Claim | undefined
  const messages = Stream.fromPull(Effect.succeed(bytes)).pipe(
    Frame.decodeWithHandshake({ ...options, claim: (index, begin, length) => claim?.(index, begin, length) })
  )
  // The channel's own pull, not `Stream.toPull`: that one provides the whole
  // context again and takes a semaphore on every read (a copy of the
  // context's map each time: a fifth of all allocation in a download). Only
  // the session's reader pulls, and the stream needs no services.
  const pull = yield* Channel.toPullScoped(messages.channel, yield* Effect.scope)
  // A socket's stream ends only by failing: its end is never `Done`, but the type allows it.
  const closed = new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: 1000 }) })
  const read = pull.pipe(Pull.catchDone(() => Effect.fail(closed)))
  return PeerIo.of({
    read,
    send: (messages) => messages.length === 0 ? Effect.void : writer.write(WireMessage.encodeBatch(messages)),
    sendRaw: (bytes) => writer.write(bytes),
    claimBlocks: (f) => {
      claim = f
    }
  })
})
