/**
 * The `Range` request header (RFC 9110 §14), one range of bytes: `a-b`,
 * `a-` and `-n`. Pure: a header and a size in, what to answer out.
 *
 * A header we do not take (another unit, several ranges, bad syntax, a last
 * byte before the first) is ignored, as the RFC allows: the whole file is
 * sent. A range that starts past the end, or asks for no bytes, is
 * unsatisfiable (416). Numbers of any length are read without overflow: a
 * start past 2^53 is past any file's end, an end past it is the last byte.
 */

/** What to send of a `size`-byte file. */
export type Answer =
  /** No range, or one we ignore: the whole file (200). */
  | { readonly _tag: "Whole" }
  /** Bytes `start` (included) to `end` (excluded), 0 ≤ start < end ≤ size (206). */
  | { readonly _tag: "Part"; readonly start: number; readonly end: number }
  /** Nothing of the file lies in the range (416). */
  | { readonly _tag: "Unsatisfiable" }

const whole: Answer = { _tag: "Whole" }
const unsatisfiable: Answer = { _tag: "Unsatisfiable" }

const single = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i

/** What a `Range` header (absent: undefined) asks of a file of `size` bytes. */
export const parse = (header: string | undefined, size: number): Answer => {
  if (header === undefined) return whole
  const match = single.exec(header)
  if (match === null) return whole
  const [, first = "", last = ""] = match
  if (first === "" && last === "") return whole
  if (first === "") {
    // The last n bytes.
    const n = Number(last)
    if (n === 0 || size === 0) return unsatisfiable
    return { _tag: "Part", start: Math.max(0, size - n), end: size }
  }
  const start = Number(first)
  if (last !== "" && Number(last) < start) return whole
  if (start >= size) return unsatisfiable
  const end = last === "" ? size : Math.min(size, Number(last) + 1)
  return { _tag: "Part", start, end }
}

/** The `Content-Range` of a part: `bytes 0-99/1000`. */
export const contentRange = (part: { readonly start: number; readonly end: number }, size: number): string =>
  `bytes ${part.start}-${part.end - 1}/${size}`

/** The `Content-Range` of a 416: `bytes *\/1000`. */
export const unsatisfiedRange = (size: number): string => `bytes */${size}`
