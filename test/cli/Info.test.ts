/**
 * `effect-torrent info` against other implementations: torrents made by
 * mktorrent and by create-torrent (npm) from real files must read the same in
 * our CLI as in transmission-show and `aria2c --show-files`. Every tool runs as
 * a child process on the same file.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import createTorrent from "create-torrent"
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Result } from "effect"
import * as Magnet from "../../src/protocol/Magnet.ts"
import { deterministicBytes as bytes } from "../util/Files.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to completion (killing it if the test is interrupted); never fails. */
const run = (command: string, args: ReadonlyArray<string>) =>
  Effect.callback<Run>((resume, signal) => {
    execFile(
      command,
      args,
      { cwd: root, encoding: "utf8", maxBuffer: 16 * 1024 * 1024, signal },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
        resume(Effect.succeed({ code, stdout, stderr }))
      }
    )
  })

const cli = (...args: ReadonlyArray<string>) => run(join(root, "node_modules/.bin/tsx"), ["src/cli/main.ts", ...args])

const succeeded = (label: string, r: Run): string => {
  assert.strictEqual(r.code, 0, `${label} exited ${r.code}: ${r.stderr}`)
  return r.stdout
}

// ------------------------------------------------------------ what each reports

interface Report {
  readonly infoHash: string
  readonly pieceCount: number
  readonly pieceLength: number
  readonly files: ReadonlyArray<{ readonly path: string; readonly length: number; readonly tolerance: number }>
  readonly trackers: ReadonlyArray<ReadonlyArray<string>>
  readonly webSeeds: ReadonlyArray<string>
}

interface OurJson {
  readonly name: string
  readonly infoHash: string
  readonly length: number
  readonly pieceLength: number
  readonly pieceCount: number
  readonly private: boolean
  readonly files: ReadonlyArray<{ readonly path: string; readonly length: number }>
  readonly trackers: ReadonlyArray<ReadonlyArray<string>>
  readonly webSeeds: ReadonlyArray<string>
  readonly comment?: string
  readonly magnet: string
}

const ours = (json: OurJson): Report => ({
  infoHash: json.infoHash,
  pieceCount: json.pieceCount,
  pieceLength: json.pieceLength,
  files: json.files.map((f) => ({ ...f, tolerance: 0 })),
  trackers: json.trackers,
  webSeeds: json.webSeeds
})

const field = (text: string, label: string): string => {
  const match = new RegExp(`^\\s*${label}: (.*)$`, "m").exec(text)
  if (match === null) assert.fail(`no "${label}:" in:\n${text}`)
  return match[1]!
}

const binaryUnits: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }
const decimalUnits: Record<string, number> = { B: 1, bytes: 1, kB: 1e3, MB: 1e6, GB: 1e9 }

/** The indented lines of a section, up to the next blank line (or a line that is not indented). */
const section = (text: string, header: string): Array<string> => {
  const lines = text.split("\n")
  const start = lines.indexOf(header)
  if (start < 0) return []
  const body: Array<string> = []
  for (const line of lines.slice(start + 1)) {
    if (line === "" && body.length === 0) continue
    if (!line.startsWith(" ") || line.trim() === "") break
    body.push(line)
  }
  return body
}

