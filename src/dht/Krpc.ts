/**
 * KRPC (BEP 5): the DHT's bencoded messages over UDP. A message is a query
 * (`y` = "q": ping, find_node, get_peers, announce_peer), a response
 * ("r") or an error ("e"), each with the transaction id `t` the querier chose.
 *
 * `decode` never throws: bytes that are not a KRPC message are a `KrpcError`
 * carrying the KRPC error code to answer with (203 for malformed messages
 * and bad arguments, 204 for unknown methods) and, when it could be read, the
 * transaction id to answer to. Keys we do not use (`v`, …) are ignored.
 *
 * Both families (BEP 32): a response's `nodes` (26-byte compact node info,
 * IPv4) and `nodes6` (38 bytes, IPv6) are read into one list, and written
 * back split by family; `values` hold 6- or 18-byte peers; `want` (`n4`,
 * `n6`) asks find_node and get_peers for the families wanted. A response's
 * `ip` (BEP 42) is the querier's address as the responder saw it.
 */
import { Result, Schema, SchemaTransformation } from "effect"
import * as Bencode from "../protocol/Bencode.ts"
import * as CompactPeer from "../protocol/CompactPeer.ts"
import type * as Tracker from "../tracker/Tracker.ts"

/** The KRPC error codes we send (BEP 5): a malformed query, an unknown method. */
export const PROTOCOL_ERROR = 203
export const METHOD_UNKNOWN = 204

export class KrpcError extends Schema.TaggedError<KrpcError>()("KrpcError", {
  /** The error code a reply to this message carries (203 or 204). */
  code: Schema.Number,
  /** The transaction id of the query to answer with this error; absent for anything else. */
  transactionId: Schema.optionalKey(Schema.Uint8Array),
  problem: Schema.String
}) {
  override get message() {
    return `invalid KRPC message: ${this.problem}`
  }
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

export interface NodeInfo {
  readonly id: Uint8Array
  readonly host: string
  readonly port: number
}

export type PeerAddress = Tracker.PeerAddress

/** The address families whose nodes a find_node or get_peers asks for (BEP 32); absent: the one it came over. */
export type Want = ReadonlyArray<"n4" | "n6">

export type Query =
  | { readonly _tag: "Ping"; readonly id: Uint8Array }
  | { readonly _tag: "FindNode"; readonly id: Uint8Array; readonly target: Uint8Array; readonly want?: Want }
  | { readonly _tag: "GetPeers"; readonly id: Uint8Array; readonly infoHash: Uint8Array; readonly want?: Want }
  | {
    readonly _tag: "AnnouncePeer"
    readonly id: Uint8Array
    readonly infoHash: Uint8Array
    readonly port: number
    /** Use the UDP source port instead of `port` (BEP 5 `implied_port`). */
    readonly impliedPort: boolean
    readonly token: Uint8Array
  }

export interface Response {
  readonly id: Uint8Array
  /** IPv4 and IPv6 nodes (`nodes` and `nodes6` on the wire). */
  readonly nodes: ReadonlyArray<NodeInfo>
  readonly values: ReadonlyArray<PeerAddress>
  readonly token: Uint8Array | undefined
  /** Our address as the responder saw it (BEP 42's `ip`). */
  readonly requester?: PeerAddress
}

export type Message =
  | {
    readonly _tag: "Query"
    readonly transactionId: Uint8Array
    readonly query: Query
    /** BEP 43: the sender answers no queries, so it does not belong in routing tables. */
    readonly readOnly: boolean
  }
  | { readonly _tag: "Response"; readonly transactionId: Uint8Array; readonly response: Response }
  | { readonly _tag: "Error"; readonly transactionId: Uint8Array; readonly code: number; readonly text: string }

// ---------------------------------------------------------------------------
// Wire shapes (bencoded values as our decoder returns them)
// ---------------------------------------------------------------------------

const utf8Decoder = new TextDecoder()
const utf8Encoder = new TextEncoder()

const Text = Schema.Uint8Array.pipe(Schema.decodeTo(
  Schema.String,
  SchemaTransformation.transform<string, Uint8Array>({
    decode: (bytes) => utf8Decoder.decode(bytes),
    encode: (text) => utf8Encoder.encode(text)
  })
))

export const ID_LENGTH = 20
const Id = Schema.Uint8Array.check(Schema.isBetweenLength(ID_LENGTH, ID_LENGTH))
/** Compact node info: an id, then a compact address of 6 (IPv4) or 18 (IPv6) bytes. */
type NodeInfoLength = 26 | 38
const compactNodes = (size: NodeInfoLength) =>
  Schema.Uint8Array.check(
    Schema.makeFilter((b: Uint8Array) =>
      b.length % size === 0 || `compact node info of ${b.length} bytes is not a multiple of ${size}`
    )
  )
const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))

