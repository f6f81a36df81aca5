/**
 * The progress display in a real terminal: tmux panes of 80 and 200 columns
 * run the CLI downloading two torrents from two aria2c seeders on 127.0.0.1
 * (dialled with --peer; the torrents announce to a tracker nobody runs, so a
 * warning is printed above the display). At 80 columns the pane is narrowed
 * to 50 mid-download and widened to 100. `capture-pane` (the whole history,
 * wrapped lines joined) shows then exactly one display line per torrent, none
 * wider than the terminal, and nothing left of earlier frames. (Log lines may
 * be wider: the terminal wraps them, as it would any program's.)
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { join } from "node:path"
import * as Format from "../../src/cli/Format.ts"
import { sameBytes, tempDir } from "../util/Files.ts"
import { freePort, projectRoot, waitFor } from "../util/Swarm.ts"
import { seededTorrents } from "./fixtures.ts"

/** A tmux server of the test's own (its socket in a temporary folder), killed when the scope closes. */
const tmuxServer = Effect.acquireRelease(
  Effect.map(tempDir("tmux"), (dir) => {
    const socket = join(dir, "socket")
    const tmux = (...args: ReadonlyArray<string>) =>
      Effect.callback<string>((resume) => {
        execFile("tmux", ["-S", socket, ...args], { timeout: 90_000 }, (error, stdout, stderr) => {
          resume(
            error === null
              ? Effect.succeed(stdout)
              : Effect.die(new Error(`tmux ${args.join(" ")}: ${stderr || error.message}`))
          )
        })
      })
    return { tmux }
  }),
  ({ tmux }) => Effect.ignore(tmux("kill-server"))
)

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`

/** The display's line for each torrent, from a capture. */
const displayLines = (capture: string) => capture.split("\n").filter((line) => /^(one|two)\.bin +\d+\.\d%/.test(line))

/** Two torrents and their aria2c seeders; the torrents announce to a tracker nobody runs. */
const swarm = Effect.flatMap(
  freePort,
  (port) => seededTorrents("cli-terminal", ["one", "two"], 3 * 1024 * 1024 + 123, [`http://127.0.0.1:${port}/announce`])
)

/**
 * Runs the download in a pane `columns` wide; `during` runs once both
 * torrents show on the display; resolves with the pane's whole history once
 * the CLI has exited, and the pane's width then.
 */
const inPane = (
  columns: number,
  args: ReadonlyArray<string>,
  during: (tmux: (...args: ReadonlyArray<string>) => Effect.Effect<string>) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const { tmux } = yield* tmuxServer
    const command = [process.execPath, "--import", "tsx", "src/cli/main.ts", ...args].map(quote).join(" ")
    // The pane stays after the CLI exits (sleep), until the server is killed.
    yield* tmux(
      "new-session",
      "-d",
      "-s",
      "t",
      "-x",
      String(columns),
      "-y",
      "40",
      "-c",
      projectRoot,
      `sh -c ${quote(`${command}; echo EXIT=$?; tmux wait-for -S exited; exec sleep 600`)}`
    )
    const capture = () => tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t")
    let last = ""
    const bothShown = Effect.map(capture(), (text) => {
      last = text
      return displayLines(text).length === 2
    })
    yield* waitFor(bothShown, {
      timeoutMillis: 30_000,
      intervalMillis: 100,
      message: () => `the display did not show both torrents:\n${last}`
    })
    yield* during(tmux)
    yield* tmux("wait-for", "exited")
    return {
      capture: yield* capture(),
      width: Number((yield* tmux("display", "-p", "-t", "t", "#{window_width}")).trim())
    }
  })

