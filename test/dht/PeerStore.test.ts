import { assert, describe, it } from "@effect/vitest"
import { PEER_LIFETIME_MILLIS, PeerStore } from "../../src/dht/PeerStore.ts"

const hash = (n: number) => new Uint8Array(20).fill(n)
const peer = (port: number) => ({ host: "10.0.0.1", port })

describe("PeerStore", () => {
  it("returns the newest unexpired peers of a hash, without duplicates", () => {
    const store = new PeerStore()
    store.add(hash(1), peer(1), 0)
    store.add(hash(1), peer(2), 10)
    store.add(hash(1), peer(1), 20) // announced again: newest
    store.add(hash(2), peer(3), 0)
    assert.deepStrictEqual(store.get(hash(1), 20), [peer(1), peer(2)])
    assert.deepStrictEqual(store.get(hash(1), 20, 1), [peer(1)])
    assert.deepStrictEqual(store.get(hash(3), 20), [])
    assert.deepStrictEqual(store.get(hash(1), PEER_LIFETIME_MILLIS + 10), [peer(1)], "peer 2 expired")
    assert.deepStrictEqual(store.get(hash(1), PEER_LIFETIME_MILLIS + 20), [])
  })

  it("is bounded in peers per hash and in hashes", () => {
    const store = new PeerStore({ peersPerHash: 3, hashes: 2 })
    for (let port = 1; port <= 5; port++) store.add(hash(1), peer(port), port)
    assert.deepStrictEqual(store.get(hash(1), 5, 10), [peer(5), peer(4), peer(3)])
    store.add(hash(2), peer(1), 6)
    store.add(hash(1), peer(6), 7) // hash 1 is the most recently announced again
    store.add(hash(3), peer(1), 8)
    assert.deepStrictEqual(store.get(hash(2), 8), [], "the least recently announced hash was dropped")
    assert.strictEqual(store.get(hash(1), 8).length, 3)
    assert.strictEqual(store.get(hash(3), 8).length, 1)
  })
})
