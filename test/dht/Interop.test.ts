/**
 * Our DHT node with bittorrent-dht@11 nodes on 127.0.0.1: each side finds the
 * peers the other announced, so our queries and our answers are both
 * understood by another implementation.
 */
import { assert, describe, it } from "@effect/vitest"
import type DHT from "bittorrent-dht"
import { Effect, Stream } from "effect"
import { addressOf, bittorrentDht, connect, effectDht, eventually, infoHashOf, localhost } from "./fixtures.ts"

/** bittorrent-dht's lookup, collecting the peers it reports. */
const lookupWith = (dht: DHT, infoHash: Uint8Array) =>
  Effect.callback<Array<string>>((resume) => {
    const peers: Array<string> = []
    const onPeer = (peer: { host: string; port: number }) => peers.push(`${peer.host}:${peer.port}`)
    dht.on("peer", onPeer)
    dht.lookup(infoHash, (error) => {
      dht.off("peer", onPeer)
      resume(error === null ? Effect.succeed(peers) : Effect.die(error))
    })
  })

const announceWith = (dht: DHT, infoHash: Uint8Array, port: number) =>
  Effect.callback<void>((resume) => {
    dht.announce(infoHash, port, (error) => resume(error === null ? Effect.void : Effect.die(error)))
  })

describe("Dht with bittorrent-dht", () => {
  it.live("a bittorrent-dht node stores and finds peers through our node alone", () =>
    Effect.gen(function*() {
      const ours = yield* effectDht()
      const ourAddress = { host: localhost, port: yield* ours.port }
      const announcer = yield* bittorrentDht
      // It learns of our node by pinging it; its announce can then only go to us.
      yield* connect(announcer, ourAddress)
      assert.isTrue(
        announcer.nodes.toArray().some((node) => Buffer.from(node.id!).equals(ours.nodeId)),
        "our ping answer carries our id"
      )
      yield* announceWith(announcer, infoHashOf(1), 7001)
      // A node that joins later finds the peer in our store (the announcer keeps none).
      const seeker = yield* bittorrentDht
      yield* connect(seeker, ourAddress)
      const found = yield* lookupWith(seeker, infoHashOf(1))
      assert.include(found, `${localhost}:7001`)
      // Both pinged us first, then queried us: they are in our table.
      yield* eventually(Effect.map(ours.nodes, (n) => n === 2), "our node to know both")
    }), { timeout: 30_000 })

  it.live("a bittorrent-dht node finds peers we announced", () =>
    Effect.gen(function*() {
      const routers = [yield* bittorrentDht, yield* bittorrentDht, yield* bittorrentDht]
      yield* connect(routers[1]!, addressOf(routers[0]!))
      yield* connect(routers[2]!, addressOf(routers[0]!))
      const ours = yield* effectDht({ bootstrap: [addressOf(routers[0]!)] })
      yield* eventually(Effect.map(ours.nodes, (n) => n === 3), "our node to bootstrap to all three")
      yield* ours.announce(infoHashOf(2), 7002)
      const seeker = yield* bittorrentDht
      yield* connect(seeker, addressOf(routers[2]!))
      const found = yield* lookupWith(seeker, infoHashOf(2))
      assert.include(found, `${localhost}:7002`)
    }), { timeout: 30_000 })

  it.live("we find peers a bittorrent-dht node announced", () =>
    Effect.gen(function*() {
      const routers = [yield* bittorrentDht, yield* bittorrentDht, yield* bittorrentDht]
      yield* connect(routers[1]!, addressOf(routers[0]!))
      yield* connect(routers[2]!, addressOf(routers[1]!))
      yield* announceWith(routers[2]!, infoHashOf(3), 7003)
      const ours = yield* effectDht({ bootstrap: [addressOf(routers[0]!)] })
      const found = yield* Stream.runCollect(ours.lookup(infoHashOf(3)))
      assert.deepStrictEqual(found, [{ host: localhost, port: 7003 }])
    }), { timeout: 30_000 })
})
