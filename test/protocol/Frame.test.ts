import { assert, describe, it } from "@effect/vitest"
import { Effect, Result, Schema, Stream } from "effect"
import * as Frame from "../../src/protocol/Frame.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as WireMessage from "../../src/protocol/WireMessage.ts"
import { everyMessage } from "./messages.ts"

const maxFrame = Frame.maxFrameFor(1000)
const failure = <E>(result: Result.Result<unknown, E>): E => Result.getOrThrow(Result.flip(result))

/** Feeds the chunks to a fresh decoder and collects everything it emits. */
const decodeAll = (chunks: ReadonlyArray<Uint8Array>) => {
  const decoder = Frame.FrameDecoder.make({ maxFrame })
  const out: Array<WireMessage.WireMessage> = []
  for (const chunk of chunks) Result.getOrThrow(decoder.push(chunk, out))
  assert.strictEqual(decoder.buffered, 0)
  return out
}

/** `bytes` cut at the given offsets. */
const splitAt = (bytes: Uint8Array, ...cuts: Array<number>) =>
  [0, ...cuts].map((from, i) => bytes.subarray(from, cuts[i] ?? bytes.length))

const oneByteAtATime = (bytes: Uint8Array) => Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))

const Messages = Schema.Array(WireMessage.WireMessage)

const handshake = Handshake.make({ infoHash: new Uint8Array(20).fill(1), peerId: new Uint8Array(20).fill(2) })

