/**
 * The progress display: one line per torrent (name, percent, bar, done and
 * total bytes, down and up rates, peers, ETA or state) that fits the
 * terminal, redrawn every half second and at once when the terminal is
 * resized. As it narrows, fields get shorter or give way in a fixed order
 * (the bar first, the state last), so the ETA or state is always there.
 * Off a terminal: every field, a line per torrent every 5 seconds, for logs.
 * With `--json`: one JSON object per torrent every second instead.
 *
 * Also the summary printed at the end, a line per torrent.
 */
import { Effect, Stream } from "effect"
import type { Progress } from "../torrent/Orchestrator.ts"
import type { TorrentHandle } from "../TorrentManager.ts"
import * as Format from "./Format.ts"
import { Screen } from "./Screen.ts"

type Field = "percent" | "bar" | "size" | "down" | "up" | "peers" | "status"

/** Fields in the order they are shown. */
const fieldOrder: ReadonlyArray<Field> = ["percent", "bar", "size", "down", "up", "peers", "status"]

/** While a line is too wide, each step takes the next shorter form of a field ("" leaves it out). */
const narrowing: ReadonlyArray<Field> = [
  "bar",
  "bar",
  "down",
  "up",
  "size",
  "peers",
  "up",
  "size",
  "peers",
  "down",
  "percent"
]

/** Columns the name keeps while other fields can still give way. */
const minName = 24

const fraction = (p: Progress) => (p.state === "fetching metadata" ? 0 : p.wanted === 0 ? 1 : p.done / p.wanted)