/** transmission-show 3.00: sizes are rounded (e.g. "77.78 kB"), so each carries its rounding tolerance. */
const transmission = (text: string): Report & { readonly private: boolean } => {
  const size = /^([\d.]+) (\w+)$/.exec(field(text, "Piece Size"))!
  const trackers: Array<Array<string>> = []
  const lines = text.split("\n")
  for (const line of lines.slice(lines.indexOf("TRACKERS") + 1)) {
    if (/^[A-Z]+$/.test(line)) break // the next section
    if (/^ {2}Tier #\d+$/.test(line)) trackers.push([])
    else if (/^ {2}\S/.test(line)) trackers[trackers.length - 1]!.push(line.trim())
  }
  const files = section(text, "FILES").map((line) => {
    const m = /^ {2}(.*) \(([\d.]+) (\w+)\)$/.exec(line)
    if (m === null) assert.fail(`unexpected transmission-show file line ${JSON.stringify(line)}`)
    const decimals = m[2]!.split(".")[1]?.length ?? 0
    const unit = decimalUnits[m[3]!]!
    return { path: m[1]!, length: Number(m[2]) * unit, tolerance: 0.5 * 10 ** -decimals * unit + 1e-6 }
  })
  return {
    infoHash: field(text, "Hash"),
    pieceCount: Number(field(text, "Piece Count")),
    pieceLength: Number(size[1]) * binaryUnits[size[2]!]!,
    files,
    trackers,
    webSeeds: section(text, "WEBSEEDS").map((line) => line.trim()),
    private: field(text, "Privacy") === "Private torrent"
  }
}

/** aria2c --show-files 1.36: exact lengths in parentheses, "./" before each path. */
const aria2 = (text: string): Report & { readonly length: number; readonly magnet: string } => {
  const pieceLength = /^(\d+)(\w+)$/.exec(field(text, "Piece Length"))!
  const lines = text.split("\n")
  const files: Array<{ path: string; length: number; tolerance: number }> = []
  lines.forEach((line, i) => {
    const path = /^\s*\d+\|\.\/(.*)$/.exec(line)
    if (path === null) return
    const length = /^\s*\|.*\(([\d,]+)\)$/.exec(lines[i + 1] ?? "")
    if (length === null) assert.fail(`no length after aria2 file line ${JSON.stringify(line)}`)
    files.push({ path: path[1]!, length: Number(length[1]!.replace(/,/g, "")), tolerance: 0 })
  })
  return {
    infoHash: field(text, "Info Hash"),
    pieceCount: Number(field(text, "The Number of Pieces")),
    pieceLength: Number(pieceLength[1]) * binaryUnits[pieceLength[2]!]!,
    files,
    trackers: section(text, "Announce:").map((line) => line.trim().split(" ")),
    webSeeds: section(text, "URL List:").map((line) => line.trim()),
    length: Number(/\(([\d,]+)\)/.exec(field(text, "Total Length"))![1]!.replace(/,/g, "")),
    magnet: field(text, "Magnet URI")
  }
}

const byPath = <A extends { readonly path: string }>(files: ReadonlyArray<A>) =>
  [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))

// ---------------------------------------------------------------------- data

/** Files of the multi-file tree, relative to its folder: nested folders, a zero-length file, odd sizes, non-ASCII names. */
const multiFiles: ReadonlyArray<readonly [string, number]> = [
  ["a.txt", 40000],
  ["zero.dat", 0],
  ["sub/c d.x", 1],
  ["sub/deeper/b.bin", 77777],
  ["sub/deeper/deepest/odd.bin", 16385],
  ["ünï/ñ.txt", 333]
]

interface Made {
  readonly file: string
  readonly files: ReadonlyArray<{ readonly path: string; readonly length: number }>
  readonly trackers: ReadonlyArray<ReadonlyArray<string>>
  readonly webSeeds: ReadonlyArray<string>
  readonly private: boolean
}

let tmp = ""

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "effect-torrent-info-"))
  writeFileSync(join(tmp, "single odd.bin"), bytes(100003, 1))
  multiFiles.forEach(([path, length], i) => {
    mkdirSync(dirname(join(tmp, "multi", path)), { recursive: true })
    writeFileSync(join(tmp, "multi", path), bytes(length, i + 2))
  })
  mkdirSync(join(tmp, "multi", "empty folder"))
})

afterAll(() => {
  if (tmp !== "") rmSync(tmp, { recursive: true, force: true })
})

const singleFiles = () => [{ path: "single odd.bin", length: 100003 }]
const multiTree = () => multiFiles.map(([path, length]) => ({ path: `multi/${path}`, length }))

const mktorrent = (
  output: string,
  target: string,
  options: {
    pieceExponent: number
    trackers: ReadonlyArray<ReadonlyArray<string>>
    webSeeds: ReadonlyArray<string>
    private: boolean
  }
) =>
  Effect.gen(function*() {
    const file = join(tmp, output)
    const args = [
      "-l",
      String(options.pieceExponent),
      ...options.trackers.flatMap((tier) => ["-a", tier.join(",")]),
      ...options.webSeeds.flatMap((ws) => ["-w", ws]),
      ...(options.private ? ["-p"] : []),
      "-c",
      "made by mktorrent for the cross-check",
      "-o",
      file,
      join(tmp, target)
    ]
    succeeded("mktorrent", yield* run("mktorrent", args))
    return file
  })

const createTorrentFile = (
  output: string,
  target: string,
  options: {
    pieceLength: number
    trackers: ReadonlyArray<ReadonlyArray<string>>
    webSeeds: ReadonlyArray<string>
    private: boolean
  }
) =>
  Effect.callback<string>((resume) => {
    createTorrent(join(tmp, target), {
      pieceLength: options.pieceLength,
      announceList: options.trackers,
      urlList: options.webSeeds,
      private: options.private,
      createdBy: "create-torrent",
      creationDate: new Date(1700000000000)
    }, (error, torrent) => {
      if (error !== null) return resume(Effect.die(error))
      const file = join(tmp, output)
      writeFileSync(file, torrent)
      resume(Effect.succeed(file))
    })
  })

