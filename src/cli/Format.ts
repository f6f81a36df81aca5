/** Human-readable sizes, rates, durations and names for the CLI. */

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

const escape = (c: string): string => {
  const code = c.charCodeAt(0)
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`
}

/**
 * `text` safe to print for humans: every unprintable character shown as a
 * `\xHH` or `\uHHHH` escape, and at most `max` characters, keeping the head
 * and the tail around a "…" (the tail often tells most: an extension, the
 * reason of an error) and never cutting an escape in two. A backslash is left
 * as it is: names in error messages are already JSON-quoted (`\\` for a
 * backslash), and doubling it again would garble them; a literal "\x1b" in a
 * name can do no harm.
 */
export const printable = (text: string, max = Infinity): string => {
  if (!unprintable.test(text) && text.length <= max) return text
  const units = Array.from(text, (c) => (unprintable.test(c) ? escape(c) : c))
  const all = units.join("")
  if (all.length <= max) return all
  const budget = max - 1 // for the "…"
  let head = 0
  let headLength = 0
  while (headLength + units[head]!.length <= Math.ceil(budget / 2)) headLength += units[head++]!.length
  let tail = units.length
  let tailLength = 0
  while (headLength + tailLength + units[tail - 1]!.length <= budget) tailLength += units[--tail]!.length
  return `${units.slice(0, head).join("")}…${units.slice(tail).join("")}`
}

/** Lines of text for humans, each made printable (so the line breaks between them stay). */
export const printableLines = (lines: ReadonlyArray<string>): string => lines.map((line) => printable(line)).join("\n")

/** A torrent, file, tracker or path name inserted into a message: printable and at most 120 characters. */
export const name = (text: string): string => printable(text, 120)
