/**
 * Splits socket chunks into peer wire frames (4-byte big-endian length, then
 * id + payload) and parses them.
 *
 * One `FrameDecoder` per connection. It keeps nothing of a chunk once `push`
 * returns: each frame's bytes are copied, as they arrive, into a buffer the
 * message owns, and a `Piece` block straight into where it belongs (its
 * place in the piece, when the `claim` function knows it). So a block is
 * copied once, and a socket may read into the same memory again and again
 * (`Network`'s TCP connections do). A declared length is checked against the
 * limit as soon as its 4 bytes arrive, before anything of the frame is
 * allocated, so a peer cannot make us hold more than one limit's worth.
 *
 * `decode` / `decodeWithHandshake` wrap the decoder as Stream operators that
 * run one step per socket read, not one Effect per message; every peer
 * connection is read this way (`PeerIo`):
 *
 *   Socket.toStream(socket).pipe(Frame.decodeWithHandshake({ maxFrame: Frame.maxFrameFor(pieceCount) }))
 */
import { Effect, Result, Stream } from "effect"
import { blockSize, copyInto } from "./Block.ts"
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
  readonly claim?: Claim | undefined
}

/**
 * Where a `Piece` block goes: a view of `length` bytes the caller owns (its
 * place in the piece being assembled), or undefined for a buffer of its own.
 */
export type Claim = (index: number, begin: number, length: number) => Uint8Array | undefined

/** What the decoder reads next. */
const Stage = {
  Handshake: 0,
  /** The 4-byte length prefix. */
  Length: 1,
  Id: 2,
  /** A `Piece`'s index and begin. */
  PieceHead: 3,
  /** A `Piece`'s block, arriving over several chunks. */
  Block: 4,
  /** Any other frame's payload. */
  Body: 5
} as const
type Stage = typeof Stage[keyof typeof Stage]

const pieceId = WireMessage.ids.Piece

/**
 * The synchronous core, usable without Effect (tests, benchmarks). Feed it
 * chunks in order with `push`; it returns the messages completed so far. `A`
 * and `E` are what it emits and fails with: `make` gives wire messages only,
 * `makeWithHandshake` a `Handshake` first.
 */
export class FrameDecoder<A, E> {
  private stage: Stage
  /** The handshake, a length prefix or a piece's index and begin, as far as read. */
  private readonly head = new Uint8Array(Handshake.length)
  private headFill = 0
  /** The declared length of the frame being read, once its prefix is read. */
  private frameLength = 0
  private id = 0
  private index = 0
  private begin = 0
  /** The payload (or block) being filled. */
  private body: Uint8Array = new Uint8Array(0)
  private bodyFill = 0
  /** Where a block arriving over several chunks gathers: kept for the next one. */
  private partial: Uint8Array = new Uint8Array(0)

  private constructor(
    readonly maxFrame: number,
    awaitingHandshake: boolean,
    private readonly claim: Claim | undefined
  ) {
    this.stage = awaitingHandshake ? Stage.Handshake : Stage.Length
  }

  static make(options: Options): FrameDecoder<WireMessage.WireMessage, WireMessage.WireError> {
    return new FrameDecoder(options.maxFrame, false, options.claim)
  }

  static makeWithHandshake(
    options: Options
  ): FrameDecoder<Handshake.Handshake | WireMessage.WireMessage, Handshake.HandshakeError | WireMessage.WireError> {
    return new FrameDecoder(options.maxFrame, true, options.claim)
  }

  /** Bytes held for an incomplete handshake or frame (after its length prefix). */
  get buffered(): number {
    switch (this.stage) {
      case Stage.Id:
        return 0
      case Stage.PieceHead:
        return 1 + this.headFill
      case Stage.Block:
        return 9 + this.bodyFill
      case Stage.Body:
        return 1 + this.bodyFill
      default:
        return this.headFill
    }
  }

