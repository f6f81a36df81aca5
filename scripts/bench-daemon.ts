/**
 * The daemon with 1,000 torrents (`npm run bench:daemon`; run `npm run
 * build` first, `npm run bench` does): `effect-torrent daemon` (the built
 * CLI, a child process on 127.0.0.1, no DHT or LPD) gets 1,000 one-piece
 * torrents nobody has through its API (so they all run, waiting for peers);
 * then `GET /api/v1/torrents` is timed `BENCH_LIST_RUNS` times (default 50,
 * one at a time, after 5 untimed), and the daemon's RSS read. It is then
 * killed (SIGKILL) and started again on the same folder: the restart is
 * timed from the spawn until the API lists all 1,000. Targets (issue 14):
 * listing in < 100 ms, restoring in < 5 s.
 */
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { loadavg } from "node:os"
import { join } from "node:path"
import * as Bencode from "../src/protocol/Bencode.ts"
import { printed, spawnGroup, stop, verdict, workDir } from "./benchRun.ts"

const count = 1000
const listRuns = Math.max(1, Number(process.env.BENCH_LIST_RUNS ?? 50))
const cli = "bin/effect-torrent.js"
const work = workDir("bench-daemon-")
const session = join(work, "session")

/** `effect-torrent daemon` on any free port, once it prints its address. */
const startDaemon = async () => {
  const child = spawnGroup(process.execPath, [
    cli,
    "daemon",
    "--dir",
    session,
    "--rpc-port",
    "0",
    "--port",
    "0",
    "--no-dht",
    "--no-lpd"
  ], { stdio: ["ignore", "pipe", "pipe"] })
  const url = await printed(child, /^daemon on (http:\/\/\S+\/)$/, 60_000, "the daemon's address")
  return { child, url }
}

const tinyTorrent = (i: number) =>
  Buffer.from(Bencode.encode({
    info: { name: `t${i}.bin`, length: 16384, "piece length": 16384, pieces: randomBytes(20) }
  })).toString("base64")

const call = async (url: string, init?: RequestInit) => {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) })
  const body = await response.text()
  if (!response.ok) throw new Error(`${init?.method ?? "GET"} ${url}: ${response.status} ${body}`)
  return body
}

/** Resident memory of the process, from /proc (Linux). */
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

const main = async () => {
  const load = loadavg().map((l) => l.toFixed(2)).join(" ")
  const first = await startDaemon()
  const api = `${first.url}api/v1/torrents`
  const addStarted = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < count) {
      const i = next++
      await call(api, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ torrent: tinyTorrent(i) })
      })
    }
  }))
  const addSeconds = (performance.now() - addStarted) / 1000
  const listed = JSON.parse(await call(api)) as ReadonlyArray<unknown>
  if (listed.length !== count) throw new Error(`listed ${listed.length} torrents, not ${count}`)

  for (let i = 0; i < 5; i++) await call(api)
  const times: Array<number> = []
  let bytes = 0
  for (let i = 0; i < listRuns; i++) {
    const started = performance.now()
    bytes = (await call(api)).length
    times.push(performance.now() - started)
  }
  times.sort((a, b) => a - b)
  const rss = rssMiB(first.child.pid!)
  await stop(first.child)

  const restarted = performance.now()
  const second = await startDaemon()
  const startedSeconds = (performance.now() - restarted) / 1000
  const restored = JSON.parse(await call(`${second.url}api/v1/torrents`)) as ReadonlyArray<unknown>
  const restoreSeconds = (performance.now() - restarted) / 1000
  if (restored.length !== count) throw new Error(`restored ${restored.length} torrents, not ${count}`)
  const rssRestarted = rssMiB(second.child.pid!)
  await stop(second.child)

  const median = percentile(times, 50)
  console.log(`daemon with ${count} torrents (load average before: ${load}; ${listRuns} listings of ${bytes} bytes)`)
  console.log(`${"figure".padEnd(44)} ${"value".padStart(12)}  target`)
  console.log(`${"added through the API (16 at a time)".padEnd(44)} ${`${addSeconds.toFixed(1)} s`.padStart(12)}`)
  console.log(
    `${"GET /api/v1/torrents, median".padEnd(44)} ${`${median.toFixed(1)} ms`.padStart(12)}  < 100 ms: ${
      verdict(median < 100)
    }`
  )
  const p95 = percentile(times, 95)
  console.log(`${"GET /api/v1/torrents, p95".padEnd(44)} ${`${p95.toFixed(1)} ms`.padStart(12)}`)
  console.log(
    `${"restart: spawn to all listed".padEnd(44)} ${`${restoreSeconds.toFixed(2)} s`.padStart(12)}  < 5 s: ${
      verdict(restoreSeconds < 5)
    }  (address printed after ${startedSeconds.toFixed(2)} s)`
  )
  console.log(`${"daemon RSS with the torrents".padEnd(44)} ${`${rss.toFixed(0)} MiB`.padStart(12)}`)
  console.log(`${"daemon RSS just after the restart".padEnd(44)} ${`${rssRestarted.toFixed(0)} MiB`.padStart(12)}`)
}

main().then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
