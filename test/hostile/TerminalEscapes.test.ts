/**
 * Names chosen by whoever made a torrent (or a magnet link) reach the user's
 * terminal: `info`, the progress display, log lines and error messages. A
 * name holding ESC sequences, C1 controls or bidirectional overrides must be
 * shown escaped, never sent raw (it could retitle the window, clear the screen
 * or show "evil\u202etxt.exe" as "evilexe.txt"), and a kilobytes-long name
 * must not make kilobytes-long lines. `--json` keeps the exact strings. The
 * CLI runs as a child process, as users run it. (test/cli/Escapes.test.ts
 * tests the escaping itself.)
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as Format from "../../src/cli/Format.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Magnet from "../../src/protocol/Magnet.ts"
import { tempDir } from "../util/Files.ts"
import { record } from "../util/SecurityResults.ts"
import { exitOf, ourCli, runCli, stop, waitUntil } from "../util/Swarm.ts"

/** What must never reach a terminal raw: control characters (but the newline ending each line) and bidi controls. */
const raw = /[^\P{Cc}\n]|\p{Bidi_Control}/gu
const rawCount = (text: string) => text.match(raw)?.length ?? 0

const osc = "\x1b]0;pwned\x07" // sets the terminal's title
const clear = "\x1b[2J" // clears the screen
const csi = "\u009b31m" // C1 CSI: red text
const rlo = "evil\u202Etxt.exe" // shows as "evilexe.txt"
const infoHash = InfoHash.fromBytes(new Uint8Array(20).fill(0xc1))

/** Our CLI from source, run to completion. */
const cli = (...args: ReadonlyArray<string>) => runCli(args)

/** A .torrent of 10-byte files (one piece, its hash never checked here), written to `dir/file`. */
const torrent = (dir: string, file: string, name: string, options: {
  readonly files?: ReadonlyArray<string>
  readonly extra?: Record<string, unknown>
} = {}) => {
  const files = options.files
  const info = {
    name,
    "piece length": 16384,
    pieces: new Uint8Array(20),
    ...(files === undefined ? { length: 10 } : { files: files.map((path) => ({ length: 10, path: [path] })) })
  }
  const path = join(dir, file)
  Fs.writeFileSync(path, Bencode.encode({ ...options.extra, info }))
  return path
}

