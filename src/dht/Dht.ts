/**
 * The mainline DHT (BEP 5): one node on one UDP socket that answers other
 * nodes' queries and finds peers by info-hash.
 *
 * - Serving: ping, find_node (our 8 closest nodes), get_peers (the peers
 *   announced to us, a token, and our closest nodes) and announce_peer (token
 *   checked, the peer kept 30 minutes). Malformed queries get KRPC error 203,
 *   unknown methods 204; other garbage is dropped.
 * - Querying: a 2-byte transaction id per outstanding query, answered only
 *   from the address it was sent to; a query fails after 2 seconds, and at
 *   most 64 are outstanding.
 * - Lookups are iterative: rounds of up to 4 queries to the closest nodes
 *   not yet asked, until the 8 closest known nodes (those that failed to
 *   answer left out) have all been asked; at most 100 queries and 30 seconds. They start from the routing table,
 *   or, while it has fewer than 8 nodes, also from the bootstrap nodes and
 *   those saved by the previous run.
 * - The table fills from nodes that answer us; nodes that query us are
 *   pinged first. On start we look up our own id; every minute, buckets
 *   unchanged for 15 minutes are refreshed with a lookup of an id in their
 *   range. Announcing again is the caller's job.
 * - With `stateFile`, our id and the nodes not known to be bad are saved when
 *   the layer closes and used at the next start.
 *
 * IPv4 only (BEP 32's IPv6 nodes are skipped).
 */
import { lookup as dnsLookup } from "node:dns/promises"
import { isIPv4 } from "node:net"
import {
  Clock,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  FiberSet,
  FileSystem,
  Layer,
  Option,
  Path,
  Queue,
  Random,
  Result,
  Schema,
  Semaphore,
  Stream
} from "effect"
import * as NetAddress from "effect/net/NetAddress"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import { Network } from "../peer/Network.ts"
import * as Bencode from "../protocol/Bencode.ts"
import * as Krpc from "./Krpc.ts"
import { PeerStore } from "./PeerStore.ts"
import * as RoutingTable from "./RoutingTable.ts"
import * as Tokens from "./Tokens.ts"

export class DhtError extends Schema.TaggedError<DhtError>()("DhtError", {
  host: Schema.String,
  port: Schema.Number,
  cause: Schema.Defect()
}) {
  override get message() {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot open the DHT's UDP socket on ${this.host}:${this.port}: ${detail}`
  }
}

/** Why one query got no answer (private: callers of the service never see it). */
class QueryFailed extends Data.TaggedError("QueryFailed")<{ readonly problem: string }> {}

/** The state file decoded, but not to `{ id, nodes }` (private: the file is then ignored). */
class NotAStateFile extends Data.TaggedError("NotAStateFile")<{ readonly message: string }> {}

export interface Address {
  readonly host: string
  readonly port: number
}

export interface Settings {
  /** UDP port; 0 = any. */
  readonly port: number
  /** Bind address. */
  readonly host: string
  /** Where to start when the routing table is (nearly) empty. */
  readonly bootstrap: ReadonlyArray<Address>
  /** Our id and nodes are saved here on close and read back at start. */
  readonly stateFile: string | undefined
}

export const defaultBootstrap: ReadonlyArray<Address> = [
  { host: "router.bittorrent.com", port: 6881 },
  { host: "dht.transmissionbt.com", port: 6881 },
  { host: "router.utorrent.com", port: 6881 }
]

export const defaultSettings: Settings = { port: 0, host: "0.0.0.0", bootstrap: defaultBootstrap, stateFile: undefined }

export const QUERY_TIMEOUT = Duration.seconds(2)
export const REFRESH_AFTER = Duration.minutes(15)
const REFRESH_CHECK = Duration.minutes(1)
const MAX_OUTSTANDING = 64
const ALPHA = 4
/** Peers taken from one get_peers answer (a datagram holds thousands). */
const maxValuesPerAnswer = 100
const MAX_LOOKUP_QUERIES = 100
const LOOKUP_TIMEOUT = Duration.seconds(30)

