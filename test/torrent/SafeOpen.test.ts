/**
 * SafeOpen on real folders: beneath the download folder (Linux) every
 * symlink is refused, the folder's and the file's, reading or writing, and
 * nothing is created through one; the check used without /proc refuses a
 * file that a symlinked folder leads outside.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as SafeOpen from "../../src/torrent/SafeOpen.ts"
import { tempDir } from "../util/Files.ts"

/** A download folder `dst` holding `real/` and `link` → `real`, next to `outside/` holding `file.bin`. */
const folders = Effect.gen(function*() {
  const root = yield* tempDir("safe-open")
  const dst = join(root, "dst")
  const outside = join(root, "outside")
  Fs.mkdirSync(join(dst, "real"), { recursive: true })
  Fs.mkdirSync(outside)
  Fs.writeFileSync(join(outside, "file.bin"), "outside")
  Fs.symlinkSync(join(dst, "real"), join(dst, "link"))
  Fs.symlinkSync(join(outside, "file.bin"), join(dst, "real", "file.bin"))
  const folder = yield* Effect.acquireRelease(SafeOpen.openFolder(dst), (folder) => SafeOpen.close(folder.fd))
  return { dst, outside, folder }
})

const refusal = (effect: Effect.Effect<number, SafeOpen.UnsafePath | NodeJS.ErrnoException>) =>
  effect.pipe(
    Effect.flip,
    Effect.map((error) => (error instanceof SafeOpen.UnsafePath ? error.detail : `not refused: ${error.message}`))
  )

describe("SafeOpen", () => {
  it.live.skipIf(process.platform !== "linux")(
    "beneath the folder: creates folders and the file, refuses every symlink",
    () =>
      Effect.gen(function*() {
        const { dst, folder } = yield* folders
        assert.isTrue(folder.beneath, "/proc/self/fd leads to the open folder")

        const fd = yield* SafeOpen.openFile(folder, ["new", "sub", "file.bin"], true)
        yield* SafeOpen.close(fd)
        assert.isTrue(Fs.statSync(join(dst, "new", "sub", "file.bin")).isFile())

        for (const writable of [false, true]) {
          assert.match(
            yield* refusal(SafeOpen.openFile(folder, ["link", "made.bin"], writable)),
            /dst\/link is not a folder \(symlinks/
          )
          assert.match(
            yield* refusal(SafeOpen.openFile(folder, ["real", "file.bin"], writable)),
            /dst\/real\/file\.bin is a symlink/
          )
        }
        assert.deepStrictEqual(Fs.readdirSync(join(dst, "real")), ["file.bin"], "nothing created through the symlink")
        assert.strictEqual(
          Fs.readFileSync(join(dst, "real", "file.bin"), "utf8"),
          "outside",
          "the file outside is unchanged"
        )
      })
  )

  it.live("without /proc: a file that a symlinked folder leads outside is refused once opened", () =>
    Effect.gen(function*() {
      const { dst, outside, folder } = yield* folders
      Fs.symlinkSync(outside, join(dst, "out"))
      const checked = { ...folder, beneath: false }
      assert.match(
        yield* refusal(SafeOpen.openFile(checked, ["out", "file.bin"], false)),
        /dst\/out\/file\.bin leads outside the download folder/
      )
      const fd = yield* SafeOpen.openFile(checked, ["new", "file.bin"], true)
      yield* SafeOpen.close(fd)
      assert.isTrue(Fs.statSync(join(dst, "new", "file.bin")).isFile())
    }))
})
