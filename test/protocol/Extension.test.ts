/**
 * The extension protocol's codecs (BEP 10 handshake, BEP 9 ut_metadata,
 * BEP 11 ut_pex): round trips, and garbage turned into typed errors.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Extension from "../../src/protocol/Extension.ts"
import * as Metadata from "../../src/protocol/Metadata.ts"
import * as Pex from "../../src/protocol/Pex.ts"

const failure = <E>(result: Result.Result<unknown, E>): E => Result.getOrThrow(Result.flip(result))
const utf8 = (text: string) => new TextEncoder().encode(text)

const Octet = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))
const Port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))
const Peer4 = Schema.Tuple([Octet, Octet, Octet, Octet, Port, Octet])
const Peer6 = Schema.Tuple([Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 0xffff })), Port, Octet])

describe("extended handshake", () => {
  it("round-trips ours, with yourip and metadata_size", () => {
    const payload = Extension.encodeHandshake({
      extensions: ["ut_metadata", "ut_pex"],
      port: 6881,
      reqq: 2000,
      peerHost: "10.1.2.3",
      metadataSize: 31_337
    })
    assert.deepStrictEqual(Result.getOrThrow(Extension.decodeHandshake(payload)), {
      ids: { ut_metadata: Extension.ours.ut_metadata, ut_pex: Extension.ours.ut_pex },
      disabled: [],
      client: Extension.client,
      port: 6881,
      reqq: 2000,
      yourip: "10.1.2.3",
      metadataSize: 31_337
    })
  })

  it("ipv6: ours as its 16 bytes when we have an IPv6 address; nothing for another", () => {
    const ipv6Of = (ipv6: string) => {
      const decoded = Bencode.decode(Extension.encodeHandshake({ extensions: [], port: 1, reqq: 1, ipv6 }))
      return (Result.getOrThrow(decoded) as { readonly ipv6?: Uint8Array }).ipv6
    }
    assert.deepStrictEqual(ipv6Of("2001:db8::1"), Uint8Array.from([0x20, 1, 0xd, 0xb8, ...Array(11).fill(0), 1]))
    assert.isUndefined(ipv6Of("192.0.2.1"))
  })

  it("upload_only (BEP 21): ours when we download nothing more, and the peer's, read as a flag", () => {
    const ours = (uploadOnly?: boolean) =>
      Result.getOrThrow(
        Extension.decodeHandshake(Extension.encodeHandshake({ extensions: [], port: 1, reqq: 1, uploadOnly }))
      )
        .uploadOnly
    assert.strictEqual(ours(true), true)
    assert.strictEqual(ours(false), false)
    assert.strictEqual(ours(undefined), undefined)
    const theirs = (value: number) =>
      Result.getOrThrow(Extension.decodeHandshake(Bencode.encode({ m: {}, upload_only: value }))).uploadOnly
    assert.strictEqual(theirs(2), true)
    assert.strictEqual(theirs(0), false)
  })

  it.prop("keeps the ids of the extensions we speak, whatever else is listed", [Octet, Octet], ([metadata, pex]) => {
    const payload = Bencode.encode({ m: { ut_metadata: metadata, lt_donthave: 7, ut_pex: pex, "x-unknown": 3 }, e: 1 })
    const h = Result.getOrThrow(Extension.decodeHandshake(payload))
    assert.strictEqual(h.ids.ut_metadata, metadata === 0 ? undefined : metadata)
    assert.strictEqual(h.ids.ut_pex, pex === 0 ? undefined : pex)
    assert.notProperty(h.ids, "lt_donthave")
  })

  it("a later handshake updates the earlier: new ids, 0 turns one off", () => {
    const first = Result.getOrThrow(
      Extension.decodeHandshake(Bencode.encode({ m: { ut_metadata: 3, ut_pex: 4 }, reqq: 50 }))
    )
    const second = Result.getOrThrow(Extension.decodeHandshake(Bencode.encode({ m: { ut_pex: 0, ut_metadata: 5 } })))
    const merged = Extension.update(first, second)
    assert.deepStrictEqual(merged.ids, { ut_metadata: 5 })
    assert.strictEqual(merged.reqq, 50)
  })

  it("garbage is an ExtensionError naming what was wrong", () => {
    const cases: ReadonlyArray<readonly [Uint8Array, string]> = [
      [utf8("d1:m"), "invalid bencode"],
      [utf8("i5e"), "not a dictionary"],
      [Bencode.encode({ v: "x" }), "m"],
      [Bencode.encode({ m: 5 }), "m"],
      [Bencode.encode({ m: { ut_metadata: 300 } }), "m.ut_metadata is not a message id"],
      [Bencode.encode({ m: { ut_pex: "one" } }), "m.ut_pex is not a message id"],
      [Bencode.encode({ m: {}, p: "6881" }), "p"]
    ]
    for (const [payload, expected] of cases) {
      const error = failure(Extension.decodeHandshake(payload))
      assert.strictEqual(error._tag, "ExtensionError")
      assert.strictEqual(error.extension, "handshake")
      assert.include(error.message, expected)
      assert.include(error.message, "peer sent a bad handshake message")
    }
  })
})

describe("ut_metadata messages", () => {
  it.prop("round-trip", [Metadata.MetadataMessage], ([message]) => {
    const parsed = Result.getOrThrow(Metadata.parse(Metadata.encode(message)))
    // -0 is an Int but bencodes as 0 (`+ 0` turns it into 0).
    const expected = Object.fromEntries(Object.entries(message).map(([k, v]) => [k, typeof v === "number" ? v + 0 : v]))
    // A block comes back as a view on the payload (a Buffer): compare its bytes.
    assert.deepStrictEqual(
      parsed._tag === "Data" ? { ...parsed, block: new Uint8Array(parsed.block) } : parsed,
      expected
    )
  })

  it("a data message carries its block after the dictionary, as a view", () => {
    const payload = Metadata.encode({ _tag: "Data", piece: 1, totalSize: 20_000, block: new Uint8Array(3616).fill(9) })
    assert.strictEqual(Bencode.text(payload.subarray(0, 45)), "d8:msg_typei1e5:piecei1e10:total_sizei20000ee")
    const parsed = Result.getOrThrow(Metadata.parse(payload))
    assert.strictEqual(parsed._tag, "Data")
    if (parsed._tag === "Data") assert.strictEqual(parsed.block.buffer, payload.buffer)
  })

  it("answers requests from the metadata, and rejects when there is none or the piece is past its end", () => {
    const info = new Uint8Array(20_000).map((_, i) => i & 0xff)
    const last = Metadata.answer(info, 1)
    assert.deepStrictEqual(last, { _tag: "Data", piece: 1, totalSize: 20_000, block: info.subarray(16_384) })
    assert.deepStrictEqual(Metadata.answer(info, 2), { _tag: "Reject", piece: 2 })
    assert.deepStrictEqual(Metadata.answer(undefined, 0), { _tag: "Reject", piece: 0 })
  })

  it("sizes: 1 byte to 16 MiB", () => {
    assert.isUndefined(Metadata.checkSize(1))
    assert.isUndefined(Metadata.checkSize(Metadata.maxSize))
    assert.include(Metadata.checkSize(Metadata.maxSize + 1)!, "over our limit of 16777216")
    assert.include(Metadata.checkSize(0)!, "not a positive integer")
    assert.include(Metadata.checkSize(-5)!, "not a positive integer")
  })

  it("garbage is an ExtensionError", () => {
    const cases: ReadonlyArray<readonly [Uint8Array, string]> = [
      [utf8("d8:msg_typ"), "invalid bencode"],
      [utf8("le"), "not a dictionary"],
      [Bencode.encode({ piece: 0 }), "msg_type"],
      [Bencode.encode({ msg_type: 0 }), "a message of type 0 has no piece"],
      [Bencode.encode({ msg_type: 1, piece: 0 }), "a data message has no total_size"],
      [Bencode.encode({ msg_type: 0, piece: -1 }), "piece"],
      [Bencode.encode({ msg_type: 0, piece: 5000 }), "piece"]
    ]
    for (const [payload, expected] of cases) {
      const error = failure(Metadata.parse(payload))
      assert.strictEqual(error.extension, "ut_metadata")
      assert.include(error.message, expected)
    }
  })

  it("unknown message types are kept apart, to be ignored (BEP 9)", () => {
    assert.deepStrictEqual(Result.getOrThrow(Metadata.parse(Bencode.encode({ msg_type: 7, piece: 0 }))), {
      _tag: "Other",
      msgType: 7
    })
  })
})

describe("ut_pex messages", () => {
  it.prop("round-trip IPv4 and IPv6 peers with their flags", [
    Schema.Array(Peer4),
    Schema.Array(Peer6),
    Schema.Array(Peer4)
  ], ([v4, v6, gone]) => {
    const message: Pex.PexMessage = {
      added: [
        ...v4.map(([a, b, c, d, port, flags]) => ({ host: `${a}.${b}.${c}.${d}`, port, flags })),
        ...v6.map(([segment, port, flags]) => ({ host: `2001:db8::${segment.toString(16)}`, port, flags }))
      ],
      dropped: gone.map(([a, b, c, d, port]) => ({ host: `${a}.${b}.${c}.${d}`, port }))
    }
    assert.deepStrictEqual(Result.getOrThrow(Pex.parse(Pex.encode(message))), message)
  })

  it("reads what ut_pex (webtorrent) writes, even without flags", () => {
    const parsed = Result.getOrThrow(Pex.parse(Bencode.encode({
      added: Uint8Array.from([127, 0, 0, 1, 0x1a, 0xe1]),
      dropped: Uint8Array.from([10, 0, 0, 2, 0, 80])
    })))
    assert.deepStrictEqual(parsed, {
      added: [{ host: "127.0.0.1", port: 6881, flags: 0 }],
      dropped: [{ host: "10.0.0.2", port: 80 }]
    })
  })

  it("garbage is an ExtensionError", () => {
    const cases: ReadonlyArray<readonly [Uint8Array, string]> = [
      [utf8("d5:added"), "invalid bencode"],
      [utf8("i1e"), "not a dictionary"],
      [Bencode.encode({ added: Uint8Array.from([1, 2, 3, 4, 5]) }), "not a multiple of 6"],
      [Bencode.encode({ dropped6: new Uint8Array(17) }), "not a multiple of 18"],
      [Bencode.encode({ added: 5 }), "added"]
    ]
    for (const [payload, expected] of cases) {
      const error = failure(Pex.parse(payload))
      assert.strictEqual(error.extension, "ut_pex")
      assert.include(error.message, expected)
    }
  })
})
