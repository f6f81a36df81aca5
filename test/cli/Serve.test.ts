/**
 * `effect-torrent serve`: our CLI (a child process, as users run it)
 * downloads a multi-file torrent from a rate-limited aria2c seeder on
 * 127.0.0.1 and serves it over HTTP; curl asks for ranges as soon as the
 * address is printed, and gets the source's bytes. Ctrl-C ends it with 130,
 * a taken --http-port is a failure naming the flag.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import { join } from "node:path"
import { createWithMktorrent, tempDir, writeTree } from "../util/Files.ts"
import { aria2Seeder, exitOf, freePort, ourCli, runCli, waitForLine } from "../util/Swarm.ts"

interface Reply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: Buffer
}

/** curl with `args` (`--include`: the status line and headers come back too). */
const curl = (args: ReadonlyArray<string>) =>
  Effect.callback<Reply>((resume, signal) => {
    execFile(
      "curl",
      ["--silent", "--show-error", "--include", "--max-time", "120", ...args],
      { encoding: "buffer", maxBuffer: 64 * 1024 * 1024, signal },
      (error, stdout, stderr) => {
        if (error !== null) return resume(Effect.die(new Error(`curl ${args.join(" ")} failed: ${stderr}`)))
        const end = stdout.indexOf("\r\n\r\n")
        const head = stdout.subarray(0, end).toString("latin1").split("\r\n")
        resume(Effect.succeed({
          status: Number(head[0]!.split(" ")[1]),
          headers: Object.fromEntries(
            head.slice(1).map((line) => {
              const colon = line.indexOf(":")
              return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
            })
          ),
          body: stdout.subarray(end + 4)
        }))
      }
    )
  })

/** A folder torrent (64 KiB pieces) of files of these sizes, seeded by aria2c at `uploadLimit` bytes/s. */
const seeded = (
  label: string,
  files: ReadonlyArray<{ readonly path: string; readonly size: number }>,
  uploadLimit: number
) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const src = join(root, "src")
    yield* writeTree(join(src, "show"), files)
    const file = join(root, "show.torrent")
    const { meta } = yield* createWithMktorrent(join(src, "show"), file, { pieceLength: 64 * 1024, announce: [] })
    const seeder = yield* aria2Seeder({ torrent: file, dir: src, uploadLimit })
    const bytes = files.map((f) => Fs.readFileSync(join(src, "show", f.path)))
    return { root, file, meta, seeder, bytes }
  })

describe("effect-torrent serve", () => {
  it.live(
    "prints its address first; curl gets the source's bytes for start, middle, end and suffix ranges while it downloads",
    () =>
      Effect.gen(function*() {
        const sizes = [1024 * 1024 + 17, 3 * 1024 * 1024 + 5, 1000]
        const { bytes, file, meta, root, seeder } = yield* seeded("cli-serve", [
          { path: "one.mkv", size: sizes[0]! },
          { path: "two.bin", size: sizes[1]! },
          { path: "three.txt", size: sizes[2]! }
        ], 1024 * 1024)
        const cli = yield* ourCli("serve", [
          "serve",
          file,
          "-o",
          join(root, "dst"),
          "--http-port",
          "0",
          "--peer",
          `127.0.0.1:${seeder.port}`,
          "--port",
          "0",
          "--no-dht",
          "--no-lpd"
        ])
        const lines: Array<string> = []
        cli.onLine((line) => lines.push(line))
        const url = yield* waitForLine(
          cli,
          (line) => /^serving on (http:\/\/127\.0\.0\.1:\d+\/)$/.exec(line)?.[1],
          30_000
        )
        assert.match(lines[0]!, /^serving on /, cli.output())
        const index = meta.files.findIndex((f) => f.path.at(-1) === "two.bin")

        const two = bytes[1]!
        const size = two.length
        const cases: ReadonlyArray<readonly [string, number, number]> = [
          ["0-99999", 0, 100_000],
          [`${size / 2 - 5000 | 0}-${size / 2 + 5000 | 0}`, size / 2 - 5000 | 0, (size / 2 + 5000 | 0) + 1],
          [`${size - 70_000}-`, size - 70_000, size],
          ["-12345", size - 12_345, size]
        ]
        const replies = yield* Effect.forEach(
          cases,
          ([range]) => curl(["--range", range, `${url}files/${index}/two.bin`]),
          { concurrency: "unbounded" }
        )
        replies.forEach((reply, i) => {
          const [range, start, end] = cases[i]!
          assert.strictEqual(reply.status, 206, range)
          assert.strictEqual(reply.headers["content-range"], `bytes ${start}-${end - 1}/${size}`, range)
          assert.isTrue(reply.body.equals(two.subarray(start, end)), range)
        })
        const whole = yield* curl([`${url}files/${meta.files.findIndex((f) => f.path.at(-1) === "one.mkv")}`])
        assert.deepStrictEqual([whole.status, whole.headers["content-type"]], [200, "video/x-matroska"])
        assert.isTrue(whole.body.equals(bytes[0]!))

        const past = yield* curl(["--range", `${size}-`, `${url}files/${index}`])
        assert.deepStrictEqual([past.status, past.headers["content-range"]], [416, `bytes */${size}`])
        const malformed = yield* curl(["--header", "Range: bytes=9-3", `${url}files/${index}`])
        assert.strictEqual(malformed.status, 200)
        assert.isTrue(malformed.body.equals(two))
        for (const path of ["files/99", "files/-1", "files/0/../../etc/passwd"]) {
          assert.strictEqual((yield* curl(["--path-as-is", `${url}${path}`])).status, 404, path)
        }
        const status = JSON.parse((yield* curl([`${url}status`])).body.toString("utf8"))
        assert.strictEqual(status.id, meta.infoHash)
        assert.deepStrictEqual([status.files.length, status.wanted], [3, sizes[0]! + sizes[1]! + sizes[2]!])

        // Ctrl-C: it stops (the server with it), as the download command does.
        cli.process.kill("SIGINT")
        assert.strictEqual(yield* exitOf(cli, 30_000), 130, cli.output())
        assert.match(cli.output(), /stopped: every torrent is complete/)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "a taken --http-port is a failure naming the flag, before anything is printed on stdout",
    () =>
      Effect.gen(function*() {
        const { file, root } = yield* seeded("cli-serve-port", [{ path: "a.bin", size: 1000 }], 1024 * 1024)
        const port = yield* freePort
        // Something else listens there.
        const blocker = yield* Effect.acquireRelease(
          Effect.callback<Net.Server>((resume) => {
            const server = Net.createServer()
            server.listen(port, "127.0.0.1", () => resume(Effect.succeed(server)))
          }),
          (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
        )
        assert.isTrue(blocker.listening)
        const run = yield* runCli([
          "serve",
          file,
          "-o",
          join(root, "dst"),
          "--http-port",
          String(port),
          "--port",
          "0",
          "--no-dht",
          "--no-lpd",
          "--quiet"
        ])
        assert.strictEqual(run.code, 1, run.stderr)
        assert.strictEqual(run.stdout, "")
        assert.strictEqual(
          run.stderr,
          `effect-torrent: --http-port ${port}: the port is taken; give another, or 0 for any free port\n`
        )
      }).pipe(Effect.scoped),
    60_000
  )
})
