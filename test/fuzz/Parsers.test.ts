/**
 * Property fuzzing of every parser of bytes from strangers: random bytes and
 * mutations of valid inputs (see test/util/Fuzz.ts). Each input parses or
 * fails with the parser's typed error — no exception, no hang — and the frame
 * decoder never holds more than one frame limit's worth of bytes. Inputs
 * that once failed are replayed from test/fixtures/fuzz/.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Fs from "node:fs"
import * as Krpc from "../../src/dht/Krpc.ts"
import * as LpdMessage from "../../src/lpd/LpdMessage.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Bitfield from "../../src/protocol/Bitfield.ts"
import * as Extension from "../../src/protocol/Extension.ts"
import * as Frame from "../../src/protocol/Frame.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as Magnet from "../../src/protocol/Magnet.ts"
import * as Metadata from "../../src/protocol/Metadata.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as Pex from "../../src/protocol/Pex.ts"
import * as WireMessage from "../../src/protocol/WireMessage.ts"
import * as HttpTracker from "../../src/tracker/HttpTracker.ts"
import * as UdpTracker from "../../src/tracker/UdpTracker.ts"
import { everyMessage } from "../protocol/messages.ts"
import { fuzz, regressions, type Target, violation } from "../util/Fuzz.ts"
import { record } from "../util/SecurityResults.ts"

/** Runs per target and kind (random, mutated): 2 × 1500 inputs each. */
const runs = 1500

const torrents = Fs.readdirSync(new URL("../fixtures/metainfo/", import.meta.url))
  .filter((file) => file.endsWith(".torrent"))
  .sort()
  .map((file) => Fs.readFileSync(new URL(`../fixtures/metainfo/${file}`, import.meta.url)))

const text = (s: string) => new TextEncoder().encode(s)
const utf8 = new TextDecoder()

const trackerResponses = [
  Bencode.encode({ interval: 1800, peers: Buffer.from([127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80]) }),
  Bencode.encode({
    interval: 900,
    "min interval": 60,
    "tracker id": "t",
    complete: 1,
    incomplete: 2,
    "warning message": "w",
    peers: [{ ip: "127.0.0.1", port: 6881, "peer id": "x".repeat(20) }, { ip: "::1", port: 1 }],
    peers6: Buffer.from("00000000000000000000000000000001" + "1ae1", "hex")
  }),
  Bencode.encode({ "failure reason": "unregistered torrent" })
]

const udpAnswer = (peers: Uint8Array) => {
  const answer = Buffer.alloc(20 + peers.length)
  answer.writeUInt32BE(1, 0)
  answer.writeUInt32BE(0x1234, 4)
  answer.writeUInt32BE(1800, 8)
  answer.set(peers, 20)
  return answer
}

const handshake = Handshake.encode(
  Handshake.make({
    infoHash: new Uint8Array(20).fill(7),
    peerId: new Uint8Array(20).fill(9),
    features: ["fast", "extensions"]
  })
)
const maxFrame = Frame.maxFrameFor(1000)

/** Feeds the bytes in chunks of varying size; fails as the decoder does, or if it buffers beyond its bound. */
const decodeFrames = (input: Uint8Array) => {
  const decoder = Frame.FrameDecoder.makeWithHandshake({ maxFrame })
  const sizes = [1, 3, 68, 7, 4096, 2, 16397]
  for (let at = 0, i = 0; at < input.length; i++) {
    const size = sizes[(i + (input[0] ?? 0)) % sizes.length]!
    const pushed = decoder.push(input.subarray(at, at + size))
    if (Result.isFailure(pushed)) return pushed
    // A frame's prefix and body, or a handshake: never more.
    if (decoder.buffered > Math.max(Handshake.length, 4 + maxFrame)) {
      return Result.fail({ _tag: `Unbounded (${decoder.buffered} bytes held)` })
    }
    at += size
  }
  return Result.succeed(undefined)
}

const id = new Uint8Array(20).fill(7)
const transactionId = new Uint8Array([1, 2])
const krpcMessages: ReadonlyArray<Krpc.Message> = [
  { _tag: "Query", transactionId, readOnly: false, query: { _tag: "Ping", id } },
  { _tag: "Query", transactionId, readOnly: true, query: { _tag: "GetPeers", id, infoHash: id } },
  {
    _tag: "Query",
    transactionId,
    readOnly: false,
    query: { _tag: "AnnouncePeer", id, infoHash: id, port: 6881, impliedPort: false, token: new Uint8Array(8) }
  },
  {
    _tag: "Response",
    transactionId,
    response: {
      id,
      nodes: [{ id, host: "127.0.0.1", port: 6881 }],
      values: [{ host: "127.0.0.1", port: 1 }],
      token: id
    }
  },
  { _tag: "Error", transactionId, code: 203, text: "Protocol Error" }
]

