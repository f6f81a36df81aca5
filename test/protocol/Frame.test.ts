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

  it("keeps nothing of a chunk: every message owns its bytes, so the chunk can be read into again", () => {
    const bytes = WireMessage.encodeBatch(everyMessage)
    for (let cut = 0; cut <= bytes.length; cut += 7) {
      const decoder = Frame.FrameDecoder.make({ maxFrame })
      const out: Array<WireMessage.WireMessage> = []
      // One buffer for every read, overwritten with garbage once the decoder is done with it.
      const reused = new Uint8Array(bytes.length)
      for (const part of splitAt(bytes, cut)) {
        reused.set(part)
        Result.getOrThrow(decoder.push(reused.subarray(0, part.length), out))
        reused.fill(0xee)
      }
      assert.deepStrictEqual(out, everyMessage)
    }
  })

  it("writes a claimed block straight into its place, once the whole block is in", () => {
    const block = new Uint8Array(16384).map((_, i) => i % 251)
    const frame = WireMessage.encode({ _tag: "Piece", index: 3, begin: 16384, block })
    const piece = new Uint8Array(4 * 16384)
    for (const cut of [frame.length, 13 + 100, 5]) {
      piece.fill(0)
      const claims: Array<[number, number, number]> = []
      const decoder = Frame.FrameDecoder.make({
        maxFrame,
        claim: (index, begin, length) => {
          claims.push([index, begin, length])
          // Not yet written: the block is written whole, after the claim.
          assert.isTrue(piece.every((byte) => byte === 0))
          return piece.subarray(begin, begin + length)
        }
      })
      const [first, second] = splitAt(frame, cut)
      const out = Result.getOrThrow(decoder.push(first!))
      if (second!.length > 0) {
        assert.deepStrictEqual(claims, [])
        Result.getOrThrow(decoder.push(second!, out))
      }
      assert.deepStrictEqual(claims, [[3, 16384, 16384]])
      const message = out[0]
      assert.isTrue(message?._tag === "Piece" && message.block.buffer === piece.buffer)
      assert.deepStrictEqual(piece.subarray(16384, 32768), block)
    }
  })

  it("a block nobody claims gets a buffer of its own", () => {
    const frame = WireMessage.encode({ _tag: "Piece", index: 0, begin: 0, block: new Uint8Array([1, 2, 3]) })
    const decoder = Frame.FrameDecoder.make({ maxFrame, claim: () => undefined })
    const [message] = Result.getOrThrow(decoder.push(frame))
    assert.isTrue(message?._tag === "Piece" && message.block.buffer !== frame.buffer)
    assert.deepStrictEqual(message?._tag === "Piece" ? [...message.block] : [], [1, 2, 3])
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
