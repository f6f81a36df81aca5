/**
 * The watched folder: a .torrent file there when the daemon starts and one
 * dropped in while it runs are added and renamed `.torrent.added`; a file
 * that is not a torrent stays, and the daemon goes on.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Daemon from "../util/Daemon.ts"
import { tempDir } from "../util/Files.ts"
import { waitUntil } from "../util/Swarm.ts"

const torrent = (name: string) =>
  Bencode.encode({ info: { name, length: 16384, "piece length": 16384, pieces: Buffer.alloc(20, name) } })

describe("daemon --watch", () => {
  it.live(
    "adds the .torrent files there at start and dropped in later, renamed .added; others stay",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-watch")
        const watched = join(root, "watched")
        Fs.mkdirSync(watched)
        Fs.writeFileSync(join(watched, "before.torrent"), torrent("before"))
        Fs.writeFileSync(join(watched, "broken.torrent"), "not a torrent")
        const url = yield* Daemon.inProcess(join(root, "session"), { watch: watched })
        const names = Effect.map(
          Daemon.api<ReadonlyArray<{ readonly name: string }>>(url, "torrents?fields=name"),
          (list) => list.map((t) => t.name).sort()
        )
        assert.deepStrictEqual(yield* names, ["before"])
        assert.isTrue(Fs.existsSync(join(watched, "before.torrent.added")))

        // Written elsewhere, then moved in (as a finished download lands).
        Fs.writeFileSync(join(root, "later.torrent"), torrent("later"))
        Fs.renameSync(join(root, "later.torrent"), join(watched, "later.torrent"))
        yield* waitUntil(() => Fs.existsSync(join(watched, "later.torrent.added")), {
          timeoutMillis: 20_000,
          message: () => `later.torrent was not added: ${Fs.readdirSync(watched).join(", ")}`
        })
        assert.deepStrictEqual(yield* names, ["before", "later"])
        assert.isTrue(Fs.existsSync(join(watched, "broken.torrent")), "a file that is no torrent stays")
      }),
    { timeout: 60_000 }
  )
})
