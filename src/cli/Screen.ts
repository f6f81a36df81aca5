/**
 * The terminal the CLI writes to. On a terminal, the progress display is a
 * few live lines at the bottom of stdout, redrawn in place; log lines and
 * messages are printed above them (the live lines are erased, the text
 * printed, the live lines drawn again), so neither garbles the other. Off a
 * terminal, everything is printed as it comes.
 *
 * Live lines are drawn one column short of the terminal's width: a line that
 * fills the last column leaves the cursor waiting to wrap, and some terminals
 * then add a blank line. When the terminal is resized it re-wraps what is on
 * it (tmux, VTE, iTerm2, kitty, Windows Terminal do): a line drawn before may
 * now take several rows, so erasing counts the rows each takes at the current
 * width.
 *
 * When stderr is the same terminal, a log line goes out on stdout in the
 * same write as the erasing and redrawing around it: two streams give no
 * order between their writes (a busy terminal may take one before the
 * other), and a log line landing before the erase would leave the top of
 * the old live lines behind.
 */
import { Context, Effect, Layer, Queue, Stream } from "effect"
import * as Format from "./Format.ts"

export class Screen extends Context.Service<Screen, {
  /** Whether stdout is a terminal (then the live lines are redrawn in place). */
  readonly isTerminal: boolean
  /** Columns the live lines may use now (Infinity off a terminal). */
  readonly columns: () => number
  /** Each resize of the terminal (SIGWINCH). */
  readonly resizes: Stream.Stream<void>
  /** Replaces the live lines (off a terminal: prints them). */
  readonly draw: (lines: ReadonlyArray<string>) => void
  /** Prints a line above the live lines: on stderr (logs, warnings) or stdout. */
  readonly print: (line: string, to?: "stdout" | "stderr") => void
  /** Leaves the live lines on screen as they are; what is printed next goes below them. */
  readonly release: () => void
}>()("effect-torrent/cli/Screen") {
  static readonly layer = Layer.sync(Screen, () => make(process.stdout, process.stderr))
}

export const make = (stdout: NodeJS.WriteStream, stderr: NodeJS.WriteStream): Screen["Service"] => {
  const isTerminal = stdout.isTTY === true
  const columns = () => (isTerminal ? Math.max(1, (stdout.columns || 80) - 1) : Infinity)
  let live: ReadonlyArray<string> = []

  /**
   * The terminal's width now. Node updates `columns` when it gets to SIGWINCH,
   * but the terminal re-wraps at once: erasing in between with the old width
   * would leave the top of the old lines behind. `_refreshSize` asks the
   * terminal (TIOCGWINSZ); it is Node's own, on every tty.WriteStream.
   */
  const refresh = () => (stdout as { _refreshSize?: () => void })._refreshSize?.call(stdout)

  /** What moves to where the live lines start and clears them. */
  const erase = () => {
    refresh()
    const width = columns() + 1
    const rows = live.reduce((n, line) => n + Math.max(1, Math.ceil(Format.width(line) / width)), 0)
    live = []
    // Up, then each row cleared (EL): clearing the screen from its first row (ED) would make tmux
    // keep a copy of the old lines in its history (scroll-on-clear).
    return rows > 0 ? `\x1b[${rows}A\r${"\x1b[2K\n".repeat(rows)}\x1b[${rows}A` : ""
  }
  /** What draws `lines` as the live lines. */
  const show = (lines: ReadonlyArray<string>) => {
    live = lines
    return lines.length > 0 ? `${lines.join("\n")}\n` : ""
  }

  return Screen.of({
    isTerminal,
    columns,
    resizes: isTerminal
      ? Stream.callback<void>((queue) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            const onResize = () => Queue.offerUnsafe(queue, undefined)
            stdout.on("resize", onResize)
            return onResize
          }),
          (onResize) => Effect.sync(() => stdout.off("resize", onResize))
        )
      )
      : Stream.empty,
    draw: (lines) => {
      if (!isTerminal) return void stdout.write(lines.map((line) => `${line}\n`).join(""))
      stdout.write(erase() + show(lines))
    },
    print: (line, to = "stderr") => {
      if (!isTerminal) return void (to === "stderr" ? stderr : stdout).write(`${line}\n`)
      const kept = live
      if (to === "stderr" && stderr.isTTY !== true) {
        stdout.write(erase())
        stderr.write(`${line}\n`)
        stdout.write(show(kept))
        return
      }
      stdout.write(`${erase()}${line}\n${show(kept)}`)
    },
    release: () => {
      live = []
    }
  })
}
