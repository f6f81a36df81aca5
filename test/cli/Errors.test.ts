/**
 * The CLI's errors and waits as a user meets them (a child process): each
 * usage error is one line and a pointer to the help, exit 2 (a magnet's
 * --select once its metadata is in, from an aria2c seeder); each failure
 * one line naming what the user gave, exit 1; a busy --port is named; an
 * already complete torrent ends complete; --quiet prints only the final
 * line; a stall says why (trackers failing, warned once); Ctrl-C says how to
 * resume and exits 130. Nothing here talks to anything but 127.0.0.1.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import { join } from "node:path"
import * as Magnet from "../../src/protocol/Magnet.ts"
import { createWithMktorrent, tempDir, writeTree } from "../util/Files.ts"
import { exitOf, freePort, ourCli, runCli, waitForLine } from "../util/Swarm.ts"
import { seededTorrents } from "./fixtures.ts"

const offline = ["--no-dht", "--no-lpd"]

/** A 300000-byte data.bin under `dir/src` and its .torrent (announcing to `announce`). */
const fixture = (label: string, announce: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const dir = yield* tempDir(label)
    yield* writeTree(join(dir, "src"), [{ path: "data.bin", size: 300_000 }])
    const torrent = join(dir, "data.torrent")
    const { meta } = yield* createWithMktorrent(join(dir, "src", "data.bin"), torrent, { pieceLength: 32768, announce })
    return { dir, src: join(dir, "src"), torrent, meta }
  })

const help = "run effect-torrent --help\n"

