/**
 * `npm run bench:stream` (and the end of `npm run bench`): the streaming
 * figures of `effect-torrent serve` (issue 13), on loopback.
 *
 * A BENCH_MIB MiB file (default 1024) in a torrent of 1 MiB pieces
 * (BENCH_PIECE_KIB), seeded by one aria2c on 127.0.0.1 that our CLI (the
 * built one, as users run it) is given with `--peer`.
 *
 * 1. Time to first byte, cold: BENCH_TTFB_RUNS times (default 10), each with
 *    a fresh `serve` process and download folder: once it prints `serving on
 *    URL`, one GET (Node's http) of 64 KiB at a random offset
 *    (`Range: bytes=a-(a+65535)`); the time to the response's head, to its
 *    first body byte and to its last, from the moment the request is made.
 *    The row gives the medians, and every run is printed.
 * 2. Streaming front to back: a fresh `serve`, and from its first line
 *    `curl -o /dev/null URL/files/0` (MiB/s of curl's transfer, its own
 *    timing), against the plain download of the same torrent from the same
 *    seeder (`effect-torrent <torrent>` to completion: MiB/s from process
 *    start to exit, as `npm run bench` measures it, the data verified by
 *    SHA-1), BENCH_RUNS times each (default 3, taking turns). Each row: the
 *    median, every run in brackets. Beside curl's rate: the same bytes over
 *    the time from serve's start, serve's own download rate while streaming
 *    (from its start until /status, polled every 50 ms, says complete: like
 *    the plain download, that includes the final flush to disk), and how
 *    long after that curl ended (a stream keeping up with the download ends
 *    with it, or before the flush is over: then it is negative).
 *
 * Every child leads its own process group and is killed with it; every wait
 * is bounded. Needs aria2c, mktorrent, curl and time (Debian packages).
 */
import { type ChildProcess, execFileSync } from "node:child_process"
import { closeSync, openSync, readSync, rmSync } from "node:fs"
import * as Http from "node:http"
import { join } from "node:path"
import { sha1File, writeData } from "./benchData.ts"
import {
  accepts,
  aria2Seeding,
  each,
  exited,
  freePort,
  killGroup,
  type Measure,
  median,
  printed,
  sleep,
  spawnGroup,
  stop,
  timed,
  within,
  workDir,
  mib,
  runs
} from "./benchRun.ts"

const ttfbRuns = Math.max(1, Number(process.env.BENCH_TTFB_RUNS ?? 10))
const pieceKiB = Number(process.env.BENCH_PIECE_KIB ?? 1024)
const rangeBytes = 64 * 1024
const work = workDir("et-bench-stream-")

const torrentPath = () => join(work, "data.torrent")
const cli = "bin/effect-torrent.js"
const ourFlags = (seederPort: number) => ["--peer", `127.0.0.1:${seederPort}`, "--port", "0", "--no-dht", "--no-lpd"]

// ---------------------------------------------------------------------------
// Our CLI
// ---------------------------------------------------------------------------

interface Serving {
  readonly child: ChildProcess
  /** e.g. http://127.0.0.1:40123/ */
  readonly url: string
  /** performance.now() at spawn and when the address was printed. */
  readonly spawnedAt: number
  readonly servingAt: number
}

/** `effect-torrent serve` into `out` from the seeder, on any free HTTP port; once it has printed its address. */
const startServe = async (out: string, seederPort: number): Promise<Serving> => {
  const spawnedAt = performance.now()
  const child = spawnGroup(process.execPath, [
    cli,
    "serve",
    torrentPath(),
    "-o",
    out,
    "--http-port",
    "0",
    ...ourFlags(seederPort),
    "--quiet"
  ], { stdio: ["ignore", "pipe", "pipe"] })
  const url = await printed(child, /^serving on (http:\/\/127\.0\.0\.1:\d+\/)$/, 30_000, "serve's address").catch(
    async (error) => {
      await stop(child)
      throw error
    }
  )
  return { child, url, spawnedAt, servingAt: performance.now() }
}

/** The plain download (`effect-torrent <torrent>`) under /usr/bin/time, to completion. */
const plainDownload = (out: string, seederPort: number) =>
  timed(process.execPath, [cli, torrentPath(), "-o", out, ...ourFlags(seederPort), "--quiet"], 600_000)

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

interface Timed {
  readonly status: number
  /** Seconds from the request to the response's head, its first body byte, its end. */
  readonly head: number
  readonly first: number
  readonly all: number
  readonly body: Buffer
}

