/**
 * Message stream encryption against other clients, each told to speak only
 * MSE with RC4 (or our side is): aria2c with `--bt-require-crypto=true` and
 * `--bt-min-crypto-level=arc4`, and webtorrent@1.9.7 with `secure: true`
 * against our `require`; so a transfer that completes was encrypted. Both
 * directions of the handshake: we dial the seeder (it knows no tracker that
 * could tell it of us), and the leecher dials us (our dials are refused, so it
 * is the only way).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { ManagerEvent } from "../../src/TorrentManager.ts"
import { TorrentManager } from "../../src/TorrentManager.ts"
import { trackerServer } from "../tracker/fixtures.ts"
import * as EncryptedManager from "../util/EncryptedManager.ts"
import * as Files from "../util/Files.ts"
import { sameBytes } from "../util/Files.ts"
import { within } from "../util/Leecher.ts"
import {
  aria2Leecher,
  aria2Seeder,
  exitOf,
  freePort,
  spawnChild,
  waitForSeeders,
  waitUntil,
  webtorrentSeeder
} from "../util/Swarm.ts"

const requireCrypto = ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]
const size = 3_000_017

/** Data under `<root>/src` and its torrent (announcing to `announce`, if any). */
const workspace = (label: string, announce?: string) => Files.workspace(label, size, announce)

/** Every peer that connected: whether we dialled it. */
const connections = (events: ReadonlyArray<ManagerEvent>) =>
  events.flatMap(({ event }) => event._tag === "PeerConnected" ? [event.outgoing] : [])

const record = Effect.gen(function*() {
  const manager = yield* TorrentManager
  const events: Array<ManagerEvent> = []
  yield* Stream.runForEach(yield* manager.subscribe, (e) => Effect.sync(() => events.push(e))).pipe(Effect.forkScoped)
  return { manager, events }
})

