import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { randomBytes } from "node:crypto"
import * as RoutingTable from "../../src/dht/RoutingTable.ts"

const ownId = new Uint8Array(20) // all zero bits: a node's bucket is its leading zero count
const minutes = (n: number) => n * 60_000

/** An id sharing exactly `prefix` leading bits with ours, made unique by `n`. */
const idAt = (prefix: number, n: number) => {
  const id = new Uint8Array(20)
  id[prefix >> 3] = 0x80 >> (prefix & 7)
  id[19] |= n
  return id
}
const node = (id: Uint8Array, port = 1000 + id[19]!) => ({ id, host: "10.0.0.1", port })

const fill = (table: RoutingTable.RoutingTable, prefix: number, count: number, now = 0) => {
  for (let n = 1; n <= count; n++) assert.strictEqual(table.responded(node(idAt(prefix, n)), now)._tag, "Added")
}

describe("RoutingTable", () => {
  it("keeps k nodes per bucket and splits only the bucket holding our id", () => {
    const table = new RoutingTable.RoutingTable(ownId, 0)
    fill(table, 0, 8)
    assert.strictEqual(table.bucketCount, 1)
    // A ninth node splits the bucket: the far half keeps the eight, the near half takes it.
    assert.strictEqual(table.responded(node(idAt(3, 9)), 0)._tag, "Added")
    assert.strictEqual(table.bucketCount, 2)
    assert.strictEqual(table.bucketIndex(idAt(3, 9)), 1)
    // The far bucket is full of good nodes and cannot split: a newcomer is left out.
    assert.strictEqual(table.responded(node(idAt(0, 10)), 0)._tag, "Ignored")
    assert.isUndefined(table.find(idAt(0, 10)))
    assert.strictEqual(table.nodes().length, 9)
    // A known node answering again is updated, not duplicated.
    assert.strictEqual(table.responded(node(idAt(0, 1), 4242), 5)._tag, "Updated")
    assert.strictEqual(table.find(idAt(0, 1))?.port, 4242)
    assert.strictEqual(table.responded(node(ownId), 0)._tag, "Ignored", "never ourselves")
  })

  it("stays bounded by k-buckets whatever is inserted", () => {
    const table = new RoutingTable.RoutingTable(ownId, 0)
    for (let i = 0; i < 5000; i++) table.responded(node(new Uint8Array(randomBytes(20))), 0)
    // Random ids share ~log2(5000/8) bits with ours at most: about ten buckets of eight.
    assert.isAtMost(table.nodes().length, 8 * table.bucketCount)
    assert.isAtLeast(table.bucketCount, 5)
    for (let i = 0; i < table.bucketCount; i++) {
      assert.isAtMost(table.nodes().filter((n) => table.bucketIndex(n.id) === i).length, 8)
    }
  })

  it("tracks liveness: good, questionable after 15 quiet minutes, bad after two missed answers", () => {
    const table = new RoutingTable.RoutingTable(ownId, 0)
    fill(table, 0, 1)
    const id = idAt(0, 1)
    const statusAt = (now: number) => RoutingTable.status(table.find(id)!, now)
    assert.strictEqual(statusAt(minutes(15) - 1), "good")
    assert.strictEqual(statusAt(minutes(15)), "questionable")
    assert.isTrue(table.queried(id, minutes(20)), "a query from a node that once answered")
    assert.strictEqual(statusAt(minutes(20)), "good")
    assert.isFalse(table.queried(idAt(0, 2), 0), "unknown nodes are not added by their queries")
    table.failed(id, minutes(21))
    assert.strictEqual(statusAt(minutes(21)), "good", "one missed answer is forgiven")
    table.failed(id, minutes(21))
    assert.strictEqual(statusAt(minutes(21)), "bad")
    table.responded(node(id), minutes(22))
    assert.strictEqual(statusAt(minutes(22)), "good", "an answer clears the failures")
  })

  it("replaces bad nodes at once, and questionable ones when they turn bad", () => {
    const table = new RoutingTable.RoutingTable(ownId, 0)
    fill(table, 0, 8)
    table.responded(node(idAt(3, 9)), 0) // split: bucket 0 is now the far, full one
    table.failed(idAt(0, 1), 1)
    table.failed(idAt(0, 1), 1)
    assert.isTrue(table.wants(node(idAt(0, 10)), 1), "room where a bad node is")
    assert.strictEqual(table.responded(node(idAt(0, 10)), 1)._tag, "Added")
    assert.isUndefined(table.find(idAt(0, 1)))

    // 15 minutes later the others are questionable; the stalest ones are to be pinged.
    table.responded(node(idAt(0, 2)), minutes(10))
    assert.isFalse(table.wants(node(idAt(0, 11)), minutes(16)))
    const full = table.responded(node(idAt(0, 11)), minutes(16))
    assert(full._tag === "Full")
    assert.deepStrictEqual(full.questionable.map((n) => n.id[19]), [3, 4, 5, 6, 7, 8, 10])
    assert.isUndefined(table.find(idAt(0, 11)), "the newcomer waits")
    table.failed(idAt(0, 3), minutes(17))
    assert.isUndefined(table.find(idAt(0, 11)))
    table.failed(idAt(0, 3), minutes(17))
    assert.isUndefined(table.find(idAt(0, 3)))
    assert.isDefined(table.find(idAt(0, 11)), "the waiting node took the bad one's place")
  })

  it("prefers nodes whose ids conform (BEP 42): a conforming newcomer takes a full bucket's stalest other node", () => {
    // Here the nodes on 10.0.0.2 are the ones whose ids do not fit their address.
    const conforms = (info: { readonly host: string }) => info.host !== "10.0.0.2"
    const table = new RoutingTable.RoutingTable(ownId, 0, { conforms })
    const other = (id: Uint8Array) => ({ ...node(id), host: "10.0.0.2" })
    fill(table, 0, 6)
    table.responded(other(idAt(0, 7)), minutes(2))
    table.responded(other(idAt(0, 8)), minutes(1))
    table.responded(node(idAt(3, 9)), minutes(3)) // split: bucket 0 is now the far, full one
    assert.isFalse(table.wants(other(idAt(0, 10)), minutes(3)), "one more that does not conform waits")
    assert.strictEqual(table.responded(other(idAt(0, 10)), minutes(3))._tag, "Ignored")
    assert.isTrue(table.wants(node(idAt(0, 11)), minutes(3)))
    assert.strictEqual(table.responded(node(idAt(0, 11)), minutes(3))._tag, "Added")
    assert.isUndefined(table.find(idAt(0, 8)), "the least recently seen non-conforming node gave way")
    assert.isDefined(table.find(idAt(0, 7)))
    assert.strictEqual(table.responded(node(idAt(0, 12)), minutes(3))._tag, "Added")
    assert.isUndefined(table.find(idAt(0, 7)))
    // Now every node conforms: a newcomer only waits, as without BEP 42.
    assert.isFalse(table.wants(node(idAt(0, 13)), minutes(3)))
    assert.strictEqual(table.responded(node(idAt(0, 13)), minutes(3))._tag, "Ignored")
  })

  it("with requireConforming, lets no node in whose id does not conform", () => {
    const conforms = (info: { readonly host: string }) => info.host !== "10.0.0.2"
    const table = new RoutingTable.RoutingTable(ownId, 0, { conforms, requireConforming: true })
    const other = { ...node(idAt(0, 1)), host: "10.0.0.2" }
    assert.isFalse(table.wants(other, 0))
    assert.strictEqual(table.responded(other, 0)._tag, "Ignored")
    assert.strictEqual(table.nodes().length, 0)
    assert.strictEqual(table.responded(node(idAt(0, 2)), 0)._tag, "Added")
  })

  it("gives the closest nodes by XOR distance, bad ones left out", () => {
    const table = new RoutingTable.RoutingTable(ownId, 0)
    const ids = [idAt(0, 1), idAt(1, 2), idAt(2, 3), idAt(7, 4), idAt(9, 5)]
    for (const id of ids) table.responded(node(id), 0)
    const target = idAt(7, 0)
    assert.deepStrictEqual(table.closest(target, 0, 3).map((n) => n.id), [idAt(7, 4), idAt(9, 5), idAt(2, 3)])
    table.failed(idAt(9, 5), 0)
    table.failed(idAt(9, 5), 0)
    assert.deepStrictEqual(table.closest(target, 0, 3).map((n) => n.id), [idAt(7, 4), idAt(2, 3), idAt(1, 2)])
    assert.strictEqual(table.goodCount(0), 4)
  })

  it("refreshes buckets unchanged for 15 minutes with an id in their range", () => {
    const table = new RoutingTable.RoutingTable(ownId, 0)
    fill(table, 0, 8, minutes(5))
    table.responded(node(idAt(4, 9)), minutes(5)) // splits; both halves changed at 5 min
    const random = () => new Uint8Array(randomBytes(20))
    assert.deepStrictEqual(table.refreshTargets(minutes(20) - 1, minutes(15), random), [])
    table.responded(node(idAt(4, 9)), minutes(10)) // an answer in bucket 1 counts as a change
    const targets = table.refreshTargets(minutes(20), minutes(15), random)
    assert.deepStrictEqual(targets.map((id) => table.bucketIndex(id)), [0])
    assert.deepStrictEqual(table.refreshTargets(minutes(20), minutes(15), random), [], "not twice in a row")
    assert.deepStrictEqual(
      table.refreshTargets(minutes(25), minutes(15), random).map((id) => table.bucketIndex(id)),
      [1]
    )
  })

  it.prop(
    "an id made for a bucket belongs in it",
    [Schema.Uint8Array.check(Schema.isBetweenLength(20, 20)), Schema.Uint8Array.check(Schema.isBetweenLength(20, 20))],
    ([own, random]) => {
      const table = new RoutingTable.RoutingTable(own, 0)
      for (let i = 0; i < 300; i++) table.responded(node(new Uint8Array(randomBytes(20))), 0)
      for (let i = 0; i < table.bucketCount; i++) assert.strictEqual(table.bucketIndex(table.randomIdIn(i, random)), i)
    },
    { arbitrary: { runs: 20 } }
  )
})