const Envelope = Schema.Struct({ t: Schema.Uint8Array, y: Text })
const QueryEnvelope = Schema.Struct({ q: Text, a: Schema.Record(Schema.String, Schema.Unknown) })
const ReadOnly = Schema.Struct({ ro: Schema.optionalKey(Schema.Int) })

// Unknown `want` entries are ignored (BEP 32 leaves room for more families).
const WantList = Schema.optionalKey(Schema.Array(Text))

const queryArguments = {
  ping: Schema.Struct({ id: Id }),
  find_node: Schema.Struct({ id: Id, target: Id, want: WantList }),
  get_peers: Schema.Struct({ id: Id, info_hash: Id, want: WantList }),
  announce_peer: Schema.Struct({
    id: Id,
    info_hash: Id,
    port: Port,
    token: Schema.Uint8Array,
    implied_port: Schema.optionalKey(Schema.Int)
  })
} as const

const ResponseBody = Schema.Struct({
  r: Schema.Struct({
    id: Id,
    nodes: Schema.optionalKey(compactNodes(26)),
    nodes6: Schema.optionalKey(compactNodes(38)),
    values: Schema.optionalKey(Schema.Array(Schema.Uint8Array)),
    token: Schema.optionalKey(Schema.Uint8Array)
  }),
  ip: Schema.optionalKey(Schema.Uint8Array)
})

const ErrorBody = Schema.Struct({ e: Schema.Tuple([Schema.Int, Text]) })

const decodeWith = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S) => {
  const run = Schema.decodeUnknownResult(schema)
  return (input: unknown, fail: (problem: string) => KrpcError): Result.Result<S["Type"], KrpcError> =>
    Result.mapError(run(input), (error) => fail(error.message))
}

const envelope = decodeWith(Envelope)
const queryEnvelope = decodeWith(QueryEnvelope)
const readOnly = decodeWith(ReadOnly)
const responseBody = decodeWith(ResponseBody)
const errorBody = decodeWith(ErrorBody)
const args = {
  ping: decodeWith(queryArguments.ping),
  find_node: decodeWith(queryArguments.find_node),
  get_peers: decodeWith(queryArguments.get_peers),
  announce_peer: decodeWith(queryArguments.announce_peer)
}

// A KRPC message is one small dictionary; anything bigger or deeper is not one.
const limits: Bencode.Limits = { maxBytes: 65_536, maxDepth: 8, maxTokens: 4_096 }

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

export const decode = (bytes: Uint8Array): Result.Result<Message, KrpcError> =>
  Result.gen(function*() {
    const malformed = (problem: string) => new KrpcError({ code: PROTOCOL_ERROR, problem })
    const value = yield* Result.mapError(Bencode.decode(bytes, limits), (error) => malformed(error.message))
    const { t, y } = yield* envelope(value, malformed)
    // Only queries are answered, errors included: answering a bad answer could ping-pong forever.
    const invalid = (problem: string) => new KrpcError({ code: PROTOCOL_ERROR, transactionId: t, problem })
    switch (y) {
      case "q":
        return yield* decodeQuery(value, t, invalid)
      case "r": {
        const { ip, r } = yield* responseBody(value, malformed)
        const [requester] = ip === undefined ? [] : decodePeer(ip)
        const response: Response = {
          id: r.id,
          nodes: [...decodeNodes(r.nodes ?? empty), ...decodeNodes(r.nodes6 ?? empty, 38)],
          values: (r.values ?? []).flatMap(decodePeer),
          token: r.token,
          ...(requester === undefined ? {} : { requester })
        }
        return { _tag: "Response", transactionId: t, response } as const
      }
      case "e": {
        const { e: [code, text] } = yield* errorBody(value, malformed)
        return { _tag: "Error", transactionId: t, code, text } as const
      }
      default:
        return yield* Result.fail(malformed(`unknown message type "${y}"`))
    }
  })

