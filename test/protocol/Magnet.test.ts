import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { Arbitrary, Effect, Result, Schema } from "effect"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Magnet from "../../src/protocol/Magnet.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"

/** RFC 4648 base32, written here so the test does not share the decoder's alphabet logic. */
const base32 = (bytes: Uint8Array): string => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
  let out = ""
  let value = 0
  let bits = 0
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xfff
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return out
}

const HASH = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a" as InfoHash.InfoHash
const HASH_B32 = base32(Buffer.from(HASH, "hex"))
const OTHER = "0123456789abcdef0123456789abcdef01234567"

const ok = (uri: string): Magnet.Magnet => {
  const result = Magnet.parse(uri)
  if (Result.isFailure(result)) assert.fail(`expected a magnet, got: ${result.failure.message}`)
  return result.success
}

const err = (uri: string): string => {
  const result = Magnet.parse(uri)
  if (Result.isSuccess(result)) assert.fail(`expected a MagnetError for ${uri}`)
  assert.strictEqual(result.failure.message, `invalid magnet link: ${result.failure.detail}`)
  return result.failure.detail
}

// ---------------------------------------------------------------- generators

const wellFormed = (s: string) => Buffer.from(s, "utf8").toString("utf8")
const unique = <A>(xs: ReadonlyArray<A>): Array<A> => [...new Set(xs)]

const Tracker = Schema.String.check(
  Schema.isPattern(
    /^(https?|udp|wss?):\/\/[a-z0-9-]{1,10}(\.[a-z]{2,5})?(:[1-9][0-9]{0,4})?(\/[a-zA-Z0-9_.~%?&=+ -]{0,12})?$/
  )
)
const Peer = Schema.Union([
  Schema.String.check(Schema.isPattern(/^([0-9]{1,3}\.){3}[0-9]{1,3}:[1-9][0-9]{0,3}$/)),
  Schema.String.check(Schema.isPattern(/^\[[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}\]:[1-9][0-9]{0,3}$/)),
  Schema.String.check(Schema.isPattern(/^[a-z][a-z0-9-]{0,10}\.example:[1-9][0-9]{0,3}$/))
])

const magnet = Arbitrary.schema(Schema.Struct({
  infoHash: InfoHash.InfoHash,
  name: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1))),
  trackers: Schema.Array(Tracker).check(Schema.isMaxLength(5)),
  peers: Schema.Array(Peer).check(Schema.isMaxLength(4)),
  webSeeds: Schema.Array(Schema.String.check(Schema.isMinLength(1))).check(Schema.isMaxLength(3))
})).pipe(Arbitrary.map((m): Magnet.Magnet => ({
  infoHash: m.infoHash,
  ...(m.name !== undefined ? { name: wellFormed(m.name) } : {}),
  trackers: unique(m.trackers),
  peers: unique(m.peers),
  webSeeds: unique(m.webSeeds.map(wellFormed))
})))

/** Form-style encoding other clients use: spaces as "+". */
const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, "+")

// --------------------------------------------------------------------- tests

