/**
 * `effect-torrent create`: the pure parts in process (piece-length rule,
 * path order, the piece hasher), then the CLI as a child process on generated
 * data. What it makes must read the same in transmission-show, `aria2c
 * --show-files` and our `info --json`; aria2c must find the data complete
 * against it (and not against a corrupted copy); for a single file the info
 * dictionary is byte for byte mktorrent's.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Result } from "effect"
import { Command } from "effect/cli"
import * as CreateCli from "../../src/cli/Create.ts"
import * as Create from "../../src/protocol/Create.ts"
import * as Magnet from "../../src/protocol/Magnet.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import { deterministicBytes as bytes } from "../util/Files.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to completion (killing it if the test is interrupted); never fails. */
const run = (command: string, args: ReadonlyArray<string>, cwd = root) =>
  Effect.callback<Run>((resume, signal) => {
    execFile(command, args, { cwd, encoding: "utf8", maxBuffer: 16 * 1024 * 1024, signal }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
      resume(Effect.succeed({ code, stdout, stderr }))
    })
  })

const cli = (args: ReadonlyArray<string>, cwd = root) =>
  run(join(root, "node_modules/.bin/tsx"), [join(root, "src/cli/main.ts"), ...args], cwd)

const succeeded = (label: string, r: Run): string => {
  assert.strictEqual(r.code, 0, `${label} exited ${r.code}: ${r.stderr}`)
  return r.stdout
}

const decodeFile = (file: string) => Result.getOrThrow(Metainfo.decode(readFileSync(file)))

// ---------------------------------------------------------------------- data

/**
 * The folder's regular files, in the order the torrent must list them:
 * component by component in byte order, so "sub/…" comes before "sub-x.bin"
 * (a plain string sort, like transmission-show's listing, puts "-" before
 * "/"), upper case before lower
 * case, and non-ASCII names last.
 */
const multiFiles: ReadonlyArray<readonly [string, number]> = [
  [".hidden", 5],
  ["Z.txt", 7],
  ["a.txt", 40000],
  ["sub/c d.x", 1],
  ["sub/deeper/b.bin", 77777],
  ["sub/deeper/deepest/odd.bin", 16385],
  ["sub/link.bin", 40000], // a symbolic link to ../a.txt: inside the folder, so included
  ["sub-x.bin", 10],
  ["zero.dat", 0],
  ["ünï/ñ.txt", 333]
]

let tmp = ""

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "effect-torrent-create-"))
  writeFileSync(join(tmp, "single odd.bin"), bytes(100003, 1))
  // Written in reverse, so the listing order is unlikely to be the torrent order by chance.
  ;[...multiFiles].reverse().forEach(([path, length], i) => {
    mkdirSync(dirname(join(tmp, "multi", path)), { recursive: true })
    if (path !== "sub/link.bin") writeFileSync(join(tmp, "multi", path), bytes(length, i + 2))
  })
  symlinkSync("../a.txt", join(tmp, "multi/sub/link.bin"))
  symlinkSync(join(tmp, "single odd.bin"), join(tmp, "multi/outside.bin")) // outside: skipped with a warning
  symlinkSync("sub", join(tmp, "multi/folder link")) // a folder: skipped with a warning
  mkdirSync(join(tmp, "multi/empty folder"))
  mkdirSync(join(tmp, "nothing/inside"), { recursive: true })
})

afterAll(() => {
  if (tmp !== "") rmSync(tmp, { recursive: true, force: true })
})

// ------------------------------------------------------------ what each reports

interface Report {
  readonly infoHash: string
  readonly pieceCount: number
  readonly files: ReadonlyArray<string>
}

interface OurJson extends Report {
  readonly name: string
  readonly length: number
  readonly pieceLength: number
  readonly private: boolean
  readonly files: ReadonlyArray<string>
  readonly trackers: ReadonlyArray<ReadonlyArray<string>>
  readonly webSeeds: ReadonlyArray<string>
  readonly comment?: string
  readonly createdBy?: string
  readonly magnet: string
}

const field = (text: string, label: string): string => {
  const match = new RegExp(`^\\s*${label}: (.*)$`, "m").exec(text)
  if (match === null) assert.fail(`no "${label}:" in:\n${text}`)
  return match[1]!.trim()
}