export class Dht extends Context.Service<Dht, {
  readonly nodeId: Uint8Array
  /** The bound UDP port. */
  readonly port: Effect.Effect<number>
  /** Iterative get_peers lookup; emits peer addresses as they arrive, de-duplicated, ends when the lookup converges (bounded in time and queries). */
  readonly lookup: (infoHash: Uint8Array) => Stream.Stream<Address>
  /** lookup + announce_peer to the closest nodes that gave tokens. */
  readonly announce: (infoHash: Uint8Array, port: number) => Effect.Effect<void>
  /** A node learned from a peer's `port` message (BEP 5, IPv4): pinged in the background and added if it answers. */
  readonly addNode: (address: Address) => Effect.Effect<void>
  /** Good nodes in the routing table. */
  readonly nodes: Effect.Effect<number>
}>()("effect-torrent/dht/Dht") {
  /** A node on a UDP socket of the Network bound to `host:port`. Needs Network, FileSystem and Path (for `stateFile`). */
  static readonly layer = (settings: Partial<Settings> = {}) => {
    const resolved = { ...defaultSettings, ...settings }
    return Layer.effect(
      Dht,
      Effect.gen(function*() {
        const network = yield* Network
        return yield* make(resolved, yield* network.datagram({ bind: { host: resolved.host, port: resolved.port } }))
      })
    )
  }

  /** A node on the given socket (tests pass an in-memory one). */
  static readonly layerWithSocket = (settings: Partial<Settings>, socket: DatagramSocket.DatagramSocket) =>
    Layer.effect(Dht, make({ ...defaultSettings, ...settings }, socket))
}

/** A node we may query: its id when we know it (a failed query then counts against it). */
interface Contact extends Address {
  readonly id?: Uint8Array | undefined
}

interface Pending extends Address {
  readonly answer: Deferred.Deferred<Krpc.Response, QueryFailed>
}

/** A node that answered a lookup, with the token it gave. */
interface Answered {
  readonly node: Krpc.NodeInfo
  readonly token: Uint8Array | undefined
}

