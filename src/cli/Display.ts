/**
 * The live progress display. On a terminal: one line per torrent redrawn in
 * place (percent, bar, rates, peers, ETA). Otherwise: a plain line per
 * torrent at longer intervals, for logs.
 */
import { Effect, Schedule, SubscriptionRef } from "effect"
import type { Progress } from "../torrent/Orchestrator.ts"
import type { TorrentHandle } from "../TorrentManager.ts"
import * as Format from "./Format.ts"

const barWidth = 24

export const line = (name: string, p: Progress, withBar: boolean): string => {
  const fetching = p.state === "fetching metadata"
  const fraction = fetching ? 0 : p.wanted === 0 ? 1 : p.done / p.wanted
  const percent = `${(fraction * 100).toFixed(1).padStart(5)}%`
  const filled = Math.round(fraction * barWidth)
  const bar = withBar ? ` [${"#".repeat(filled)}${"-".repeat(barWidth - filled)}]` : ""
  const state = p.state === "downloading"
    ? `ETA ${Format.duration(p.eta)}`
    : fetching
    ? `fetching metadata (${p.peers} peers)`
    : p.state
  // The name is the torrent's (or a magnet's dn): escaped, so it cannot move the cursor or reorder the line.
  return `${Format.printable(name, 30).padEnd(30)} ${percent}${bar} ↓ ${Format.rate(p.downloadRate).padStart(11)} ↑ ${
    Format.rate(p.uploadRate).padStart(11)
  } ${String(p.peers).padStart(3)} peers  ${state}`
}

const render = Effect.fnUntraced(function*(handles: ReadonlyArray<TorrentHandle>, tty: boolean, redraw: boolean) {
  const lines: Array<string> = []
  for (const handle of handles) lines.push(line(yield* handle.name, yield* SubscriptionRef.get(handle.progress), tty))
  const text = lines.join("\n")
  yield* Effect.sync(() => {
    if (tty) process.stdout.write(`${redraw ? `\x1b[${lines.length}F` : ""}${lines.map((l) => `\x1b[2K${l}`).join("\n")}\n`)
    else process.stdout.write(`${text}\n`)
  })
})

/** Shows progress until interrupted (then once more, so the final state is on screen). */
export const show = (handles: ReadonlyArray<TorrentHandle>) => {
  const tty = process.stdout.isTTY === true
  let drawn = false
  const draw = Effect.suspend(() => render(handles, tty, drawn)).pipe(Effect.tap(() => Effect.sync(() => (drawn = true))))
  return draw.pipe(
    Effect.repeat({ schedule: Schedule.spaced(tty ? 500 : 5000) }),
    Effect.ensuring(Effect.ignore(draw))
  )
}
