/**
 * The progress display's layout (a line per torrent that fits any width,
 * the state always shown, the right words for each state) and the Screen
 * under it (log lines above the live lines; after a resize, the rows the
 * terminal re-wrapped the old lines into are erased). The real terminal is
 * tested in Terminal.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Writable } from "node:stream"
import * as Display from "../../src/cli/Display.ts"
import * as Format from "../../src/cli/Format.ts"
import * as Screen from "../../src/cli/Screen.ts"
import type { Progress } from "../../src/torrent/Orchestrator.ts"

const progress = (overrides: Partial<Progress> = {}): Progress => ({
  state: "downloading",
  done: 5_000_000,
  wanted: 10_000_000,
  verified: 5_000_000,
  downloaded: 5_000_000,
  uploaded: 0,
  downloadRate: 1_200_000,
  uploadRate: 30_000,
  peers: 3,
  eta: 4.2,
  trackers: "working",
  files: [5_000_000],
  uploadingTo: 0,
  downloadingFrom: 0,
  hashFailures: 0,
  ...overrides
})

const names = [
  "a.bin",
  "ubuntu-24.04.1-desktop-amd64.iso",
  "日本語のファイル名がとても長い場合.mkv",
  "🎉".repeat(40),
  `x\x1b[2J${"y".repeat(300)}`
]

const states: ReadonlyArray<Partial<Progress>> = [
  {},
  { state: "checking" },
  { state: "fetching metadata", wanted: 0, done: 0, peers: 1 },
  { state: "stalled", peers: 0, downloadRate: 0, eta: Infinity, trackers: "failing" },
  { state: "seeding", done: 10_000_000, uploaded: 3_000_000 },
  { state: "complete", done: 10_000_000 },
  { state: "stopped" }
]

describe("Display.line", () => {
  it("fits every width from 8 to 240 columns, for every state and name (wide, emoji, hostile), ending with the state", () => {
    for (const name of names) {
      for (const state of states) {
        const p = progress(state)
        const full = Display.line(name, p, Infinity)
        const status = full.slice(full.lastIndexOf("  ") + 2).split(" ").at(-1)!
        for (let columns = 8; columns <= 240; columns++) {
          const line = Display.line(name, p, columns)
          assert.isAtMost(Format.width(line), columns, `${JSON.stringify(line)} at ${columns}`)
          assert.notMatch(line, /\p{Cc}/u)
          if (columns >= 40) assert.isTrue(line.endsWith(status), `${JSON.stringify(line)} ends with ${status}`)
        }
      }
    }
  })

  it("gives the name more room as the terminal widens, and every field at 200 columns", () => {
    const name = "ubuntu-24.04.1-desktop-amd64.iso"
    const widths = [40, 80, 120, 200].map((columns) => Display.line(name, progress(), columns))
    assert.deepStrictEqual(
      widths[3],
      "ubuntu-24.04.1-desktop-amd64.iso  50.0% [##########----------] 4.77 MiB/9.54 MiB ↓  1.14 MiB/s ↑  29.3 KiB/s   3 peers ETA 4s"
    )
    assert.isTrue(widths[1]!.includes("50.0%") && widths[1]!.includes("↓") && widths[1]!.includes("3 peers"), widths[1])
    assert.isTrue(widths[0]!.endsWith("ETA 4s"), widths[0])
  })

  it("says what each state is: ETA -- when nothing comes, which stall, peers while fetching metadata, upload and ratio when seeding", () => {
    const at = (overrides: Partial<Progress>) => Display.line("t", progress(overrides), 200)
    assert.match(at({ downloadRate: 0, eta: Infinity }), / ETA --$/)
    assert.match(at({ downloadRate: 0, eta: 8.7e169 * 3600 }), / ETA --$/)
    assert.match(at({ state: "stalled", peers: 0, trackers: "failing" }), / stalled: trackers failing$/)
    assert.match(at({ state: "stalled", peers: 0, trackers: "working" }), / stalled: no peers$/)
    assert.match(at({ state: "stalled", peers: 0, trackers: "none" }), / stalled: no peers$/)
    assert.match(at({ state: "fetching metadata", peers: 1 }), / fetching metadata \(1 peer\)$/)
    assert.match(
      at({ state: "seeding", done: 10_000_000, uploaded: 3_000_000 }),
      /100\.0% .* 9\.54 MiB, up 2\.86 MiB, ratio 0\.30 ↑ .* seeding$/
    )
    // An ended torrent shows no rates or peers: they are history.
    assert.match(
      at({ state: "complete", done: 10_000_000 }),
      /^t 100\.0% \[#+\] 9\.54 MiB, up 0 B, ratio 0\.00 complete$/
    )
    assert.match(at({ state: "stopped" }), /^t {2}50\.0% \[#+-+\] 4\.77 MiB\/9\.54 MiB stopped$/)
  })

  it("aligns the names of several torrents when there is room", () => {
    const lines = ["a", "longer name"].map((name) => Display.line(name, progress(), 200, 11))
    assert.strictEqual(lines[0]!.indexOf("%"), lines[1]!.indexOf("%"))
  })
})

describe("Display.summary", () => {
  it("gives state, size, time, average rate and ratio, then the name", () => {
    assert.strictEqual(
      Display.summary(
        "a.bin",
        progress({ state: "complete", done: 10_000_000, downloaded: 10_000_000, uploaded: 5_000_000 }),
        4,
        200
      ),
      "complete  9.54 MiB in 4s, 2.38 MiB/s on average, ratio 0.50  a.bin"
    )
    assert.strictEqual(
      Display.summary("a.bin", progress({ state: "complete", done: 10_000_000, downloaded: 0 }), 0, 200),
      "complete  9.54 MiB in 0s, nothing downloaded, ratio 0.00  a.bin"
    )
    assert.strictEqual(
      Display.summary("a.bin", progress({ state: "stopped" }), 65, 200),
      "stopped   4.77 MiB of 9.54 MiB in 1m05s, 75.1 KiB/s on average, ratio 0.00  a.bin"
    )
  })
})

/** A terminal's stdout (or stderr) that records what is written. */
const terminal = (columns: number) => {
  const writes: Array<string> = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      writes.push(String(chunk))
      done()
    }
  }) as unknown as NodeJS.WriteStream & { columns: number }
  Object.assign(stream, { isTTY: true, columns })
  return { stream, writes }
}