/** Runs all three tools on one file and checks they agree with each other and with what was made. */
const crossCheck = (made: Made) =>
  Effect.gen(function*() {
    const [ourRun, transmissionRun, aria2Run] = yield* Effect.all([
      cli("info", made.file, "--json"),
      run("transmission-show", [made.file]),
      run("aria2c", ["--show-files", made.file])
    ], { concurrency: "unbounded" })
    assert.strictEqual(ourRun.stderr, "")
    const json = JSON.parse(succeeded("effect-torrent info", ourRun)) as OurJson
    const us = ours(json)
    const tr = transmission(succeeded("transmission-show", transmissionRun))
    const ar = aria2(succeeded("aria2c", aria2Run))

    assert.match(us.infoHash, /^[0-9a-f]{40}$/)
    assert.strictEqual(us.infoHash, tr.infoHash, "info-hash vs transmission-show")
    assert.strictEqual(us.infoHash, ar.infoHash, "info-hash vs aria2c")
    assert.strictEqual(us.pieceCount, tr.pieceCount, "piece count vs transmission-show")
    assert.strictEqual(us.pieceCount, ar.pieceCount, "piece count vs aria2c")
    assert.strictEqual(us.pieceLength, tr.pieceLength, "piece length vs transmission-show")
    assert.strictEqual(us.pieceLength, ar.pieceLength, "piece length vs aria2c")

    // Files: exact against what we wrote and against aria2c; within rounding against transmission-show.
    const expected = byPath(made.files)
    assert.deepStrictEqual(byPath(us.files).map(({ length, path }) => ({ path, length })), expected)
    assert.deepStrictEqual(byPath(ar.files), byPath(us.files))
    assert.deepStrictEqual(byPath(tr.files).map((f) => f.path), expected.map((f) => f.path))
    byPath(tr.files).forEach((f, i) => {
      assert.approximately(f.length, expected[i]!.length, f.tolerance, `${f.path} size vs transmission-show`)
    })
    const total = expected.reduce((n, f) => n + f.length, 0)
    assert.strictEqual(json.length, total)
    assert.strictEqual(ar.length, total)
    assert.strictEqual(us.pieceCount, Math.ceil(total / us.pieceLength))

    assert.deepStrictEqual(us.trackers, made.trackers)
    assert.deepStrictEqual(tr.trackers, made.trackers)
    assert.deepStrictEqual(ar.trackers, made.trackers)
    assert.deepStrictEqual(us.webSeeds, made.webSeeds)
    assert.deepStrictEqual(tr.webSeeds, made.webSeeds)
    assert.deepStrictEqual(ar.webSeeds, made.webSeeds)
    assert.strictEqual(json.private, made.private)
    assert.strictEqual(tr.private, made.private)

    // aria2's magnet (upper-case hex, its own encoding, no ws) parses to the same torrent.
    const theirs = Result.getOrThrow(Magnet.parse(ar.magnet))
    const mine = Result.getOrThrow(Magnet.parse(json.magnet))
    assert.deepStrictEqual([theirs.infoHash, theirs.name, theirs.trackers], [mine.infoHash, mine.name, mine.trackers])
    assert.strictEqual(mine.infoHash, us.infoHash)
    assert.strictEqual(mine.name, json.name)
    assert.deepStrictEqual(mine.trackers, [...new Set(made.trackers.flat())])
    assert.deepStrictEqual(mine.webSeeds, made.webSeeds)
    return json
  })

const trackers = [
  ["http://t1.example/announce"],
  ["udp://t2.example:6969", "udp://t3.example:1337/announce"],
  ["http://t4.example:8080/a?k=v"]
]