describe("hostile names › terminal escapes", () => {
  it.live("info: ESC, C1 and bidi characters in the name, file names, comment and tracker are shown escaped; --json keeps them exact", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("escapes-info")
      const name = `${osc}name${csi}`
      const file = torrent(dir, "evil.torrent", name, {
        files: [clear, rlo],
        extra: { announce: `http://127.0.0.1:1/${clear}`, comment: `c${osc}`, "created by": `me${csi}` }
      })
      const [text, json] = yield* Effect.all([cli("info", file), cli("info", file, "--json")], { concurrency: 2 })
      assert.strictEqual(text.code, 0, text.stderr)
      assert.strictEqual(text.stderr, "")
      assert.strictEqual(rawCount(text.stdout), 0, text.stdout)
      assert.include(text.stdout, "name:        \\x1b]0;pwned\\x07name\\x9b31m\n")
      assert.include(text.stdout, "comment:     c\\x1b]0;pwned\\x07\n")
      assert.include(text.stdout, "created by:  me\\x9b31m\n")
      assert.include(text.stdout, "tracker tier 1: http://127.0.0.1:1/\\x1b[2J\n")
      assert.include(text.stdout, "  \\x1b]0;pwned\\x07name\\x9b31m/\\x1b[2J\n")
      assert.include(text.stdout, "  \\x1b]0;pwned\\x07name\\x9b31m/evil\\u202etxt.exe")

      assert.strictEqual(json.code, 0, json.stderr)
      const value = JSON.parse(json.stdout) as {
        name: string
        comment: string
        files: Array<{ path: string }>
        trackers: Array<Array<string>>
      }
      assert.strictEqual(value.name, name)
      assert.strictEqual(value.comment, `c${osc}`)
      assert.deepStrictEqual(value.files.map((f) => f.path), [`${name}/${clear}`, `${name}/${rlo}`])
      assert.deepStrictEqual(value.trackers, [[`http://127.0.0.1:1/${clear}`]])
      record(
        `info text: ${
          rawCount(text.stdout)
        } raw control/bidi characters in ${text.stdout.length} characters (the name shows as ${
          Format.printable(name)
        }); --json: the ${name.length}-character name, comment, paths and tracker exact`
      )
    }))

  it.live("info: a magnet's dn with ESC, C1 and bidi characters is shown escaped; --json keeps it exact", () =>
    Effect.gen(function*() {
      const dn = `${osc}${clear}${csi}${rlo}`
      const magnet = Magnet.format({ infoHash, name: dn, trackers: [], peers: [], webSeeds: [] })
      const [text, json] = yield* Effect.all([cli("info", magnet), cli("info", magnet, "--json")], { concurrency: 2 })
      assert.strictEqual(text.code, 0, text.stderr)
      assert.strictEqual(rawCount(text.stdout + text.stderr), 0, text.stdout)
      assert.include(text.stdout, "name:        \\x1b]0;pwned\\x07\\x1b[2J\\x9b31mevil\\u202etxt.exe\n")
      assert.strictEqual((JSON.parse(json.stdout) as { name: string }).name, dn)
      record(
        `magnet dn: ${
          rawCount(text.stdout + text.stderr)
        } raw control/bidi characters in the text output; --json returns the exact dn`
      )
    }))

  it.live("a 4000-byte name makes error lines of at most ~500 characters that still say what failed and why", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("escapes-long")
      // Refused by Metainfo (a "/" in the name): the message quotes the whole name.
      const slashed = `${clear}${"x".repeat(1995)}/${"y".repeat(2000)}`
      // Accepted, then refused by --select: the message names the torrent.
      const long = `${rlo}${"é".repeat(1991)}.iso`
      assert.deepStrictEqual([slashed, long].map((name) => Buffer.byteLength(name)), [4000, 4000])
      const refused = torrent(dir, "refused.torrent", slashed)
      const accepted = torrent(dir, "accepted.torrent", long)
      const [info, download] = yield* Effect.all([
        cli("info", refused),
        cli(accepted, "--select", "5", "-o", dir, "--no-dht", "--no-lpd", "--port", "0")
      ], { concurrency: 2 })
      // The --select error is a usage error: its line, then where the help is.
      for (const [r, after] of [[info, ""], [download, "run effect-torrent --help\n"]] as const) {
        assert.notStrictEqual(r.code, 0)
        assert.strictEqual(r.stdout, "")
        assert.strictEqual(rawCount(r.stderr), 0, r.stderr)
        assert.isTrue(r.stderr.endsWith(`\n${after}`), r.stderr)
        const line = r.stderr.slice(0, r.stderr.length - after.length)
        assert.match(line, /^effect-torrent: [^\n]*\n$/, "one line")
        assert.isAtMost(line.length, 520, r.stderr)
      }
      assert.match(
        info.stderr,
        new RegExp(
          `^effect-torrent: ${refused}: invalid torrent: the torrent name "\\\\u001b\\[2Jx+…y+" has a path separator inside a component\n$`
        )
      )
      const select =
        /^effect-torrent: --select: (.*) has no file 5 \(its files are 0 to 0\)\nrun effect-torrent --help\n$/.exec(
          download.stderr
        )
      assert.isNotNull(select, download.stderr)
      assert.strictEqual(select![1]!.length, 120)
      assert.match(select![1]!, /^evil\\u202etxt\.exeé+…é+\.iso$/)
      record(
        `4000-byte names: the refusal is one stderr line of ${
          info.stderr.length - 1
        } characters, the --select error one of ${
          download.stderr.indexOf("\n")
        } (the name cut to 120); both keep the reason`
      )
    }))

  it.live(
    "download: the progress display and log lines (with the torrent's name annotated) show .torrent and magnet names escaped",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("escapes-download")
        const name = `${osc}${csi}\u2067` // U+2067, a bidi isolate: Effect's default logger (Node's inspect) prints it raw
        // The tracker refuses at once (nothing listens on port 1), so a warning is logged with the torrent's name.
        const file = torrent(dir, "evil.torrent", name, { extra: { announce: "http://127.0.0.1:1/announce" } })
        // Its x.pe gives a way to find peers (nobody listens there), without which the CLI would refuse to wait.
        const magnet = Magnet.format({ infoHash, name: rlo, trackers: [], peers: ["127.0.0.1:1"], webSeeds: [] })
        const args = [file, magnet, "-o", join(dir, "dst"), "--no-dht", "--no-lpd", "--port", "0"]
        const child = yield* ourCli("effect-torrent (hostile names)", args)
        // Log lines go to stderr.
        yield* waitUntil(() => child.output().includes("WARN"), {
          timeoutMillis: 30_000,
          message: () => child.output()
        })
        yield* stop(child)
        yield* exitOf(child, 10_000)
        const output = child.output()
        assert.strictEqual(rawCount(output), 0, output)
        assert.match(output, /^\\x1b\]0;pwned\\x07\\x9b31m\\u2067 +\d+\.\d%/m, "the torrent's display line")
        assert.match(output, /^evil\\u202etxt\.exe +0\.0% .* fetching metadata/m, "the magnet's display line")
        assert.match(output, / WARN \\x1b\]0;pwned\\x07\\x9b31m\\u2067: /, "the log line names the torrent")
        record(
          `download (display and logs, ${output.split("\n").length - 1} lines): ${
            rawCount(output)
          } raw control/bidi characters`
        )
      }).pipe(Effect.scoped),
    60_000
  )
})