export const make = Effect.fnUntraced(function*(settings: Settings, socket: DatagramSocket.DatagramSocket) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const reader = yield* Effect.mapError(
    socket.reader,
    (cause) => new DhtError({ host: settings.host, port: settings.port, cause })
  )
  const writer = yield* socket.writer
  const saved = settings.stateFile === undefined ? undefined : yield* loadState(fs, settings.stateFile)
  // Ids from Effect's Random, resolved once: a seeded run picks the same node id, transaction ids and refresh targets.
  const random = yield* Random.Random
  const randomBytes = (size: number) =>
    Uint8Array.from({ length: size }, () => Math.floor(random.nextDoubleUnsafe() * 256))
  const nodeId = saved?.id ?? randomBytes(Krpc.ID_LENGTH)
  const table = new RoutingTable.RoutingTable(nodeId, yield* Clock.currentTimeMillis)
  const store = new PeerStore()
  const tokens = yield* Tokens.make
  const outstanding = yield* Semaphore.make(MAX_OUTSTANDING)
  const runInBackground = yield* FiberSet.runtime(yield* FiberSet.make<void, never>())<never>()
  const pending = new Map<number, Pending>()
  let nextTransaction = Math.floor(random.nextDoubleUnsafe() * 0x10000)

  const send = (message: Krpc.Message, to: Address) =>
    Effect.suspend(() => {
      const address = NetAddress.inetAddressFromIpString(to.host, to.port)
      if (Result.isFailure(address)) return Effect.void
      return writer.write({ payload: Krpc.encode(message), address: address.success })
    }).pipe(Effect.catch((error) => Effect.logDebug(`DHT: cannot send to ${to.host}:${to.port}: ${error.message}`)))

  /** Learns from an answer; a full bucket has its stalest questionable node pinged. */
  const responded = (node: Krpc.NodeInfo, now: number) => {
    const insert = table.responded(node, now)
    if (insert._tag === "Full") pingInBackground(insert.questionable[0]!)
  }

  // A transaction id not in use (at most MAX_OUTSTANDING of the 65536 are).
  const transactionId = () => {
    do nextTransaction = (nextTransaction + 1) & 0xffff
    while (pending.has(nextTransaction))
    return nextTransaction
  }

  /** One query, answered within 2 seconds or failed; a node that does not answer is marked for it. */
  const query = (to: Contact, body: Krpc.Query) =>
    Effect.acquireUseRelease(
      Effect.map(Deferred.make<Krpc.Response, QueryFailed>(), (answer) => {
        const id = transactionId()
        pending.set(id, { host: to.host, port: to.port, answer })
        return { id, answer }
      }),
      ({ answer, id }) =>
        Effect.gen(function*() {
          const t = new Uint8Array([id >> 8, id & 0xff])
          yield* send({ _tag: "Query", transactionId: t, query: body, readOnly: false }, to)
          const response = yield* Effect.timeoutOption(Deferred.await(answer), QUERY_TIMEOUT)
          const now = yield* Clock.currentTimeMillis
          if (Option.isNone(response)) {
            if (to.id !== undefined) table.failed(to.id, now)
            return yield* new QueryFailed({ problem: "no answer within 2 seconds" })
          }
          responded({ id: response.value.id, host: to.host, port: to.port }, now)
          return response.value
        }),
      ({ id }) => Effect.sync(() => pending.delete(id))
    ).pipe(outstanding.withPermits(1))

  const ping = (to: Contact) => Effect.ignore(query(to, { _tag: "Ping", id: nodeId }))

  /** Pings without waiting: only while fewer than half the query slots are taken, and not twice at once. */
  function pingInBackground(to: Contact) {
    if (pending.size >= MAX_OUTSTANDING / 2) return
    for (const query of pending.values()) if (query.host === to.host && query.port === to.port) return
    runInBackground(ping(to))
  }

  const answer = (query: Krpc.Query, from: Address, now: number): Krpc.Response | Krpc.KrpcError => {
    const reply = (fields: Partial<Krpc.Response> = {}): Krpc.Response => ({
      id: nodeId,
      nodes: [],
      values: [],
      token: undefined,
      ...fields
    })
    const closest = (target: Uint8Array) => table.closest(target, now).map(({ host, id, port }) => ({ id, host, port }))
    switch (query._tag) {
      case "Ping":
        return reply()
      case "FindNode":
        return reply({ nodes: closest(query.target) })
      case "GetPeers":
        return reply({
          token: tokens.issue(from.host),
          values: store.get(query.infoHash, now),
          nodes: closest(query.infoHash)
        })
      case "AnnouncePeer": {
        const port = query.impliedPort ? from.port : query.port
        if (!tokens.check(from.host, query.token)) {
          return new Krpc.KrpcError({ code: Krpc.PROTOCOL_ERROR, problem: "announce_peer with a bad token" })
        }
        if (port === 0) return new Krpc.KrpcError({ code: Krpc.PROTOCOL_ERROR, problem: "announce_peer for port 0" })
        store.add(query.infoHash, { host: from.host, port }, now)
        return reply()
      }
    }
  }

  const receive = Effect.fnUntraced(function*(datagram: DatagramSocket.Datagram) {
    if (!NetAddress.isInetAddressV4(datagram.address)) return
    const from = { host: NetAddress.formatIp(datagram.address.address), port: datagram.address.port }
    const now = yield* Clock.currentTimeMillis
    const decoded = Krpc.decode(datagram.payload)
    if (Result.isFailure(decoded)) {
      const error = decoded.failure
      yield* Effect.logDebug(`DHT: from ${from.host}:${from.port}: ${error.message}`)
      if (error.transactionId === undefined) return
      return yield* send(
        { _tag: "Error", transactionId: error.transactionId, code: error.code, text: error.problem },
        from
      )
    }
    const message = decoded.success
    if (message._tag === "Query") {
      const { query } = message
      if (!message.readOnly && !table.queried(query.id, now) && table.wants(query.id, now)) pingInBackground(from)
      const reply = answer(query, from, now)
      const t = message.transactionId
      return yield* send(
        reply instanceof Krpc.KrpcError
          ? { _tag: "Error", transactionId: t, code: reply.code, text: reply.problem }
          : { _tag: "Response", transactionId: t, response: reply },
        from
      )
    }
    const t = message.transactionId
    const id = t.length === 2 ? (t[0]! << 8) | t[1]! : -1
    const waiting = pending.get(id)
    if (waiting === undefined || waiting.host !== from.host || waiting.port !== from.port) return
    pending.delete(id)
    yield* message._tag === "Response"
      ? Deferred.succeed(waiting.answer, message.response)
      : Deferred.fail(waiting.answer, new QueryFailed({ problem: `error ${message.code}: ${message.text}` }))
  })

  const seeds = Effect.gen(function*() {
    const known = saved?.nodes ?? []
    const resolved = yield* Effect.forEach(settings.bootstrap, resolve, { concurrency: "unbounded" })
    return [...known, ...resolved.flat()]
  })

  /**
   * Asks nodes ever closer to `target` (get_peers or find_node), handing each
   * answer's peers to `onPeers`; returns the nodes that answered, closest first.
   */
  const iterate = (
    target: Uint8Array,
    kind: "GetPeers" | "FindNode",
    onPeers: (peers: ReadonlyArray<Address>) => void
  ) =>
    Effect.gen(function*() {
      const body: Krpc.Query = kind === "GetPeers"
        ? { _tag: "GetPeers", id: nodeId, infoHash: target }
        : { _tag: "FindNode", id: nodeId, target }
      const key = (node: Address) => `${node.host}:${node.port}`
      const candidates = new Map<string, Contact>()
      const asked = new Set<string>()
      const answered: Array<Answered> = []
      const add = (node: Contact) => {
        if (
          !candidates.has(key(node)) &&
          (node.id === undefined || RoutingTable.commonPrefixLength(node.id, nodeId) < 160)
        ) {
          candidates.set(key(node), node)
        }
      }
      table.closest(target, yield* Clock.currentTimeMillis).forEach(add)
      if (candidates.size < RoutingTable.K) (yield* seeds).forEach(add)
      // Contacts without an id (bootstrap nodes) come first; the rest by distance.
      const byDistance = (a: Contact, b: Contact) =>
        a.id === undefined || b.id === undefined
          ? Number(b.id === undefined) - Number(a.id === undefined)
          : RoutingTable.compareDistance(target, a.id, b.id)

      const round = Effect.gen(function*() {
        const batch = Array.from(candidates.values()).sort(byDistance).slice(0, RoutingTable.K)
          .filter((node) => !asked.has(key(node))).slice(0, Math.min(ALPHA, MAX_LOOKUP_QUERIES - asked.size))
        if (batch.length === 0) return false
        for (const node of batch) asked.add(key(node))
        yield* Effect.forEach(batch, (node) =>
          query(node, body).pipe(
            Effect.match({
              onFailure: () => candidates.delete(key(node)),
              onSuccess: (response) => {
                const info = { id: response.id, host: node.host, port: node.port }
                candidates.set(key(node), info)
                answered.push({ node: info, token: response.token })
                // A node gives K nodes; more (a datagram holds thousands) would only grow the lookup.
                response.nodes.slice(0, RoutingTable.K).forEach(add)
                if (response.values.length > 0) onPeers(response.values.slice(0, maxValuesPerAnswer))
              }
            })
          ), { concurrency: ALPHA, discard: true })
        return true
      })
      yield* round.pipe(Effect.repeat({ while: (more) => more }), Effect.timeoutOption(LOOKUP_TIMEOUT))
      return answered.sort((a, b) => RoutingTable.compareDistance(target, a.node.id, b.node.id))
    })

  const lookup = (infoHash: Uint8Array) =>
    Stream.callback<Address>((queue) =>
      Effect.gen(function*() {
        const seen = new Set<string>()
        const emit = (peers: ReadonlyArray<Address>) => {
          for (const peer of peers) {
            const key = `${peer.host}:${peer.port}`
            if (seen.has(key)) continue
            seen.add(key)
            Queue.offerUnsafe(queue, peer)
          }
        }
        emit(store.get(infoHash, yield* Clock.currentTimeMillis))
        yield* iterate(infoHash, "GetPeers", emit)
        Queue.endUnsafe(queue)
      })
    ).pipe(Stream.withSpan("Dht.lookup"))

  const announce = Effect.fn("Dht.announce")(function*(infoHash: Uint8Array, port: number) {
    const answered = yield* iterate(infoHash, "GetPeers", () => {})
    const closest = answered.flatMap(({ node, token }) => token === undefined ? [] : [{ node, token }])
    yield* Effect.forEach(
      closest.slice(0, RoutingTable.K),
      ({ node, token }) =>
        Effect.ignore(query(node, { _tag: "AnnouncePeer", id: nodeId, infoHash, port, impliedPort: false, token })),
      { concurrency: RoutingTable.K, discard: true }
    )
  })

  /** Returns at once: the ping runs in the background (a peer session must not wait for it), if there is room. */
  const addNode = (address: Address) =>
    Effect.sync(() => {
      if (isIPv4(address.host)) pingInBackground(address)
    })

  const refresh = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const targets = table.refreshTargets(now, Duration.toMillis(REFRESH_AFTER), () => randomBytes(Krpc.ID_LENGTH))
    yield* Effect.forEach(targets, (target) => iterate(target, "FindNode", () => {}), { discard: true })
  })

  yield* Effect.forever(Effect.flatMap(reader.pull, (datagrams) => Effect.forEach(datagrams, receive))).pipe(
    Effect.catch((error) => Effect.logWarning(`DHT: the UDP socket failed: ${error.message}`)),
    Effect.forkScoped
  )
  yield* iterate(nodeId, "FindNode", () => {}).pipe(
    Effect.andThen(Effect.forever(Effect.delay(refresh, REFRESH_CHECK))),
    Effect.forkScoped
  )
  if (settings.stateFile !== undefined) {
    const file = settings.stateFile
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) =>
          saveState(fs, path, file, nodeId, table.nodes().filter((node) => RoutingTable.status(node, now) !== "bad"))
      )
    )
  }

  return Dht.of({
    nodeId,
    port: Effect.succeed(reader.address.port),
    lookup,
    announce,
    addNode,
    nodes: Effect.map(Clock.currentTimeMillis, (now) => table.goodCount(now))
  })
})