const decodeQuery = (value: unknown, t: Uint8Array, invalid: (problem: string) => KrpcError) =>
  Result.gen(function*() {
    const { q, a } = yield* queryEnvelope(value, invalid)
    const { ro } = yield* readOnly(a, invalid)
    const wrap = (query: Query): Message => ({ _tag: "Query", transactionId: t, query, readOnly: ro === 1 })
    const bad = (problem: string) => invalid(`${q}: ${problem}`)
    switch (q) {
      case "ping": {
        const { id } = yield* args.ping(a, bad)
        return wrap({ _tag: "Ping", id })
      }
      case "find_node": {
        const { id, target, want } = yield* args.find_node(a, bad)
        return wrap({ _tag: "FindNode", id, target, ...wantOf(want) })
      }
      case "get_peers": {
        const { id, info_hash, want } = yield* args.get_peers(a, bad)
        return wrap({ _tag: "GetPeers", id, infoHash: info_hash, ...wantOf(want) })
      }
      case "announce_peer": {
        const { id, implied_port, info_hash, port, token } = yield* args.announce_peer(a, bad)
        return wrap({ _tag: "AnnouncePeer", id, infoHash: info_hash, port, impliedPort: implied_port === 1, token })
      }
      default:
        return yield* Result.fail(
          new KrpcError({ code: METHOD_UNKNOWN, transactionId: t, problem: `unknown method "${q}"` })
        )
    }
  })

const empty = new Uint8Array(0)

const wantOf = (want: ReadonlyArray<string> | undefined): { want?: Want } =>
  want === undefined ? {} : { want: want.filter((family) => family === "n4" || family === "n6") }

/** Compact node info: 20-byte id, then a 6-byte (IPv4, `nodes`) or 18-byte (IPv6, `nodes6`) address; entries with port 0 are skipped. */
export const decodeNodes = (bytes: Uint8Array, size: NodeInfoLength = 26): Array<NodeInfo> => {
  const nodes: Array<NodeInfo> = []
  for (let at = 0; at + size <= bytes.length; at += size) {
    const [peer] = decodePeer(bytes.subarray(at + ID_LENGTH, at + size))
    if (peer !== undefined) nodes.push({ id: bytes.slice(at, at + ID_LENGTH), ...peer })
  }
  return nodes
}

/** A 6- or 18-byte compact peer; anything else, and port 0, is skipped. */
const decodePeer = (bytes: Uint8Array): Array<PeerAddress> =>
  bytes.length !== 6 && bytes.length !== 18
    ? []
    : Result.getOrElse(CompactPeer.decodeList(bytes, bytes.length), () => []).filter((peer) => peer.port > 0)

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

const methodNames = {
  Ping: "ping",
  FindNode: "find_node",
  GetPeers: "get_peers",
  AnnouncePeer: "announce_peer"
} as const

export const encode = (message: Message): Uint8Array => {
  const t = message.transactionId
  switch (message._tag) {
    case "Query":
      return Bencode.encode({
        t,
        y: "q",
        q: methodNames[message.query._tag],
        a: { ...queryArgumentsOf(message.query), ...(message.readOnly ? { ro: 1 } : {}) }
      })
    case "Response": {
      const { id, nodes, requester, token, values } = message.response
      const nodes4 = encodeNodes(nodes, "ipv4")
      const nodes6 = encodeNodes(nodes, "ipv6")
      const ip = requester === undefined ? undefined : CompactPeer.encode(requester)
      return Bencode.encode({
        t,
        y: "r",
        r: {
          id,
          ...(nodes4.length > 0 ? { nodes: nodes4 } : {}),
          ...(nodes6.length > 0 ? { nodes6 } : {}),
          ...(values.length > 0 ? { values: values.flatMap((peer) => CompactPeer.encode(peer) ?? []) } : {}),
          ...(token === undefined ? {} : { token })
        },
        ...(ip === undefined ? {} : { ip })
      })
    }
    case "Error":
      return Bencode.encode({ t, y: "e", e: [message.code, message.text] })
  }
}

const queryArgumentsOf = (query: Query) => {
  switch (query._tag) {
    case "Ping":
      return { id: query.id }
    case "FindNode":
      return { id: query.id, target: query.target, ...(query.want === undefined ? {} : { want: query.want }) }
    case "GetPeers":
      return { id: query.id, info_hash: query.infoHash, ...(query.want === undefined ? {} : { want: query.want }) }
    case "AnnouncePeer":
      return {
        id: query.id,
        info_hash: query.infoHash,
        port: query.port,
        token: query.token,
        implied_port: query.impliedPort ? 1 : 0
      }
  }
}

/** Compact node info of the nodes of one family among `nodes` (`nodes` for IPv4, `nodes6` for IPv6). */
export const encodeNodes = (nodes: ReadonlyArray<NodeInfo>, family: Family): Uint8Array => {
  const out: Array<Uint8Array> = []
  for (const node of nodes) {
    const peer = CompactPeer.encode(node)
    if (peer !== undefined && familyOf(node.host) === family) out.push(node.id, peer)
  }
  return Buffer.concat(out)
}

export type Family = "ipv4" | "ipv6"

/** The family of an IP address as text. */
export const familyOf = (host: string): Family => host.includes(":") ? "ipv6" : "ipv4"
