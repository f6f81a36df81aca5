/**
 * The mainline DHT (BEP 5): a node that answers other nodes' queries and
 * finds peers by info-hash, on IPv4 and IPv6 (BEP 32): one UDP socket, node
 * id and routing table per family, sharing the peer store and tokens.
 *
 * - Serving: ping, find_node (our 8 closest nodes), get_peers (the peers
 *   announced to us, a token, and our closest nodes) and announce_peer (token
 *   checked, the peer kept 30 minutes). find_node and get_peers answer with
 *   the nodes of the families `want` names (`nodes`, `nodes6`), else of the
 *   family the query came over; values are peers of that family. Every
 *   answer carries the querier's address (`ip`, BEP 42). Malformed queries
 *   get KRPC error 203, unknown methods 204; other garbage is dropped.
 * - Querying: a 2-byte transaction id per outstanding query, answered only
 *   from the address it was sent to; a query fails after 2 seconds, and at
 *   most 64 are outstanding.
 * - Lookups are iterative, one per family at once: rounds of up to 4 queries
 *   to the closest nodes not yet asked, until the 8 closest known nodes
 *   (those that failed to answer left out) have all been asked; at most 100
 *   queries and 30 seconds. They start from the routing table, or, while it
 *   has fewer than 8 nodes, also from the bootstrap nodes and those saved by
 *   the previous run. With both families running, queries want both, and
 *   nodes of the other family are pinged by its node (how an IPv6 table
 *   fills from IPv4 answers).
 * - The tables fill from nodes that answer us; nodes that query us are
 *   pinged first. On start we look up our own id; every minute, buckets
 *   unchanged for 15 minutes are refreshed with a lookup of an id in their
 *   range. Announcing again is the caller's job.
 * - Node ids (BEP 42, SecureNodeId): tables prefer nodes whose ids fit their
 *   addresses, and with `requireSecureIds` take no others. When 3 nodes (of
 *   public addresses) have told us the same public address of ours and our
 *   id does not fit it, we take one that does and rebuild that family's
 *   table around it.
 * - With `stateFile`, our ids and the nodes not known to be bad are saved
 *   when the layer closes and used at the next start.
 */
import { lookup as dnsLookup } from "node:dns/promises"
import { isIP } from "node:net"
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
import * as CompactPeer from "../protocol/CompactPeer.ts"
import * as Krpc from "./Krpc.ts"
import { PeerStore } from "./PeerStore.ts"
import * as RoutingTable from "./RoutingTable.ts"
import * as SecureNodeId from "./SecureNodeId.ts"
import * as Tokens from "./Tokens.ts"

