import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as LpdMessage from "../../src/lpd/LpdMessage.ts"

const text = (s: string) => new TextEncoder().encode(s)
const hashA = "0123456789abcdef0123456789abcdef01234567"
const hashB = "fedcba9876543210fedcba9876543210fedcba98"

const decoded = (wire: Uint8Array) => Result.getOrThrow(LpdMessage.decode(wire))
const problem = (wire: Uint8Array) => {
  const result = LpdMessage.decode(wire)
  if (Result.isSuccess(result)) throw new Error(`decoded ${JSON.stringify(result.success)}`)
  assert.strictEqual(result.failure._tag, "MalformedAnnounce")
  return result.failure.message
}

const Port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))
const InfoHash = Schema.Uint8Array.check(Schema.isBetweenLength(20, 20))

describe("LpdMessage", () => {
  it("encodes the BEP 14 layout", () => {
    const wire = LpdMessage.encode({
      host: "239.192.152.143:6771",
      port: 51413,
      infoHashes: [hashA],
      cookie: "c00k1e"
    })
    assert.strictEqual(
      new TextDecoder().decode(wire),
      `BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 51413\r\nInfohash: ${hashA}\r\ncookie: c00k1e\r\n\r\n\r\n`
    )
  })

  it.prop(
    "round-trips announces with one or more info-hashes, with and without a cookie",
    [Port, Schema.NonEmptyArray(InfoHash), Schema.optional(Schema.String.check(Schema.isPattern(/^[0-9a-z]{1,16}$/)))],
    ([port, hashes, cookie]) => {
      const infoHashes = [...new Set(hashes.map((hash) => Buffer.from(hash).toString("hex")))]
      const announce = { host: "239.192.152.143:6771", port, infoHashes, cookie }
      assert.deepStrictEqual(decoded(LpdMessage.encode(announce)), announce)
    }
  )

  it("reads header names in any case and upper-case hex, ignores unknown headers, needs no trailing blank lines", () => {
    const wire = text(
      `BT-SEARCH * HTTP/1.1\r\nHOST: 239.192.152.143:6771\r\nport:6881\r\nInfoHash: ${hashB.toUpperCase()}\r\nX-Other: 1`
    )
    assert.deepStrictEqual(decoded(wire), {
      host: "239.192.152.143:6771",
      port: 6881,
      infoHashes: [hashB],
      cookie: undefined
    })
  })

  it("rejects garbage with a MalformedAnnounce naming what was wrong", () => {
    const header = "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\n"
    assert.include(problem(text("M-SEARCH * HTTP/1.1\r\n\r\n")), "does not start with")
    assert.include(problem(new Uint8Array([0xff, 0, 1, 2])), "does not start with")
    assert.include(problem(text(`${header}Port: 6881\r\n\r\n`)), "no Infohash header")
    assert.include(problem(text(`BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\nInfohash: ${hashA}\r\n\r\n`)), "no Host header")
    assert.include(problem(text(`${header}Infohash: ${hashA}\r\n\r\n`)), "no Port header")
    assert.include(problem(text(`${header}Port: 0\r\nInfohash: ${hashA}\r\n\r\n`)), `Port "0" is not a port number`)
    assert.include(problem(text(`${header}Port: 65536\r\nInfohash: ${hashA}\r\n\r\n`)), "is not a port number")
    assert.include(problem(text(`${header}Port: -1\r\nInfohash: ${hashA}\r\n\r\n`)), "is not a port number")
    assert.include(problem(text(`${header}Port: 6881\r\nInfohash: ${hashA.slice(1)}\r\n\r\n`)), "is not 40 hex digits")
    assert.include(problem(text(`${header}Port: 6881\r\nInfohash: ${"g".repeat(40)}\r\n\r\n`)), "is not 40 hex digits")
    assert.include(problem(text(`${header}Port 6881\r\n\r\n`)), "has no ':'")
  })

  it("rejects a datagram over 1400 bytes before reading it", () => {
    const announce = (count: number) =>
      LpdMessage.encode({ host: "239.192.152.143:6771", port: 6881, infoHashes: Array(count).fill(hashA), cookie: "x" })
    const wire = announce(30)
    assert.isAbove(wire.length, LpdMessage.MAX_SIZE)
    assert.strictEqual(problem(wire), `invalid LSD announce: a ${wire.length}-byte datagram; the limit is 1400`)
    assert.isAtMost(announce(20).length, LpdMessage.MAX_SIZE)
    assert.deepStrictEqual(decoded(announce(20)).infoHashes, [hashA])
  })

  it.prop("never throws on random bytes", [Schema.Uint8Array], ([random]) => {
    const result = LpdMessage.decode(random)
    assert.isTrue(Result.isFailure(result))
  })
})