describe("the CLI's errors and waits", () => {
  it.live(
    "usage errors: one line naming the flag or argument, then where the help is; exit 2, nothing on stdout",
    () =>
      Effect.gen(function*() {
        const { dir, torrent } = yield* fixture("cli-usage")
        const out = join(dir, "out")
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
          [[torrent, "--bogus"], "unknown flag --bogus"],
          [[torrent, "--port", "99999"], `--port: "99999" is not a port from 1 to 65535, or 0 for any free port`],
          [[torrent, "--port", "abc"], `--port: "abc" is not a number`],
          [[torrent, "--max-peers", "0"], `--max-peers: "0" is not a number of peers from 1 to 100000`],
          [[torrent, "--seed-ratio", "-1"], `--seed-ratio: "-1" is not a ratio of 0 or more`],
          [[torrent, "--max-upload", "fast"], `--max-upload: "fast" is not a rate like 500K or 2M`],
          [[torrent, "--log-level", "loud"], `--log-level: "loud" is not one of error, warn, info, debug`],
          [[torrent, "--select", ""], "--select: no file index given"],
          [[torrent, "--select", "0,,1"], `--select: "" is not a file index`],
          [[torrent, "--select", "0,3"], "--select: data.bin has no file 3 (its files are 0 to 0)"],
          [[torrent, "--peer", "nowhere"], `--peer: "nowhere" is not HOST:PORT`],
          [[torrent, "--quiet", "--json"], "--quiet and --json do not go together"],
          [[], "missing <torrent>"]
        ]
        const runs = yield* Effect.forEach(cases, ([args]) => runCli([...args, "-o", out, ...offline]), {
          concurrency: 3
        })
        runs.forEach((run, i) => {
          const [args, line] = cases[i]!
          assert.deepStrictEqual(
            [run.code, run.stdout, run.stderr],
            [2, "", `effect-torrent: ${line}\n${help}`],
            args.join(" ")
          )
        })
        const seed = yield* runCli(["seed"])
        assert.deepStrictEqual(
          [seed.code, seed.stderr],
          [2, "effect-torrent: missing <torrent>\nrun effect-torrent seed --help\n"]
        )
      }),
    120_000
  )

  it.live(
    "a magnet's --select is checked once its metadata is in: a usage error, exit 2",
    () =>
      Effect.gen(function*() {
        const { root, torrents } = yield* seededTorrents("cli-magnet-select", ["one"], 100_000, [])
        const { meta, seeder } = torrents[0]!
        const magnet = Magnet.format({
          infoHash: meta.infoHash,
          trackers: [],
          peers: [`127.0.0.1:${seeder.port}`],
          webSeeds: []
        })
        const run = yield* runCli([magnet, "--select", "0,5", "-o", join(root, "dst"), "--port", "0", ...offline])
        assert.deepStrictEqual(
          [run.code, run.stderr.split("\n").slice(-3)],
          [2, [
            "effect-torrent: --select: one.bin has no file 5 (its files are 0 to 0)",
            "run effect-torrent --help",
            ""
          ]]
        )
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "failures name what the user gave, exit 1: a magnet with no way to find peers, seed without data, -o",
    () =>
      Effect.gen(function*() {
        const { dir, torrent } = yield* fixture("cli-failures")
        const file = join(dir, "a-file")
        Fs.writeFileSync(file, "")
        const magnet = Magnet.format({
          infoHash: "c12fe1c06bba254a9dc9f519b335aa7c1367a88a" as never,
          name: "thing",
          trackers: [],
          peers: [],
          webSeeds: []
        })
        const empty = join(dir, "empty")
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
          [
            [magnet, "-o", join(dir, "m"), ...offline],
            "magnet thing: no way to find peers: it names no tracker (tr) and no peer (x.pe), and --no-dht is set; give --peer HOST:PORT or leave the DHT on"
          ],
          [
            ["seed", torrent, "-o", empty, ...offline],
            `seed: no data of the torrent under ${empty}: looked for ${
              join(empty, "data.bin")
            }; give its folder with -o`
          ],
          [[torrent, "-o", file, ...offline], `-o ${file}: not a folder`],
          [[torrent, "-o", join(file, "sub"), ...offline], `-o ${join(file, "sub")}: ${file} is not a folder`],
          [[join(dir, "nope.torrent"), ...offline], `${join(dir, "nope.torrent")}: no such file`],
          // Under a folder that takes no new entries (Node's recursive mkdir would loop there forever).
          [
            [torrent, "-o", "/proc/effect-torrent", ...offline],
            "-o /proc/effect-torrent: cannot make the folder: no such file or folder"
          ]
        ]
        const runs = yield* Effect.forEach(cases, ([args]) => runCli(args), { concurrency: 3 })
        runs.forEach((run, i) => {
          const [args, line] = cases[i]!
          assert.deepStrictEqual(
            [run.code, run.stdout, run.stderr],
            [1, "", `effect-torrent: ${line}\n`],
            args.join(" ")
          )
        })
      }),
    120_000
  )

  it.live(
    "a busy --port is named; an already complete torrent ends at 100% complete; --quiet prints only the final line",
    () =>
      Effect.gen(function*() {
        const { src, torrent } = yield* fixture("cli-complete")
        const port = yield* freePort
        const holder = Net.createServer()
        yield* Effect.acquireRelease(
          Effect.callback<void>((resume) => void holder.listen(port, "127.0.0.1", () => resume(Effect.void))),
          () => Effect.callback<void>((resume) => void holder.close(() => resume(Effect.void)))
        )
        // One after the other: two at once would share the folder's resume record.
        const busy = yield* runCli([torrent, "-o", src, "--port", String(port), ...offline])
        const quiet = yield* runCli([torrent, "-o", src, "--quiet", "--port", "0", ...offline])

        assert.strictEqual(busy.code, 0, busy.stderr)
        assert.match(
          busy.stderr,
          new RegExp(`^\\d\\d:\\d\\d:\\d\\d WARN port ${port} is taken: listening for peers on port \\d+ instead\\n$`)
        )
        const [display, summary, done, end] = busy.stdout.split("\n").slice(-4)
        assert.strictEqual(display, "data.bin 100.0% [####################] 293.0 KiB, up 0 B, ratio 0.00 complete")
        assert.match(summary!, /^complete {2}293\.0 KiB in \d+s, nothing downloaded, ratio 0\.00 {2}data\.bin$/)
        assert.deepStrictEqual([done, end], ["done: every torrent is complete and verified", ""])
        assert.deepStrictEqual(quiet, { code: 0, stdout: "done: every torrent is complete and verified\n", stderr: "" })
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "trackers that fail every announce: stalled, saying so, warned once; Ctrl-C says how to resume and exits 130",
    () =>
      Effect.gen(function*() {
        // Nothing listens on the tracker's port: each announce is refused at once.
        const trackerPort = yield* freePort
        const tracker = `http://127.0.0.1:${trackerPort}/announce`
        const { dir, torrent } = yield* fixture("cli-stalled", [tracker])
        const cli = yield* ourCli("effect-torrent (stalled)", [
          torrent,
          "-o",
          join(dir, "out"),
          "--json",
          "--port",
          "0",
          ...offline
        ])
        const stalled = yield* waitForLine(cli, (line) => {
          const p = JSON.parse(line) as { state: string; trackers: string; peers: number }
          return p.state === "stalled" ? p : undefined
        }, 30_000)
        assert.deepStrictEqual([stalled.trackers, stalled.peers], ["failing", 0])
        cli.process.kill("SIGINT")
        assert.strictEqual(yield* exitOf(cli, 30_000), 130, cli.output())
        // Besides the JSON lines: the one warning (not one per retry, nor for the "stopped" announce), and how to resume.
        const others = cli.output().split("\n").filter((line) => line !== "" && !line.startsWith("{"))
        assert.deepStrictEqual(others.map((line) => line.replace(/^\d\d:\d\d:\d\d /, "")), [
          `WARN data.bin: no tracker answers; the last: tracker ${tracker} could not be reached: connect ECONNREFUSED 127.0.0.1:${trackerPort}`,
          "interrupted: 0 B of 293.0 KiB verified on disk; run the same command again to resume"
        ])
      }).pipe(Effect.scoped),
    60_000
  )
})