describe("effect-torrent info", () => {
  it.live("mktorrent, single file of odd size, three tiers: agrees with transmission-show and aria2c", () =>
    Effect.gen(function*() {
      const file = yield* mktorrent("mk-single.torrent", "single odd.bin", {
        pieceExponent: 15,
        trackers,
        webSeeds: [],
        private: false
      })
      const json = yield* crossCheck({ file, files: singleFiles(), trackers, webSeeds: [], private: false })
      assert.strictEqual(json.name, "single odd.bin")
      assert.strictEqual(json.comment, "made by mktorrent for the cross-check")
      assert.strictEqual(json.pieceCount, 4)
    }))

  it.live("mktorrent, multi-file with nested folders and a zero-length file, private, web seeds", () =>
    Effect.gen(function*() {
      const webSeeds = ["http://seed.example/files/", "http://seed2.example/"]
      const file = yield* mktorrent("mk-multi.torrent", "multi", {
        pieceExponent: 16,
        trackers,
        webSeeds,
        private: true
      })
      const [json, text] = yield* Effect.all([
        crossCheck({ file, files: multiTree(), trackers, webSeeds, private: true }),
        cli("info", file)
      ], { concurrency: "unbounded" })
      assert.strictEqual(json.name, "multi")
      // The text form carries the same facts.
      const out = succeeded("effect-torrent info", text)
      assert.include(out, `info-hash:   ${json.infoHash}`)
      assert.include(out, "private:     yes")
      assert.include(out, `files (${multiFiles.length}; --select takes the index):`)
      // Each file with its index in the torrent, the one --select takes.
      const index = json.files.findIndex((f) => f.path === "multi/sub/deeper/b.bin")
      assert.include(
        out,
        `\n  ${String(index).padStart(String(multiFiles.length - 1).length)}  ${
          String(77777).padStart(14)
        }  multi/sub/deeper/b.bin\n`
      )
      assert.include(out, "tracker tier 2: udp://t2.example:6969 udp://t3.example:1337/announce")
    }))

  it.live("create-torrent, single file: agrees with transmission-show and aria2c", () =>
    Effect.gen(function*() {
      const webSeeds = ["http://seed.example/single%20odd.bin"]
      const file = yield* createTorrentFile("ct-single.torrent", "single odd.bin", {
        pieceLength: 16384,
        trackers,
        webSeeds,
        private: false
      })
      const json = yield* crossCheck({ file, files: singleFiles(), trackers, webSeeds, private: false })
      assert.strictEqual(json.pieceCount, 7)
    }))

  it.live("create-torrent, multi-file: agrees with transmission-show and aria2c", () =>
    Effect.gen(function*() {
      const file = yield* createTorrentFile("ct-multi.torrent", "multi", {
        pieceLength: 32768,
        trackers: [["udp://only.example:80"]],
        webSeeds: [],
        private: true
      })
      yield* crossCheck({
        file,
        files: multiTree(),
        trackers: [["udp://only.example:80"]],
        webSeeds: [],
        private: true
      })
    }))

  it.live("bad input prints one line naming the problem on stderr, no stack trace, and exits non-zero", () =>
    Effect.gen(function*() {
      const valid = readFileSync(join(root, "test/fixtures/metainfo/multi.torrent"))
      const truncated = join(tmp, "truncated.torrent")
      writeFileSync(truncated, valid.subarray(0, 100))
      const missing = join(tmp, "no such.torrent")
      const unsafe = join(root, "test/fixtures/metainfo/unsafe-path-dotdot.torrent")
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [
          [truncated],
          `effect-torrent: ${truncated}: invalid torrent: invalid bencode at byte 99: string length without ':'`
        ],
        [[missing, "--json"], `effect-torrent: ${missing}: no such file`],
        [[tmp], `effect-torrent: ${tmp}: not a file`],
        [
          ["magnet:?xt=urn:btih:123"],
          `effect-torrent: magnet: invalid magnet link: the info-hash in "urn:btih:123" is neither 40 hex nor 32 base32 characters`
        ],
        [[unsafe], `effect-torrent: ${unsafe}: invalid torrent: file 1 ("sub/..") has a ".." path component`]
      ]
      const runs = yield* Effect.all(cases.map(([args]) => cli("info", ...args)), { concurrency: "unbounded" })
      runs.forEach((r, i) => {
        const [args, line] = cases[i]!
        assert.notStrictEqual(r.code, 0, `exit code for ${args.join(" ")}`)
        assert.strictEqual(r.stdout, "", `stdout for ${args.join(" ")}`)
        assert.strictEqual(r.stderr, `${line}\n`, `stderr for ${args.join(" ")}`)
      })
    }))

  it.live("a magnet link prints its fields as JSON", () =>
    Effect.gen(function*() {
      const hash = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
      const r = yield* cli(
        "info",
        `magnet:?xt=urn:btih:${hash.toUpperCase()}&dn=a+b&tr=udp%3A%2F%2Ft.example%3A1&tr=udp%3A%2F%2Ft.example%3A1&x.pe=10.0.0.1:6881`,
        "--json"
      )
      assert.strictEqual(r.stderr, "")
      assert.deepStrictEqual(JSON.parse(succeeded("effect-torrent info", r)), {
        infoHash: hash,
        name: "a b",
        trackers: ["udp://t.example:1"],
        peers: ["10.0.0.1:6881"],
        webSeeds: [],
        magnet: `magnet:?xt=urn:btih:${hash}&dn=a%20b&tr=udp%3A%2F%2Ft.example%3A1&x.pe=10.0.0.1%3A6881`
      })
    }))
})