export class DhtError extends Schema.TaggedError<DhtError>()("DhtError", {
  host: Schema.String,
  port: Schema.Number,
  cause: Schema.Defect()
}) {
  override get message() {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot open the DHT's UDP socket on ${CompactPeer.format(this)}: ${detail}`
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
  /** UDP port (both families); 0 = any. */
  readonly port: number
  /** IPv4 bind address; undefined: no IPv4 node. */
  readonly host: string | undefined
  /** IPv6 bind address; undefined: no IPv6 node. Without IPv6 on the system the node runs on IPv4 alone. */
  readonly host6: string | undefined
  /** Where to start when a routing table is (nearly) empty. */
  readonly bootstrap: ReadonlyArray<Address>
  /** Our ids and nodes are saved here on close and read back at start. */
  readonly stateFile: string | undefined
  /** Keep nodes whose ids do not fit their addresses (BEP 42) out of the routing tables, instead of only preferring the others. */
  readonly requireSecureIds: boolean
}

export const defaultBootstrap: ReadonlyArray<Address> = [
  { host: "router.bittorrent.com", port: 6881 },
  { host: "dht.transmissionbt.com", port: 6881 },
  { host: "router.utorrent.com", port: 6881 }
]

export const defaultSettings: Settings = {
  port: 0,
  host: "0.0.0.0",
  host6: "::",
  bootstrap: defaultBootstrap,
  stateFile: undefined,
  requireSecureIds: false
}

export const QUERY_TIMEOUT = Duration.seconds(2)
export const REFRESH_AFTER = Duration.minutes(15)
const REFRESH_CHECK = Duration.minutes(1)
const MAX_OUTSTANDING = 64
const ALPHA = 4
/** Peers taken from one get_peers answer (a datagram holds thousands). */
const maxValuesPerAnswer = 100
const MAX_LOOKUP_QUERIES = 100
const LOOKUP_TIMEOUT = Duration.seconds(30)
/** Nodes that must tell us the same external address before our id is made to fit it (BEP 42). */
export const ADDRESS_VOTES = 3
/** Votes kept: one per node, the most recent nodes' (a node changing its mind replaces its vote). */
const MAX_VOTERS = 64

/** The UDP sockets of a node, one per family it runs. */
export interface Sockets {
  readonly ipv4?: DatagramSocket.DatagramSocket | undefined
  readonly ipv6?: DatagramSocket.DatagramSocket | undefined
}

export class Dht extends Context.Service<Dht, {
  /** Our id on IPv4 (on IPv6 when it runs alone). */
  readonly nodeId: Uint8Array
  /** The bound UDP port (IPv4's; IPv6's when it runs alone). */
  readonly port: Effect.Effect<number>
  /** The addresses our node is bound to, one per family it runs. */
  readonly addresses: Effect.Effect<ReadonlyArray<Address>>
  /** Iterative get_peers lookups (one per family); emits peer addresses as they arrive, de-duplicated, ends when the lookups converge (bounded in time and queries). */
  readonly lookup: (infoHash: Uint8Array) => Stream.Stream<Address>
  /** lookup + announce_peer to the closest nodes that gave tokens, in each family. */
  readonly announce: (infoHash: Uint8Array, port: number) => Effect.Effect<void>
  /** A node learned from a peer's `port` message (BEP 5): pinged in the background and added if it answers. */
  readonly addNode: (address: Address) => Effect.Effect<void>
  /** Good nodes in the routing tables. */
  readonly nodes: Effect.Effect<number>
  /** A peer at `by` says our address is `host` (BEP 10 `yourip`): a vote like a node's `ip` (BEP 42). */
  readonly addressSeen: (host: string, by: string) => Effect.Effect<void>
}>()("effect-torrent/dht/Dht") {
  /**
   * A node on UDP sockets of the Network bound to `host:port` and
   * `[host6]:port`. An IPv6 socket that cannot open (no IPv6 here) leaves the
   * node on IPv4 alone. Needs Network, FileSystem and Path (for `stateFile`).
   */
  static readonly layer = (settings: Partial<Settings> = {}) => {
    const resolved = { ...defaultSettings, ...settings }
    return Layer.effect(
      Dht,
      Effect.gen(function*() {
        const network = yield* Network
        const open = (host: string | undefined) =>
          host === undefined
            ? Effect.undefined
            : network.datagram({ bind: { host, port: resolved.port }, ipv6Only: host.includes(":") })
        const ipv4 = yield* open(resolved.host)
        const ipv6 = yield* open(resolved.host6)
        return yield* make(resolved, { ipv4, ipv6 })
      })
    )
  }

  /** A node on the given sockets (tests pass in-memory ones). */
  static readonly layerWithSockets = (settings: Partial<Settings>, sockets: Sockets) =>
    Layer.effect(Dht, make({ ...defaultSettings, ...settings }, sockets))

  /** A node on one IPv4 socket (tests pass an in-memory one). */
  static readonly layerWithSocket = (settings: Partial<Settings>, socket: DatagramSocket.DatagramSocket) =>
    Dht.layerWithSockets(settings, { ipv4: socket })
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

/** One family's node: its socket, id and routing table, and the addresses others told it it has (BEP 42). */
interface FamilyNode {
  readonly family: Krpc.Family
  readonly writer: DatagramSocket.Writer
  readonly address: Address
  id: Uint8Array
  table: RoutingTable.RoutingTable
  /** Host of a node → the address it last told us is ours (the most recent `MAX_VOTERS`). */
  readonly votes: Map<string, string>
}

export const make = Effect.fnUntraced(function*(settings: Settings, sockets: Sockets) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const saved = settings.stateFile === undefined ? undefined : yield* loadState(fs, settings.stateFile)
  // Ids from Effect's Random, resolved once: a seeded run picks the same node ids, transaction ids and refresh targets.
  const random = yield* Random.Random
  const randomBytes = (size: number) =>
    Uint8Array.from({ length: size }, () => Math.floor(random.nextDoubleUnsafe() * 256))
  const tableOptions: RoutingTable.Options = {
    conforms: (node) => SecureNodeId.acceptable(node.id, node.host),
    requireConforming: settings.requireSecureIds
  }
  const started = yield* Clock.currentTimeMillis
  const families = new Map<Krpc.Family, FamilyNode>()
  const readers: Array<readonly [FamilyNode, DatagramSocket.Reader]> = []
  for (const family of ["ipv4", "ipv6"] as const) {
    const socket = sockets[family]
    if (socket === undefined) continue
    const opened = yield* Effect.result(socket.reader)
    if (Result.isFailure(opened)) {
      const host = (family === "ipv4" ? settings.host : settings.host6) ?? ""
      const error = new DhtError({ host, port: settings.port, cause: opened.failure })
      // IPv4 alone, when this system has no IPv6; but a node that cannot open at all is an error.
      if (family === "ipv6" && families.size > 0) {
        yield* Effect.logDebug(`DHT: no IPv6 node: ${error.message}`)
        continue
      }
      return yield* error
    }
    const reader = opened.success
    const id = saved?.ids[family] ?? randomBytes(Krpc.ID_LENGTH)
    const node: FamilyNode = {
      family,
      writer: yield* socket.writer,
      address: boundAddress(reader.address),
      id,
      table: new RoutingTable.RoutingTable(id, started, tableOptions),
      votes: new Map()
    }
    families.set(family, node)
    readers.push([node, reader])
  }
  const [first] = families.values()
  if (first === undefined) {
    return yield* new DhtError({
      host: "",
      port: settings.port,
      cause: new Error("no address to bind: host and host6 are both unset")
    })
  }
  const store = new PeerStore()
  const tokens = yield* Tokens.make
  const outstanding = yield* Semaphore.make(MAX_OUTSTANDING)
  const runInBackground = yield* FiberSet.runtime(yield* FiberSet.make<void, never>())<never>()
  const pending = new Map<number, Pending>()
  let nextTransaction = Math.floor(random.nextDoubleUnsafe() * 0x10000)
  // With both families, queries ask for both (BEP 32's want), so each table also fills from the other's answers.
  const want: Krpc.Want | undefined = families.size === 2 ? ["n4", "n6"] : undefined

  const familyOf = (address: Address) => families.get(Krpc.familyOf(address.host))

  const send = (message: Krpc.Message, to: Address) =>
    Effect.suspend(() => {
      const node = familyOf(to)
      const address = NetAddress.inetAddressFromIpString(to.host, to.port)
      if (node === undefined || Result.isFailure(address)) return Effect.void
      return node.writer.write({ payload: Krpc.encode(message), address: address.success })
    }).pipe(
      Effect.catch((error) => Effect.logDebug(`DHT: cannot send to ${CompactPeer.format(to)}: ${error.message}`))
    )

  /** Learns from an answer; a full bucket has its stalest questionable node pinged. */
  const responded = (node: Krpc.NodeInfo, now: number) => {
    const insert = familyOf(node)?.table.responded(node, now)
    if (insert?._tag === "Full") pingInBackground(insert.questionable[0]!)
  }

  /**
   * `by` told us our address is `requester` (BEP 42's `ip`). Once enough
   * public nodes agree on a public address our id does not fit, we take an
   * id that does, and rebuild the table around it (keeping its nodes).
   */
  const voted = (requester: Address, by: Address, now: number) => {
    const node = familyOf(requester)
    if (node === undefined || node !== familyOf(by)) return
    if (SecureNodeId.exempt(requester.host) || SecureNodeId.exempt(by.host)) return
    node.votes.delete(by.host)
    node.votes.set(by.host, requester.host)
    for (const oldest of node.votes.keys()) {
      if (node.votes.size <= MAX_VOTERS) break
      node.votes.delete(oldest)
    }
    let agreeing = 0
    for (const address of node.votes.values()) if (address === requester.host) agreeing++
    const ip = CompactPeer.ipBytes(requester.host)!
    if (agreeing < ADDRESS_VOTES || SecureNodeId.conforms(node.id, ip)) return
    node.id = SecureNodeId.make(ip, randomBytes(Krpc.ID_LENGTH))
    const old = node.table.nodes()
    node.table = new RoutingTable.RoutingTable(node.id, now, tableOptions)
    for (const known of old) node.table.responded(known, known.lastSeen)
    node.votes.clear()
    runInBackground(Effect.andThen(
      Effect.logInfo(`DHT: our ${node.family} address is ${requester.host}; a new node id fits it (BEP 42)`),
      iterate(node, node.id, "FindNode", () => {})
    ))
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
            if (to.id !== undefined) familyOf(to)?.table.failed(to.id, now)
            return yield* new QueryFailed({ problem: "no answer within 2 seconds" })
          }
          responded({ id: response.value.id, host: to.host, port: to.port }, now)
          if (response.value.requester !== undefined) voted(response.value.requester, to, now)
          return response.value
        }),
      ({ id }) => Effect.sync(() => pending.delete(id))
    ).pipe(outstanding.withPermits(1))

  const ping = (to: Contact) =>
    Effect.ignore(Effect.suspend(() => query(to, { _tag: "Ping", id: familyOf(to)?.id ?? first.id })))

  /** Pings without waiting: only while fewer than half the query slots are taken, and not twice at once. */
  function pingInBackground(to: Contact) {
    if (familyOf(to) === undefined || pending.size >= MAX_OUTSTANDING / 2) return
    for (const query of pending.values()) if (query.host === to.host && query.port === to.port) return
    runInBackground(ping(to))
  }

  const answer = (node: FamilyNode, query: Krpc.Query, from: Address, now: number): Krpc.Response | Krpc.KrpcError => {
    const reply = (fields: Partial<Krpc.Response> = {}): Krpc.Response => ({
      id: node.id,
      nodes: [],
      values: [],
      token: undefined,
      requester: from,
      ...fields
    })
    const closest = (target: Uint8Array, wanted: Krpc.Want | undefined) =>
      (wanted ?? [node.family === "ipv4" ? "n4" : "n6"]).flatMap((name) =>
        families.get(name === "n4" ? "ipv4" : "ipv6")?.table.closest(target, now).map(({ host, id, port }) => ({
          id,
          host,
          port
        })) ?? []
      )
    switch (query._tag) {
      case "Ping":
        return reply()
      case "FindNode":
        return reply({ nodes: closest(query.target, query.want) })
      case "GetPeers":
        return reply({
          token: tokens.issue(from.host),
          values: store.get(query.infoHash, now, undefined, node.family),
          nodes: closest(query.infoHash, query.want)
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

  const receive = (node: FamilyNode) =>
    Effect.fnUntraced(function*(datagram: DatagramSocket.Datagram) {
      if (!NetAddress.isInetAddress(datagram.address)) return
      const from = { host: NetAddress.formatIp(datagram.address.address), port: datagram.address.port }
      if (familyOf(from) !== node) return // an IPv4-mapped address on an IPv6 socket
      const now = yield* Clock.currentTimeMillis
      const decoded = Krpc.decode(datagram.payload)
      if (Result.isFailure(decoded)) {
        const error = decoded.failure
        yield* Effect.logDebug(`DHT: from ${CompactPeer.format(from)}: ${error.message}`)
        if (error.transactionId === undefined) return
        return yield* send(
          { _tag: "Error", transactionId: error.transactionId, code: error.code, text: error.problem },
          from
        )
      }
      const message = decoded.success
      if (message._tag === "Query") {
        const { query } = message
        const sender = { id: query.id, ...from }
        if (!message.readOnly && !node.table.queried(query.id, now) && node.table.wants(sender, now)) {
          pingInBackground(from)
        }
        const reply = answer(node, query, from, now)
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

  const seeds = (family: Krpc.Family) =>
    Effect.gen(function*() {
      const known = saved?.nodes.filter((node) => Krpc.familyOf(node.host) === family) ?? []
      const resolved = yield* Effect.forEach(settings.bootstrap, resolve(family), { concurrency: "unbounded" })
      return [...known, ...resolved.flat()]
    })

  /** A node of the other family from an answer: pinged by that family's node if its table would take it. */
  const offer = (info: Krpc.NodeInfo, now: number) => {
    if (familyOf(info)?.table.wants(info, now)) pingInBackground(info)
  }

  /**
   * Asks nodes of one family ever closer to `target` (get_peers or
   * find_node), handing each answer's peers to `onPeers`; returns the nodes
   * that answered, closest first.
   */
  function iterate(
    node: FamilyNode,
    target: Uint8Array,
    kind: "GetPeers" | "FindNode",
    onPeers: (peers: ReadonlyArray<Address>) => void
  ) {
    return Effect.gen(function*() {
      const body: Krpc.Query = kind === "GetPeers"
        ? { _tag: "GetPeers", id: node.id, infoHash: target, ...(want === undefined ? {} : { want }) }
        : { _tag: "FindNode", id: node.id, target, ...(want === undefined ? {} : { want }) }
      const key = CompactPeer.format
      const candidates = new Map<string, Contact>()
      const asked = new Set<string>()
      const answered: Array<Answered> = []
      const add = (contact: Contact) => {
        if (
          !candidates.has(key(contact)) &&
          (contact.id === undefined || RoutingTable.commonPrefixLength(contact.id, node.id) < 160)
        ) {
          candidates.set(key(contact), contact)
        }
      }
      node.table.closest(target, yield* Clock.currentTimeMillis).forEach(add)
      if (candidates.size < RoutingTable.K) (yield* seeds(node.family)).forEach(add)
      // Contacts without an id (bootstrap nodes) come first; the rest by distance.
      const byDistance = (a: Contact, b: Contact) =>
        a.id === undefined || b.id === undefined
          ? Number(b.id === undefined) - Number(a.id === undefined)
          : RoutingTable.compareDistance(target, a.id, b.id)

      const round = Effect.gen(function*() {
        const batch = Array.from(candidates.values()).sort(byDistance).slice(0, RoutingTable.K)
          .filter((contact) => !asked.has(key(contact))).slice(0, Math.min(ALPHA, MAX_LOOKUP_QUERIES - asked.size))
        if (batch.length === 0) return false
        for (const contact of batch) asked.add(key(contact))
        yield* Effect.forEach(batch, (contact) =>
          query(contact, body).pipe(
            Effect.flatMap((response) =>
              Effect.map(Clock.currentTimeMillis, (now) => {
                const info = { id: response.id, host: contact.host, port: contact.port }
                candidates.set(key(contact), info)
                answered.push({ node: info, token: response.token })
                // A node gives K nodes per family; more (a datagram holds thousands) would only grow the lookup.
                const [ours, others] = partition(response.nodes, (n) => familyOf(n) === node)
                ours.slice(0, RoutingTable.K).forEach(add)
                for (const other of others.slice(0, RoutingTable.K)) offer(other, now)
                const values = response.values.filter((peer) => Krpc.familyOf(peer.host) === node.family)
                if (values.length > 0) onPeers(values.slice(0, maxValuesPerAnswer))
              })
            ),
            Effect.catch(() => Effect.sync(() => candidates.delete(key(contact))))
          ), { concurrency: ALPHA, discard: true })
        return true
      })
      yield* round.pipe(Effect.repeat({ while: (more) => more }), Effect.timeoutOption(LOOKUP_TIMEOUT))
      return answered.sort((a, b) => RoutingTable.compareDistance(target, a.node.id, b.node.id))
    })
  }

  const everyFamily = <A>(f: (node: FamilyNode) => Effect.Effect<A>) =>
    Effect.forEach(Array.from(families.values()), f, { concurrency: "unbounded", discard: true })

  const lookup = (infoHash: Uint8Array) =>
    Stream.callback<Address>((queue) =>
      Effect.gen(function*() {
        const seen = new Set<string>()
        const emit = (peers: ReadonlyArray<Address>) => {
          for (const peer of peers) {
            const key = CompactPeer.format(peer)
            if (seen.has(key)) continue
            seen.add(key)
            Queue.offerUnsafe(queue, peer)
          }
        }
        emit(store.get(infoHash, yield* Clock.currentTimeMillis))
        yield* everyFamily((node) => iterate(node, infoHash, "GetPeers", emit))
        Queue.endUnsafe(queue)
      })
    ).pipe(Stream.withSpan("Dht.lookup"))

  const announce = Effect.fn("Dht.announce")(function*(infoHash: Uint8Array, port: number) {
    yield* everyFamily((node) =>
      Effect.gen(function*() {
        const answered = yield* iterate(node, infoHash, "GetPeers", () => {})
        const closest = answered.flatMap(({ node, token }) => token === undefined ? [] : [{ node, token }])
        yield* Effect.forEach(
          closest.slice(0, RoutingTable.K),
          ({ node: to, token }) =>
            Effect.ignore(
              query(to, { _tag: "AnnouncePeer", id: node.id, infoHash, port, impliedPort: false, token })
            ),
          { concurrency: RoutingTable.K, discard: true }
        )
      })
    )
  })

  /** Returns at once: the ping runs in the background (a peer session must not wait for it), if there is room. */
  const addNode = (address: Address) =>
    Effect.sync(() => {
      if (isIP(address.host) !== 0) pingInBackground(address)
    })

  const refresh = everyFamily((node) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const targets = node.table.refreshTargets(
        now,
        Duration.toMillis(REFRESH_AFTER),
        () => randomBytes(Krpc.ID_LENGTH)
      )
      yield* Effect.forEach(targets, (target) => iterate(node, target, "FindNode", () => {}), { discard: true })
    })
  )

  for (const [node, reader] of readers) {
    yield* Effect.forever(Effect.flatMap(reader.pull, (datagrams) => Effect.forEach(datagrams, receive(node)))).pipe(
      Effect.catch((error) => Effect.logWarning(`DHT: the ${node.family} UDP socket failed: ${error.message}`)),
      Effect.forkScoped
    )
  }
  yield* everyFamily((node) => iterate(node, node.id, "FindNode", () => {})).pipe(
    Effect.andThen(Effect.forever(Effect.delay(refresh, REFRESH_CHECK))),
    Effect.forkScoped
  )
  if (settings.stateFile !== undefined) {
    const file = settings.stateFile
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        saveState(fs, path, file, {
          ids: { ipv4: families.get("ipv4")?.id, ipv6: families.get("ipv6")?.id },
          nodes: Array.from(families.values()).flatMap((node) =>
            node.table.nodes().filter((known) => RoutingTable.status(known, now) !== "bad")
          )
        }))
    )
  }

  return Dht.of({
    get nodeId() {
      return first.id
    },
    port: Effect.succeed(first.address.port),
    addresses: Effect.sync(() => Array.from(families.values(), (node) => node.address)),
    lookup,
    announce,
    addNode,
    // Votes count by host alone (the ports are never read).
    addressSeen: (host, by) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => Effect.sync(() => voted({ host, port: 0 }, { host: by, port: 0 }, now))
      ),
    nodes: Effect.map(
      Clock.currentTimeMillis,
      (now) => Array.from(families.values()).reduce((sum, node) => sum + node.table.goodCount(now), 0)
    )
  })
})

