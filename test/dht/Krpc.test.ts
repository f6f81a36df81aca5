import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as Krpc from "../../src/dht/Krpc.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"

const bytes = (text: string) => new TextEncoder().encode(text)
const id = bytes("abcdefghij0123456789")
const t = bytes("aa")

const Id = Schema.Uint8Array.check(Schema.isBetweenLength(20, 20))
const Port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))
const Octet = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))

const decoded = (wire: Uint8Array) => Result.getOrThrow(Krpc.decode(wire))
const failure = (wire: Uint8Array) => {
  const result = Krpc.decode(wire)
  if (Result.isSuccess(result)) throw new Error(`decoded ${JSON.stringify(result.success)}`)
  return result.failure
}

describe("Krpc", () => {
  it("decodes the BEP 5 examples", () => {
    assert.deepStrictEqual(decoded(bytes("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")), {
      _tag: "Query",
      transactionId: t,
      query: { _tag: "Ping", id },
      readOnly: false
    })
    assert.deepStrictEqual(
      decoded(bytes("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe")),
      {
        _tag: "Query",
        transactionId: t,
        query: { _tag: "GetPeers", id, infoHash: bytes("mnopqrstuvwxyz123456") },
        readOnly: false
      }
    )
    assert.deepStrictEqual(
      decoded(bytes("d1:rd2:id20:mnopqrstuvwxyz1234565:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re")),
      {
        _tag: "Response",
        transactionId: t,
        response: {
          id: bytes("mnopqrstuvwxyz123456"),
          nodes: [],
          values: [{ host: "97.120.106.101", port: 11893 }, { host: "105.100.104.116", port: 28269 }],
          token: bytes("aoeusnth")
        }
      }
    )
    assert.deepStrictEqual(decoded(bytes("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee")), {
      _tag: "Error",
      transactionId: t,
      code: 201,
      text: "A Generic Error Ocurred"
    })
  })

  it("reads implied_port and the read-only flag", () => {
    const wire = Bencode.encode({
      t,
      y: "q",
      q: "announce_peer",
      a: { id, implied_port: 1, info_hash: id, port: 0, token: bytes("tok"), ro: 1 }
    })
    assert.deepStrictEqual(decoded(wire), {
      _tag: "Query",
      transactionId: t,
      query: { _tag: "AnnouncePeer", id, infoHash: id, port: 0, impliedPort: true, token: bytes("tok") },
      readOnly: true
    })
  })

  it.prop(
    "round-trips every message type",
    [Id, Id, Port, Schema.Tuple([Octet, Octet, Octet, Octet]), Schema.Uint8Array],
    ([a, b, port, octets, token]) => {
      const host = octets.join(".")
      const messages: Array<Krpc.Message> = [
        { _tag: "Query", transactionId: token, query: { _tag: "Ping", id: a }, readOnly: false },
        { _tag: "Query", transactionId: t, query: { _tag: "FindNode", id: a, target: b }, readOnly: true },
        { _tag: "Query", transactionId: t, query: { _tag: "GetPeers", id: a, infoHash: b }, readOnly: false },
        {
          _tag: "Query",
          transactionId: t,
          query: { _tag: "AnnouncePeer", id: a, infoHash: b, port, impliedPort: false, token },
          readOnly: false
        },
        {
          _tag: "Response",
          transactionId: t,
          response: { id: a, nodes: [{ id: b, host, port }, { id: a, host, port: 1 }], values: [], token: undefined }
        },
        { _tag: "Response", transactionId: t, response: { id: b, nodes: [], values: [{ host, port }], token } },
        { _tag: "Error", transactionId: t, code: Krpc.METHOD_UNKNOWN, text: "Method Unknown" }
      ]
      for (const message of messages) assert.deepStrictEqual(decoded(Krpc.encode(message)), message)
    }
  )

  it("answers garbage with a typed error and the code to reply with", () => {
    const notBencode = failure(bytes("hello"))
    assert.strictEqual(notBencode._tag, "KrpcError")
    assert.strictEqual(notBencode.code, Krpc.PROTOCOL_ERROR)
    assert.isUndefined(notBencode.transactionId)
    assert.match(notBencode.message, /^invalid KRPC message: invalid bencode at byte 0/)

    assert.isUndefined(failure(bytes("le")).transactionId, "not a dictionary")
    assert.isUndefined(failure(bytes("d1:y1:qe")).transactionId, "no transaction id")
    assert.isUndefined(failure(Bencode.encode({ t, y: "x" })).transactionId, "unknown type")

    const unknownMethod = failure(Bencode.encode({ t, y: "q", q: "vote", a: { id } }))
    assert.strictEqual(unknownMethod.code, Krpc.METHOD_UNKNOWN)
    assert.deepStrictEqual(unknownMethod.transactionId, t)
    assert.include(unknownMethod.message, `unknown method "vote"`)

    const shortId = failure(Bencode.encode({ t, y: "q", q: "find_node", a: { id: bytes("short"), target: id } }))
    assert.strictEqual(shortId.code, Krpc.PROTOCOL_ERROR)
    assert.deepStrictEqual(shortId.transactionId, t, "a bad query is answered")
    assert.include(shortId.message, "find_node")

    const noToken = failure(Bencode.encode({ t, y: "q", q: "announce_peer", a: { id, info_hash: id, port: 1 } }))
    assert.strictEqual(noToken.code, Krpc.PROTOCOL_ERROR)
    assert.include(noToken.message, "token")

    const badPort = failure(
      Bencode.encode({ t, y: "q", q: "announce_peer", a: { id, info_hash: id, port: 70000, token: t } })
    )
    assert.include(badPort.message, "port")

    // A bad response or error is dropped, never answered (two nodes could ping-pong errors forever).
    const badNodes = failure(Bencode.encode({ t, y: "r", r: { id, nodes: new Uint8Array(27) } }))
    assert.isUndefined(badNodes.transactionId)
    assert.include(badNodes.message, "not a multiple of 26")
    assert.isUndefined(failure(Bencode.encode({ t, y: "e", e: ["x"] })).transactionId)

    assert.include(failure(bytes("l".repeat(20) + "e".repeat(20))).message, "nesting deeper than 8")
  })

  it("skips port-0 entries and odd-sized peers in nodes and values", () => {
    const node = (port: number) => Buffer.concat([id, Uint8Array.from([10, 0, 0, 1, port >> 8, port & 0xff])])
    const wire = Bencode.encode({
      t,
      y: "r",
      r: {
        id,
        nodes: Buffer.concat([node(0), node(6881)]),
        values: [new Uint8Array(18), new Uint8Array(7), Uint8Array.from([1, 2, 3, 4, 0, 80])]
      }
    })
    const message = decoded(wire)
    assert(message._tag === "Response")
    assert.deepStrictEqual(message.response.nodes, [{ id, host: "10.0.0.1", port: 6881 }])
    assert.deepStrictEqual(message.response.values, [{ host: "1.2.3.4", port: 80 }])
  })

  it("reads and writes BEP 32's nodes6, IPv6 values and want, and BEP 42's ip", () => {
    const v6 = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1, 0x1a, 0xe1]) // [2001:db8::1]:6881
    const wire = Bencode.encode({
      t,
      y: "r",
      ip: v6,
      r: {
        id,
        nodes: Buffer.concat([id, Uint8Array.from([10, 0, 0, 1, 0x1a, 0xe1])]),
        nodes6: Buffer.concat([id, v6]),
        values: [v6, Uint8Array.from([1, 2, 3, 4, 0, 80])]
      }
    })
    const message = decoded(wire)
    assert(message._tag === "Response")
    assert.deepStrictEqual(message.response, {
      id,
      nodes: [{ id, host: "10.0.0.1", port: 6881 }, { id, host: "2001:db8::1", port: 6881 }],
      values: [{ host: "2001:db8::1", port: 6881 }, { host: "1.2.3.4", port: 80 }],
      token: undefined,
      requester: { host: "2001:db8::1", port: 6881 }
    })
    // Written back, each family goes under its own key.
    assert.deepStrictEqual(Bencode.decode(Krpc.encode(message)), Bencode.decode(wire))

    const badNodes6 = failure(Bencode.encode({ t, y: "r", r: { id, nodes6: new Uint8Array(26) } }))
    assert.include(badNodes6.message, "not a multiple of 38")

    const query = decoded(
      Bencode.encode({ t, y: "q", q: "get_peers", a: { id, info_hash: id, want: ["n6", "n4", "x9"] } })
    )
    assert(query._tag === "Query" && query.query._tag === "GetPeers")
    assert.deepStrictEqual(query.query.want, ["n6", "n4"], "unknown families are left out")
    const findNode: Krpc.Message = {
      _tag: "Query",
      transactionId: t,
      query: { _tag: "FindNode", id, target: id, want: ["n6"] },
      readOnly: false
    }
    assert.deepStrictEqual(decoded(Krpc.encode(findNode)), findNode)
  })

  it.prop("never throws on random bytes", [Schema.Uint8Array], ([random]) => {
    assert.isTrue(Result.isResult(Krpc.decode(random)))
  })
})
