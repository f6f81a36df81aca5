/**
 * Transmission's RPC, driven by Debian's `transmission-remote` (3.00)
 * against our daemon (a child process, with a password): it adds a .torrent
 * and a magnet link, whose data comes from aria2c seeders and is checked
 * byte for byte, lists them, stops and starts one, sets a torrent's limit and
 * the global one, and removes one with its data.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as Magnet from "../../src/protocol/Magnet.ts"
import * as Daemon from "../util/Daemon.ts"
import { createWithMktorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { aria2Seeder, waitFor } from "../util/Swarm.ts"

const credentials = "admin:s3cret"

/** `transmission-remote HOST:PORT -n USER:PASS ...args`: its stdout; dies if it fails. */
const remote = (url: string, args: ReadonlyArray<string>) =>
  Effect.callback<string>((resume, signal) => {
    const address = new URL(url).host
    execFile("transmission-remote", [address, "-n", credentials, ...args], {
      encoding: "utf8",
      timeout: 30_000,
      signal
    }, (error, stdout, stderr) =>
      resume(
        error === null
          ? Effect.succeed(stdout)
          : Effect.die(new Error(`transmission-remote ${args.join(" ")} failed: ${stderr}${stdout}`))
      ))
  })

interface Row {
  readonly id: number
  readonly done: string
  readonly status: string
  readonly name: string
}

/** `-l`, parsed: ID, Done, Status and Name of each torrent. */
const list = (url: string) =>
  Effect.map(remote(url, ["-l"]), (text) =>
    text.split("\n").flatMap((line): Array<Row> => {
      const match =
        /^\s*(\d+)\*?\s+(\S+%|n\/a)\s+.*?\s{2,}(Stopped|Idle|Seeding|Downloading|Up & Down|Verifying|Queued|Will Verify|Finished)\s+(.+)$/
          .exec(line)
      return match === null
        ? []
        : [{ id: Number(match[1]), done: match[2]!, status: match[3]!, name: match[4]!.trim() }]
    }))

const waitForList = (url: string, check: (rows: ReadonlyArray<Row>) => boolean, timeoutMillis: number) => {
  let last: ReadonlyArray<Row> = []
  return waitFor(Effect.map(list(url), (rows) => check(last = rows)), {
    timeoutMillis,
    intervalMillis: 300,
    message: () => `transmission-remote -l did not show it within ${timeoutMillis} ms: ${JSON.stringify(last)}`
  })
}

describe("Transmission RPC", () => {
  it.live(
    "transmission-remote adds a .torrent and a magnet, lists, stops, starts, limits and removes with data",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-transmission")
        const src = join(root, "src")
        const dst = join(root, "dst")
        yield* writeTree(src, [
          { path: "first/one.bin", size: 3 * 1024 * 1024 + 7 },
          { path: "first/two.bin", size: 200_000 },
          { path: "second.bin", size: 2 * 1024 * 1024 + 11 }
        ])
        const first = yield* createWithMktorrent(join(src, "first"), join(root, "first.torrent"), {
          pieceLength: 64 * 1024,
          announce: []
        })
        const second = yield* createWithMktorrent(join(src, "second.bin"), join(root, "second.torrent"), {
          pieceLength: 64 * 1024,
          announce: []
        })
        const firstSeeder = yield* aria2Seeder({ torrent: first.file, dir: src })
        const secondSeeder = yield* aria2Seeder({ torrent: second.file, dir: src })
        const daemon = yield* Daemon.start("daemon", join(root, "session"), [
          "-o",
          dst,
          "--auth",
          credentials,
          "--peer",
          `127.0.0.1:${firstSeeder.port}`
        ])

        assert.match(yield* remote(daemon.url, ["-a", first.file]), /success/)
        // The magnet link names its seeder (x.pe); its metadata comes from it.
        const magnet = `${Magnet.format(Magnet.fromMetainfo(second.meta))}&x.pe=127.0.0.1:${secondSeeder.port}`
        assert.match(yield* remote(daemon.url, ["-a", magnet]), /success/)

        yield* waitForList(daemon.url, (rows) => rows.length === 2 && rows.every((row) => row.done === "100%"), 60_000)
        const rows = yield* list(daemon.url)
        assert.deepStrictEqual(rows.map((row) => [row.id, row.name]), [[1, "first"], [2, "second.bin"]])
        assert.isTrue(sameBytes(join(src, "first", "one.bin"), join(dst, "first", "one.bin")))
        assert.isTrue(sameBytes(join(src, "first", "two.bin"), join(dst, "first", "two.bin")))
        assert.isTrue(sameBytes(join(src, "second.bin"), join(dst, "second.bin")))

        assert.match(yield* remote(daemon.url, ["-t", "1", "-S"]), /success/)
        yield* waitForList(daemon.url, (rows) => rows.find((row) => row.id === 1)?.status === "Stopped", 10_000)
        assert.match(yield* remote(daemon.url, ["-t", "1", "-s"]), /success/)
        yield* waitForList(daemon.url, (rows) => rows.find((row) => row.id === 1)?.status !== "Stopped", 10_000)

        assert.match(yield* remote(daemon.url, ["-t", "1", "-d", "250"]), /success/)
        assert.match(yield* remote(daemon.url, ["-u", "300"]), /success/)
        const auth = { authorization: `Basic ${Buffer.from(credentials).toString("base64")}` }
        const one = yield* Daemon.api<Daemon.Torrent>(daemon.url, "torrents/1", { headers: auth })
        assert.deepStrictEqual(one.limits, { upload: 0, download: 250_000 })
        const session = yield* Daemon.api<{ limits: unknown }>(daemon.url, "session", { headers: auth })
        assert.deepStrictEqual(session.limits, { upload: 300_000, download: 0 })
        assert.match(yield* remote(daemon.url, ["-si"]), /effect-torrent/)

        assert.match(yield* remote(daemon.url, ["-t", "2", "--remove-and-delete"]), /success/)
        yield* waitForList(daemon.url, (rows) => rows.length === 1 && rows[0]!.id === 1, 10_000)
        assert.isFalse(Fs.existsSync(join(dst, "second.bin")), "its data is deleted")
        assert.isTrue(Fs.existsSync(join(dst, "first", "one.bin")), "the other's stays")
      }),
    { timeout: 180_000 }
  )
})
