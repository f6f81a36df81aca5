/**
 * The daemon's web page in a real headless browser (Debian's chromium,
 * driven by playwright-core; no browser is downloaded): the page loads,
 * adding a magnet link shows the torrent, its progress rises while the page
 * stays open (from the event stream and its refreshes) as the data comes
 * from a rate-limited aria2c seeder, a file's link streams it (a Range
 * fetched by the page, mid-download), a file can be deselected, and pause,
 * resume and remove work. A screenshot is kept in .test-artifacts/.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import { chromium } from "playwright-core"
import * as Magnet from "../../src/protocol/Magnet.ts"
import * as Daemon from "../util/Daemon.ts"
import { createWithMktorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { aria2Seeder, projectRoot, waitFor } from "../util/Swarm.ts"

const artifacts = join(projectRoot, ".test-artifacts")

/** Headless chromium, closed with the test's scope. */
const browser = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"], timeout: 60_000 })
  ),
  (b) => Effect.promise(() => b.close())
)

describe("daemon web page", () => {
  it.live(
    "in chromium: add a magnet, progress rises live, deselect a file, pause, resume, remove",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-webui")
        const src = join(root, "src")
        yield* writeTree(src, [
          { path: "film/film.mkv", size: 6 * 1024 * 1024 + 5 },
          { path: "film/notes.txt", size: 5000 }
        ])
        const film = yield* createWithMktorrent(join(src, "film"), join(root, "film.torrent"), {
          pieceLength: 64 * 1024,
          announce: []
        })
        const seeder = yield* aria2Seeder({ torrent: film.file, dir: src, uploadLimit: 768 * 1024 })
        const url = yield* Daemon.inProcess(join(root, "session"))
        const chrome = yield* browser
        const page = yield* Effect.promise(() => chrome.newPage())
        page.setDefaultTimeout(60_000)
        yield* Effect.promise(() => page.goto(url))
        assert.strictEqual(yield* Effect.promise(() => page.title()), "effect-torrent")

        const magnet = `${Magnet.format(Magnet.fromMetainfo(film.meta))}&x.pe=127.0.0.1:${seeder.port}`
        yield* Effect.promise(() => page.fill("#magnet", magnet))
        yield* Effect.promise(() => page.click("#add-magnet button"))
        const row = page.locator("#torrents tr", { hasText: "film" })
        yield* Effect.promise(() => row.waitFor())
        // The page is never reloaded: what it shows comes from its events and refreshes.
        const shown = Effect.promise(() =>
          row.locator("progress").evaluate((bar) => (bar as unknown as { readonly value: number }).value)
        )
        const rises = (above: number) =>
          waitFor(Effect.map(shown, (value) => value > above), {
            timeoutMillis: 60_000,
            intervalMillis: 100,
            message: () => `the page's progress did not rise above ${above}`
          })
        yield* rises(0.1)
        yield* rises((yield* shown) + 0.2)

        // Its files, and one deselected.
        yield* Effect.promise(() => row.click())
        yield* Effect.promise(() => page.locator("#files tr", { hasText: "notes.txt" }).waitFor())
        yield* Effect.promise(() => page.locator("#files tr", { hasText: "notes.txt" }).locator("input").uncheck())
        yield* Effect.promise(() => page.locator("#peers li", { hasText: `127.0.0.1:${seeder.port}` }).waitFor())
        // Each file links to its stream: a Range of it, fetched by the page while the torrent downloads, is its bytes.
        const link = page.locator("#files tr", { hasText: "film.mkv" }).locator("a")
        const href = yield* Effect.promise(() => link.getAttribute("href"))
        assert.strictEqual(href, "/files/1/0/film.mkv")
        const fetched = yield* Effect.promise(() =>
          page.evaluate(async (path) => {
            const response = await fetch(path, { headers: { range: "bytes=70000-79999" } })
            return { status: response.status, bytes: Array.from(new Uint8Array(await response.arrayBuffer())) }
          }, href!)
        )
        assert.strictEqual(fetched.status, 206)
        const mkv = Fs.readFileSync(join(src, "film", "film.mkv"))
        assert.isTrue(Buffer.from(fetched.bytes).equals(mkv.subarray(70000, 80000)))

        yield* Effect.promise(() => row.locator("button.pause").click())
        yield* Effect.promise(() => row.locator("td", { hasText: /^paused$/ }).waitFor())
        yield* Effect.promise(() => row.locator("button.resume").click())
        yield* Effect.promise(() => row.locator("td", { hasText: /^seeding$/ }).waitFor())
        assert.isTrue(sameBytes(join(src, "film", "film.mkv"), join(root, "session", "downloads", "film", "film.mkv")))
        const detail = yield* Daemon.api<Daemon.Torrent>(url, "torrents/1")
        assert.deepStrictEqual(detail.files!.map((f) => f.priority), ["normal", "skip"])

        Fs.mkdirSync(artifacts, { recursive: true })
        yield* Effect.promise(() => page.screenshot({ path: join(artifacts, "daemon-webui.png"), fullPage: true }))

        yield* Effect.promise(() => row.locator("button.remove").click())
        yield* Effect.promise(() => row.waitFor({ state: "detached" }))
      }),
    { timeout: 180_000 }
  )
})
