/**
 * Many torrents: 1,000 small torrents (no peers anywhere, so they wait,
 * running) are added through the HTTP API and listed, all of them, as the
 * typed client decodes them (the list is answered from JSON kept per
 * torrent, so this checks that JSON against the schema); a pause shows at
 * once in the next listing (what is kept follows each change); a restart
 * on the same folder has them all back, with their numbers and states.
 * How fast (listing in < 100 ms, restoring in < 5 s) is measured by
 * `npm run bench:daemon`, not here: a test's timing on a busy machine
 * would flake.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { randomBytes } from "node:crypto"
import * as Client from "../../src/daemon/Client.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as Daemon from "../util/Daemon.ts"
import { tempDir } from "../util/Files.ts"

const count = 1000

/** A one-piece torrent of a 16 KiB file nobody has. */
const tinyTorrent = (i: number) =>
  Buffer.from(Bencode.encode({
    info: { name: `t${i}.bin`, length: 16384, "piece length": 16384, pieces: randomBytes(20) }
  }))

describe("daemon load", () => {
  it.live(
    "1,000 torrents added through the API: all listed (and decoded by the typed client), all restored by a restart",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("daemon-load")
        const torrents = Array.from({ length: count }, (_, i) => tinyTorrent(i))
        const hashes = torrents.map((bytes) => Result.getOrThrow(Metainfo.decode(bytes)).infoHash)
        yield* Effect.scoped(Effect.gen(function*() {
          const url = yield* Daemon.inProcess(dir)
          yield* Effect.forEach(
            torrents,
            (bytes) => Daemon.api(url, "torrents", { json: { torrent: bytes.toString("base64") } }),
            { concurrency: 16, discard: true }
          )
          const client = yield* Client.make(url)
          const listed = yield* client.torrents.list({ query: {} })
          assert.strictEqual(listed.length, count)
          assert.sameMembers(listed.map((t) => t.infoHash), hashes)
          const byHash = new Map(listed.map((t) => [t.infoHash, t]))
          hashes.forEach((hash, i) => {
            const t = byHash.get(hash)!
            assert.strictEqual(t.name, `t${i}.bin`)
            assert.deepStrictEqual([t.wanted, t.done, t.paused], [16384, 0, false])
          })

          // A change shows in the very next listing.
          yield* client.torrents.pause({ params: { id: "7" } })
          const again = yield* client.torrents.list({ query: {} })
          assert.deepStrictEqual(again.filter((t) => t.paused).map((t) => t.id), [7])
          assert.strictEqual(again.find((t) => t.id === 7)!.state, "stopped")
          yield* client.torrents.setLimits({ params: { id: "9" }, payload: { upload: 1000, download: 2000 } })
          const limited = yield* client.torrents.list({ query: {} })
          assert.deepStrictEqual(limited.find((t) => t.id === 9)!.limits, { upload: 1000, download: 2000 })
          const fields = yield* client.torrents.list({ query: { fields: "paused" } })
          assert.deepStrictEqual(fields.find((t) => t.id === 7), {
            id: 7,
            infoHash: again.find((t) => t.id === 7)!.infoHash,
            paused: true
          })
        }))

        const url = yield* Daemon.inProcess(dir)
        const restored = yield* Daemon.api<ReadonlyArray<Daemon.Torrent>>(url, "torrents")
        assert.deepStrictEqual(restored.map((t) => t.id), Array.from({ length: count }, (_, i) => i + 1))
        assert.sameMembers(restored.map((t) => t.infoHash), hashes)
        assert.deepStrictEqual(restored.filter((t) => t.paused).map((t) => t.id), [7])
      }),
    { timeout: 300_000 }
  )
})
