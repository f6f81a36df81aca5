/**
 * The CLI's escaping of names for humans (Format.printable, Format.name) and
 * the display line that uses it. test/hostile/TerminalEscapes.test.ts runs the
 * real CLI on hostile names.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Display from "../../src/cli/Display.ts"
import * as Format from "../../src/cli/Format.ts"
import type { Progress } from "../../src/torrent/Orchestrator.ts"

const osc = "\x1b]0;pwned\x07" // sets the terminal's title
const clear = "\x1b[2J" // clears the screen
const csi = "\u009b31m" // C1 CSI: red text
const rlo = "evil\u202Etxt.exe" // shows as "evilexe.txt"

describe("Format.printable", () => {
  it("escapes ESC sequences, C1 controls and bidi overrides visibly", () => {
    assert.strictEqual(Format.printable(osc), "\\x1b]0;pwned\\x07")
    assert.strictEqual(Format.printable(clear), "\\x1b[2J")
    assert.strictEqual(Format.printable(csi), "\\x9b31m")
    assert.strictEqual(Format.printable(rlo), "evil\\u202etxt.exe")
    assert.strictEqual(Format.printable("a\nb\tc\0d\x7f"), "a\\x0ab\\x09c\\x00d\\x7f")
    assert.strictEqual(Format.printableLines([`a${clear}`, "b"]), "a\\x1b[2J\nb")
  })

  it("escapes every control and bidi control character, and the line/paragraph separators; nothing else", () => {
    const separators = new Set([0x2028, 0x2029])
    for (let code = 0; code <= 0x10ffff; code++) {
      if (code >= 0xd800 && code <= 0xdfff) continue // surrogates: not characters
      const c = String.fromCodePoint(code)
      const escaped = Format.printable(c)
      if (/\p{Cc}|\p{Bidi_Control}/u.test(c) || separators.has(code)) {
        assert.match(escaped, /^\\(x[0-9a-f]{2}|u[0-9a-f]{4})$/, `U+${code.toString(16)}`)
        assert.strictEqual(Number.parseInt(escaped.slice(2), 16), code)
      } else if (escaped !== c) assert.fail(`U+${code.toString(16)} changed to ${JSON.stringify(escaped)}`)
    }
  })

  it("keeps ordinary text, non-ASCII included, and a backslash as it is", () => {
    for (const text of ["single odd.bin", "ünï/ñ.txt", "日本語 🎉", "C:\\dir\\x1b"]) {
      assert.strictEqual(Format.printable(text), text)
    }
  })

  it("bounds the length, keeping head and tail, never cutting an escape or a surrogate pair", () => {
    const long = `start-${"x".repeat(4000)}-end.iso`
    const short = Format.printable(long, 120)
    assert.strictEqual(short.length, 120)
    assert.match(short, /^start-x+…x+-end\.iso$/)
    assert.strictEqual(Format.name(long), short)
    const escapes = Format.printable(clear.repeat(100), 30)
    assert.isAtMost(escapes.length, 30)
    assert.notMatch(escapes, /\\(?!x1b)/, "every backslash starts a whole \\x1b")
    assert.notMatch(Format.printable("🎉".repeat(100), 11), /\p{Surrogate}/u)
    assert.strictEqual(Format.printable("just fits", 9), "just fits")
  })

  it("is idempotent: a message made printable twice reads the same", () => {
    const text = `${osc}${rlo}${"é".repeat(300)}`
    assert.strictEqual(Format.printable(Format.printable(text, 120), 120), Format.printable(text, 120))
  })
})

describe("Display.line", () => {
  it("shows a hostile name escaped and cut to the room the terminal leaves, the rest of the line in place", () => {
    const progress: Progress = {
      state: "downloading",
      done: 50,
      wanted: 100,
      verified: 50,
      downloaded: 50,
      uploaded: 0,
      downloadRate: 0,
      uploadRate: 0,
      peers: 1,
      eta: 60,
      trackers: "none",
      files: [50],
      uploadingTo: 0,
      downloadingFrom: 0,
      hashFailures: 0
    }
    const line = Display.line(`${clear}${rlo}${"x".repeat(100)}.mkv`, progress, 79)
    assert.notMatch(line, /\p{Cc}|\p{Bidi_Control}/u)
    assert.isAtMost(Format.width(line), 79)
    assert.match(line, /^\\x1b\[2Jevil…x+\.mkv {2}50\.0% .* ETA --$/) // "\\u202e" did not fit in the head
  })
})
