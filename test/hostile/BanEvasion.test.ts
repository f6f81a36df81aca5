/**
 * Ban evasion over real loopback TCP against the real engine: a host that
 * connects to us again and again, each time from a new port with a new peer
 * id, and answers every request with corrupt blocks, while an honest seeder
 * (slow, so the attack has time) serves the torrent. The engine must stop
 * taking its connections after its second ban (the host's cool-down),
 * keep the hash failures it causes bounded, and finish from the honest peer.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Net from "node:net"
import { join } from "node:path"
import * as Frame from "../../src/protocol/Frame.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import type * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as WireMessage from "../../src/protocol/WireMessage.ts"
import * as FakeSeeder from "../util/FakeSeeder.ts"
import { createWithCreateTorrent, sameBytes, tempDir, torrentBytes, writeTree } from "../util/Files.ts"
import { startManager } from "../util/Leecher.ts"
import { record } from "../util/SecurityResults.ts"

interface Attack {
  connections: number
  /** Connections that got as far as being asked for a block. */
  served: number
  corruptBlocks: number
  stopped: boolean
}

/**
 * One connection: handshake with a fresh peer id, have-all and unchoke, then
 * every request answered with a corrupt block; resolves when either side closes.
 */
const connectOnce = (port: number, meta: Metainfo.Metainfo, id: number, attack: Attack) =>
  new Promise<void>((resolve) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const decoder = Frame.FrameDecoder.makeWithHandshake({ maxFrame: 1 << 20 })
    const peerId = Buffer.from(`-XX0001-${String(id).padStart(12, "0")}`)
    let asked = false
    const giveUp = setTimeout(() => socket.destroy(), 20_000)
    socket.on("error", () => {})
    socket.on("close", () => {
      clearTimeout(giveUp)
      resolve()
    })
    socket.on("connect", () => {
      attack.connections++
      socket.write(
        Handshake.encode(Handshake.make({ infoHash: InfoHash.toBytes(meta.infoHash), peerId, features: ["fast"] }))
      )
      socket.write(WireMessage.encodeBatch([{ _tag: "HaveAll" }, { _tag: "Unchoke" }]))
    })
    socket.on("data", (chunk: Buffer) => {
      const received: Array<Handshake.Handshake | WireMessage.WireMessage> = []
      if (Result.isFailure(decoder.push(new Uint8Array(chunk), received))) return socket.destroy()
      const replies: Array<WireMessage.WireMessage> = []
      for (const m of received) {
        if (m._tag !== "Request") continue
        if (!asked) attack.served++
        asked = true
        attack.corruptBlocks++
        replies.push({ _tag: "Piece", index: m.index, begin: m.begin, block: new Uint8Array(m.length).fill(0xee) })
      }
      if (replies.length > 0) socket.write(WireMessage.encodeBatch(replies))
    })
  })

describe("hostile peers › ban evasion", () => {
  it.live(
    "a host that comes back from new ports with new peer ids, sending bad blocks: held back from its second ban; the download completes",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("evasion")
        const src = join(root, "src")
        yield* writeTree(src, [{ path: "data.bin", size: 4 * 1024 * 1024 + 333 }])
        const { meta } = yield* createWithCreateTorrent(join(src, "data.bin"), join(root, "data.torrent"), {
          pieceLength: 32 * 1024,
          announce: []
        })
        const honest = yield* FakeSeeder.make({ meta, data: torrentBytes(src, meta), bytesPerSecond: 512 * 1024 })
        const { manager } = yield* startManager(join(root, "dst"))
        const handle = yield* manager.add(meta, { peers: [honest.address] })
        const attack: Attack = { connections: 0, served: 0, corruptBlocks: 0, stopped: false }
        // Reconnects at once each time it is hung up on, until the download ends (at most 2000 times).
        const attacker = Effect.promise(async () => {
          for (let id = 0; id < 2000 && !attack.stopped; id++) await connectOnce(manager.port, meta, id, attack)
        })
        const started = Date.now()
        yield* Effect.forkScoped(attacker)
        yield* handle.completed.pipe(
          Effect.timeoutOrElse({
            duration: 60_000,
            orElse: () =>
              Effect.flatMap(
                handle.progress.get,
                (p) =>
                  Effect.die(
                    new Error(
                      `the download did not finish in 60 s: ${
                        JSON.stringify({
                          ...p,
                          files: undefined,
                          attack,
                          honest: { ...honest.stats, piecesServed: honest.stats.piecesServed.size }
                        })
                      }`
                    )
                  )
              )
          }),
          Effect.ensuring(Effect.sync(() => (attack.stopped = true)))
        )
        const millis = Date.now() - started
        const { hashFailures } = yield* handle.progress.get
        assert.isTrue(sameBytes(join(src, "data.bin"), join(root, "dst", "data.bin")), "the file is correct")
        assert.strictEqual(honest.stats.closedByPeer, 0, "the honest seeder was never dropped")
        // Its second id banned holds the host back for longer than the download takes.
        assert.isAtMost(attack.served, 2, `${attack.served} of the attacker's connections were asked for blocks`)
        // Each taken connection fails the pieces it was asked for before its first failure was seen (~30 here).
        assert.isAtMost(hashFailures, 100, `${hashFailures} hash failures`)
        record(
          `${attack.connections} connections from 127.0.0.1 with new ids; ${attack.served} taken (asked for blocks), ${attack.corruptBlocks} corrupt blocks, ${hashFailures} hash failures; completed from the honest seeder in ${
            (millis / 1000).toFixed(1)
          } s`
        )
      }).pipe(Effect.scoped),
    90_000
  )
})