const boundAddress = (address: NetAddress.InetAddress): Address => ({
  host: NetAddress.formatIp(address.address),
  port: address.port
})

const partition = <A>(items: ReadonlyArray<A>, test: (item: A) => boolean): [Array<A>, Array<A>] => {
  const yes: Array<A> = []
  const no: Array<A> = []
  for (const item of items) (test(item) ? yes : no).push(item)
  return [yes, no]
}

/** An address as contacts of one family: itself if it is an IP address of that family, else what DNS says (nothing on failure). */
const resolve = (family: Krpc.Family) => (address: Address): Effect.Effect<Array<Contact>> => {
  const version = isIP(address.host)
  if (version !== 0) return Effect.succeed(version === (family === "ipv4" ? 4 : 6) ? [address] : [])
  return Effect.tryPromise(() => dnsLookup(address.host, { family: family === "ipv4" ? 4 : 6, all: true })).pipe(
    Effect.timeout(Duration.seconds(10)),
    Effect.map((found) => found.map(({ address: host }) => ({ host, port: address.port }))),
    Effect.catch((error) => Effect.as(Effect.logDebug(`DHT: cannot resolve ${address.host}: ${error}`), []))
  )
}

// ---------------------------------------------------------------------------
// State file: bencoded { id, nodes, id6, nodes6 } (ids 20 bytes, compact node info)
// ---------------------------------------------------------------------------