/** One GET with Node's http (a fresh connection), timed. */
const get = (url: string, headers: Record<string, string>, deadlineMs: number) =>
  new Promise<Timed>((resolve, reject) => {
    const t0 = performance.now()
    const seconds = () => (performance.now() - t0) / 1000
    const request = Http.get(url, { headers, agent: false }, (response) => {
      const head = seconds()
      let first: number | undefined
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => {
        first ??= seconds()
        chunks.push(chunk)
      })
      response.on("end", () => {
        clearTimeout(timer)
        resolve({
          status: response.statusCode ?? 0,
          head,
          first: first ?? head,
          all: seconds(),
          body: Buffer.concat(chunks)
        })
      })
      response.on("error", reject)
    })
    const timer = setTimeout(
      () => request.destroy(new Error(`GET ${url}: no full answer within ${deadlineMs / 1000} s`)),
      deadlineMs
    )
    request.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })

interface CurlResult {
  readonly status: number
  readonly bytes: number
  /** curl's own times, in seconds from its start: the first byte, the end. */
  readonly first: number
  readonly total: number
}

/** `curl -o /dev/null URL`, in its own process group, bounded by --max-time. */
const curl = (url: string) => {
  const child = spawnGroup("curl", [
    "--silent",
    "--show-error",
    "--max-time",
    "600",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code} %{size_download} %{time_starttransfer} %{time_total}",
    url
  ], { stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d) => (stdout += d))
  child.stderr!.on("data", (d) => (stderr += d))
  return within(
    exited(child).then((code): CurlResult => {
      const m = /^(\d+) (\d+) ([\d.]+) ([\d.]+)$/.exec(stdout.trim())
      if (code !== 0 || m === null) throw new Error(`curl ${url} failed (${code}): ${stderr.slice(-500)}`)
      return { status: Number(m[1]), bytes: Number(m[2]), first: Number(m[3]), total: Number(m[4]) }
    }),
    610_000,
    `curl ${url}`
  ).catch((error) => {
    killGroup(child)
    throw error
  })
}

// ---------------------------------------------------------------------------
// The runs
// ---------------------------------------------------------------------------

