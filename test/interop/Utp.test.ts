/**
 * uTP (BEP 29) with real peers on 127.0.0.1: webtorrent@1.9.7 (utp-native,
 * libutp) seeding to us and leeching from us, and two effect-torrent
 * processes (the built CLI). Which transport carried the data is checked,
 * not assumed: webtorrent reports each connection's kind (utpIncoming,
 * utpOutgoing, tcp…), and under `--utp only` our dials never use TCP.
 * Under `prefer`, a peer without uTP is reached over TCP by the same dial.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Dgram from "node:dgram"
import { createRequire } from "node:module"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { ManagerEvent } from "../../src/TorrentManager.ts"
import { TorrentManager } from "../../src/TorrentManager.ts"
import * as Files from "../util/Files.ts"
import { sameBytes, tempDir } from "../util/Files.ts"
import { within } from "../util/Leecher.ts"
import { type Child, exitOf, freePort, spawnChild, waitForLine, webtorrentSeeder } from "../util/Swarm.ts"

const size = 4_000_037
// utp-native (libutp), as webtorrent uses it: a CommonJS module without types.
const utpNative = createRequire(import.meta.url)("utp-native") as {
  readonly connect: (port: number, host: string) => import("node:events").EventEmitter & { destroy: () => void }
}

/** Data under `<root>/src` and its torrent (no tracker: peers are given). */
const workspace = (label: string) => Files.workspace(label, size)

/** The first JSON line of `child` holding `key`. */
const line = <A>(child: Child, key: string, accept: (value: A) => boolean = () => true) =>
  waitForLine(child, (text) => {
    try {
      const value = JSON.parse(text) as Record<string, A>
      return key in value && accept(value[key]!) ? value[key]! : undefined
    } catch {
      return undefined
    }
  }, 60_000)