const bar = (done: number, width: number) => {
  const filled = Math.round(done * width)
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`
}

/** Uploaded bytes per byte of the selected files (what `--seed-ratio` counts). */
const ratio = (p: Progress) => (p.wanted === 0 ? 0 : p.uploaded / p.wanted)

/** "--" when nothing comes: no rate to tell the time from. */
const eta = (p: Progress) => (p.downloadRate > 0 && Number.isFinite(p.eta) ? Format.duration(p.eta) : "--")

const status = (p: Progress): string => {
  switch (p.state) {
    case "downloading":
      return `ETA ${eta(p)}`
    case "stalled":
      return `stalled: ${p.trackers === "failing" ? "trackers failing" : "no peers"}`
    case "fetching metadata":
      return `fetching metadata (${p.peers} ${p.peers === 1 ? "peer" : "peers"})`
    default:
      return p.state
  }
}

/** Each field's forms, longest first. */
const forms = (p: Progress): Record<Field, ReadonlyArray<string>> => {
  const finished = p.state === "complete" || p.state === "seeding"
  /** Rates and peers of a torrent that has ended are history: left out. */
  const ended = p.state === "complete" || p.state === "stopped"
  const rate = (arrow: string, bytes: number) => [
    `${arrow} ${Format.rate(bytes).padStart(11)}`,
    `${arrow}${Format.short(bytes).padStart(4)}/s`,
    ""
  ]
  return {
    percent: [`${(fraction(p) * 100).toFixed(1)}%`.padStart(6), ""],
    bar: [bar(fraction(p), 20), bar(fraction(p), 10), ""],
    size: p.state === "fetching metadata"
      ? [""]
      : finished
      ? [
        `${Format.bytes(p.wanted)}, up ${Format.bytes(p.uploaded)}, ratio ${ratio(p).toFixed(2)}`,
        `ratio ${ratio(p).toFixed(2)}`,
        ""
      ]
      : [`${Format.bytes(p.done)}/${Format.bytes(p.wanted)}`, ""],
    down: finished || ended ? [""] : rate("↓", p.downloadRate),
    up: ended ? [""] : rate("↑", p.uploadRate),
    peers: ended ? [""] : [`${String(p.peers).padStart(3)} ${p.peers === 1 ? "peer " : "peers"}`, `${p.peers}p`, ""],
    status: [status(p)]
  }
}

/**
 * The torrent's line in at most `columns` columns, its name (escaped: it is
 * the torrent maker's) in `nameColumns` when there is room, so that the
 * lines of several torrents align.
 */
export const line = (
  name: string,
  p: Progress,
  columns: number,
  nameColumns = Format.width(Format.printable(name))
) => {
  const all = forms(p)
  const step: Record<Field, number> = { percent: 0, bar: 0, size: 0, down: 0, up: 0, peers: 0, status: 0 }
  const form = (f: Field) => Math.min(step[f], all[f].length - 1)
  const fields = () => fieldOrder.map((f) => all[f][form(f)]!).filter((text) => text !== "")
  const widths = fieldOrder.map((f) => all[f].map(Format.width))
  const fieldColumns = () =>
    fieldOrder.reduce((n, f, i) => n + (widths[i]![form(f)]! === 0 ? 0 : 1 + widths[i]![form(f)]!), 0)
  for (const f of narrowing) {
    if (Math.min(minName, nameColumns) + fieldColumns() <= columns) break
    step[f]++
  }
  const room = Math.max(0, Math.min(nameColumns, columns - fieldColumns()))
  const shown = Format.fit(name, room)
  const head = room === 0 ? [] : [shown + " ".repeat(room - Format.width(shown))]
  // Only a terminal narrower than the state itself cuts it.
  return Format.fit([...head, ...fields()].join(" ").trimStart(), columns)
}

const snapshot = (handles: ReadonlyArray<TorrentHandle>) =>
  Effect.forEach(handles, (handle) => Effect.all({ name: handle.name, progress: handle.progress.get }))

/** Shows progress until interrupted, then once more (the final state stays on screen). */
export const show = (handles: ReadonlyArray<TorrentHandle>) =>
  Effect.gen(function*() {
    const screen = yield* Screen
    const draw = Effect.flatMap(snapshot(handles), (torrents) =>
      Effect.sync(() => {
        const nameColumns = Math.max(...torrents.map((t) => Format.width(Format.printable(t.name))))
        screen.draw(torrents.map((t) => line(t.name, t.progress, screen.columns(), nameColumns)))
      }))
    yield* Stream.merge(Stream.tick(screen.isTerminal ? 500 : 5000), screen.resizes).pipe(
      Stream.runForEach(() => draw),
      Effect.ensuring(Effect.andThen(draw, Effect.sync(() => screen.release())))
    )
  })

/** A torrent's progress as one line of JSON (no per-file list; an unknown ETA is null). */
const json = (name: string, infoHash: string, p: Progress): string => {
  const { files: _files, ...rest } = p
  return JSON.stringify({
    name,
    infoHash,
    ...rest,
    downloadRate: Math.round(p.downloadRate),
    uploadRate: Math.round(p.uploadRate)
  })
}

/** Prints each torrent's progress as JSON every second until interrupted, then once more. */
export const showJson = (handles: ReadonlyArray<TorrentHandle>) =>
  Effect.gen(function*() {
    const screen = yield* Screen
    const print = Effect.flatMap(snapshot(handles), (torrents) =>
      Effect.sync(() => {
        for (const [i, t] of torrents.entries()) screen.print(json(t.name, handles[i]!.infoHash, t.progress), "stdout")
      }))
    yield* Stream.tick(1000).pipe(Stream.runForEach(() => print), Effect.ensuring(print))
  })

/** The summary of a torrent at the end: state, size, time, average download rate, ratio, name. */
export const summary = (name: string, p: Progress, seconds: number, columns: number): string => {
  const size = p.done === p.wanted ? Format.bytes(p.wanted) : `${Format.bytes(p.done)} of ${Format.bytes(p.wanted)}`
  const average = p.downloaded === 0
    ? "nothing downloaded"
    : `${Format.rate(p.downloaded / Math.max(seconds, 1))} on average`
  const text = `${p.state.padEnd(8)}  ${size} in ${Format.duration(seconds)}, ${average}, ratio ${
    ratio(p).toFixed(2)
  }  `
  return `${text}${Format.fit(name, Math.max(10, columns - Format.width(text)))}`
}