const main = async () => {
  const size = mib * 1024 * 1024
  const pieceLength = pieceKiB * 1024
  if (!Number.isInteger(Math.log2(pieceLength)) || pieceLength < 32 * 1024) {
    throw new Error(`BENCH_PIECE_KIB must be a power of two, at least 32 (got ${pieceKiB})`)
  }
  console.log(
    `effect-torrent stream bench: ${mib} MiB file, ${pieceKiB} KiB pieces, one aria2c seeder on loopback (--peer) (work dir ${work})`
  )
  const seedDir = join(work, "seed")
  const { path: data, sha1: expected } = writeData(seedDir, mib)
  execFileSync("mktorrent", ["-l", String(Math.log2(pieceLength)), "-o", torrentPath(), data], { stdio: "ignore" })

  const seederPort = await freePort()
  const seeder = spawnGroup("aria2c", [...aria2Seeding(seedDir, seederPort), torrentPath()])
  const listening = async () => {
    while (!(await accepts(seederPort))) {
      if (seeder.exitCode !== null) throw new Error(`the aria2c seeder exited (${seeder.exitCode})`)
      await sleep(100)
    }
  }
  await within(listening(), 15_000, `the aria2c seeder on port ${seederPort}`)

  /** The source's bytes at `offset`. */
  const source = (offset: number, length: number) => {
    const buffer = Buffer.alloc(length)
    const at = openSync(data, "r")
    readSync(at, buffer, 0, length, offset)
    closeSync(at)
    return buffer
  }

  // 1. Time to first byte, cold.
  console.log(`\ntime to first byte: GET of ${rangeBytes / 1024} KiB at a random offset, cold (fresh serve and folder)`)
  console.log(
    `${"run".padStart(4)}  ${"offset".padStart(14)}  ${"start-up".padStart(8)}  ${"head".padStart(7)}  ${
      "1st byte".padStart(8)
    }  ${"64 KiB".padStart(7)}`
  )
  const ttfb: Array<Timed> = []
  let ttfbOk = true
  for (let i = 0; i < ttfbRuns; i++) {
    const out = join(work, `out-ttfb-${i}`)
    const offset = Math.floor(Math.random() * (size - rangeBytes + 1))
    const serving = await startServe(out, seederPort)
    try {
      const reply = await get(`${serving.url}files/0`, { range: `bytes=${offset}-${offset + rangeBytes - 1}` }, 60_000)
      const ok = reply.status === 206 && reply.body.equals(source(offset, rangeBytes))
      ttfbOk &&= ok
      ttfb.push(reply)
      console.log(
        `${String(i + 1).padStart(4)}  ${String(offset).padStart(14)}  ${
          ((serving.servingAt - serving.spawnedAt) / 1000).toFixed(2).padStart(7)
        }s  ${reply.head.toFixed(3).padStart(6)}s  ${reply.first.toFixed(3).padStart(7)}s  ${
          reply.all.toFixed(3).padStart(6)
        }s  ${
          ok
            ? `piece ${Math.floor(offset / pieceLength)}`
            : `WRONG ANSWER (status ${reply.status}, ${reply.body.length} bytes)`
        }`
      )
    } finally {
      await stop(serving.child)
      rmSync(out, { recursive: true, force: true })
    }
  }

  // 2. Front to back with curl while it downloads, against the plain download; taking turns.
  const streamed: Array<
    { readonly curl: CurlResult; readonly fromSpawn: number; readonly completeAt: number | undefined }
  > = []
  const plain: Array<Measure> = []
  let streamOk = true
  let plainOk = true
  const streamRun = async () => {
    const out = join(work, "out-stream")
    const serving = await startServe(out, seederPort)
    const since = (t: number) => (t - serving.spawnedAt) / 1000
    // When the download itself completes (by /status), to tell a slower download from a stream lagging behind it.
    // Polled every 50 ms: the time is within 50 ms (plus a request) after it.
    let polling = true
    try {
      const polled = (async () => {
        while (polling) {
          const status = await get(`${serving.url}status`, {}, 10_000).catch(() => undefined)
          const progress = status === undefined ? undefined : JSON.parse(status.body.toString("utf8"))
          if (progress !== undefined && progress.wanted > 0 && progress.done === progress.wanted) {
            return since(performance.now())
          }
          await sleep(50)
        }
        return undefined
      })()
      const result = await curl(`${serving.url}files/0`)
      const fromSpawn = since(performance.now())
      streamOk &&= result.status === 200 && result.bytes === size
      const completeAt = await within(polled, 15_000, "serve's status").catch(() => undefined)
      streamed.push({ curl: result, fromSpawn, completeAt })
    } finally {
      polling = false
      await stop(serving.child)
      rmSync(out, { recursive: true, force: true })
    }
  }
  const plainRun = async () => {
    const out = join(work, "out-plain")
    try {
      plain.push(await plainDownload(out, seederPort))
      plainOk &&= sha1File(join(out, "data.bin")) === expected
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  }
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      await streamRun()
      await plainRun()
    } else {
      await plainRun()
      await streamRun()
    }
  }

  const firstByte = median(ttfb.map((r) => r.first))
  const curlRates = streamed.map((s) => mib / s.curl.total)
  const spawnRates = streamed.map((s) => mib / s.fromSpawn)
  const plainRates = plain.map((m) => mib / m.seconds)
  const share = median(curlRates) / median(plainRates)
  console.log(`\n${"figure".padEnd(40)} ${"median".padStart(12)}  target`)
  console.log(
    `${"first byte of 64 KiB at random offset".padEnd(40)} ${firstByte.toFixed(3).padStart(10)} s  ≤ 1 s: ${
      firstByte <= 1 ? "met" : "MISSED"
    }${ttfbOk ? "" : "  DATA MISMATCH"}${each(ttfb.map((r) => r.first), 3)}`
  )
  console.log(
    `${"all 64 KiB at random offset".padEnd(40)} ${median(ttfb.map((r) => r.all)).toFixed(3).padStart(10)} s${
      each(ttfb.map((r) => r.all), 3)
    }`
  )
  console.log(
    `${"curl front to back while downloading".padEnd(40)} ${
      median(curlRates).toFixed(1).padStart(8)
    } MiB/s  ≥ 90 % of plain: ${(share * 100).toFixed(0)} % ${share >= 0.9 ? "met" : "MISSED"}${
      streamOk ? "" : "  WRONG SIZE OR STATUS"
    }${each(curlRates, 1)}`
  )
  console.log(
    `${"  same, from serve's start".padEnd(40)} ${median(spawnRates).toFixed(1).padStart(8)} MiB/s${
      each(spawnRates, 1)
    }`
  )
  const completes = streamed.flatMap((s) => (s.completeAt === undefined ? [] : [s.completeAt]))
  if (completes.length > 0) {
    const downloadRates = completes.map((t) => mib / t)
    const lags = streamed.flatMap((s) => (s.completeAt === undefined ? [] : [s.fromSpawn - s.completeAt]))
    console.log(
      `${"  serve's download while streaming".padEnd(40)} ${median(downloadRates).toFixed(1).padStart(8)} MiB/s${
        each(downloadRates, 1)
      }  (from its start to complete, by /status)`
    )
    console.log(
      `${"  curl's end after the download's".padEnd(40)} ${median(lags).toFixed(2).padStart(10)} s${each(lags, 2)}`
    )
  }
  console.log(
    `${"  curl's first byte".padEnd(40)} ${median(streamed.map((s) => s.curl.first)).toFixed(3).padStart(10)} s${
      each(streamed.map((s) => s.curl.first), 3)
    }`
  )
  console.log(
    `${"plain download (process start to exit)".padEnd(40)} ${median(plainRates).toFixed(1).padStart(8)} MiB/s  ${
      median(plain.map((m) => m.cpu)).toFixed(2)
    } CPU s${plainOk ? "  data verified" : "  DATA MISMATCH"}${each(plainRates, 1)}`
  )
  if (!ttfbOk || !streamOk || !plainOk) process.exitCode = 1
}

main().then(() => process.exit(), (error) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
