import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as WireMessage from "../../src/protocol/WireMessage.ts"
import { everyMessage } from "./messages.ts"

const failure = <E>(result: Result.Result<unknown, E>): E => Result.getOrThrow(Result.flip(result))

/** Parses one encoded frame (length prefix, id, payload). */
const parseFrame = (frame: Uint8Array): Result.Result<WireMessage.WireMessage, WireMessage.WireError> => {
  assert.strictEqual(new DataView(frame.buffer, frame.byteOffset).getUint32(0), frame.length - 4)
  return frame.length === 4 ? Result.succeed({ _tag: "KeepAlive" }) : WireMessage.parse(frame[4]!, frame.subarray(5))
}

describe("WireMessage", () => {
  it.prop("round-trips every message type", [WireMessage.WireMessage], ([msg]) => {
    const frame = WireMessage.encode(msg)
    assert.strictEqual(frame.length, WireMessage.encodedLength(msg))
    assert.deepStrictEqual(Result.getOrThrow(parseFrame(frame)), msg)
  })

  it("round-trips one of each", () => {
    for (const msg of everyMessage) {
      assert.deepStrictEqual(Result.getOrThrow(parseFrame(WireMessage.encode(msg))), msg)
    }
  })

  it("writes the BEP 3 layout", () => {
    assert.deepStrictEqual(WireMessage.encode({ _tag: "KeepAlive" }), new Uint8Array([0, 0, 0, 0]))
    assert.deepStrictEqual(WireMessage.encode({ _tag: "Interested" }), new Uint8Array([0, 0, 0, 1, 2]))
    assert.deepStrictEqual(
      WireMessage.encode({ _tag: "Request", index: 1, begin: 0x4000, length: 0x4000 }),
      new Uint8Array([0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0])
    )
    assert.deepStrictEqual(
      WireMessage.encode({ _tag: "Piece", index: 0xffffffff, begin: 2, block: new Uint8Array([9, 8]) }),
      new Uint8Array([0, 0, 0, 11, 7, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 9, 8])
    )
    assert.deepStrictEqual(
      WireMessage.encode({ _tag: "Port", port: 6881 }),
      new Uint8Array([0, 0, 0, 3, 9, 0x1a, 0xe1])
    )
    assert.deepStrictEqual(
      WireMessage.encode({ _tag: "Extended", id: 0, payload: new Uint8Array([0x64, 0x65]) }),
      new Uint8Array([0, 0, 0, 4, 20, 0, 0x64, 0x65])
    )
  })

  it.prop("encodeBatch writes the frames back to back", [Schema.Array(WireMessage.WireMessage)], ([msgs]) => {
    const batch = WireMessage.encodeBatch(msgs)
    let offset = 0
    for (const msg of msgs) {
      const end = offset + WireMessage.encodedLength(msg)
      assert.deepStrictEqual(batch.subarray(offset, end), WireMessage.encode(msg))
      offset = end
    }
    assert.strictEqual(offset, batch.length)
  })

  it("encodeInto writes at an offset of a view and returns the end", () => {
    const backing = new Uint8Array(40)
    const buf = backing.subarray(3)
    const msg: WireMessage.WireMessage = { _tag: "Have", index: 7 }
    assert.strictEqual(WireMessage.encodeInto(msg, buf, 5), 14)
    assert.deepStrictEqual(backing.subarray(8, 17), WireMessage.encode(msg))
  })

  it("encodePieceHeader, then the block after it, is the Piece message, at an offset of a view", () => {
    const block = Uint8Array.from({ length: 300 }, (_, i) => i % 251)
    const backing = new Uint8Array(400)
    const buf = backing.subarray(3)
    const at = WireMessage.encodePieceHeader(buf, 5, 0x01020304, 0x4000, block.length)
    assert.strictEqual(at, 5 + WireMessage.pieceHeaderLength)
    buf.set(block, at)
    const piece = WireMessage.encode({ _tag: "Piece", index: 0x01020304, begin: 0x4000, block })
    assert.deepStrictEqual(backing.subarray(8, 8 + piece.length), piece)
  })

  it("Piece, Bitfield and Extended payloads are views on the input", () => {
    const payload = new Uint8Array([0, 0, 0, 1, 0, 0, 0, 0, 5, 6, 7])
    const piece = Result.getOrThrow(WireMessage.parse(WireMessage.ids.Piece, payload))
    assert.isTrue(piece._tag === "Piece" && piece.block.buffer === payload.buffer && piece.block.byteOffset === 8)
    const bitfield = Result.getOrThrow(WireMessage.parse(WireMessage.ids.Bitfield, payload))
    assert.isTrue(bitfield._tag === "Bitfield" && bitfield.bytes.buffer === payload.buffer)
    const extended = Result.getOrThrow(WireMessage.parse(WireMessage.ids.Extended, payload))
    assert.isTrue(extended._tag === "Extended" && extended.payload.buffer === payload.buffer)
  })

  it("rejects a wrong payload length for each fixed-size id", () => {
    const sizes = {
      Choke: 0,
      Unchoke: 0,
      Interested: 0,
      NotInterested: 0,
      Have: 4,
      Request: 12,
      Cancel: 12,
      Port: 2,
      Suggest: 4,
      HaveAll: 0,
      HaveNone: 0,
      RejectRequest: 12,
      AllowedFast: 4,
      HashRequest: 48,
      HashReject: 48
    } as const
    for (const [name, size] of Object.entries(sizes)) {
      const id = WireMessage.ids[name as keyof typeof sizes]
      assert.isTrue(Result.isSuccess(WireMessage.parse(id, new Uint8Array(size))))
      for (const wrong of [size - 1, size + 1].filter((n) => n >= 0)) {
        const error = failure(WireMessage.parse(id, new Uint8Array(wrong)))
        assert.deepStrictEqual(
          error.reason,
          new WireMessage.InvalidLength({ id, length: wrong, expected: `exactly ${size}` })
        )
      }
    }
    assert.strictEqual(
      failure(WireMessage.parse(4, new Uint8Array(5))).message,
      "peer sent a Have message (id 4) with a 5-byte payload; expected exactly 4"
    )
  })

  it("writes BEP 52's hash messages: the pieces root, then base layer, index, length and proof layers", () => {
    const range = { piecesRoot: new Uint8Array(32).fill(0xab), baseLayer: 2, index: 512, length: 256, proofLayers: 7 }
    const header = [...range.piecesRoot, 0, 0, 0, 2, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 7]
    assert.deepStrictEqual(
      WireMessage.encode({ _tag: "HashRequest", ...range }),
      new Uint8Array([0, 0, 0, 49, 21, ...header])
    )
    assert.deepStrictEqual(
      WireMessage.encode({ _tag: "Hashes", ...range, hashes: new Uint8Array([1, 2]) }),
      new Uint8Array([0, 0, 0, 51, 22, ...header, 1, 2])
    )
    assert.deepStrictEqual(
      WireMessage.encode({ _tag: "HashReject", ...range }),
      new Uint8Array([0, 0, 0, 49, 23, ...header])
    )
    assert.strictEqual(failure(WireMessage.parse(22, new Uint8Array(47))).reason._tag, "InvalidLength")
  })

  it("rejects a Piece under 8 bytes and an empty Extended", () => {
    assert.strictEqual(
      failure(WireMessage.parse(7, new Uint8Array(7))).message,
      "peer sent a Piece message (id 7) with a 7-byte payload; expected at least 8"
    )
    assert.strictEqual(failure(WireMessage.parse(20, new Uint8Array(0))).reason._tag, "InvalidLength")
    assert.isTrue(Result.isSuccess(WireMessage.parse(7, new Uint8Array(8))))
    assert.isTrue(Result.isSuccess(WireMessage.parse(20, new Uint8Array(1))))
  })

  it("rejects every unknown id, naming it", () => {
    const known = new Set<number>(Object.values(WireMessage.ids))
    for (let id = 0; id < 256; id++) {
      if (known.has(id)) continue
      const error = failure(WireMessage.parse(id, new Uint8Array(3)))
      assert.deepStrictEqual(error.reason, new WireMessage.UnknownMessage({ id, length: 3 }))
    }
    assert.strictEqual(
      failure(WireMessage.parse(24, new Uint8Array(3))).message,
      "peer sent a message with unknown id 24 (3-byte payload)"
    )
  })

  it("the Schema checks uint32 and port ranges", () => {
    assert.throws(() => WireMessage.WireMessage.cases.Have.make({ index: 2 ** 32 }))
    assert.throws(() => WireMessage.WireMessage.cases.Have.make({ index: 1.5 }))
    assert.throws(() => WireMessage.WireMessage.cases.Port.make({ port: 65536 }))
    assert.throws(() => WireMessage.WireMessage.cases.Extended.make({ id: 256, payload: new Uint8Array() }))
    assert.deepStrictEqual(WireMessage.WireMessage.cases.Have.make({ index: 2 ** 32 - 1 }), {
      _tag: "Have",
      index: 2 ** 32 - 1
    })
  })
})