describe("uTP with other clients", () => {
  it.live(
    "we download from a webtorrent@1.9.7 seeder over uTP only; it sees a utpIncoming connection",
    () =>
      Effect.gen(function*() {
        const ws = yield* workspace("utp-webtorrent-download")
        const seeder = yield* webtorrentSeeder({ torrent: ws.file, dir: ws.src, trackers: false, utp: true })
        const port = yield* freePort
        let types: ReadonlyArray<string> = []
        yield* Effect.gen(function*() {
          const manager = yield* TorrentManager
          const handle = yield* manager.add(ws.meta, { peers: [{ host: "127.0.0.1", port: seeder.port }] })
          yield* handle.completed.pipe(within(60_000, "the download over uTP"))
          types = yield* seeder.connected
        }).pipe(
          Effect.scoped,
          Effect.provide(
            TorrentManager.layerNode({ downloadDir: ws.dst, port, listenHost: "127.0.0.1", utp: "only" })
          )
        )
        assert.isTrue(sameBytes(join(ws.src, "data.bin"), join(ws.dst, "data.bin")))
        assert.deepStrictEqual(types, ["utpIncoming"])
      }),
    90_000
  )

  it.live(
    "a webtorrent@1.9.7 leecher downloads from us, dialling us over uTP (utpOutgoing)",
    () =>
      Effect.gen(function*() {
        const ws = yield* workspace("utp-webtorrent-upload")
        const port = yield* freePort
        const events: Array<ManagerEvent> = []
        const types = yield* Effect.gen(function*() {
          const manager = yield* TorrentManager
          yield* Stream.runForEach(yield* manager.subscribe, (e) => Effect.sync(() => events.push(e))).pipe(
            Effect.forkScoped
          )
          yield* manager.add(ws.meta, { seed: true, downloadDir: ws.src })
          const child = yield* spawnChild("webtorrent leecher", process.execPath, [
            fileURLToPath(new URL("../util/webtorrent-leecher.cjs", import.meta.url)),
            JSON.stringify({
              torrent: ws.file,
              dir: ws.dst,
              port: yield* freePort,
              peers: [`127.0.0.1:${manager.port}`],
              utp: true
            })
          ])
          const connected = yield* line<ReadonlyArray<string>>(child, "types", (types) => types.length > 0)
          yield* line(child, "done")
          return connected
        }).pipe(
          Effect.scoped,
          Effect.provide(
            TorrentManager.layerNode({ downloadDir: ws.src, port, listenHost: "127.0.0.1", utp: "prefer" })
          )
        )
        assert.isTrue(sameBytes(join(ws.src, "data.bin"), join(ws.dst, "data.bin")))
        assert.deepStrictEqual(types, ["utpOutgoing"])
        const ours = events.flatMap(({ event }) => event._tag === "PeerConnected" ? [event.outgoing] : [])
        assert.deepStrictEqual(ours, [false], "one connection, webtorrent's: the first uTP dial lasted")
      }),
    90_000
  )

  it.live(
    "prefer with a webtorrent@1.9.7 seeder without uTP: the uTP dial gets no answer, the same dial goes on over TCP",
    () =>
      Effect.gen(function*() {
        const ws = yield* workspace("utp-fallback")
        const seeder = yield* webtorrentSeeder({ torrent: ws.file, dir: ws.src, trackers: false })
        const port = yield* freePort
        const events: Array<ManagerEvent> = []
        let types: ReadonlyArray<string> = []
        yield* Effect.gen(function*() {
          const manager = yield* TorrentManager
          yield* Stream.runForEach(yield* manager.subscribe, (e) => Effect.sync(() => events.push(e))).pipe(
            Effect.forkScoped
          )
          const handle = yield* manager.add(ws.meta, { peers: [{ host: "127.0.0.1", port: seeder.port }] })
          yield* handle.completed.pipe(within(60_000, "the download"))
          types = yield* seeder.connected
        }).pipe(
          Effect.scoped,
          Effect.provide(
            TorrentManager.layerNode({ downloadDir: ws.dst, port, listenHost: "127.0.0.1", utp: "prefer" })
          )
        )
        assert.isTrue(sameBytes(join(ws.src, "data.bin"), join(ws.dst, "data.bin")))
        assert.deepStrictEqual(types, ["tcpIncoming"])
        const ours = events.flatMap(({ event }) => event._tag === "PeerConnected" ? [event.outgoing] : [])
        assert.deepStrictEqual(ours, [true], "one connection, ours: the fallback is within the dial")
      }),
    90_000
  )

  it.live(
    "the DHT shares uTP's UDP port: a KRPC ping there is answered, and utp-native connects there",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("utp-dht")
        const port = yield* freePort
        yield* Effect.gen(function*() {
          const manager = yield* TorrentManager
          assert.strictEqual(manager.port, port)
          const reply = yield* Effect.callback<Buffer>((resume) => {
            const socket = Dgram.createSocket("udp4")
            socket.on("message", (datagram, from) => {
              // Its own queries (it pings a newcomer) are not the answer.
              if (from.port === port && datagram.includes("1:y1:r")) resume(Effect.succeed(datagram))
            })
            socket.bind(0, "127.0.0.1", () =>
              socket.send(
                Buffer.from("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"),
                port,
                "127.0.0.1"
              ))
            return Effect.sync(() => socket.close())
          }).pipe(within(10_000, "the DHT's answer"))
          assert.include(reply.toString("latin1"), "1:t2:aa")
          yield* Effect.callback<void>((resume) => {
            const connection = utpNative.connect(port, "127.0.0.1")
            // An error before the connection fails the test; one after it (our side's reset as the
            // manager stops) is only the end, and unheard it would be an uncaught exception.
            connection.on("error", (error) => resume(Effect.die(error)))
            connection.once("connect", () => {
              resume(Effect.void)
              connection.destroy()
            })
            return Effect.sync(() => connection.destroy())
          }).pipe(within(10_000, "the uTP connection"))
        }).pipe(
          Effect.scoped,
          Effect.provide(TorrentManager.layerNode({
            downloadDir: root,
            port,
            strictPort: true,
            listenHost: "127.0.0.1",
            utp: "prefer",
            dht: true,
            dhtBootstrap: [{ host: "127.0.0.1", port: 9 }] // no public routers
          }))
        )
      }),
    60_000
  )

  it.live(
    "two effect-torrent processes over uTP only on 127.0.0.1",
    () =>
      Effect.gen(function*() {
        const ws = yield* workspace("utp-processes")
        // The built CLI, as users run it (test/globalSetup.ts builds it).
        const cli = fileURLToPath(new URL("../../bin/effect-torrent.js", import.meta.url))
        const seedPort = yield* freePort
        const common = ["--utp", "only", "--no-dht", "--no-lpd", "--quiet"]
        yield* spawnChild("effect-torrent seeder", process.execPath, [
          cli,
          "seed",
          ws.file,
          "-o",
          ws.src,
          "--port",
          String(seedPort),
          ...common
        ])
        const leecher = yield* spawnChild("effect-torrent leecher", process.execPath, [
          cli,
          ws.file,
          "-o",
          ws.dst,
          "--port",
          String(yield* freePort),
          "--peer",
          `127.0.0.1:${seedPort}`,
          ...common
        ])
        assert.strictEqual(yield* exitOf(leecher, 60_000), 0, leecher.output())
        assert.isTrue(sameBytes(join(ws.src, "data.bin"), join(ws.dst, "data.bin")))
      }),
    90_000
  )
})