/** What a finished download leaves in the pane: one final line per torrent, fitting, and no earlier frame. */
const assertFinalScreen = (capture: string, width: number) => {
  const lines = capture.split("\n")
  assert.include(lines, "EXIT=0", capture)
  const display = displayLines(capture)
  assert.deepStrictEqual(display.map((line) => line.split(" ")[0]), ["one.bin", "two.bin"], capture)
  for (const line of display) {
    assert.match(line, /100\.0% .*complete$/)
    assert.isBelow(Format.width(line), width, line)
  }
  for (const line of lines.filter((line) => !/^\d\d:\d\d:\d\d /.test(line))) {
    assert.isAtMost(Format.width(line), width, line)
  }
  // Only frames of a running download show rates, peers or an ETA: none must be left.
  assert.notMatch(capture, /↓|↑|ETA|peers|stalled|checking/, capture)
  assert.strictEqual(lines.filter((line) => /^complete {2}3\.00 MiB in /.test(line)).length, 2, capture)
  assert.include(lines, "done: every torrent is complete and verified")
  // The failing tracker: one warning per torrent, above the display.
  const warnings = lines.filter((line) => / WARN (one|two)\.bin: no tracker answers/.test(line))
  assert.strictEqual(warnings.length, 2, capture)
  assert.isBelow(lines.indexOf(warnings[1]!), lines.indexOf(display[0]!))
}

describe("the display in a terminal (tmux)", () => {
  it.live(
    "80 columns, narrowed to 50 and widened to 100 mid-download: one fitting line per torrent, no debris",
    () =>
      Effect.gen(function*() {
        const { peers, root, torrents } = yield* swarm
        const dst = join(root, "dst-80")
        const args = [
          ...torrents.map((t) => t.file),
          "-o",
          dst,
          ...peers,
          "--max-download",
          "1M",
          "--port",
          "0",
          "--no-dht",
          "--no-lpd"
        ]
        const { capture, width } = yield* inPane(80, args, (tmux) =>
          Effect.gen(function*() {
            // The tracker's warnings come first: a log line printed while the terminal reflows
            // after a resize can leave a line behind (a race with the terminal, seen under load).
            let shown = ""
            yield* waitFor(
              tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t").pipe(
                Effect.map((text) => {
                  shown = text
                  return text.split("\n").filter((line) => / WARN (one|two)\.bin: /.test(line)).length === 2
                })
              ),
              { timeoutMillis: 30_000, intervalMillis: 100, message: () => `no tracker warnings:\n${shown}` }
            )
            const before = yield* tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t")
            for (const line of displayLines(before)) assert.isBelow(Format.width(line), 80, line)
            yield* tmux("resize-window", "-t", "t", "-x", "50")
            // Redrawn for 50 columns (the lines drawn for 80 would have been re-wrapped, so joined they are wider).
            let last = ""
            yield* waitFor(
              tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t").pipe(
                Effect.map((text) => {
                  last = text
                  const lines = displayLines(text)
                  return lines.length === 2 && lines.every((line) => Format.width(line) < 50)
                })
              ),
              { timeoutMillis: 10_000, intervalMillis: 100, message: () => `not redrawn for 50 columns:\n${last}` }
            )
            yield* tmux("resize-window", "-t", "t", "-x", "100")
          }))
        assert.strictEqual(width, 100)
        assertFinalScreen(capture, width)
        for (const t of torrents) assert.isTrue(sameBytes(join(t.src, `${t.name}.bin`), join(dst, `${t.name}.bin`)))
      }).pipe(Effect.scoped),
    120_000
  )

  it.live("200 columns: every field while it runs, one line per torrent at the end", () =>
    Effect.gen(function*() {
      const { peers, root, torrents } = yield* swarm
      const args = [
        ...torrents.map((t) => t.file),
        "-o",
        join(root, "dst-200"),
        ...peers,
        "--max-download",
        "4M",
        "--port",
        "0",
        "--no-dht",
        "--no-lpd"
      ]
      const { capture, width } = yield* inPane(200, args, (tmux) =>
        Effect.gen(function*() {
          const running = displayLines(yield* tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t"))
          for (const line of running) {
            assert.match(line, /^(one|two)\.bin +\d+\.\d% \[[#-]{20}\] /, line)
            assert.isBelow(Format.width(line), 200, line)
          }
        }))
      assert.strictEqual(width, 200)
      assertFinalScreen(capture, width)
    }).pipe(Effect.scoped), 120_000)
})
