/**
 * Incoming connections over real loopback TCP: a handshake naming a torrent
 * we do not have is closed; one naming ours gets our handshake back and then
 * our pieces; a second connection from the same client (same peer id) is closed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, References, Result } from "effect"
import * as Net from "node:net"
import { join } from "node:path"
import * as Frame from "../../src/protocol/Frame.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import { TorrentManager } from "../../src/TorrentManager.ts"
import { createWithMktorrent, tempDir, writeTree } from "../util/Files.ts"
import { waitUntil } from "../util/Swarm.ts"

/** A raw TCP client that sends a handshake and records what comes back, and whether we were hung up on. */
const dial = (port: number, infoHash: Uint8Array, peerId: Uint8Array) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const decoder = Frame.FrameDecoder.makeWithHandshake({ maxFrame: 1 << 20 })
      const received: Array<string> = []
      const state = { closed: false, received }
      const socket = Net.createConnection({ host: "127.0.0.1", port }, () => {
        socket.write(Handshake.encode(Handshake.make({ infoHash, peerId, features: ["fast"] })))
      })
      socket.on("data", (chunk) => {
        const out = decoder.push(chunk)
        if (Result.isSuccess(out)) { for (const m of out.success) received.push(m._tag) }
      })
      socket.on("close", () => (state.closed = true))
      socket.on("error", () => {})
      return { state, socket }
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  ).pipe(Effect.map(({ state }) => state))

describe("incoming connections", () => {
  it.live(
    "are routed by info-hash; unknown torrents and second connections of a peer are closed",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("incoming")
        yield* writeTree(root, [{ path: "data.bin", size: 300_000 }])
        const { meta } = yield* createWithMktorrent(join(root, "data.bin"), join(root, "data.torrent"), {
          pieceLength: 32 * 1024,
          announce: []
        })
        const context = yield* Layer.build(
          TorrentManager.layerNode({ downloadDir: root, port: 0, listenHost: "127.0.0.1" }).pipe(
            Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Error"))
          )
        )
        const manager = context.mapUnsafe.get(TorrentManager.key) as TorrentManager["Service"]
        yield* manager.add(meta, { seed: true })
        const id = (n: number) => new TextEncoder().encode(`-XX0001-${String(n).padStart(12, "0")}`)

        const stranger = yield* dial(manager.port, new Uint8Array(20).fill(7), id(1))
        yield* waitUntil(() => stranger.closed, {
          timeoutMillis: 5_000,
          message: () => "an unknown info-hash was not closed"
        })
        assert.deepStrictEqual(stranger.received, [], "nothing is said to a peer asking for a torrent we do not have")

        const ours = InfoHash.toBytes(meta.infoHash)
        const first = yield* dial(manager.port, ours, id(2))
        yield* waitUntil(() => first.received.includes("HaveAll"), {
          timeoutMillis: 10_000,
          message: () => `no handshake and HaveAll: ${first.received.join(",")}`
        })
        assert.strictEqual(first.received[0], "Handshake")

        const again = yield* dial(manager.port, ours, id(2))
        yield* waitUntil(() => again.closed, {
          timeoutMillis: 5_000,
          message: () => "a second connection of one peer id stayed open"
        })
        assert.isFalse(first.closed, "the first connection stays")
      }),
    30_000
  )
})