/** What the Screen writes to erase `rows` rows of live lines. */
const erase = (rows: number) => `\x1b[${rows}A\r${"\x1b[2K\n".repeat(rows)}\x1b[${rows}A`

describe("Screen", () => {
  it("draws live lines one column short of the terminal, prints log lines above them and draws them again", () => {
    const out = terminal(80)
    const err = terminal(80)
    const screen = Screen.make(out.stream, err.stream)
    assert.strictEqual(screen.columns(), 79)
    screen.draw(["one", "two"])
    screen.print("a warning")
    // stderr is the same terminal: one write, in order, on one stream (two streams keep no order between them).
    assert.deepStrictEqual(out.writes, ["one\ntwo\n", `${erase(2)}a warning\none\ntwo\n`])
    assert.deepStrictEqual(err.writes, [])
    screen.draw(["three"])
    assert.deepStrictEqual(out.writes.slice(2), [`${erase(2)}three\n`])
    screen.release()
    screen.draw(["four"])
    assert.deepStrictEqual(out.writes.slice(3), ["four\n"], "after release nothing above is erased")
  })

  it("a log line for a stderr that is not the terminal goes there, between the erasing and the redrawing", () => {
    const out = terminal(80)
    const err = terminal(80)
    Object.assign(err.stream, { isTTY: false })
    const screen = Screen.make(out.stream, err.stream)
    screen.draw(["one"])
    screen.print("a warning")
    assert.deepStrictEqual(out.writes, ["one\n", erase(1), "one\n"])
    assert.deepStrictEqual(err.writes, ["a warning\n"])
  })

  it("after the terminal narrows, erases the rows it re-wrapped the old lines into", () => {
    const out = terminal(80)
    const screen = Screen.make(out.stream, terminal(80).stream)
    screen.draw(["x".repeat(79), "y".repeat(30)])
    out.stream.columns = 40 // 79 columns wrap into 2 rows, 30 stay in 1
    screen.draw(["z"])
    assert.strictEqual(out.writes[1], `${erase(3)}z\n`)
    out.stream.columns = 100
    screen.draw(["w"])
    assert.strictEqual(out.writes[2], `${erase(1)}w\n`)
  })

  it("off a terminal prints everything as it comes", () => {
    const out = terminal(80)
    Object.assign(out.stream, { isTTY: false })
    const screen = Screen.make(out.stream, terminal(80).stream)
    assert.strictEqual(screen.columns(), Infinity)
    screen.draw(["one"])
    screen.draw(["two"])
    assert.deepStrictEqual(out.writes, ["one\n", "two\n"])
  })
})
