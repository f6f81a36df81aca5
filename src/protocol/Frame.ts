/**
 * Splits socket chunks into peer wire frames (4-byte big-endian length, then
 * id + payload) and parses them.
 *
 * One `FrameDecoder` per connection keeps the unread bytes as a list of views
 * on the chunks it was given. A frame lying within one chunk is parsed in
 * place (a `Piece` block is a view on the socket buffer); a frame straddling
 * chunks is copied once, into a buffer of exactly its size. A declared length
 * is checked against the limit as soon as its 4 bytes arrive, before anything
 * of the frame is buffered, so a peer cannot make us wait for (and hold) more
 * than one limit's worth of bytes.
 *
 * `decode` / `decodeWithHandshake` wrap the decoder as Stream operators that
 * run one step per socket read, not one Effect per message; every peer
 * connection is read this way (`PeerIo`):
 *
 *   Socket.toStream(socket).pipe(Frame.decodeWithHandshake({ maxFrame: Frame.maxFrameFor(pieceCount) }))
 */
import { Effect, Result, Stream } from "effect"
import { blockSize } from "./Block.ts"
import * as Handshake from "./Handshake.ts"
import * as WireMessage from "./WireMessage.ts"

/**
 * The frame limit (declared length: id + payload) for a torrent of
 * `pieceCount` pieces: the largest of
 * - a `Piece` with a 16 KiB block: 9 + 16384 = 16393;
 * - an `Extended` message of 16 KiB + 1 KiB: a BEP 9 metadata piece is a
 *   16 KiB block after a small bencoded dict, and the other extension messages
 *   we speak (handshake, PEX) stay well under 1 KiB;
 * - a `Bitfield`: 1 + ceil(pieceCount / 8).
 */
export const maxFrameFor = (pieceCount: number): number =>
  Math.max(9 + blockSize, blockSize + 1024, 1 + Math.ceil(pieceCount / 8))

export interface Options {
  /** Largest declared frame length accepted; see `maxFrameFor`. */
  readonly maxFrame: number
}

const empty = new Uint8Array(0)

/**
 * The synchronous core, usable without Effect (tests, benchmarks). Feed it
 * chunks in order with `push`; it returns the messages completed so far. `A`
 * and `E` are what it emits and fails with: `make` gives wire messages only,
 * `makeWithHandshake` a `Handshake` first.
 */
export class FrameDecoder<A, E> {
  /** Unread bytes: views on the pushed chunks, the first one read from `offset`. */
  private readonly chunks: Array<Uint8Array> = []
  private offset = 0
  private available = 0
  /** The declared length of the frame being read, once its prefix is read. */
  private frameLength: number | undefined = undefined

  private constructor(readonly maxFrame: number, private awaitingHandshake: boolean) {}

  static make(options: Options): FrameDecoder<WireMessage.WireMessage, WireMessage.WireError> {
    return new FrameDecoder(options.maxFrame, false)
  }

  static makeWithHandshake(
    options: Options
  ): FrameDecoder<Handshake.Handshake | WireMessage.WireMessage, Handshake.HandshakeError | WireMessage.WireError> {
    return new FrameDecoder(options.maxFrame, true)
  }

  /** Bytes held for an incomplete handshake or frame. */
  get buffered(): number {
    return this.available
  }

