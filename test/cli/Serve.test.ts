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
import * as Curl from "../util/Curl.ts"
import { createWithMktorrent, tempDir, writeTree } from "../util/Files.ts"
import { aria2Seeder, exitOf, freePort, ourCli, runCli, waitForLine } from "../util/Swarm.ts"

/** curl, as a player would fetch: a failed transfer fails the test. */
const curl = (args: ReadonlyArray<string>) => Curl.curl(args, { maxTimeSeconds: 120 })

/** `command args` run to completion (killed after `timeoutMillis`): its exit code and output. */
const tool = (command: string, args: ReadonlyArray<string>, timeoutMillis: number) =>
  Effect.callback<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>(
    (resume, signal) => {
      execFile(command, args, { encoding: "utf8", timeout: timeoutMillis, signal, maxBuffer: 16 * 1024 * 1024 }, (
        error,
        stdout,
        stderr
      ) =>
        resume(Effect.succeed({
          code: error === null ? 0 : typeof error.code === "number" ? error.code : null,
          stdout,
          stderr
        })))
    }
  )

/**
 * A folder torrent (64 KiB pieces) of random files of these sizes, and of
 * what `more` adds to the folder, seeded by aria2c at `uploadLimit` bytes/s.
 */
const seeded = (
  label: string,
  files: ReadonlyArray<{ readonly path: string; readonly size: number }>,
  uploadLimit: number,
  more: (folder: string) => Effect.Effect<void> = () => Effect.void
) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const src = join(root, "src")
    yield* writeTree(join(src, "show"), files)
    yield* more(join(src, "show"))
    const file = join(root, "show.torrent")
    const { meta } = yield* createWithMktorrent(join(src, "show"), file, { pieceLength: 64 * 1024, announce: [] })
    const seeder = yield* aria2Seeder({ torrent: file, dir: src, uploadLimit })
    const bytes = files.map((f) => Fs.readFileSync(join(src, "show", f.path)))
    return { root, src: join(src, "show"), file, meta, seeder, bytes }
  })

/** Our CLI serving `file` into `root/dst` from the seeder only, on any free HTTP port; and its address, once printed. */
const serveFrom = (file: string, root: string, seederPort: number) =>
  Effect.gen(function*() {
    const cli = yield* ourCli("serve", [
      "serve",
      file,
      "-o",
      join(root, "dst"),
      "--http-port",
      "0",
      "--peer",
      `127.0.0.1:${seederPort}`,
      "--port",
      "0",
      "--no-dht",
      "--no-lpd"
    ])
    const lines: Array<string> = []
    cli.onLine((line) => lines.push(line))
    const url = yield* waitForLine(cli, (line) => /^serving on (http:\/\/127\.0\.0\.1:\d+\/)$/.exec(line)?.[1], 30_000)
    assert.match(lines[0]!, /^serving on /, cli.output())
    return { cli, url }
  })

/** The torrent's progress, as /status gives it. */
const status = (url: string) =>
  Effect.map(curl([`${url}status`]), (reply) =>
    JSON.parse(reply.body.toString("utf8")) as {
      readonly id: string
      readonly state: string
      readonly done: number
      readonly wanted: number
      readonly files: ReadonlyArray<number>
    })

/** Fails unless the torrent is still downloading: what came so far was read before it was complete. */
const stillDownloading = (url: string, what: string) =>
  Effect.map(status(url), (p) => assert.isBelow(p.done, p.wanted, `${what} only once the torrent was complete`))

describe("effect-torrent serve", () => {
  it.live(
    "prints its address first; curl gets the source's bytes for start, middle, end and suffix ranges while it downloads",
    () =>
      Effect.gen(function*() {
        const sizes = [1024 * 1024 + 17, 10 * 1024 * 1024 + 5, 1000]
        const { bytes, file, meta, root, seeder } = yield* seeded("cli-serve", [
          { path: "one.mkv", size: sizes[0]! },
          { path: "two.bin", size: sizes[1]! },
          { path: "three.txt", size: sizes[2]! }
        ], 1024 * 1024)
        const { cli, url } = yield* serveFrom(file, root, seeder.port)
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
        // The 10 MiB file comes at 1 MiB/s: the ranges came before it was all there.
        yield* stillDownloading(url, "the ranges came")
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
        const progress = yield* status(url)
        assert.strictEqual(progress.id, meta.infoHash)
        assert.deepStrictEqual([progress.files.length, progress.wanted], [3, sizes[0]! + sizes[1]! + sizes[2]!])

        // Ctrl-C: it stops (the server with it), as the download command does.
        cli.process.kill("SIGINT")
        assert.strictEqual(yield* exitOf(cli, 30_000), 130, cli.output())
        assert.match(cli.output(), /stopped: every torrent is complete/)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "ffprobe and ffmpeg read a video over HTTP while it downloads from a rate-limited seeder, seeking to the middle before it is complete",
    () =>
      Effect.gen(function*() {
        // 20 s of ffmpeg's test pictures and a tone (about 28 MiB, its index at the end), between two other files.
        const makeVideo = (folder: string) =>
          tool("ffmpeg", [
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "20",
            "-c:v",
            "mpeg4",
            "-b:v",
            "12M",
            "-c:a",
            "aac",
            join(folder, "movie.mp4")
          ], 120_000).pipe(Effect.map((run) => assert.strictEqual(run.code, 0, run.stderr)))
        const { file, meta, root, seeder, src } = yield* seeded(
          "cli-serve-video",
          [{ path: "a-extras.bin", size: 3 * 1024 * 1024 + 7 }, { path: "z-subtitles.bin", size: 2 * 1024 * 1024 }],
          1536 * 1024,
          makeVideo
        )
        const video = meta.files.findIndex((f) => f.path.at(-1) === "movie.mp4")
        assert.isAtLeast(Fs.statSync(join(src, "movie.mp4")).size, 20 * 1024 * 1024)
        const { url } = yield* serveFrom(file, root, seeder.port)
        const movie = `${url}files/${video}/movie.mp4`

        const probe = yield* tool(
          "ffprobe",
          ["-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "json", movie],
          120_000
        )
        assert.strictEqual(probe.code, 0, probe.stderr)
        const probed = JSON.parse(probe.stdout) as {
          readonly format: { readonly duration: string }
          readonly streams: ReadonlyArray<{ readonly codec_name: string }>
        }
        assert.approximately(Number(probed.format.duration), 20, 0.1)
        assert.sameMembers(probed.streams.map((s) => s.codec_name), ["mpeg4", "aac"])
        yield* stillDownloading(url, "ffprobe answered")

        // Two seconds from the middle: ffmpeg seeks with a range request.
        const seek = yield* tool(
          "ffmpeg",
          ["-v", "error", "-ss", "10", "-i", movie, "-t", "2", "-f", "null", "-"],
          120_000
        )
        assert.deepStrictEqual([seek.code, seek.stderr], [0, ""])
        yield* stillDownloading(url, "ffmpeg -ss 10 finished")

        // All of it, front to back, as it downloads.
        const whole = yield* tool("ffmpeg", ["-v", "error", "-i", movie, "-f", "null", "-"], 120_000)
        assert.deepStrictEqual([whole.code, whole.stderr], [0, ""])
      }).pipe(Effect.scoped),
    180_000
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