describe("message stream encryption with other clients", () => {
  it.live("we download from an aria2c seeder that requires RC4, dialling it (prefer)", () =>
    Effect.gen(function*() {
      const ws = yield* workspace("mse-download") // no tracker: the seeder cannot learn of us
      const seeder = yield* aria2Seeder({ torrent: ws.file, dir: ws.src, extraArgs: requireCrypto })
      const port = yield* freePort
      const events = yield* Effect.gen(function*() {
        const { manager, events } = yield* record
        const handle = yield* manager.add(ws.meta, { peers: [{ host: "127.0.0.1", port: seeder.port }] })
        yield* handle.completed.pipe(within(60_000, "the encrypted download"))
        return events
      }).pipe(
        Effect.scoped,
        Effect.provide(
          EncryptedManager.layer({ downloadDir: ws.dst, port, listenHost: "127.0.0.1" }, { policy: "prefer" })
        )
      )
      assert.isTrue(sameBytes(join(ws.src, "data.bin"), join(ws.dst, "data.bin")))
      const seen = connections(events)
      assert.isAtLeast(seen.length, 1)
      assert.isTrue(seen.every((outgoing) => outgoing), "every connection was ours")
    }), 90_000)

  it.live("an aria2c leecher that requires RC4 downloads from us, dialling us (require)", () =>
    Effect.gen(function*() {
      const tracker = yield* trackerServer
      const ws = yield* workspace("mse-upload", tracker.http)
      const port = yield* freePort
      const events = yield* Effect.gen(function*() {
        const { manager, events } = yield* record
        yield* manager.add(ws.meta, { seed: true, downloadDir: ws.src })
        yield* waitForSeeders(tracker.http, ws.meta, 1)
        const leecher = yield* aria2Leecher({ torrent: ws.file, dir: ws.dst, extraArgs: requireCrypto })
        const code = yield* exitOf(leecher, 60_000)
        assert.strictEqual(code, 0, leecher.output())
        return events
      }).pipe(
        Effect.scoped,
        Effect.provide(
          EncryptedManager.layer(
            { downloadDir: ws.src, port, listenHost: "127.0.0.1" },
            { policy: "require", dial: false }
          )
        )
      )
      assert.isTrue(sameBytes(join(ws.src, "data.bin"), join(ws.dst, "data.bin")))
      const seen = connections(events)
      assert.isAtLeast(seen.length, 1)
      assert.isTrue(seen.every((outgoing) => !outgoing), "every connection came in")
    }), 90_000)

  it.live(
    "we download from a webtorrent@1.9.7 seeder with secure: true, over MSE only (require)",
    () =>
      Effect.gen(function*() {
        const ws = yield* workspace("mse-webtorrent")
        const seeder = yield* webtorrentSeeder({ torrent: ws.file, dir: ws.src, trackers: false, secure: true })
        const port = yield* freePort
        yield* Effect.gen(function*() {
          const { manager } = yield* record
          const handle = yield* manager.add(ws.meta, { peers: [{ host: "127.0.0.1", port: seeder.port }] })
          yield* handle.completed.pipe(within(60_000, "the encrypted download"))
        }).pipe(
          Effect.scoped,
          Effect.provide(
            EncryptedManager.layer({ downloadDir: ws.dst, port, listenHost: "127.0.0.1" }, { policy: "require" })
          )
        )
        assert.isTrue(sameBytes(join(ws.src, "data.bin"), join(ws.dst, "data.bin")))
      }),
    90_000
  )

  it.live(
    "a webtorrent@1.9.7 leecher with secure: true downloads from us, dialling us (require)",
    () =>
      Effect.gen(function*() {
        const tracker = yield* trackerServer
        const ws = yield* workspace("mse-webtorrent-upload", tracker.http)
        const port = yield* freePort
        const events = yield* Effect.gen(function*() {
          const { manager, events } = yield* record
          yield* manager.add(ws.meta, { seed: true, downloadDir: ws.src })
          yield* waitForSeeders(tracker.http, ws.meta, 1)
          yield* spawnChild("webtorrent leecher", process.execPath, [
            fileURLToPath(new URL("../util/webtorrent-seeder.cjs", import.meta.url)),
            JSON.stringify({ torrent: ws.file, dir: ws.dst, port: yield* freePort, trackers: true, secure: true })
          ])
          const target = join(ws.dst, "data.bin")
          yield* waitUntil(
            () =>
              Fs.existsSync(target) && Fs.statSync(target).size === size && sameBytes(join(ws.src, "data.bin"), target),
            { timeoutMillis: 60_000, intervalMillis: 250, message: () => "webtorrent did not get the data" }
          )
          return events
        }).pipe(
          Effect.scoped,
          Effect.provide(
            EncryptedManager.layer(
              { downloadDir: ws.src, port, listenHost: "127.0.0.1" },
              { policy: "require", dial: false }
            )
          )
        )
        const seen = connections(events)
        assert.isAtLeast(seen.length, 1)
        assert.isTrue(seen.every((outgoing) => !outgoing), "every connection came in")
      }),
    90_000
  )

  it.live(
    "prefer with a webtorrent@1.9.7 seeder without MSE: it hangs up on our key, we dial again plain",
    () =>
      Effect.gen(function*() {
        const ws = yield* workspace("mse-fallback")
        const seeder = yield* webtorrentSeeder({ torrent: ws.file, dir: ws.src, trackers: false })
        const port = yield* freePort
        const events = yield* Effect.gen(function*() {
          const { manager, events } = yield* record
          const handle = yield* manager.add(ws.meta, { peers: [{ host: "127.0.0.1", port: seeder.port }] })
          yield* handle.completed.pipe(within(60_000, "the download"))
          return events
        }).pipe(
          Effect.scoped,
          Effect.provide(
            EncryptedManager.layer({ downloadDir: ws.dst, port, listenHost: "127.0.0.1" }, { policy: "prefer" })
          )
        )
        assert.isTrue(sameBytes(join(ws.src, "data.bin"), join(ws.dst, "data.bin")))
        assert.deepStrictEqual(connections(events), [true], "one connection, ours: the fallback is within the dial")
      }),
    90_000
  )
})
