/** Compact peers of both families (BEP 23, BEP 7) and how addresses are written. */
import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as CompactPeer from "../../src/protocol/CompactPeer.ts"

const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex, "hex"))

describe("CompactPeer", () => {
  it("decodes 6-byte IPv4 and 18-byte IPv6 lists, up to a limit", () => {
    assert.deepStrictEqual(Result.getOrThrow(CompactPeer.decodeList(bytes("7f0000011ae1" + "0a000002ffff"), 6)), [
      { host: "127.0.0.1", port: 6881 },
      { host: "10.0.0.2", port: 65535 }
    ])
    const v6 = "000000000000000000000000000000011ae1" + "20010db8000000000000000000000001c8d5"
    assert.deepStrictEqual(Result.getOrThrow(CompactPeer.decodeList(bytes(v6), 18)), [
      { host: "::1", port: 6881 },
      { host: "2001:db8::1", port: 51413 }
    ])
    assert.deepStrictEqual(Result.getOrThrow(CompactPeer.decodeList(bytes(v6), 18, 1)), [{ host: "::1", port: 6881 }])
    assert.deepStrictEqual(
      CompactPeer.decodeList(bytes(v6.slice(2)), 18),
      Result.fail("a compact peer list of 35 bytes is not a multiple of 18")
    )
  })

  it("encodes either family; a host name has no compact form", () => {
    assert.deepStrictEqual(CompactPeer.encode({ host: "127.0.0.1", port: 6881 }), bytes("7f0000011ae1"))
    assert.deepStrictEqual(
      CompactPeer.encode({ host: "2001:db8::1", port: 51413 }),
      bytes("20010db8000000000000000000000001c8d5")
    )
    assert.isUndefined(CompactPeer.encode({ host: "tracker.example", port: 80 }))
  })

  it("writes IPv6 hosts in brackets", () => {
    assert.strictEqual(CompactPeer.format({ host: "::1", port: 6881 }), "[::1]:6881")
    assert.strictEqual(CompactPeer.format({ host: "127.0.0.1", port: 6881 }), "127.0.0.1:6881")
  })

  it.prop(
    "decoding then encoding gives the same bytes, in either family",
    [Schema.Uint8Array.check(Schema.isBetweenLength(18, 18))],
    ([entry]) => {
      for (const size of [6, 18] as const) {
        const [peer] = Result.getOrThrow(CompactPeer.decodeList(entry.subarray(0, size), size))
        assert.deepStrictEqual(CompactPeer.encode(peer!), entry.subarray(0, size))
      }
    }
  )
})