  /**
   * Adds a chunk and appends the messages it completes to `out`. Nothing of
   * the chunk is kept: every message owns its bytes (a block is copied once,
   * into its claimed place or a buffer of its own), so the caller may reuse
   * the chunk at once. A failure means the peer sent bad bytes: drop the
   * connection, and do not push to this decoder again.
   */
  push(chunk: Uint8Array, out: Array<A> = []): Result.Result<Array<A>, E> {
    // The casts are sound by construction: only `makeWithHandshake` starts
    // at the handshake, and its A and E include the Handshake cases.
    const emit = out as Array<Handshake.Handshake | WireMessage.WireMessage>
    let at = 0
    while (true) {
      switch (this.stage) {
        case Stage.Handshake: {
          at = this.fillHead(chunk, at, Handshake.length)
          if (this.headFill < Handshake.length) {
            const error = Handshake.checkPrefix(this.head.subarray(0, Math.min(this.headFill, 20)))
            return error === undefined ? Result.succeed(out) : Result.fail(error as E)
          }
          const handshake = Handshake.decode(this.head.slice())
          if (Result.isFailure(handshake)) return handshake as Result.Result<never, E>
          emit.push(handshake.success)
          this.next(Stage.Length)
          break
        }
        case Stage.Length: {
          at = this.fillHead(chunk, at, 4)
          if (this.headFill < 4) return Result.succeed(out)
          const length = ((this.head[0]! << 24) | (this.head[1]! << 16) | (this.head[2]! << 8) | this.head[3]!) >>> 0
          if (length > this.maxFrame) {
            const reason = new WireMessage.FrameTooLarge({ length, limit: this.maxFrame })
            return Result.fail(new WireMessage.WireError({ reason }) as E)
          }
          this.frameLength = length
          if (length === 0) {
            emit.push({ _tag: "KeepAlive" })
            this.next(Stage.Length)
          } else {
            this.next(Stage.Id)
          }
          break
        }
        case Stage.Id: {
          if (at === chunk.length) return Result.succeed(out)
          this.id = chunk[at++]!
          if (this.id === pieceId && this.frameLength >= 9) {
            this.next(Stage.PieceHead)
          } else {
            // Allocated only now: the declared length was checked against the limit.
            this.body = new Uint8Array(this.frameLength - 1)
            this.next(Stage.Body)
          }
          break
        }
        case Stage.PieceHead: {
          at = this.fillHead(chunk, at, 8)
          if (this.headFill < 8) return Result.succeed(out)
          const head = this.head
          this.index = ((head[0]! << 24) | (head[1]! << 16) | (head[2]! << 8) | head[3]!) >>> 0
          this.begin = ((head[4]! << 24) | (head[5]! << 16) | (head[6]! << 8) | head[7]!) >>> 0
          const length = this.frameLength - 9
          if (chunk.length - at >= length) {
            emit.push(this.piece(chunk.subarray(at, at + length)))
            at += length
            this.next(Stage.Length)
          } else {
            // The rest comes in later chunks: gathered here first, so that a
            // claimed place is written at once, never while a read is pending.
            if (this.partial.length < length) this.partial = new Uint8Array(length)
            this.body = this.partial.subarray(0, length)
            this.next(Stage.Block)
          }
          break
        }
        case Stage.Block: {
          at = this.fillBody(chunk, at)
          if (this.bodyFill < this.body.length) return Result.succeed(out)
          emit.push(this.piece(this.body))
          this.next(Stage.Length)
          break
        }
        case Stage.Body: {
          at = this.fillBody(chunk, at)
          if (this.bodyFill < this.body.length) return Result.succeed(out)
          const message = WireMessage.parse(this.id, this.body)
          if (Result.isFailure(message)) return message as Result.Result<never, E>
          emit.push(message.success)
          this.next(Stage.Length)
          break
        }
      }
    }
  }

  /** The `Piece` message of the block in `bytes` (not kept): copied to its claimed place, or to a buffer of its own. */
  private piece(bytes: Uint8Array): WireMessage.WireMessage {
    const claimed = this.claim?.(this.index, this.begin, bytes.length)
    const block = claimed?.length === bytes.length ? claimed : new Uint8Array(bytes.length)
    copyInto(block, bytes, 0)
    return { _tag: "Piece", index: this.index, begin: this.begin, block }
  }

  private next(stage: Stage): void {
    this.stage = stage
    this.headFill = 0
    this.bodyFill = 0
  }

  /** Copies from `chunk` at `at` until `head` holds `size` bytes; returns where it stopped. */
  private fillHead(chunk: Uint8Array, at: number, size: number): number {
    const n = Math.min(size - this.headFill, chunk.length - at)
    for (let i = 0; i < n; i++) this.head[this.headFill + i] = chunk[at + i]!
    this.headFill += n
    return at + n
  }

  private fillBody(chunk: Uint8Array, at: number): number {
    const n = Math.min(this.body.length - this.bodyFill, chunk.length - at)
    copyInto(this.body, chunk.subarray(at, at + n), this.bodyFill)
    this.bodyFill += n
    return at + n
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