describe("Frame", () => {
  const bytes = WireMessage.encodeBatch(everyMessage)

  it("decodes a batch of every message type from one chunk", () => {
    assert.deepStrictEqual(decodeAll([bytes]), everyMessage)
  })

  it("gives the same messages split at every point", () => {
    for (let cut = 0; cut <= bytes.length; cut++) assert.deepStrictEqual(decodeAll(splitAt(bytes, cut)), everyMessage)
  })

  it("gives the same messages one byte at a time", () => {
    assert.deepStrictEqual(decodeAll(oneByteAtATime(bytes)), everyMessage)
  })

  it.prop(
    "gives the same messages however the bytes are chunked",
    [Messages, Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 9 })))],
    ([msgs, sizes]) => {
      const bytes = WireMessage.encodeBatch(msgs)
      const chunks: Array<Uint8Array> = []
      for (let at = 0, i = 0; at < bytes.length; i++) {
        const size = sizes.length > 0 ? sizes[i % sizes.length]! : bytes.length
        chunks.push(bytes.subarray(at, at + size))
        at += size
      }
      assert.deepStrictEqual(decodeAll(chunks), msgs)
    }
  )

  it("a piece frame within one chunk is a view on it", () => {
    const chunk = WireMessage.encodeBatch(everyMessage)
    const piece = decodeAll([chunk]).find((msg) => msg._tag === "Piece")
    assert.isTrue(piece?._tag === "Piece" && piece.block.buffer === chunk.buffer)
  })

  it("a frame straddling chunks is copied once, into a buffer of exactly its size", () => {
    const frame = WireMessage.encode(everyMessage.find((msg) => msg._tag === "Piece")!)
    const [piece] = decodeAll(splitAt(frame, 20))
    // The copy is the payload (frame minus length prefix and id); the block is a view on it.
    assert.isTrue(piece?._tag === "Piece" && piece.block.buffer.byteLength === frame.length - 5)
  })

  it("keeps a partial frame until the rest arrives", () => {
    const decoder = Frame.FrameDecoder.make({ maxFrame })
    const frame = WireMessage.encode({ _tag: "Have", index: 9 })
    assert.deepStrictEqual(Result.getOrThrow(decoder.push(frame.subarray(0, 6))), [])
    assert.strictEqual(decoder.buffered, 2)
    assert.deepStrictEqual(Result.getOrThrow(decoder.push(frame.subarray(6))), [{ _tag: "Have", index: 9 }])
  })

  it("fails on a declared length over the limit before buffering the frame", () => {
    for (const length of [maxFrame + 1, 2 ** 31, 2 ** 32 - 1]) {
      const decoder = Frame.FrameDecoder.make({ maxFrame })
      const header = new Uint8Array(4)
      new DataView(header.buffer).setUint32(0, length)
      const error = failure(decoder.push(header))
      assert.deepStrictEqual(error.reason, new WireMessage.FrameTooLarge({ length, limit: maxFrame }))
      assert.strictEqual(error.message, `peer sent a ${length}-byte frame; the limit is ${maxFrame}`)
    }
    const atLimit = new Uint8Array(4)
    new DataView(atLimit.buffer).setUint32(0, maxFrame)
    assert.isTrue(Result.isSuccess(Frame.FrameDecoder.make({ maxFrame }).push(atLimit)))
  })

  it("fails on a wrong length for a fixed-size message and on an unknown id", () => {
    const chokeWithPayload = new Uint8Array([0, 0, 0, 2, 0, 0])
    const error = failure(Frame.FrameDecoder.make({ maxFrame }).push(chokeWithPayload))
    assert.deepStrictEqual(error.reason, new WireMessage.InvalidLength({ id: 0, length: 1, expected: "exactly 0" }))
    const unknown = new Uint8Array([0, 0, 0, 3, 99, 1, 2])
    assert.deepStrictEqual(
      failure(Frame.FrameDecoder.make({ maxFrame }).push(unknown)).reason,
      new WireMessage.UnknownMessage({ id: 99, length: 2 })
    )
  })

  it("maxFrameFor covers a 16 KiB block, a metadata piece and the bitfield", () => {
    assert.strictEqual(Frame.maxFrameFor(0), 16384 + 1024)
    assert.isAbove(Frame.maxFrameFor(0), 9 + 16384)
    assert.strictEqual(Frame.maxFrameFor(1_000_000), 1 + 125_000)
  })

  describe("with handshake", () => {
    const bytes = new Uint8Array([...Handshake.encode(handshake), ...WireMessage.encodeBatch(everyMessage)])
    const decodeAllWithHandshake = (chunks: ReadonlyArray<Uint8Array>) => {
      const decoder = Frame.FrameDecoder.makeWithHandshake({ maxFrame })
      const out: Array<Handshake.Handshake | WireMessage.WireMessage> = []
      for (const chunk of chunks) Result.getOrThrow(decoder.push(chunk, out))
      return out
    }

    it("emits the handshake, then the messages that followed it in the same chunks", () => {
      const expected = [handshake, ...everyMessage]
      for (let cut = 0; cut <= bytes.length; cut++) {
        assert.deepStrictEqual(decodeAllWithHandshake(splitAt(bytes, cut)), expected)
      }
      assert.deepStrictEqual(decodeAllWithHandshake(oneByteAtATime(bytes)), expected)
    })

    it("fails on a bad handshake", () => {
      const bad = bytes.slice()
      bad[0] = 18
      const error = failure(Frame.FrameDecoder.makeWithHandshake({ maxFrame }).push(bad))
      assert.isTrue(error._tag === "HandshakeError" && error.field === "pstrlen")
    })
  })

  describe("Stream operators", () => {
    it.effect("decode: one step per batch of socket chunks", () =>
      Effect.gen(function*() {
        const bytes = WireMessage.encodeBatch(everyMessage)
        const messages = yield* Stream.fromArrays(splitAt(bytes, 3, 50), oneByteAtATime(bytes.subarray(50))).pipe(
          Frame.decode({ maxFrame }),
          Stream.runCollect
        )
        assert.deepStrictEqual(messages, everyMessage)
      }))

    it.effect("decodeWithHandshake: the handshake, then messages", () =>
      Effect.gen(function*() {
        const bytes = new Uint8Array([...Handshake.encode(handshake), ...WireMessage.encodeBatch(everyMessage)])
        const out = yield* Stream.fromIterable(splitAt(bytes, 30, 70, 71)).pipe(
          Frame.decodeWithHandshake({ maxFrame }),
          Stream.runCollect
        )
        assert.deepStrictEqual(out, [handshake, ...everyMessage])
      }))

    it.effect("fails the stream with a WireError reason callers can catch", () =>
      Effect.gen(function*() {
        const huge = new Uint8Array([0xff, 0xff, 0xff, 0xff])
        const limit = yield* Stream.make(WireMessage.encode({ _tag: "Choke" }), huge).pipe(
          Frame.decode({ maxFrame }),
          Stream.runCollect,
          Effect.as(0),
          Effect.catchReason("WireError", "FrameTooLarge", (reason) => Effect.succeed(reason.limit))
        )
        assert.strictEqual(limit, maxFrame)
      }))

    it.effect.prop("round-trips arbitrary messages through the stream", [Messages], ([msgs]) =>
      Effect.gen(function*() {
        const bytes = WireMessage.encodeBatch(msgs)
        const third = Math.floor(bytes.length / 3)
        const out = yield* Stream.fromIterable(splitAt(bytes, third, 2 * third)).pipe(
          Frame.decode({ maxFrame }),
          Stream.runCollect
        )
        assert.deepStrictEqual(out, msgs)
      }))
  })
})

describe("Frame.makeWithHandshake on bytes that are not a handshake", () => {
  it("fails at the first wrong byte, without waiting for 68", () => {
    const pstrlen = Frame.FrameDecoder.makeWithHandshake({ maxFrame }).push(new Uint8Array([0, 0, 0, 1, 14]))
    assert.strictEqual(failure(pstrlen)._tag, "HandshakeError")
    assert.match(failure(pstrlen).message, /pstrlen is 0; expected 19/)
    const name = Frame.FrameDecoder.makeWithHandshake({ maxFrame }).push(
      new TextEncoder().encode("\x13BitTorrent pro!")
    )
    assert.match(failure(name).message, /protocol is "BitTorrent pro!"/)
    const good = Frame.FrameDecoder.makeWithHandshake({ maxFrame })
    for (const byte of Handshake.encode(handshake).subarray(0, 67)) {
      assert.isTrue(Result.isSuccess(good.push(new Uint8Array([byte]))))
    }
  })
})
