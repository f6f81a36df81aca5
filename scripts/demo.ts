/**
 * `npm run demo`: a whole swarm on loopback, no internet needed.
 *
 * Makes 64 MiB of sample data in a temp folder (two files in a folder), starts
 * a local bittorrent-tracker and a webtorrent@1.9.7 seeder, then runs the
 * effect-torrent CLI on the .torrent with its live progress display. The CLI
 * finds the seeder through the tracker, downloads, verifies every piece, and
 * the demo checks the files are identical to the originals.
 */
import { Server } from "bittorrent-tracker"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import WebTorrent from "webtorrent"

const work = mkdtempSync(join(tmpdir(), "effect-torrent-demo-"))
const source = join(work, "seed", "sample")
mkdirSync(source, { recursive: true })
writeFileSync(join(source, "video.bin"), randomBytes(48 * 1024 * 1024 + 12345))
writeFileSync(
  join(source, "notes.txt"),
  "effect-torrent demo: these bytes came over BitTorrent on 127.0.0.1\n".repeat(1000)
)

const tracker = new Server({ http: true, udp: false, ws: false, stats: false })
tracker.on("warning", () => {})
await new Promise<void>((resolve) => {
  tracker.once("listening", () => resolve())
  tracker.listen(0, { http: "127.0.0.1", udp: "127.0.0.1", udp6: "::1" })
})
const announce = `http://127.0.0.1:${(tracker.http.address() as { port: number }).port}/announce`

const seeder = new WebTorrent({ dht: false, lsd: false, webSeeds: false, torrentPort: 0 })
const torrentFile = join(work, "sample.torrent")
await new Promise<void>((resolve) =>
  seeder.seed(source, { announce: [announce], pieceLength: 256 * 1024 }, (torrent: { torrentFile: Uint8Array }) => {
    writeFileSync(torrentFile, torrent.torrentFile)
    resolve()
  })
)
console.log(`tracker ${announce}; webtorrent seeding; now: effect-torrent ${torrentFile}\n`)

const out = join(work, "download")
const code = await new Promise<number | null>((resolve) => {
  const cli = spawn(process.execPath, ["bin/effect-torrent.js", torrentFile, "-o", out, "--no-dht", "--no-lpd"], {
    stdio: "inherit"
  })
  cli.on("exit", resolve)
})
const same = ["video.bin", "notes.txt"].every((name) =>
  readFileSync(join(source, name)).equals(readFileSync(join(out, "sample", name)))
)
console.log(code === 0 && same ? "\ndemo ok: downloaded files are identical to the seeded ones" : "\ndemo FAILED")
seeder.destroy()
tracker.close(() => {})
rmSync(work, { recursive: true, force: true })
process.exit(code === 0 && same ? 0 : 1)