describe("Magnet", () => {
  describe("parse", () => {
    it("40-hex (either case) and 32-base32 (either case) name the same info-hash", () => {
      assert.strictEqual(HASH_B32.length, 32)
      const forms = [HASH, HASH.toUpperCase(), HASH_B32, HASH_B32.toLowerCase()]
      for (const form of forms) assert.strictEqual(ok(`magnet:?xt=urn:btih:${form}`).infoHash, HASH)
    })

    it("base32 decodes every bit: a hash of all ones and one of alternating bits", () => {
      for (const hex of ["ff".repeat(20), "a5".repeat(20), "00".repeat(19) + "01"]) {
        assert.strictEqual<string>(ok(`magnet:?xt=urn:btih:${base32(Buffer.from(hex, "hex"))}`).infoHash, hex)
      }
    })

    it("reads dn, repeated tr (deduplicated, in order), x.pe and ws", () => {
      const m = ok(
        `magnet:?xt=urn:btih:${HASH}&dn=Hello+World%21&tr=udp%3A%2F%2Fa.example%3A6969&tr=http%3A%2F%2Fb.example%2Fannounce%3Fk%3D1%26x%3D2` +
          `&tr=udp%3A%2F%2Fa.example%3A6969&x.pe=10.0.0.1:6881&x.pe=%5B2001:db8::1%5D:51413&x.pe=10.0.0.1:6881` +
          `&ws=http%3A%2F%2Fseed.example%2Ff&ws=http%3A%2F%2Fseed.example%2Ff&xl=1234&as=ignored`
      )
      assert.deepStrictEqual(m, {
        infoHash: HASH,
        name: "Hello World!",
        trackers: ["udp://a.example:6969", "http://b.example/announce?k=1&x=2"],
        peers: ["10.0.0.1:6881", "[2001:db8::1]:51413"],
        webSeeds: ["http://seed.example/f"]
      })
    })

    it("MAGNET:? in capitals, an empty dn, and the same hash twice (hex and base32) are accepted", () => {
      const m = ok(`MAGNET:?xt=urn:btih:${HASH}&xt=urn:btih:${HASH_B32}&dn=`)
      assert.deepStrictEqual(m, { infoHash: HASH, trackers: [], peers: [], webSeeds: [] })
    })

    it("a hybrid magnet (btih and btmh) uses its btih, keeps its v2 hash, and formats both", () => {
      const m = ok(`magnet:?xt=urn:btmh:1220${"AB".repeat(32)}&xt=urn:btih:${HASH}`)
      assert.strictEqual(m.infoHash, HASH)
      assert.strictEqual(m.infoHashV2, "ab".repeat(32))
      assert.isFalse(Magnet.isV2Only(m))
      assert.strictEqual(Magnet.format(m), `magnet:?xt=urn:btih:${HASH}&xt=urn:btmh:1220${"ab".repeat(32)}`)
    })

    it("a v2-only magnet (urn:btmh, BEP 52): its v2 hash, truncated to 20 bytes as the info-hash", () => {
      const v2 = "0123456789abcdef".repeat(4)
      const m = ok(`magnet:?xt=urn:btmh:1220${v2}&dn=v2`)
      assert.strictEqual(m.infoHashV2, v2)
      assert.strictEqual(m.infoHash, v2.slice(0, 40))
      assert.isTrue(Magnet.isV2Only(m))
      assert.strictEqual(Magnet.format(m), `magnet:?xt=urn:btmh:1220${v2}&dn=v2`)
      assert.deepStrictEqual(ok(Magnet.format(m)), m)
    })
  })

  describe("so (BEP 53)", () => {
    it("reads indexes and ranges, and selects among the torrent's files those that exist", () => {
      const m = ok(`magnet:?xt=urn:btih:${HASH}&so=0,2,4-6,9`)
      assert.deepStrictEqual(m.selectOnly, [
        { from: 0, to: 0 },
        { from: 2, to: 2 },
        { from: 4, to: 6 },
        { from: 9, to: 9 }
      ])
      assert.deepStrictEqual(Magnet.selectedFiles(m, 6), [0, 2, 4, 5])
      assert.deepStrictEqual(Magnet.selectedFiles(m, 100), [0, 2, 4, 5, 6, 9])
      assert.strictEqual(Magnet.selectedFiles(ok(`magnet:?xt=urn:btih:${HASH}`), 3), undefined)
    })

    it("a huge range costs nothing beyond the files there are", () => {
      assert.deepStrictEqual(Magnet.selectedFiles(ok(`magnet:?xt=urn:btih:${HASH}&so=1-999999999`), 3), [1, 2])
    })

    it("round-trips through format", () => {
      const link = `magnet:?xt=urn:btih:${HASH}&so=0,2,4-6`
      assert.strictEqual(Magnet.format(ok(link)), link)
    })

    it("anything but indexes and ranges is refused, naming the value", () => {
      for (const so of ["", "a", "1,,2", "3-1", "-1", "1-", "1.5"]) {
        assert.strictEqual(
          err(`magnet:?xt=urn:btih:${HASH}&so=${so}`),
          `so ${JSON.stringify(so)} is not a list of file indexes and ranges (like 0,2,4-6)`
        )
      }
    })
  })

  describe("errors", () => {
    it("not a magnet", () => {
      for (const input of ["http://example.com/?xt=urn:btih:" + HASH, "magnet:xt=urn:btih:" + HASH, ""]) {
        assert.strictEqual(err(input), "it does not start with magnet:?")
      }
    })

    it("no btih or btmh topic", () => {
      const none = "it has no xt=urn:btih: or xt=urn:btmh: info-hash"
      assert.strictEqual(err("magnet:?dn=x"), none)
      assert.strictEqual(err(`magnet:?xt=urn:sha1:${HASH}`), none)
      assert.strictEqual(err(`magnet:?xt=${HASH}`), none)
    })

    it("a btmh that is not a SHA-256 multihash, or two different ones", () => {
      for (const bad of [`1114${"ab".repeat(32)}`, `1220${"ab".repeat(31)}`, "ab".repeat(32)]) {
        assert.strictEqual(
          err(`magnet:?xt=urn:btmh:${bad}`),
          `the info-hash in "urn:btmh:${bad}" is not 1220 and 64 hex characters (a SHA-256 multihash)`
        )
      }
      assert.strictEqual(
        err(`magnet:?xt=urn:btmh:1220${"ab".repeat(32)}&xt=urn:btmh:1220${"cd".repeat(32)}`),
        "it names more than one info-hash"
      )
    })

    it("a bad hash is named, even after a good one", () => {
      for (
        const bad of [HASH.slice(1), HASH + "0", "g" + HASH.slice(1), HASH_B32.slice(1), "1" + HASH_B32.slice(1), ""]
      ) {
        assert.strictEqual(
          err(`magnet:?xt=urn:btih:${bad}`),
          `the info-hash in "urn:btih:${bad}" is neither 40 hex nor 32 base32 characters`
        )
      }
      assert.include(err(`magnet:?xt=urn:btih:${HASH}&xt=urn:btih:zz`), `"urn:btih:zz"`)
    })

    it("two different hashes", () => {
      assert.strictEqual(err(`magnet:?xt=urn:btih:${HASH}&xt=urn:btih:${OTHER}`), "it names more than one info-hash")
    })

    it("a bad x.pe", () => {
      for (const bad of ["10.0.0.1", "10.0.0.1:0", "10.0.0.1:65536", "::1:80", "[::1]", "[::1]:", "host:port", ":80"]) {
        assert.strictEqual(
          err(`magnet:?xt=urn:btih:${HASH}&x.pe=10.0.0.2:1&x.pe=${encodeURIComponent(bad)}`),
          `x.pe ${JSON.stringify(bad)} is not a host:port address`
        )
      }
    })

    it("a tracker that is not an http, udp or ws URL", () => {
      for (const bad of ["ftp://a.example/", "a.example:80", "udp:///announce"]) {
        assert.strictEqual(
          err(`magnet:?xt=urn:btih:${HASH}&tr=${encodeURIComponent(bad)}`),
          `tr ${JSON.stringify(bad)} is not a tracker URL`
        )
      }
    })
  })

  describe("parsePeer", () => {
    it("IPv4, bracketed IPv6 and names; ports 1 to 65535", () => {
      assert.deepStrictEqual(Magnet.parsePeer("1.2.3.4:6881"), { host: "1.2.3.4", port: 6881 })
      assert.deepStrictEqual(Magnet.parsePeer("[::ffff:1.2.3.4]:1"), { host: "::ffff:1.2.3.4", port: 1 })
      assert.deepStrictEqual(Magnet.parsePeer("peer.example:65535"), { host: "peer.example", port: 65535 })
      for (const bad of ["1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:123456", "[zz]:1", "a:b:1", "1.2.3.4"]) {
        assert.isUndefined(Magnet.parsePeer(bad), bad)
      }
    })
  })

  describe("format", () => {
    it("is canonical: hex hash first, then dn, tr, ws, x.pe; spaces as %20", () => {
      const messy =
        `magnet:?x.pe=10.0.0.1:1&ws=http://s.example/&tr=udp://b.example:1&dn=a+b%2Bc&xt=urn:btih:${HASH_B32}` +
        `&tr=udp://a.example:1&tr=udp://b.example:1&xl=10`
      const canonical =
        `magnet:?xt=urn:btih:${HASH}&dn=a%20b%2Bc&tr=udp%3A%2F%2Fb.example%3A1&tr=udp%3A%2F%2Fa.example%3A1` +
        `&ws=http%3A%2F%2Fs.example%2F&x.pe=10.0.0.1%3A1`
      assert.strictEqual(Magnet.format(ok(messy)), canonical)
      assert.strictEqual(Magnet.format(ok(canonical)), canonical)
    })

    it.effect.prop("parse(format(m)) equals m, and format is a fixed point", [magnet], ([m]) =>
      Effect.gen(function*() {
        const formatted = Magnet.format(m)
        const parsed = yield* Effect.fromResult(Magnet.parse(formatted))
        assert.deepStrictEqual(parsed, m)
        assert.strictEqual(Magnet.format(parsed), formatted)
      }))

    it.effect.prop(
      "any spelling of a magnet (base32, capitals, shuffled, repeated, '+' for spaces, unknown params) formats canonically",
      [magnet, Schema.Boolean, Schema.Int],
      ([m, useBase32, seed]) =>
        Effect.gen(function*() {
          const hash = useBase32 ? base32(Buffer.from(m.infoHash, "hex")) : m.infoHash.toUpperCase()
          const params = [
            `xt=urn:btih:${hash}`,
            ...(m.name !== undefined ? [`dn=${formEncode(m.name)}`] : []),
            ...m.trackers.map((tr) => `tr=${formEncode(tr)}`),
            ...m.trackers.slice(0, 1).map((tr) => `tr=${formEncode(tr)}`),
            ...m.webSeeds.map((ws) => `ws=${formEncode(ws)}`),
            ...m.peers.map((pe) => `x.pe=${formEncode(pe)}`),
            ...m.peers.map((pe) => `x.pe=${formEncode(pe)}`),
            "xl=12345",
            "kt=some+keywords"
          ]
          // shuffle everything but the relative order of each key's values
          const keyOf = (p: string) => p.slice(0, p.indexOf("="))
          const keys = unique(params.map(keyOf))
          let state = Math.abs(seed) % 2147483647 || 1
          const order = keys.map((k) => [k, state = (state * 48271) % 2147483647] as const).sort((a, b) => a[1] - b[1])
          const shuffled = order.flatMap(([k]) => params.filter((p) => keyOf(p) === k))
          const parsed = yield* Effect.fromResult(Magnet.parse(`magnet:?${shuffled.join("&")}`))
          assert.strictEqual(Magnet.format(parsed), Magnet.format(m))
        })
    )
  })

  describe("fromMetainfo", () => {
    it("takes the name, every tracker once in tier order, and the web seeds", () => {
      const bytes = new Uint8Array(readFileSync(new URL("../fixtures/metainfo/multi.torrent", import.meta.url)))
      const meta = Result.getOrThrow(Metainfo.decode(bytes))
      const m = Magnet.fromMetainfo(meta)
      assert.deepStrictEqual(m, {
        infoHash: meta.infoHash,
        name: "album",
        trackers: ["http://tracker.example/announce", "udp://a.example:6969", "udp://b.example:6969"],
        peers: [],
        webSeeds: ["http://seed.example/files/", "http://mirror.example/"]
      })
      assert.deepStrictEqual(ok(Magnet.format(m)), m)
    })
  })
})
