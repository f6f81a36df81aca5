import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as Handshake from "../../src/protocol/Handshake.ts"

const infoHash = new Uint8Array(20).fill(0xaa)
const peerId = new TextEncoder().encode("-ET0001-123456789012")

const failure = <E>(result: Result.Result<unknown, E>): E => Result.getOrThrow(Result.flip(result))

describe("Handshake", () => {
  it("encodes the BEP 3 layout", () => {
    const bytes = Handshake.encode(Handshake.make({ infoHash, peerId }))
    assert.strictEqual(bytes.length, 68)
    assert.strictEqual(bytes[0], 19)
    assert.strictEqual(new TextDecoder().decode(bytes.subarray(1, 20)), "BitTorrent protocol")
    assert.deepStrictEqual(bytes.subarray(20, 28), new Uint8Array(8))
    assert.deepStrictEqual(bytes.subarray(28, 48), infoHash)
    assert.deepStrictEqual(bytes.subarray(48), peerId)
  })

  it("sets and reads the reserved feature bits", () => {
    const handshake = Handshake.make({ infoHash, peerId, features: ["extensions", "fast", "dht", "v2"] })
    // libtorrent's: extensions 0x10 in byte 5; v2 0x10, fast 0x04 and dht 0x01 in byte 7.
    assert.deepStrictEqual(handshake.reserved, new Uint8Array([0, 0, 0, 0, 0, 0x10, 0, 0x15]))
    const decoded = Result.getOrThrow(Handshake.decode(Handshake.encode(handshake)))
    assert.isTrue(Handshake.supports(decoded, "extensions"))
    assert.isTrue(Handshake.supports(decoded, "fast"))
    assert.isTrue(Handshake.supports(decoded, "dht"))
    assert.isTrue(Handshake.supports(decoded, "v2"))
    const plain = Handshake.make({ infoHash, peerId, features: ["fast"] })
    assert.isFalse(Handshake.supports(plain, "extensions"))
    assert.isFalse(Handshake.supports(plain, "dht"))
    assert.isFalse(Handshake.supports(plain, "v2"))
  })

  it.prop("round-trips", [Handshake.Handshake], ([handshake]) => {
    assert.deepStrictEqual(Result.getOrThrow(Handshake.decode(Handshake.encode(handshake))), handshake)
  })

  it("decodes copies, not views on the input", () => {
    const bytes = Handshake.encode(Handshake.make({ infoHash, peerId }))
    const decoded = Result.getOrThrow(Handshake.decode(bytes))
    assert.notStrictEqual(decoded.infoHash.buffer, bytes.buffer)
    assert.notStrictEqual(decoded.peerId.buffer, bytes.buffer)
  })

  it("rejects a wrong pstrlen", () => {
    const bytes = Handshake.encode(Handshake.make({ infoHash, peerId }))
    bytes[0] = 20
    const error = failure(Handshake.decode(bytes))
    assert.strictEqual(error.field, "pstrlen")
    assert.strictEqual(error.found, 20)
    assert.strictEqual(error.message, "bad handshake: pstrlen is 20; expected 19")
  })

  it("rejects another protocol", () => {
    const bytes = Handshake.encode(Handshake.make({ infoHash, peerId }))
    bytes.set(new TextEncoder().encode("BitTorrent Protocol"), 1)
    const error = failure(Handshake.decode(bytes))
    assert.strictEqual(error.field, "protocol")
    assert.strictEqual(
      error.message,
      `bad handshake: protocol is "BitTorrent Protocol"; expected "BitTorrent protocol"`
    )
  })

  it("rejects a wrong length", () => {
    const bytes = Handshake.encode(Handshake.make({ infoHash, peerId }))
    assert.strictEqual(failure(Handshake.decode(bytes.subarray(0, 67))).field, "length")
    const longer = new Uint8Array(69)
    longer.set(bytes)
    assert.strictEqual(failure(Handshake.decode(longer)).message, "bad handshake: length is 69; expected 68")
  })

  it("make rejects a wrong-sized info-hash as a bug", () => {
    assert.throws(() => Handshake.make({ infoHash: new Uint8Array(19), peerId }))
  })
})
