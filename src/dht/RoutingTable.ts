/**
 * The DHT routing table (BEP 5): k-buckets of nodes by XOR distance from our
 * own id. Pure bookkeeping with the time passed in; the `Dht` service does
 * the pinging this table asks for.
 *
 * Bucket i holds the nodes whose ids share exactly i leading bits with ours;
 * the last bucket holds every node sharing at least as many, and it is the
 * only one that splits when full (so the table is densest near our id and at
 * most 160·k nodes). A node is good while it has answered us within the last
 * 15 minutes (or has answered once and queried us since), questionable
 * after 15 quiet minutes, and bad after two unanswered queries in a row. Only
 * nodes that answered us get in. A full bucket takes a newcomer in place of a
 * bad node; otherwise the newcomer waits in the bucket's replacement list
 * while the caller pings the questionable nodes, and takes the place of one
 * that turns bad. Each bucket records when its contents last changed, for
 * the 15-minute refresh.
 *
 * Node ids (BEP 42): a node whose id does not fit its address (`conforms`)
 * gives way in a full bucket to a newcomer whose id does, and with
 * `requireConforming` it never gets in at all.
 */
import type * as Krpc from "./Krpc.ts"

export const K = 8
export const QUESTIONABLE_AFTER_MILLIS = 15 * 60_000
const BAD_AFTER_FAILURES = 2
const ID_BITS = 160

export interface Node extends Krpc.NodeInfo {
  /** When it last answered us, or queried us after having answered once. */
  readonly lastSeen: number
  /** Queries to it that went unanswered in a row. */
  readonly failures: number
}

export type Status = "good" | "questionable" | "bad"

export const status = (node: Node, now: number): Status =>
  node.failures >= BAD_AFTER_FAILURES
    ? "bad"
    : now - node.lastSeen < QUESTIONABLE_AFTER_MILLIS
    ? "good"
    : "questionable"

export type Insert =
  | { readonly _tag: "Added" }
  | { readonly _tag: "Updated" }
  /** The bucket is full of good and questionable nodes: ping these (least recently seen first). */
  | { readonly _tag: "Full"; readonly questionable: ReadonlyArray<Node> }
  | { readonly _tag: "Ignored" }

interface Bucket {
  nodes: Array<Node>
  replacements: Array<Node>
  lastChanged: number
}

/** Negative when `a` is closer to `target` than `b` (XOR metric). */
export const compareDistance = (target: Uint8Array, a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < target.length; i++) {
    const d = (a[i]! ^ target[i]!) - (b[i]! ^ target[i]!)
    if (d !== 0) return d
  }
  return 0
}

/** How many leading bits `a` and `b` share (160 when equal). */
export const commonPrefixLength = (a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! ^ b[i]!
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return a.length * 8
}

const sameId = (a: Uint8Array, b: Uint8Array) => commonPrefixLength(a, b) === ID_BITS

const bitAt = (id: Uint8Array, bit: number) => (id[bit >> 3]! >> (7 - (bit & 7))) & 1

export interface Options {
  readonly k?: number
  /** Whether a node's id is acceptable for its address (BEP 42); all are when absent. */
  readonly conforms?: (node: Krpc.NodeInfo) => boolean
  /** Keep out nodes whose ids do not conform, instead of only preferring those that do. */
  readonly requireConforming?: boolean
}

export class RoutingTable {
  private readonly buckets: Array<Bucket>
  readonly k: number
  private readonly conforms: (node: Krpc.NodeInfo) => boolean
  private readonly requireConforming: boolean

  constructor(readonly ownId: Uint8Array, now: number, options: Options = {}) {
    this.buckets = [{ nodes: [], replacements: [], lastChanged: now }]
    this.k = options.k ?? K
    this.conforms = options.conforms ?? (() => true)
    this.requireConforming = options.requireConforming ?? false
  }

  get bucketCount(): number {
    return this.buckets.length
  }

  /** The bucket `id` belongs in. */
  bucketIndex(id: Uint8Array): number {
    return Math.min(commonPrefixLength(this.ownId, id), this.buckets.length - 1)
  }

  find(id: Uint8Array): Node | undefined {
    return this.buckets[this.bucketIndex(id)]!.nodes.find((node) => sameId(node.id, id))
  }

  /** A node answered one of our queries. */
  responded(info: Krpc.NodeInfo, now: number): Insert {
    if (sameId(info.id, this.ownId)) return { _tag: "Ignored" }
    const conforming = this.conforms(info)
    if (!conforming && this.requireConforming) return { _tag: "Ignored" }
    const node: Node = { id: info.id, host: info.host, port: info.port, lastSeen: now, failures: 0 }
    while (true) {
      const bucket = this.buckets[this.bucketIndex(info.id)]!
      const known = bucket.nodes.findIndex((n) => sameId(n.id, info.id))
      if (known >= 0) {
        bucket.nodes[known] = node
        bucket.lastChanged = now
        return { _tag: "Updated" }
      }
      if (bucket.nodes.length < this.k) {
        bucket.nodes.push(node)
        bucket.lastChanged = now
        return { _tag: "Added" }
      }
      const bad = bucket.nodes.findIndex((n) => status(n, now) === "bad")
      if (bad >= 0) {
        bucket.nodes[bad] = node
        bucket.lastChanged = now
        return { _tag: "Added" }
      }
      if (this.split(bucket)) continue
      // With no room to make, a conforming newcomer takes the place of the least recently seen non-conforming node.
      const other = conforming ? this.leastRecentNonConforming(bucket) : -1
      if (other >= 0) {
        bucket.nodes[other] = node
        bucket.lastChanged = now
        return { _tag: "Added" }
      }
      bucket.replacements = [...bucket.replacements.filter((n) => !sameId(n.id, info.id)), node].slice(-this.k)
      const questionable = bucket.nodes.filter((n) => status(n, now) === "questionable")
      return questionable.length === 0
        ? { _tag: "Ignored" }
        : { _tag: "Full", questionable: questionable.sort((a, b) => a.lastSeen - b.lastSeen) }
    }
  }

