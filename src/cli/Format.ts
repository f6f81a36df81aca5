/** Human-readable sizes, rates, durations, names and file-system failures for the CLI. */
import type { PlatformError } from "effect"
import { CliOutput } from "effect/cli"

const units = ["B", "KiB", "MiB", "GiB", "TiB"]

export const bytes = (n: number): string => {
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`
}

export const rate = (bytesPerSecond: number): string => `${bytes(Math.round(bytesPerSecond))}/s`

/** "1.2M": bytes with a one-letter binary suffix and at most one decimal, for narrow displays. */
export const short = (n: number): string => {
  let value = Math.round(n)
  let unit = 0
  while (value >= 1000 && unit < 4) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value}` : `${value.toFixed(value < 10 ? 1 : 0)}${"BKMGT"[unit]}`
}

export const duration = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return "∞"
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
}

/**
 * Control characters (C0, DEL, C1) and bidirectional formatting characters
 * (LRM/RLM/ALM, the line and paragraph separators, embeddings, overrides and
 * isolates): in a torrent's strings they could drive the terminal (ESC, CSI)
 * or make "evil\u202etxt.exe" read as "evilexe.txt".
 */
const unprintable = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/

const escaped = (c: string): string => {
  const code = c.charCodeAt(0)
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`
}

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" })

/**
 * `text` with every unprintable character escaped, then at most `max` long
 * as `measure` counts, keeping the head and the tail around a "…" (the tail
 * often tells most: an extension, the reason of an error). It is cut between
 * characters as the user sees them (grapheme clusters), so never inside an
 * escape, a surrogate pair or an emoji sequence.
 */
const shorten = (text: string, max: number, measure: (text: string) => number): string => {
  const units = Array.from(
    graphemes.segment(text),
    ({ segment }) => Array.from(segment, (c) => (unprintable.test(c) ? escaped(c) : c)).join("")
  )
  const all = units.join("")
  if (measure(all) <= max) return all
  if (max < 1) return ""
  const sizes = units.map(measure)
  const budget = max - 1 // for the "…"
  let head = 0
  let headSize = 0
  while (headSize + sizes[head]! <= Math.ceil(budget / 2)) headSize += sizes[head++]!
  let tail = units.length
  let tailSize = 0
  while (headSize + tailSize + sizes[tail - 1]! <= budget) tailSize += sizes[--tail]!
  return `${units.slice(0, head).join("")}…${units.slice(tail).join("")}`
}

/**
 * `text` safe to print for humans: every unprintable character shown as a
 * `\xHH` or `\uHHHH` escape, and at most `max` characters (UTF-16 units),
 * cut as `shorten` does. A backslash is left as it is: names in error
 * messages are already JSON-quoted (`\\` for a backslash), and doubling it
 * again would garble them; a literal "\x1b" in a name can do no harm.
 */
export const printable = (text: string, max = Infinity): string =>
  !unprintable.test(text) && text.length <= max ? text : shorten(text, max, (unit) => unit.length)

/** `text` made printable and at most `columns` wide on a terminal (wide characters count 2, combining ones 0). */
export const fit = (text: string, columns: number): string =>
  !unprintable.test(text) && width(text) <= columns ? text : shorten(text, columns, width)

/** How wide `text` shows on a terminal (ASCII and the display's arrows at once: one column each). */
export const width = (
  text: string
): number => (/^[\x20-\x7e↓↑…]*$/.test(text) ? text.length : CliOutput.displayWidth(text))

/** Lines of text for humans, each made printable (so the line breaks between them stay). */
/** A torrent's info-hashes as `info` and `create` print them: v1 (or a v2-only torrent's 20 bytes), then v2. */
export const infoHashLines = (
  hashes: { readonly infoHash: string; readonly infoHashV2?: string | undefined }
): Array<string> =>
  hashes.infoHashV2 === undefined
    ? [`info-hash:   ${hashes.infoHash}`]
    : hashes.infoHashV2.startsWith(hashes.infoHash)
    ? [`info-hash:   ${hashes.infoHashV2} (v2; ${hashes.infoHash} truncated)`]
    : [`info-hash:   ${hashes.infoHash} (v1)`, `info-hash v2: ${hashes.infoHashV2}`]

export const printableLines = (lines: ReadonlyArray<string>): string => lines.map((line) => printable(line)).join("\n")

/** A torrent, file, tracker or path name inserted into a message: printable and at most 120 characters. */
export const name = (text: string): string => printable(text, 120)

/** A file-system failure in a few words, without the call that failed (the caller names the path and what it was for). */
export const failure = (error: PlatformError.PlatformError): string => {
  const reason = error.reason
  if (reason._tag === "NotFound") return "no such file or folder"
  if (reason._tag === "PermissionDenied") return "permission denied"
  if (reason._tag === "AlreadyExists") return "it exists already"
  // Node's "ENOTDIR: not a directory, mkdir '/x/y'" says what went wrong between the code and the call.
  const text = reason.cause instanceof Error ? reason.cause.message : reason.message
  return /^E[A-Z0-9]+: (.*?)(?:, \w+ '.*')?$/.exec(text)?.[1] ?? text
}