  /**
   * Adds a chunk and appends the messages it completes to `out`. The chunk
   * must not be modified afterwards: messages and pending bytes are views on
   * it. A failure means the peer sent bad bytes: drop the connection, and do
   * not push to this decoder again.
   */
  push(chunk: Uint8Array, out: Array<A> = []): Result.Result<Array<A>, E> {
    if (chunk.length > 0) {
      this.chunks.push(chunk)
      this.available += chunk.length
    }
    // The casts are sound by construction: only `makeWithHandshake` sets
    // `awaitingHandshake`, and its A and E include the Handshake cases.
    const emit = out as Array<Handshake.Handshake | WireMessage.WireMessage>
    if (this.awaitingHandshake) {
      if (this.available < Handshake.length) {
        const prefix = Uint8Array.from({ length: Math.min(this.available, 20) }, (_, i) => this.byteAt(i))
        const error = Handshake.checkPrefix(prefix)
        return error === undefined ? Result.succeed(out) : Result.fail(error as E)
      }
      const handshake = Handshake.decode(this.take(Handshake.length))
      if (Result.isFailure(handshake)) return handshake as Result.Result<never, E>
      emit.push(handshake.success)
      this.awaitingHandshake = false
    }
    while (true) {
      if (this.frameLength === undefined) {
        if (this.available < 4) return Result.succeed(out)
        const length = this.readUint32()
        if (length > this.maxFrame) {
          const reason = new WireMessage.FrameTooLarge({ length, limit: this.maxFrame })
          return Result.fail(new WireMessage.WireError({ reason }) as E)
        }
        this.frameLength = length
      }
      if (this.available < this.frameLength) return Result.succeed(out)
      if (this.frameLength === 0) {
        emit.push({ _tag: "KeepAlive" })
      } else {
        const id = this.byteAt(0)
        this.skip(1)
        const message = WireMessage.parse(id, this.take(this.frameLength - 1))
        if (Result.isFailure(message)) return message as Result.Result<never, E>
        emit.push(message.success)
      }
      this.frameLength = undefined
    }
  }

  /** The unread byte `i` places ahead (needs `i < available`). */
  private byteAt(i: number): number {
    let at = this.offset + i
    let k = 0
    while (at >= this.chunks[k]!.length) at -= this.chunks[k++]!.length
    return this.chunks[k]![at]!
  }

  private readUint32(): number {
    const value = ((this.byteAt(0) << 24) | (this.byteAt(1) << 16) | (this.byteAt(2) << 8) | this.byteAt(3)) >>> 0
    this.skip(4)
    return value
  }

  private skip(n: number): void {
    this.available -= n
    let at = this.offset + n
    while (this.chunks.length > 0 && at >= this.chunks[0]!.length) at -= this.chunks.shift()!.length
    this.offset = at
  }

  /** The next `n` unread bytes: a view when they lie in one chunk, else one copy. */
  private take(n: number): Uint8Array {
    if (n === 0) return empty
    const first = this.chunks[0]!
    let bytes: Uint8Array
    if (this.offset + n <= first.length) {
      bytes = first.subarray(this.offset, this.offset + n)
    } else {
      bytes = new Uint8Array(n)
      let filled = 0
      for (let k = 0, at = this.offset; filled < n; k++, at = 0) {
        const part = this.chunks[k]!.subarray(at, at + n - filled)
        bytes.set(part, filled)
        filled += part.length
      }
    }
    this.skip(n)
    return bytes
  }
}

/** Socket chunks to wire messages, for a connection whose handshake is already read. */
export const decode =
  (options: Options) =>
  <E, R>(
    self: Stream.Stream<Uint8Array, E, R>
  ): Stream.Stream<WireMessage.WireMessage, E | WireMessage.WireError, R> =>
    decodeWith(self, () => FrameDecoder.make(options))

/** Socket chunks to the peer's handshake, then its wire messages, with no bytes lost in between. */
export const decodeWithHandshake =
  (options: Options) =>
  <E, R>(
    self: Stream.Stream<Uint8Array, E, R>
  ): Stream.Stream<
    Handshake.Handshake | WireMessage.WireMessage,
    E | Handshake.HandshakeError | WireMessage.WireError,
    R
  > => decodeWith(self, () => FrameDecoder.makeWithHandshake(options))

/** One decoder per stream run; one step per batch of socket chunks. */
const decodeWith = <A, E2, E, R>(
  self: Stream.Stream<Uint8Array, E, R>,
  makeDecoder: () => FrameDecoder<A, E2>
): Stream.Stream<A, E | E2, R> =>
  Stream.mapAccumArrayEffect(self, makeDecoder, (decoder, chunks) => {
    const out: Array<A> = []
    for (const chunk of chunks) {
      const result = decoder.push(chunk, out)
      if (Result.isFailure(result)) return Effect.fail(result.failure)
    }
    return Effect.succeed([decoder, out] as const)
  })
