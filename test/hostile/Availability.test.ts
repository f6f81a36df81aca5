/**
 * Availability churn over real loopback TCP against the real engine: peers
 * that connect to us and cycle bitfield / have-all / have-none / have
 * messages on a torrent of 65,536 pieces, where each such message costs a
 * pass over every piece. Eight of them reconnect and churn at full speed;
 * one churns slowly, under every flood limit. Pieces are never lost, so
 * availability that shrinks is a protocol violation: each offender must be
 * hung up on at once, whatever its rate, and the engine's memory stay flat.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result, Stream } from "effect"
import { randomBytes } from "node:crypto"
import * as Net from "node:net"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Bitfield from "../../src/protocol/Bitfield.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as WireMessage from "../../src/protocol/WireMessage.ts"
import { tempDir } from "../util/Files.ts"
import { startManager, within } from "../util/Leecher.ts"
import { record } from "../util/SecurityResults.ts"

const pieceCount = 65_536

/** Many 16 KiB pieces whose data nobody has (random hashes): only the piece count matters here. */
const meta = Result.getOrThrow(Metainfo.decode(Bencode.encode({
  info: {
    name: "churn.bin",
    "piece length": 16 * 1024,
    length: pieceCount * 16 * 1024,
    pieces: randomBytes(20 * pieceCount)
  }
})))

/** One cycle: every piece, every piece again, none, then one. */
const cycle = Buffer.from(WireMessage.encodeBatch([
  { _tag: "Bitfield", bytes: Bitfield.full(pieceCount).toBytes() },
  { _tag: "HaveAll" },
  { _tag: "HaveNone" },
  { _tag: "Have", index: 7 }
]))

/**
 * Connects, handshakes (with the fast extension, so have-all and have-none
 * are allowed) and sends cycles, back to back or one every `paceMillis`,
 * until the engine hangs up; resolves with how long that took, or undefined
 * if it had not after `giveUpMillis`.
 */
const churn = (port: number, id: number, paceMillis?: number, giveUpMillis = 10_000) =>
  new Promise<number | undefined>((resolve) => {
    const started = Date.now()
    const socket = Net.connect({ host: "127.0.0.1", port })
    const peerId = Buffer.from(`-XX0001-${String(id).padStart(12, "0")}`)
    let timer: NodeJS.Timeout | undefined
    const giveUp = setTimeout(() => {
      socket.destroy()
      resolve(undefined)
    }, giveUpMillis)
    const send = () => {
      if (socket.destroyed) return
      if (paceMillis !== undefined) {
        socket.write(cycle)
        timer = setTimeout(send, paceMillis)
        return
      }
      while (socket.write(cycle)) if (Date.now() - started > giveUpMillis) return
      socket.once("drain", send)
    }
    socket.on("error", () => {})
    socket.resume() // a paused socket never sees the other side's end
    socket.on("close", () => {
      clearTimeout(giveUp)
      clearTimeout(timer)
      resolve(Date.now() - started)
    })
    socket.on("connect", () => {
      socket.write(
        Handshake.encode(Handshake.make({ infoHash: InfoHash.toBytes(meta.infoHash), peerId, features: ["fast"] }))
      )
      send()
    })
  })

/** A manager with the torrent running (it takes connections once it runs). */
const running = Effect.gen(function*() {
  const { manager } = yield* startManager(yield* tempDir("churn"), { maxConnectionsPerHost: 16 })
  const handle = yield* manager.add(meta, {})
  yield* handle.progress.changes.pipe(
    Stream.filter((p) => p.state !== "checking"),
    Stream.take(1),
    Stream.runDrain,
    within(30_000, "the torrent starting")
  )
  return manager
})

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`

describe("hostile peers › availability churn", () => {
  it.live(
    "a peer that cycles its availability slowly, under the flood limits, is hung up on at the first retraction",
    () =>
      Effect.gen(function*() {
        const manager = yield* running
        const millis = yield* Effect.promise(() => churn(manager.port, 0, 100))
        assert.isDefined(millis, "the engine never hung up on the slow churner")
        assert.isAtMost(millis!, 2000)
        record(`one cycle every 100 ms: disconnected after ${millis} ms`)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "eight peers that reconnect and cycle their availability at full speed: each is hung up on, memory stays flat",
    () =>
      Effect.gen(function*() {
        const manager = yield* running
        const before = process.memoryUsage().rss
        let peak = before
        const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20)
        const rounds = 10
        const times = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 8 }, async (_, peer) => {
            const out: Array<number | undefined> = []
            for (let round = 0; round < rounds; round++) out.push(await churn(manager.port, peer * rounds + round))
            return out
          }))
        ).pipe(Effect.ensuring(Effect.sync(() => clearInterval(sampler))))
        const all = times.flat()
        assert.notInclude(all, undefined, "a churner was never hung up on")
        const slowest = Math.max(...(all as Array<number>))
        assert.isAtMost(slowest, 3000, `slowest disconnect ${slowest} ms`)
        const growth = peak - before
        assert.isBelow(growth, 96 * 1024 * 1024, `RSS grew by ${mib(growth)}`)
        record(
          `${all.length} connections (8 peers × ${rounds}) on a ${pieceCount}-piece torrent: each disconnected within ${slowest} ms; RSS ${
            mib(before)
          } → peak ${mib(peak)}`
        )
      }).pipe(Effect.scoped),
    90_000
  )
})