/** An address as IPv4 contacts: itself if it is an IPv4 address, else what DNS says (nothing on failure). */
const resolve = (address: Address): Effect.Effect<Array<Contact>> =>
  isIPv4(address.host)
    ? Effect.succeed([address])
    : Effect.tryPromise(() => dnsLookup(address.host, { family: 4, all: true })).pipe(
      Effect.timeout(Duration.seconds(10)),
      Effect.map((found) => found.map(({ address: host }) => ({ host, port: address.port }))),
      Effect.catch((error) => Effect.as(Effect.logDebug(`DHT: cannot resolve ${address.host}: ${error}`), []))
    )

// ---------------------------------------------------------------------------
// State file: bencoded { id: 20 bytes, nodes: compact node info }
// ---------------------------------------------------------------------------

const loadState = (fs: FileSystem.FileSystem, file: string) =>
  Effect.gen(function*() {
    const bytes = yield* fs.readFile(file)
    const value = yield* Effect.fromResult(Bencode.decode(bytes))
    const { id, nodes } = value as { readonly id?: unknown; readonly nodes?: unknown }
    if (!(id instanceof Uint8Array) || id.length !== Krpc.ID_LENGTH || !(nodes instanceof Uint8Array)) {
      return yield* new NotAStateFile({ message: "it is not a DHT state file" })
    }
    return { id: new Uint8Array(id), nodes: Krpc.decodeNodes(nodes) }
  }).pipe(
    Effect.catch((error) =>
      Effect.as(
        fs.exists(file).pipe(
          Effect.orElseSucceed(() => false),
          Effect.flatMap((exists) =>
            exists ? Effect.logWarning(`DHT: ignoring the state file ${file}: ${error.message}`) : Effect.void
          )
        ),
        undefined
      )
    )
  )

const saveState = (
  fs: FileSystem.FileSystem,
  path: Path.Path,
  file: string,
  id: Uint8Array,
  nodes: ReadonlyArray<Krpc.NodeInfo>
) =>
  Effect.gen(function*() {
    yield* fs.makeDirectory(path.dirname(file), { recursive: true })
    yield* fs.writeFile(`${file}.tmp`, Bencode.encode({ id, nodes: Krpc.encodeNodes(nodes) }))
    yield* fs.rename(`${file}.tmp`, file)
  }).pipe(Effect.catch((error) => Effect.logWarning(`DHT: could not save the state file ${file}: ${error.message}`)))