  /** A node queried us: a known node that once answered is good again. Returns whether it is known. */
  queried(id: Uint8Array, now: number): boolean {
    const bucket = this.buckets[this.bucketIndex(id)]!
    const known = bucket.nodes.findIndex((n) => sameId(n.id, id))
    if (known < 0) return false
    bucket.nodes[known] = { ...bucket.nodes[known]!, lastSeen: now }
    return true
  }

  /** Whether an unknown node would get in if it answered: room, a bad node to replace, or a split. */
  wants(info: Krpc.NodeInfo, now: number): boolean {
    if (sameId(info.id, this.ownId) || this.find(info.id) !== undefined) return false
    const conforming = this.conforms(info)
    if (!conforming && this.requireConforming) return false
    const index = this.bucketIndex(info.id)
    const bucket = this.buckets[index]!
    return bucket.nodes.length < this.k || bucket.nodes.some((n) => status(n, now) === "bad") ||
      this.splittable(index) || (conforming && this.leastRecentNonConforming(bucket) >= 0)
  }

  /** A query to a node went unanswered; a node that turns bad gives way to the newest replacement. */
  failed(id: Uint8Array, now: number): void {
    const bucket = this.buckets[this.bucketIndex(id)]!
    const known = bucket.nodes.findIndex((n) => sameId(n.id, id))
    if (known < 0) return
    const node = { ...bucket.nodes[known]!, failures: bucket.nodes[known]!.failures + 1 }
    const replacement = status(node, now) === "bad" ? bucket.replacements.pop() : undefined
    bucket.nodes[known] = replacement ?? node
    if (replacement !== undefined) bucket.lastChanged = now
  }

  /** The `count` nodes closest to `target`, bad ones left out. */
  closest(target: Uint8Array, now: number, count: number = this.k): Array<Node> {
    return this.nodes()
      .filter((node) => status(node, now) !== "bad")
      .sort((a, b) => compareDistance(target, a.id, b.id))
      .slice(0, count)
  }

  nodes(): Array<Node> {
    return this.buckets.flatMap((bucket) => bucket.nodes)
  }

  goodCount(now: number): number {
    return this.nodes().filter((node) => status(node, now) === "good").length
  }

  /**
   * Targets for refreshing the buckets unchanged for `age` milliseconds: an
   * id in each one's range (from `random`, 20 bytes per call). Those buckets
   * count as changed now, so a refresh nobody answers is not repeated at once.
   */
  refreshTargets(now: number, age: number, random: () => Uint8Array): Array<Uint8Array> {
    const targets: Array<Uint8Array> = []
    this.buckets.forEach((bucket, index) => {
      if (now - bucket.lastChanged < age) return
      bucket.lastChanged = now
      targets.push(this.randomIdIn(index, random()))
    })
    return targets
  }

  /** An id in bucket `index`'s range: our first `index` bits, then (but in the last bucket) the other bit. */
  randomIdIn(index: number, random: Uint8Array): Uint8Array {
    const id = new Uint8Array(random)
    const fixed = index < this.buckets.length - 1 ? index + 1 : index
    for (let bit = 0; bit < fixed; bit++) {
      const want = bit < index ? bitAt(this.ownId, bit) : 1 - bitAt(this.ownId, bit)
      const mask = 0x80 >> (bit & 7)
      id[bit >> 3] = want === 1 ? id[bit >> 3]! | mask : id[bit >> 3]! & ~mask
    }
    return id
  }

  private leastRecentNonConforming(bucket: Bucket): number {
    let found = -1
    bucket.nodes.forEach((node, i) => {
      if (!this.conforms(node) && (found < 0 || node.lastSeen < bucket.nodes[found]!.lastSeen)) found = i
    })
    return found
  }

  private splittable(index: number): boolean {
    return index === this.buckets.length - 1 && this.buckets.length < ID_BITS
  }

  /** Splits the last bucket (the one holding our own id); false for any other. */
  private split(bucket: Bucket): boolean {
    const index = this.buckets.indexOf(bucket)
    if (!this.splittable(index)) return false
    const far = (node: Node) => commonPrefixLength(this.ownId, node.id) === index
    this.buckets.splice(index, 1, {
      nodes: bucket.nodes.filter(far),
      replacements: bucket.replacements.filter(far),
      lastChanged: bucket.lastChanged
    }, {
      nodes: bucket.nodes.filter((node) => !far(node)),
      replacements: bucket.replacements.filter((node) => !far(node)),
      lastChanged: bucket.lastChanged
    })
    return true
  }
}