/** transmission-show 3.00: files with rounded sizes after the path; trackers by tier. */
const transmission = (text: string) => {
  const lines = text.split("\n")
  const files = lines.slice(lines.indexOf("FILES") + 1).filter((line) => line.startsWith("  ")).map((line) =>
    /^ {2}(.*) \([\d.]+ \w+\)$/.exec(line)![1]!
  )
  const trackers: Array<Array<string>> = []
  for (const line of lines.slice(lines.indexOf("TRACKERS") + 1)) {
    if (/^[A-Z]+$/.test(line)) break
    if (/^ {2}Tier #\d+$/.test(line)) trackers.push([])
    else if (/^ {2}\S/.test(line)) trackers[trackers.length - 1]!.push(line.trim())
  }
  return {
    infoHash: field(text, "Hash"),
    pieceCount: Number(field(text, "Piece Count")),
    files,
    trackers,
    private: field(text, "Privacy") === "Private torrent"
  }
}

/** aria2c --show-files 1.36: "./" before each path, the exact length on the next line. */
const aria2 = (text: string) => {
  const lines = text.split("\n")
  const files: Array<string> = []
  const lengths: Array<number> = []
  lines.forEach((line, i) => {
    const path = /^\s*\d+\|\.\/(.*)$/.exec(line)
    if (path === null) return
    files.push(path[1]!)
    lengths.push(Number(/\(([\d,]+)\)$/.exec(lines[i + 1]!)![1]!.replace(/,/g, "")))
  })
  return { infoHash: field(text, "Info Hash"), pieceCount: Number(field(text, "The Number of Pieces")), files, lengths }
}

/** Our `info --json`, transmission-show and aria2c read the same torrent the same way; returns ours. */
const crossCheck = (file: string, expectedFiles: ReadonlyArray<readonly [string, number]>) =>
  Effect.gen(function*() {
    const [ourRun, transmissionRun, aria2Run] = yield* Effect.all([
      cli(["info", file, "--json"]),
      run("transmission-show", [file]),
      run("aria2c", ["--show-files", file])
    ], { concurrency: "unbounded" })
    const raw = JSON.parse(succeeded("effect-torrent info", ourRun))
    const json: OurJson = { ...raw, files: raw.files.map((f: { path: string }) => f.path) }
    const tr = transmission(succeeded("transmission-show", transmissionRun))
    const ar = aria2(succeeded("aria2c --show-files", aria2Run))
    const paths = expectedFiles.map(([path]) => path)
    const total = expectedFiles.reduce((n, [, length]) => n + length, 0)

    assert.match(json.infoHash, /^[0-9a-f]{40}$/)
    assert.strictEqual(tr.infoHash, json.infoHash, "info-hash vs transmission-show")
    assert.strictEqual(ar.infoHash, json.infoHash, "info-hash vs aria2c")
    assert.strictEqual(json.pieceCount, Math.ceil(total / json.pieceLength))
    assert.strictEqual(tr.pieceCount, json.pieceCount, "piece count vs transmission-show")
    assert.strictEqual(ar.pieceCount, json.pieceCount, "piece count vs aria2c")
    assert.strictEqual(json.length, total)
    // The same files in the same (torrent) order everywhere.
    assert.deepStrictEqual(json.files, paths)
    assert.deepStrictEqual(
      raw.files.map((f: { length: number }) => f.length),
      expectedFiles.map(([, length]) => length)
    )
    assert.deepStrictEqual(ar.files, paths, "files vs aria2c")
    assert.deepStrictEqual(ar.lengths, expectedFiles.map(([, length]) => length), "lengths vs aria2c")
    // transmission-show lists files sorted by its own rule, not in torrent order.
    assert.deepStrictEqual([...tr.files].sort(), [...paths].sort(), "files vs transmission-show")
    assert.deepStrictEqual(tr.trackers, json.trackers, "trackers vs transmission-show")
    assert.strictEqual(tr.private, json.private, "private flag vs transmission-show")
    assert.strictEqual(json.createdBy, "effect-torrent/0.1.0")
    return json
  })

/** aria2c hashes the data in `dir` against the torrent's pieces. */
const aria2Check = (file: string, dir: string) =>
  run("aria2c", [
    "--check-integrity=true",
    "--hash-check-only=true",
    "--enable-dht=false",
    "--bt-enable-lpd=false",
    "--console-log-level=error",
    "--summary-interval=0",
    "-d",
    dir,
    file
  ])

const assertIntact = (r: Run) => {
  assert.strictEqual(r.code, 0, `aria2c check exited ${r.code}: ${r.stdout}${r.stderr}`)
  assert.match(r.stdout, /\|OK\s*\|/, r.stdout)
}

/** What `create` prints: the info-hash and a magnet link for it. */
const assertCreatedOutput = (stdout: string, json: OurJson) => {
  assert.strictEqual(field(stdout, "info-hash"), json.infoHash)
  const magnet = Result.getOrThrow(Magnet.parse(field(stdout, "magnet")))
  assert.strictEqual(magnet.infoHash, json.infoHash)
  assert.strictEqual(magnet.name, json.name)
  assert.deepStrictEqual(magnet.trackers, json.trackers.flat())
}

// ------------------------------------------------------------------- pure parts

describe("protocol/Create", () => {
  it("chooses a power of two from 16 KiB to 16 MiB giving at most 2000 pieces", () => {
    const KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB
    assert.strictEqual(Create.autoPieceLength(1), 16 * KiB)
    assert.strictEqual(Create.autoPieceLength(2000 * 16 * KiB), 16 * KiB)
    assert.strictEqual(Create.autoPieceLength(2000 * 16 * KiB + 1), 32 * KiB)
    assert.strictEqual(Create.autoPieceLength(700 * MiB), 512 * KiB) // 1400 pieces
    assert.strictEqual(Create.autoPieceLength(4 * GiB), 4 * MiB) // 1024 pieces
    assert.strictEqual(Create.autoPieceLength(1000 * GiB), 16 * MiB) // capped
    for (const total of [100 * MiB, 3 * GiB + 17, 20 * GiB]) {
      const count = Math.ceil(total / Create.autoPieceLength(total))
      assert.isTrue(count > 1000 && count <= 2000, `${count} pieces for ${total} bytes`)
    }
  })

  it("accepts a piece length that is a power of two from 16 KiB to 64 MiB, with K/M suffixes", () => {
    const ok = (text: string) => Result.getOrThrow(Create.parsePieceLength(text))
    assert.strictEqual(ok("16384"), 16384)
    assert.strictEqual(ok("256K"), 256 * 1024)
    assert.strictEqual(ok("4MiB"), 4 * 1024 * 1024)
    assert.strictEqual(ok("64m"), 64 * 1024 * 1024)
    for (const bad of ["8192", "30000", "0", "128M", "-16384", "16.5K", "abc", ""]) {
      const r = Create.parsePieceLength(bad)
      assert.isTrue(Result.isFailure(r), bad)
      if (Result.isFailure(r)) assert.strictEqual(r.failure.problem, "PieceLength")
    }
    const r = Create.parsePieceLength("16k?")
    assert.isTrue(Result.isFailure(r) && r.failure.message === `--piece-length "16k?" is not a number of bytes`)
    // The library's option is a number, checked by the same rule.
    assert.strictEqual(Result.getOrThrow(Create.checkPieceLength(64 * 1024 * 1024)), 64 * 1024 * 1024)
    for (const bad of [8192, 30000, 0, 128 * 1024 * 1024, -16384, 16384.5, Number.NaN]) {
      assert.isTrue(Result.isFailure(Create.checkPieceLength(bad)), String(bad))
    }
  })

  it("accepts tracker URLs a client can announce to and http(s) web seeds", () => {
    assert.isTrue(Result.isSuccess(Create.checkUrls(["http://a/x", "udp://b:1", "wss://c/"], ["https://d/e/"])))
    const tracker = Create.checkUrls(["example.com:80"], [])
    assert.isTrue(
      Result.isFailure(tracker) &&
        tracker.failure.message === `--tracker "example.com:80" is not an http, https, udp, ws or wss URL`
    )
    const webSeed = Create.checkUrls([], ["ftp://x/"])
    assert.isTrue(
      Result.isFailure(webSeed) && webSeed.failure.message === `--web-seed "ftp://x/" is not an http or https URL`
    )
    const labelled = Create.checkUrls(["x"], [], { tracker: "tracker", webSeed: "web seed" })
    assert.isTrue(
      Result.isFailure(labelled) && labelled.failure.message === `tracker "x" is not an http, https, udp, ws or wss URL`
    )
  })

  it("orders paths component by component in UTF-8 byte order", () => {
    const sorted = Create.sortFiles(
      [["b"], ["a-c"], ["a", "b"], ["\u{1F600}"], ["\uFF01"], ["A"], ["a"]].map((path) => ({ path, length: 1 }))
    )
    // U+FF01 is EF BC 81 in UTF-8, below the F0 of U+1F600 (UTF-16 order would put the emoji's surrogate first).
    assert.deepStrictEqual(sorted.map((f) => f.path.join("/")), ["A", "a", "a/b", "a-c", "b", "\uFF01", "\u{1F600}"])
  })

  it("hashes pieces across chunk and file boundaries like a plain SHA-1 per piece", () => {
    const data = bytes(5 * 16384 + 123, 9)
    const expected = Buffer.concat(
      Array.from({ length: 6 }, (_, i) => createHash("sha1").update(data.subarray(i * 16384, (i + 1) * 16384)).digest())
    )
    for (const chunk of [1, 7, 16383, 16384, 16385, 50000, data.length]) {
      const hasher = new Create.PieceHasher(16384, data.length)
      for (let at = 0; at < data.length; at += chunk) hasher.update(data.subarray(at, at + chunk))
      assert.deepStrictEqual(Buffer.from(hasher.finish()), expected, `chunks of ${chunk}`)
    }
  })
})

// ---------------------------------------------------------------------- the CLI

describe("effect-torrent create", () => {
  it.live("single file of odd size, default output name: read alike by three tools, same info as mktorrent, data verifies", () =>
    Effect.gen(function*() {
      const [ours, mk] = yield* Effect.all([
        cli(["create", "single odd.bin", "--piece-length", "32768"], tmp), // writes ./single odd.bin.torrent
        run("mktorrent", ["-l", "15", "-o", join(tmp, "mk-single.torrent"), join(tmp, "single odd.bin")])
      ], { concurrency: "unbounded" })
      const stdout = succeeded("effect-torrent create", ours)
      succeeded("mktorrent", mk)
      assert.strictEqual(ours.stderr, "")
      const file = join(tmp, "single odd.bin.torrent")

      const json = yield* crossCheck(file, [["single odd.bin", 100003]])
      assert.strictEqual(json.pieceLength, 32768)
      assert.strictEqual(json.pieceCount, 4)
      assert.isFalse(json.private)
      assertCreatedOutput(stdout, json)

      // mktorrent's info dictionary for the same file and piece length is the same, byte for byte.
      const mine = decodeFile(file)
      const theirs = decodeFile(join(tmp, "mk-single.torrent"))
      assert.deepStrictEqual(Buffer.from(mine.pieces), Buffer.from(theirs.pieces))
      assert.strictEqual(mine.infoHash, theirs.infoHash)
      assert.isFalse(mine.multiFile)

      // aria2c finds the data complete, and a one-byte change is noticed.
      mkdirSync(join(tmp, "corrupt"), { recursive: true })
      const corrupt = bytes(100003, 1)
      corrupt[70000] ^= 1
      writeFileSync(join(tmp, "corrupt/single odd.bin"), corrupt)
      const [good, bad] = yield* Effect.all([aria2Check(file, tmp), aria2Check(file, join(tmp, "corrupt"))], {
        concurrency: "unbounded"
      })
      assertIntact(good)
      assert.notStrictEqual(bad.code, 0, `aria2c accepted corrupted data: ${bad.stdout}`)
    }))

  it.live("folder: nested, zero-length, hidden and linked files in path order; tiers, private, web seeds; data verifies", () =>
    Effect.gen(function*() {
      const trackers = ["http://t1.example/announce", "udp://t2.example:6969", "udp://t3.example:1337/announce"]
      const webSeeds = ["http://seed.example/files/"]
      const file = join(tmp, "multi.torrent")
      const r = yield* cli([
        "create",
        join(tmp, "multi"),
        ...trackers.flatMap((t) => ["-t", t]),
        "--web-seed",
        webSeeds[0]!,
        "--private",
        "--comment",
        "a test torrent",
        "-o",
        file
      ])
      const stdout = succeeded("effect-torrent create", r)
      // The two links not followed are named, one warning line each; off a terminal there is no progress for small data.
      assert.deepStrictEqual(r.stderr.split("\n").filter((line) => line !== "").sort(), [
        `effect-torrent: warning: skipping ${
          JSON.stringify(join(tmp, "multi/folder link"))
        }: a symbolic link to a folder`,
        `effect-torrent: warning: skipping ${
          JSON.stringify(join(tmp, "multi/outside.bin"))
        }: a symbolic link pointing outside ${JSON.stringify(join(tmp, "multi"))}`
      ])

      const expected = multiFiles.map(([path, length]) => [`multi/${path}`, length] as const)
      const json = yield* crossCheck(file, expected)
      assert.strictEqual(json.name, "multi")
      assert.strictEqual(json.pieceLength, 16384) // chosen automatically
      assert.isTrue(json.private)
      assert.deepStrictEqual(json.trackers, trackers.map((t) => [t]))
      assert.deepStrictEqual(json.webSeeds, webSeeds)
      assert.strictEqual(json.comment, "a test torrent")
      assertCreatedOutput(stdout, json)

      const meta = decodeFile(file)
      assert.isTrue(meta.multiFile)
      assert.isTrue(Math.abs((meta.creationDate ?? 0) - Date.now() / 1000) < 600)

      assertIntact(yield* aria2Check(file, tmp))
    }))

  it.live("bad input: one line on stderr naming the problem, nothing on stdout, non-zero exit", () =>
    Effect.gen(function*() {
      const missing = join(tmp, "no such thing")
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [
          ["single odd.bin", "--piece-length", "30000", "-o", join(tmp, "never.torrent")],
          "--piece-length 30000 is not a power of two from 16 KiB (16384) to 64 MiB (67108864)"
        ],
        [[missing], `${missing}: no such file or folder`]
      ]
      const runs = yield* Effect.all(cases.map(([args]) => cli(["create", ...args], tmp)), { concurrency: 2 })
      runs.forEach((r, i) => {
        const [args, line] = cases[i]!
        assert.notStrictEqual(r.code, 0, `exit code for ${args.join(" ")}`)
        assert.strictEqual(r.stdout, "", `stdout for ${args.join(" ")}`)
        assert.strictEqual(r.stderr, `effect-torrent: ${line}\n`, `stderr for ${args.join(" ")}`)
      })
      assert.throws(() => readFileSync(join(tmp, "never.torrent")), /ENOENT/)
    }))

  // In process (each child process costs seconds of CPU): the handler's failure is the line main.ts prints.
  it.live("no data or an existing output file: a CreateError whose message names the problem, nothing written", () =>
    Effect.gen(function*() {
      const createCommand = Command.runWith(CreateCli.command, { version: "0.1.0" })
      const existing = join(tmp, "existing.torrent")
      writeFileSync(existing, "keep me")
      writeFileSync(join(tmp, "empty.bin"), "")
      mkdirSync(join(tmp, "only empty/sub"), { recursive: true })
      writeFileSync(join(tmp, "only empty/sub/a"), "")
      const out = (name: string) => join(tmp, `out-${name}.torrent`)
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [[join(tmp, "single odd.bin"), "-o", existing], `${existing} already exists; not overwriting it`],
        [[join(tmp, "nothing"), "-o", out("a")], `${join(tmp, "nothing")} holds no files; a torrent needs data`],
        [
          [join(tmp, "only empty"), "-o", out("b")],
          `${join(tmp, "only empty")} holds only empty files; a torrent needs data`
        ],
        [[join(tmp, "empty.bin"), "-o", out("c")], `${join(tmp, "empty.bin")} is empty; a torrent needs data`]
      ]
      for (const [args, message] of cases) {
        const error = yield* createCommand([...args]).pipe(Effect.flip, Effect.provide(NodeServices.layer))
        assert.instanceOf(error, Create.CreateError, args.join(" "))
        assert.strictEqual(error.message, message)
      }
      assert.strictEqual(readFileSync(existing, "utf8"), "keep me")
      for (const name of ["a", "b", "c"]) assert.throws(() => readFileSync(out(name)), /ENOENT/)
    }))
})
