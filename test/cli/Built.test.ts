/**
 * The CLI as users run it: bin/effect-torrent.js loading the bundled
 * dist/bundle/cli.js (built before the tests by test/globalSetup.ts). The other CLI tests
 * run the source under tsx, so only this one would catch a bundling mistake.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"
import { createWithMktorrent, sameBytes, sourceTorrent, tempDir, writeTree } from "../util/Files.ts"
import { aria2Seeder, exitOf, freePort, opentracker, spawnChild, trackerUrls, waitForSeeders } from "../util/Swarm.ts"

/** The bundle's files that `file` loads as it starts: its static imports, and theirs (not `import()`). */
const startsWith = (file: string, loaded = new Set<string>()): Set<string> => {
  if (loaded.has(file)) return loaded
  loaded.add(file)
  const text = Fs.readFileSync(join("dist/bundle", file), "utf8")
  for (const [, imported] of text.matchAll(/^import\s*(?:[^"';]*?\sfrom\s*)?"\.\/([^"]+)";/gm)) {
    startsWith(imported!, loaded)
  }
  return loaded
}

/** Which of `files` holds `module` (esbuild heads each module's code in a chunk with a comment naming it). */
const carrierOf = (files: Iterable<string>, module: string): string | undefined =>
  [...files].find((file) => Fs.readFileSync(join("dist/bundle", file), "utf8").includes(`// ${module}\n`))

describe("the built CLI", () => {
  it("starts without the engine or the HTTP server: only the commands that run them load them", () => {
    const loaded = startsWith("cli.js")
    assert.isAbove(loaded.size, 1, "the CLI's own chunks")
    for (const module of ["src/TorrentManager.ts", "src/torrent/Orchestrator.ts", "src/http/TorrentServer.ts"]) {
      const carrier = carrierOf(loaded, module)
      assert.isUndefined(carrier, `${module} is in ${carrier}, which the CLI loads as it starts`)
    }
    // A download loads the engine, and the HTTP client for trackers, but no server.
    const engine = Fs.readdirSync("dist/bundle").find((file) => /^TorrentManager-\w+\.js$/.test(file))
    assert.isDefined(engine, "the engine's chunk")
    const downloading = startsWith(engine!, new Set(loaded))
    assert.isDefined(carrierOf(downloading, "node_modules/effect/dist/http/HttpClient.js"))
    for (const module of ["node_modules/effect/dist/http/HttpRouter.js", "src/http/TorrentServer.ts"]) {
      const carrier = carrierOf(downloading, module)
      assert.isUndefined(carrier, `${module} is in ${carrier}, which a download loads`)
    }
  })

  it.live("downloads from an aria2c seeder found through opentracker, byte-identical", () =>
    Effect.gen(function*() {
      const cli = yield* download(process.execPath)
      assert.strictEqual(yield* exitOf(cli.child, 60_000), 0, cli.child.output())
      assert.isTrue(cli.sameAsSource(), "the download differs from the source")
    }), 90_000)

  it.live(
    "on Node >= 22.15 restarts itself once with V8's young generation capped and one malloc arena, then downloads",
    () =>
      Effect.gen(function*() {
        const cli = yield* download(node22())
        const pid = cli.child.process.pid!
        // The restart keeps the process (and its pid): its command line and environment change.
        // Read until then, until the process ends, or for 60 s at most.
        const read = (what: string) =>
          Effect.sync(() => Fs.readFileSync(`/proc/${pid}/${what}`, "latin1").split("\0")).pipe(
            Effect.orElseSucceed((): Array<string> => [])
          )
        let capped = false
        let oneArena = false
        const deadline = Date.now() + 60_000
        while (!capped && cli.child.process.exitCode === null && Date.now() < deadline) {
          capped = (yield* read("cmdline")).includes("--max-semi-space-size=2")
          if (capped) oneArena = (yield* read("environ")).includes("MALLOC_ARENA_MAX=1")
          else yield* Effect.sleep(10)
        }
        assert.strictEqual(yield* exitOf(cli.child, 60_000), 0, cli.child.output())
        assert.isTrue(capped, "the CLI ran without the cap")
        assert.isTrue(oneArena, "the CLI ran without MALLOC_ARENA_MAX=1")
        assert.isTrue(cli.sameAsSource(), "the download differs from the source")
      }),
    90_000
  )

  it.live(
    "prints `info` without that restart, and restarts for a download (Node >= 22.15)",
    () =>
      Effect.gen(function*() {
        const { torrentFile, dst } = yield* sourceTorrent("info-boots", 100_000, 32 * 1024)
        // A module Node loads as it starts, before the CLI, which the restart carries over: an "x" per start.
        const dir = yield* tempDir("boots")
        const preload = join(dir, "count.mjs")
        const counted = join(dir, "boots")
        Fs.writeFileSync(
          preload,
          `import { appendFileSync } from "node:fs"\nappendFileSync(${JSON.stringify(counted)}, "x")\n`
        )
        const boots = (args: ReadonlyArray<string>) =>
          Effect.gen(function*() {
            Fs.rmSync(counted, { force: true })
            const cli = yield* spawnChild("built CLI", node22(), [
              "--import",
              preload,
              "bin/effect-torrent.js",
              ...args
            ])
            const code = yield* exitOf(cli, 30_000)
            return { code, boots: Fs.readFileSync(counted, "utf8").length, output: cli.output() }
          })
        const info = yield* boots(["info", torrentFile])
        assert.strictEqual(info.code, 0, info.output)
        assert.include(info.output, "info-boots.bin")
        assert.strictEqual(info.boots, 1, "`info` started Node more than once")
        // The same count sees a download's restart (given --help too, it prints the help once restarted).
        const download = yield* boots([torrentFile, "-o", dst, "--help"])
        assert.strictEqual(download.code, 0, download.output)
        assert.strictEqual(download.boots, 2, "the download's command did not restart")
      }),
    60_000
  )
})

/** A Node >= 22.15 (users run 22; this machine's may be 20): this one, or the one .ci/run installs. */
const node22 = (): string => {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
  if (major > 22 || (major === 22 && minor >= 15)) return process.execPath
  const installed = join(homedir(), ".cache", "effect-torrent", "node-22", "bin", "node")
  assert.isTrue(Fs.existsSync(installed), `no Node >= 22.15 to run the CLI with: .ci/run installs one at ${installed}`)
  return installed
}

/** The built CLI, run by `node`, downloading a file from an aria2c seeder that it finds through opentracker. */
const download = (node: string) =>
  Effect.gen(function*() {
    assert.isTrue(Fs.existsSync("dist/bundle/cli.js"), "dist/bundle/cli.js is missing: test/globalSetup.ts builds it")
    const root = yield* tempDir("built-cli")
    const src = join(root, "src")
    yield* writeTree(src, [{ path: "data.bin", size: 5 * 1024 * 1024 + 4_321 }])
    const torrentFile = join(root, "data.torrent")
    const port = yield* freePort
    const { meta } = yield* createWithMktorrent(join(src, "data.bin"), torrentFile, {
      pieceLength: 256 * 1024,
      announce: [trackerUrls(port).http]
    })
    const tracker = yield* opentracker({ port, dir: yield* tempDir("opentracker"), torrents: [meta] })
    yield* aria2Seeder({ torrent: torrentFile, dir: src })
    yield* waitForSeeders(tracker.http, meta, 1)
    const dst = join(root, "dst")
    const child = yield* spawnChild("built CLI", node, [
      "bin/effect-torrent.js",
      torrentFile,
      "-o",
      dst,
      "--port",
      String(yield* freePort),
      "--quiet",
      "--no-dht",
      "--no-lpd"
    ])
    return { child, sameAsSource: () => sameBytes(join(src, "data.bin"), join(dst, "data.bin")) }
  })
