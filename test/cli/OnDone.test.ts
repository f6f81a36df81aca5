/**
 * Scripting the CLI: `--on-done` runs its command once per torrent, when
 * that torrent's data is complete and verified, with ET_NAME, ET_INFO_HASH,
 * ET_DIR and ET_SIZE; `--json` prints only JSON on stdout, one progress
 * object per line, the last of each torrent complete. Two torrents from
 * aria2c seeders on 127.0.0.1.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import { sameBytes } from "../util/Files.ts"
import { runCli } from "../util/Swarm.ts"
import { seededTorrents } from "./fixtures.ts"

interface Line {
  readonly name: string
  readonly infoHash: string
  readonly state: string
  readonly done: number
  readonly wanted: number
  readonly eta: number | null
}

describe("the CLI for scripts", () => {
  it.live(
    "--on-done runs once per torrent with its environment, after its data is verified; --json lines parse",
    () =>
      Effect.gen(function*() {
        const size = 2 * 1024 * 1024 + 17
        const { peers, root, torrents } = yield* seededTorrents("cli-on-done", ["one", "two"], size, [])
        const dst = join(root, "dst")
        const log = join(root, "on-done.log")
        // What the hook saw, and how many bytes the file had on disk when it ran.
        const hook =
          `printf '%s|%s|%s|%s|%s\\n' "$ET_NAME" "$ET_INFO_HASH" "$ET_DIR" "$ET_SIZE" "$(wc -c < "$ET_DIR/$ET_NAME")" >> '${log}'`
        const run = yield* runCli([
          ...torrents.map((t) => t.file),
          "-o",
          dst,
          ...peers,
          "--json",
          "--on-done",
          hook,
          "--port",
          "0",
          "--no-dht",
          "--no-lpd"
        ])
        assert.strictEqual(run.code, 0, run.stderr)

        const calls = Fs.readFileSync(log, "utf8").trim().split("\n").sort()
        assert.deepStrictEqual(calls, torrents.map((t) => `${t.name}.bin|${t.meta.infoHash}|${dst}|${size}|${size}`))
        for (const t of torrents) assert.isTrue(sameBytes(join(t.src, `${t.name}.bin`), join(dst, `${t.name}.bin`)))

        const lines = run.stdout.trim().split("\n").map((text) => JSON.parse(text) as Line)
        for (const t of torrents) {
          const own = lines.filter((line) => line.infoHash === t.meta.infoHash)
          assert.isAtLeast(own.length, 2, run.stdout)
          assert.isTrue(own.every((line) => line.name === `${t.name}.bin` && line.wanted === size))
          assert.deepStrictEqual([own.at(-1)!.state, own.at(-1)!.done], ["complete", size])
        }
        // stderr has what is not JSON: the final line.
        assert.match(run.stderr, /done: every torrent is complete and verified\n$/)
      }).pipe(Effect.scoped),
    90_000
  )

  it.live("a failing --on-done is a warning naming the torrent, not a failed download", () =>
    Effect.gen(function*() {
      const { peers, root, torrents } = yield* seededTorrents("cli-on-done-fails", ["three"], 100_000, [])
      const run = yield* runCli([
        torrents[0]!.file,
        "-o",
        join(root, "dst"),
        ...peers,
        "--quiet",
        "--log-level",
        "warn",
        "--on-done",
        "echo said something; exit 3",
        "--port",
        "0",
        "--no-dht",
        "--no-lpd"
      ])
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(run.stdout, "done: every torrent is complete and verified\n")
      const [said, warning] = run.stderr.trim().split("\n")
      assert.strictEqual(said, "said something")
      assert.match(warning!, /^\d\d:\d\d:\d\d WARN --on-done exited with code 3 for three\.bin$/)
    }).pipe(Effect.scoped), 90_000)
})
