/**
 * BEP 42 node ids: the examples from the BEP's text, ids we make for an
 * address, and the local addresses that are exempt.
 */
import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import * as SecureNodeId from "../../src/dht/SecureNodeId.ts"
import * as CompactPeer from "../../src/protocol/CompactPeer.ts"

const ip = (host: string) => CompactPeer.ipBytes(host)!
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")

/** The BEP's table: IP, rand, and an id that conforms (its first 21 bits are what count). */
const examples = [
  ["124.31.75.21", 1, "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"],
  ["21.75.31.124", 86, "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"],
  ["65.23.51.170", 22, "a5d43220bc8f112a3d426c84764f8c2a1150e616"],
  ["84.124.73.14", 65, "1b0321dd1bb1fe518101ceef99462b947a01ff41"],
  ["43.213.53.83", 90, "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"]
] as const

describe("SecureNodeId", () => {
  it("accepts the BEP's example ids, and gives their prefixes", () => {
    for (const [host, rand, id] of examples) {
      const bytes = Uint8Array.from(Buffer.from(id, "hex"))
      assert.strictEqual(bytes[19], rand)
      assert.isTrue(SecureNodeId.conforms(bytes, ip(host)), host)
      // The top 21 bits: the first 24 of the id less its 3 random ones.
      assert.strictEqual(SecureNodeId.prefix(ip(host), rand) >>> 11, Number.parseInt(id.slice(0, 6), 16) >>> 3, host)
    }
  })

  it("rejects an id whose 21st bit or r differs", () => {
    const [host, , id] = examples[0]
    const flipped = Uint8Array.from(Buffer.from(id, "hex"))
    flipped[2]! ^= 0x08
    assert.isFalse(SecureNodeId.conforms(flipped, ip(host)))
    const otherR = Uint8Array.from(Buffer.from(id, "hex"))
    otherR[19] = 2
    assert.isFalse(SecureNodeId.conforms(otherR, ip(host)))
    assert.isFalse(SecureNodeId.acceptable(otherR, host))
  })

  it.prop(
    "makes ids that conform, for IPv4 and IPv6",
    [Schema.Uint8Array.check(Schema.isBetweenLength(20, 20))],
    ([random]) => {
      for (const host of ["124.31.75.21", "2001:db8:85a3::8a2e:370:7334"]) {
        const id = SecureNodeId.make(ip(host), random)
        assert.isTrue(SecureNodeId.conforms(id, ip(host)), `${hex(id)} for ${host}`)
        assert.deepStrictEqual(id.subarray(3), random.subarray(3), "the rest is the random bytes")
        assert.strictEqual(id[2]! & 7, random[2]! & 7)
      }
    }
  )

  it("exempts local addresses, and only those", () => {
    for (const host of [
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.0.9",
      "127.0.0.1",
      "::1",
      "fe80::1",
      "fd00::5"
    ]) {
      assert.isTrue(SecureNodeId.exempt(host), host)
      assert.isTrue(SecureNodeId.acceptable(new Uint8Array(20), host), host)
    }
    for (const host of ["172.32.0.1", "8.8.8.8", "203.0.113.7", "2001:db8::1", "fec0::1"]) {
      assert.isFalse(SecureNodeId.exempt(host), host)
    }
  })

  it("computes CRC-32C", () => {
    // RFC 3720 B.4: 32 bytes of zeros.
    assert.strictEqual(SecureNodeId.crc32c(new Uint8Array(32)), 0x8a9136aa)
    assert.strictEqual(SecureNodeId.crc32c(new TextEncoder().encode("123456789")), 0xe3069283)
  })
})