const targets: ReadonlyArray<Target> = [
  {
    name: "bencode",
    seeds: [...torrents, ...trackerResponses, text("d1:ad1:bl1:ci-42eeee"), text("lllli0eeee")],
    run: (input) => Bencode.decode(input),
    errors: ["BencodeError"]
  },
  {
    name: "metainfo",
    seeds: torrents,
    run: (input) => Metainfo.decode(input),
    errors: ["MetainfoError"]
  },
  {
    name: "magnet",
    seeds: [
      `magnet:?xt=urn:btih:${"0123456789abcdef".repeat(2)}01234567&dn=a%20b&tr=udp%3A%2F%2F127.0.0.1%3A6969`,
      `magnet:?xt=urn:btih:${"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"}&x.pe=127.0.0.1:6881&x.pe=[::1]:1&ws=http%3A%2F%2F127.0.0.1%2F`,
      `magnet:?xt=urn:btmh:1220${"ab".repeat(32)}&xt=urn:btih:${"ab".repeat(20)}`
    ].map(text),
    run: (input) => Magnet.parse(utf8.decode(input)),
    errors: ["MagnetError"]
  },
  {
    name: "frame",
    seeds: [
      Buffer.concat([handshake, WireMessage.encodeBatch(everyMessage)]),
      Buffer.concat([
        handshake,
        WireMessage.encodeBatch([{ _tag: "Piece", index: 1, begin: 0, block: new Uint8Array(16384) }])
      ])
    ],
    run: decodeFrames,
    errors: ["HandshakeError", "WireError"]
  },
  {
    name: "wire-message",
    seeds: everyMessage.filter((m) => m._tag !== "KeepAlive").map((m) => WireMessage.encode(m).subarray(4)),
    run: (input) => input.length === 0 ? Result.succeed(undefined) : WireMessage.parse(input[0]!, input.subarray(1)),
    errors: ["WireError"]
  },
  {
    name: "bitfield",
    seeds: [new Uint8Array(125).fill(0xff), new Uint8Array(125)],
    run: (input) => Bitfield.fromBytes(input, 1000),
    errors: ["BitfieldError"]
  },
  {
    name: "http-tracker",
    seeds: trackerResponses,
    run: (input) => HttpTracker.parse(200, input),
    errors: ["BadResponse", "Failure"]
  },
  {
    name: "udp-tracker",
    seeds: [udpAnswer(new Uint8Array([127, 0, 0, 1, 0x1a, 0xe1])), udpAnswer(new Uint8Array(18))],
    run: (input) => UdpTracker.parseAnnounce(input, (input[19] ?? 0) % 2 === 1),
    errors: ["BadResponse"]
  },
  {
    name: "lsd-announce",
    seeds: [
      LpdMessage.encode({ host: "239.192.152.143:6771", port: 6881, infoHashes: ["ab".repeat(20)], cookie: "c" }),
      LpdMessage.encode({
        host: "[ff15::efc0:988f]:6771",
        port: 1,
        infoHashes: ["01".repeat(20), "ef".repeat(20)],
        cookie: undefined
      })
    ],
    run: LpdMessage.decode,
    errors: ["MalformedAnnounce"]
  },
  {
    name: "krpc",
    seeds: krpcMessages.map(Krpc.encode),
    run: Krpc.decode,
    errors: ["KrpcError"]
  },
  {
    name: "extension-handshake",
    seeds: [
      Extension.encodeHandshake({
        extensions: ["ut_metadata", "ut_pex"],
        port: 6881,
        reqq: 250,
        peerHost: "127.0.0.1",
        metadataSize: 31_000
      })
    ],
    run: Extension.decodeHandshake,
    errors: ["ExtensionError"]
  },
  {
    name: "ut_metadata",
    seeds: [
      Metadata.encode({ _tag: "Request", piece: 0 }),
      Metadata.encode({ _tag: "Data", piece: 1, totalSize: 20_000, block: new Uint8Array(3616).fill(9) })
    ],
    run: Metadata.parse,
    errors: ["ExtensionError"]
  },
  {
    name: "ut_pex",
    seeds: [
      Pex.encode({
        added: [{ host: "127.0.0.1", port: 6881, flags: 0x10 }, { host: "::1", port: 1, flags: 0 }],
        dropped: [{ host: "10.0.0.1", port: 51413 }]
      })
    ],
    run: Pex.parse,
    errors: ["ExtensionError"]
  }
]

describe("fuzzing", () => {
  for (const target of targets) {
    describe(target.name, () => {
      it("the seeds themselves parse or fail with a typed error", () => {
        for (const seed of target.seeds) assert.isUndefined(violation(target, seed))
      })

      it(`replays the saved failing inputs`, () => {
        const saved = regressions(target)
        for (const [file, input] of saved) assert.isUndefined(violation(target, input), file)
        record(`${saved.length} saved inputs replayed`)
      })

      it.effect(
        `${2 * runs} random and mutated inputs: parsed or a typed error, no throw, no hang`,
        () =>
          Effect.gen(function*() {
            const started = Date.now()
            const report = yield* fuzz(target, runs)
            assert.isUndefined(report.failure)
            record(`${report.runs} inputs in ${Date.now() - started} ms, errors: ${target.errors.join(" | ")}`)
          }),
        30_000
      )
    })
  }
})