interface State {
  readonly ids: { readonly ipv4: Uint8Array | undefined; readonly ipv6: Uint8Array | undefined }
  readonly nodes: ReadonlyArray<Krpc.NodeInfo>
}

const isId = (value: unknown): value is Uint8Array | undefined =>
  value === undefined || (value instanceof Uint8Array && value.length === Krpc.ID_LENGTH)
const isBytes = (value: unknown): value is Uint8Array | undefined => value === undefined || value instanceof Uint8Array

const loadState = (fs: FileSystem.FileSystem, file: string) =>
  Effect.gen(function*() {
    const bytes = yield* fs.readFile(file)
    const value = yield* Effect.fromResult(Bencode.decode(bytes))
    const { id, id6, nodes, nodes6 } = value as Record<string, unknown>
    if (!isId(id) || !isId(id6) || !isBytes(nodes) || !isBytes(nodes6) || (id === undefined && id6 === undefined)) {
      return yield* new NotAStateFile({ message: "it is not a DHT state file" })
    }
    const copy = (bytes: Uint8Array | undefined) => bytes === undefined ? undefined : new Uint8Array(bytes)
    return {
      ids: { ipv4: copy(id), ipv6: copy(id6) },
      nodes: [...Krpc.decodeNodes(nodes ?? new Uint8Array(0)), ...Krpc.decodeNodes(nodes6 ?? new Uint8Array(0), 38)]
    } satisfies State
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

const saveState = (fs: FileSystem.FileSystem, path: Path.Path, file: string, state: State) =>
  Effect.gen(function*() {
    yield* fs.makeDirectory(path.dirname(file), { recursive: true })
    yield* fs.writeFile(
      `${file}.tmp`,
      Bencode.encode({
        ...(state.ids.ipv4 === undefined ? {} : { id: state.ids.ipv4 }),
        ...(state.ids.ipv6 === undefined ? {} : { id6: state.ids.ipv6 }),
        nodes: Krpc.encodeNodes(state.nodes, "ipv4"),
        nodes6: Krpc.encodeNodes(state.nodes, "ipv6")
      })
    )
    yield* fs.rename(`${file}.tmp`, file)
  }).pipe(Effect.catch((error) => Effect.logWarning(`DHT: could not save the state file ${file}: ${error.message}`)))
