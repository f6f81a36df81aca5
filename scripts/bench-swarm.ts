/**
 * `npm run bench:swarm` (and part of `npm run bench`): the swarm of issue
 * 16, on loopback. Every torrent is announced to an opentracker over HTTP
 * (Debian's, in whitelist mode, chrooted into a world-readable folder).
 *
 * 1. Completion from one aria2c seeder: a BENCH_MIB MiB file (default 1024)
 *    in torrents of each piece size in BENCH_PIECES_KIB (default
 *    "256,512,1024"); effect-torrent (the built CLI) and aria2c leech in
 *    turns, BENCH_RUNS times each (default 3, the first client alternating),
 *    each after a `sync`.
 *    Completion time: from launch to the client's own hook, a script that
 *    appends `date +%s.%N` to a file (our `--on-done`, aria2c's
 *    `--on-bt-download-complete`: both run once the data is complete and
 *    verified); for us also to process exit. CPU seconds and peak RSS from
 *    /usr/bin/time. The row: medians (every run in brackets), our time over
 *    aria2c's (≤ 1 the floor, ≤ ⅔ the goal), our CPU over aria2c's (≤ 2×),
 *    our peak RSS (≤ 100 MiB).
 * 2. effect-torrent → effect-torrent: the aria2c seeder stopped, one of our
 *    `seed` processes (once it has checked the data and announced) and our
 *    leecher, same tracker and torrent, BENCH_RUNS times: MiB/s to the
 *    leecher's `--on-done`, the leecher's CPU and the seeder's (from /proc,
 *    during that download), target ≥ 400 MiB/s.
 * 3. Start-up: `effect-torrent info X.torrent` (the 1 GiB torrent of the
 *    largest pieces) and `effect-torrent --help`, 10 times each: median wall
 *    time and highest peak RSS, target ≤ 0.25 s.
 * 4. Many torrents: BENCH_TORRENTS files (default 50) of BENCH_TORRENT_MIB
 *    MiB each (default 64), a torrent each (256 KiB pieces), all seeded by
 *    one aria2c and downloaded by one effect-torrent process given every
 *    .torrent: wall time to exit, CPU, peak RSS (target ≤ 200 MiB).
 *
 * Every download is checked by SHA-1. Every child leads its own process
 * group and is killed with it; every wait is bounded. Needs opentracker,
 * aria2c, mktorrent and time (Debian packages); run `npm run build` first.
 */
import { type ChildProcess, execFileSync } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as Metainfo from "../src/protocol/Metainfo.ts"
import { scrape } from "../test/util/Swarm.ts"
import { sha1File, writeData } from "./benchData.ts"
import {
  accepts,
  aria2Leeching,
  aria2Seeding,
  cpuOf,
  each,
  exited,
  freePort,
  type Measure,
  median,
  sleep,
  spawnGroup,
  startTimed,
  stop,
  type Timed,
  verdict,
  within,
  workDir,
  mib,
  ourNode,
  ourNodeVersion,
  runs
} from "./benchRun.ts"

const piecesKiB = (process.env.BENCH_PIECES_KIB ?? "256,512,1024").split(",").map(Number)
const torrentCount = Math.max(1, Number(process.env.BENCH_TORRENTS ?? 50))
const torrentMib = Number(process.env.BENCH_TORRENT_MIB ?? 64)
const startupRuns = 10
const work = workDir("et-bench-swarm-")
const cli = "bin/effect-torrent.js"
const ourFlags = ["--port", "0", "--quiet", "--no-dht", "--no-lpd"]

// ---------------------------------------------------------------------------
// The tracker, torrents, hooks
// ---------------------------------------------------------------------------

const decode = (torrent: string) => {
  const result = Metainfo.decode(readFileSync(torrent))
  if (result._tag === "Failure") throw new Error(`${torrent}: ${result.failure.message}`)
  return result.success
}

/** mktorrent of `data` in 2^log2 byte pieces, announced to `announce`; its metainfo. */
const makeTorrent = (data: string, log2: number, announce: string, torrent: string) => {
  execFileSync("mktorrent", ["-l", String(log2), "-a", announce, "-o", torrent, data], { stdio: "ignore" })
  return decode(torrent)
}

/** opentracker on 127.0.0.1:`port` (HTTP and UDP) serving the torrents of `hashes`, chrooted into `dir`. */
const startTracker = async (dir: string, port: number, metas: ReadonlyArray<Metainfo.Metainfo>) => {
  mkdirSync(dir, { recursive: true })
  chmodSync(dir, 0o755) // it drops to nobody
  writeFileSync(join(dir, "whitelist"), metas.map((m) => `${m.infoHash}\n`).join(""), { mode: 0o644 })
  const child = spawnGroup("opentracker", [
    "-i",
    "127.0.0.1",
    "-p",
    String(port),
    "-P",
    String(port),
    "-d",
    dir,
    "-w",
    "/whitelist"
  ])
  await untilTrue(() => accepts(port), child, 10_000, `opentracker on port ${port}`)
  return child
}

/** Polls `check` every 100 ms until true, failing after `ms` or when `child` exits. */
const untilTrue = (
  check: () => Promise<boolean> | boolean,
  child: ChildProcess | undefined,
  ms: number,
  what: string
) =>
  within(
    (async () => {
      while (!(await check())) {
        if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
          throw new Error(`${what}: the process exited (${child.exitCode ?? child.signalCode})`)
        }
        await sleep(100)
      }
    })(),
    ms,
    what
  )

/** Seeders the tracker lists for the torrent. */
const seeders = async (announce: string, meta: Metainfo.Metainfo) => (await scrape(announce, meta)).complete

const hook = join(work, "done.sh")
let hookRuns = 0

/** A fresh file for the hook script to append to, as the environment it reads it from. */
const hookFile = () => {
  const file = join(work, `done-${++hookRuns}`)
  return { file, env: { BENCH_DONE_FILE: file } }
}

/** Date.now() of the hook's first line, waiting (bounded) for it to be written. */
const hookTime = async (file: string) => {
  await untilTrue(() => existsSync(file) && readFileSync(file, "utf8").includes("\n"), undefined, 5000, `hook ${file}`)
  return Number(readFileSync(file, "utf8").split("\n")[0]) * 1000
}

// ---------------------------------------------------------------------------
// Downloads
// ---------------------------------------------------------------------------

type Client = "effect-torrent" | "aria2c"

interface Run {
  readonly measure: Measure
  /** Seconds from launch to the completion hook. */
  readonly complete: number
  readonly ok: boolean
}

/** One download of `torrent` into `out` by `client`, timed to its hook and its exit, the file checked. */
const download = async (client: Client, torrent: string, out: string, expected: string): Promise<Run> => {
  rmSync(out, { recursive: true, force: true })
  // Every run starts with nothing left to write back (the seed's data, the last run's file): the
  // kernel's writeback otherwise takes the CPU of whichever client comes next.
  execFileSync("sync")
  const done = hookFile()
  const run = client === "effect-torrent"
    ? startTimed(ourNode, [cli, torrent, "-o", out, ...ourFlags, "--on-done", hook], 600_000, done.env)
    : startTimed(
      "aria2c",
      [...aria2Leeching(out, await freePort()), `--on-bt-download-complete=${hook}`, torrent],
      600_000,
      done.env
    )
  const measure = await run.result
  const complete = ((await hookTime(done.file)) - run.launchedAt) / 1000
  const ok = sha1File(join(out, "data.bin")) === expected
  rmSync(out, { recursive: true, force: true })
  return { measure, complete, ok }
}

/** The process /usr/bin/time runs (its only child). */
const timedPid = (timed: Timed) => {
  const pid = timed.child.pid!
  return Number(readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ")[0])
}

/** Stops an aria2c (SIGTERM: it tells the tracker it leaves), bounded; then its group. */
const stopAria2 = async (child: ChildProcess) => {
  child.kill("SIGTERM")
  await within(exited(child), 15_000, "aria2c stopping").catch(() => undefined)
  await stop(child)
}

// ---------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------

const seconds = (values: ReadonlyArray<number>) => `${median(values).toFixed(2).padStart(6)} s${each(values, 2)}`
const verified = (ok: boolean) => {
  if (!ok) process.exitCode = 1
  return ok ? "data verified" : "DATA MISMATCH"
}

const clientRow = (label: string, results: ReadonlyArray<Run>, exit: boolean) =>
  console.log(
    `  ${label.padEnd(16)} to done ${seconds(results.map((r) => r.complete))}${
      exit ? `   to exit ${seconds(results.map((r) => r.measure.seconds))}` : ""
    }   ${median(results.map((r) => r.measure.cpu)).toFixed(2)} CPU s   ${
      Math.max(...results.map((r) => r.measure.rssMiB)).toFixed(0)
    } MiB peak RSS   ${verified(results.every((r) => r.ok))}`
  )

const main = async () => {
  const disk = statfsSync(work)
  const needMiB = Math.max(mib * 2, torrentCount * torrentMib * 2) + 512
  if ((disk.bavail * disk.bsize) / 2 ** 20 < needMiB) {
    throw new Error(`${work} has less than the ${needMiB} MiB free these runs need (BENCH_MIB, BENCH_TORRENT_MIB)`)
  }
  for (const kib of piecesKiB) {
    if (!Number.isInteger(Math.log2(kib)) || kib < 16) throw new Error(`BENCH_PIECES_KIB: ${kib} is not a power of two`)
  }
  writeFileSync(hook, "#!/bin/sh\ndate +%s.%N >> \"$BENCH_DONE_FILE\"\n", { mode: 0o755 })
  console.log(
    `effect-torrent swarm bench (${ourNodeVersion()}): opentracker (HTTP) and one aria2c seeder on 127.0.0.1, ${mib} MiB in ${
      piecesKiB.join(", ")
    } KiB pieces, ${runs} run(s) each, taking turns (work dir ${work})`
  )

  // The one file, a torrent per piece size, the tracker serving them all.
  const seedDir = join(work, "seed")
  const { path: data, sha1: expected } = writeData(seedDir, mib)
  const trackerPort = await freePort()
  const announce = `http://127.0.0.1:${trackerPort}/announce`
  const torrents = piecesKiB.map((kib) => {
    const torrent = join(work, `data-${kib}.torrent`)
    return { kib, torrent, meta: makeTorrent(data, Math.log2(kib * 1024), announce, torrent) }
  })
  const tracker = await startTracker(join(work, "tracker"), trackerPort, torrents.map((t) => t.meta))

  // 3. Start-up, first, while nothing else of ours runs.
  const startup = async (args: ReadonlyArray<string>) => {
    const measures: Array<Measure> = []
    for (let i = 0; i < startupRuns; i++) {
      measures.push(await startTimed(ourNode, [cli, ...args], 30_000).result)
    }
    return measures
  }
  const largest = torrents.reduce((a, b) => (b.kib > a.kib ? b : a))
  const info = await startup(["info", largest.torrent])
  const help = await startup(["--help"])

  const swarm: Array<{ kib: number; ours: Array<Run>; theirs: Array<Run> }> = []
  const loopback: Array<{ kib: number; leeches: Array<Run>; seederCpu: Array<number>; seeder: Measure }> = []
  for (const { kib, torrent, meta } of torrents) {
    // 1. From one aria2c seeder, taking turns.
    const seeder = spawnGroup("aria2c", [...aria2Seeding(seedDir, await freePort()), torrent])
    await untilTrue(
      async () => (await seeders(announce, meta)) >= 1,
      seeder,
      20_000,
      "the aria2c seeder's announce"
    )
    const results = { "effect-torrent": [] as Array<Run>, aria2c: [] as Array<Run> }
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? (["effect-torrent", "aria2c"] as const) : (["aria2c", "effect-torrent"] as const)
      for (const client of order) results[client].push(await download(client, torrent, join(work, "out"), expected))
    }
    swarm.push({ kib, ours: results["effect-torrent"], theirs: results.aria2c })

    // 2. Our seeder instead, once it has checked the data and the tracker lists it.
    await stopAria2(seeder)
    const gone = await untilTrue(
      async () => (await seeders(announce, meta)) === 0,
      undefined,
      10_000,
      "the stopped aria2c seeder"
    ).then(() => 0, () => seeders(announce, meta))
    const ready = hookFile()
    const ours = startTimed(
      ourNode,
      [cli, "seed", torrent, "-o", seedDir, ...ourFlags, "--on-done", hook],
      1_800_000,
      ready.env
    )
    try {
      await untilTrue(() => existsSync(ready.file), ours.child, 600_000, "our seeder's check of the data")
      // A seeder the tracker still lists from before only hides ours from the count: go on after 20 s.
      await untilTrue(async () => (await seeders(announce, meta)) > gone, ours.child, 20_000, "our seeder's announce")
        .catch((error) => {
          if (ours.child.exitCode !== null) throw error
          console.log(`(${kib} KiB: the tracker's count of seeders stayed at ${gone}; going on)`)
        })
      const seed = timedPid(ours)
      const leeches: Array<Run> = []
      const seederCpu: Array<number> = []
      for (let i = 0; i < runs; i++) {
        const before = cpuOf(seed)
        leeches.push(await download("effect-torrent", torrent, join(work, "out"), expected))
        seederCpu.push(cpuOf(seed) - before)
      }
      loopback.push({ kib, leeches, seederCpu, seeder: await ours.stop() })
    } catch (error) {
      await stop(ours.child)
      throw error
    }
  }
  await stop(tracker)
  rmSync(seedDir, { recursive: true, force: true })

  // 4. Many torrents: one aria2c seeding all, one effect-torrent downloading all.
  const manySeed = join(work, "many-seed")
  const manyPort = await freePort()
  const manyAnnounce = `http://127.0.0.1:${manyPort}/announce`
  const many = Array.from({ length: torrentCount }, (_, i) => {
    const name = `data-${String(i).padStart(3, "0")}.bin`
    const file = writeData(manySeed, torrentMib, name)
    const torrent = join(work, `${name}.torrent`)
    return { name, sha1: file.sha1, torrent, meta: makeTorrent(file.path, 18, manyAnnounce, torrent) }
  })
  const manyTracker = await startTracker(join(work, "many-tracker"), manyPort, many.map((t) => t.meta))
  const manySeeder = spawnGroup("aria2c", [
    ...aria2Seeding(manySeed, await freePort()),
    `--max-concurrent-downloads=${torrentCount}`,
    ...many.map((t) => t.torrent)
  ])
  const listed = async () => {
    for (const t of many) if ((await seeders(manyAnnounce, t.meta)) < 1) return false
    return true
  }
  await untilTrue(listed, manySeeder, 60_000, "the aria2c seeder's announces of every torrent")
  const manyOut = join(work, "many-out")
  const manyRun = await startTimed(
    ourNode,
    [cli, ...many.map((t) => t.torrent), "-o", manyOut, ...ourFlags],
    1_800_000
  ).result
  const manyOk = many.every((t) => sha1File(join(manyOut, t.name)) === t.sha1)
  await stopAria2(manySeeder)
  await stop(manyTracker)

  // The figures.
  console.log(`\n1. completion from one aria2c seeder (launch to the completion hook; ours also to exit)`)
  for (const { kib, ours, theirs } of swarm) {
    console.log(`${kib} KiB pieces`)
    clientRow("effect-torrent", ours, true)
    clientRow("aria2c", theirs, false)
    const time = median(ours.map((r) => r.complete)) / median(theirs.map((r) => r.complete))
    const cpu = median(ours.map((r) => r.measure.cpu)) / median(theirs.map((r) => r.measure.cpu))
    const rss = Math.max(...ours.map((r) => r.measure.rssMiB))
    console.log(
      `  ours / aria2c's  time ${time.toFixed(2)} (≤ 1: ${verdict(time <= 1)}; ≤ 0.67: ${
        verdict(time <= 2 / 3)
      })   CPU ${cpu.toFixed(2)}× (≤ 2×: ${verdict(cpu <= 2)})   peak RSS ${rss.toFixed(0)} MiB (≤ 100 MiB: ${
        verdict(rss <= 100)
      })`
    )
  }
  console.log(`\n2. effect-torrent → effect-torrent (our seed process, our leecher, the same tracker)`)
  for (const { kib, leeches, seederCpu, seeder } of loopback) {
    const rates = leeches.map((r) => mib / r.complete)
    console.log(
      `${`${kib} KiB pieces`.padEnd(16)} ${median(rates).toFixed(1).padStart(7)} MiB/s to done   leecher ${
        median(leeches.map((r) => r.measure.cpu)).toFixed(2)
      } CPU s, ${Math.max(...leeches.map((r) => r.measure.rssMiB)).toFixed(0)} MiB   seeder ${
        median(seederCpu).toFixed(2)
      } CPU s while sending, ${seeder.rssMiB.toFixed(0)} MiB   ≥ 400 MiB/s: ${verdict(median(rates) >= 400)}   ${
        verified(leeches.every((r) => r.ok))
      }${each(rates, 1)}`
    )
  }
  console.log(`\n3. start-up (median wall time of ${startupRuns}, highest peak RSS)`)
  for (const [label, measures] of [["info X.torrent", info], ["--help", help]] as const) {
    const wall = median(measures.map((m) => m.seconds))
    console.log(
      `${label.padEnd(16)} ${wall.toFixed(2).padStart(6)} s   ${
        Math.max(...measures.map((m) => m.rssMiB)).toFixed(0)
      } MiB peak RSS   ≤ 0.25 s: ${verdict(wall <= 0.25)}${each(measures.map((m) => m.seconds), 2)}`
    )
  }
  console.log(
    `\n4. ${torrentCount} torrents of ${torrentMib} MiB (256 KiB pieces), one aria2c seeding all, one effect-torrent downloading all`
  )
  console.log(
    `${"effect-torrent".padEnd(16)} ${manyRun.seconds.toFixed(2).padStart(6)} s to exit (${
      ((torrentCount * torrentMib) / manyRun.seconds).toFixed(1)
    } MiB/s)   ${manyRun.cpu.toFixed(2)} CPU s   ${manyRun.rssMiB.toFixed(0)} MiB peak RSS   ≤ 200 MiB: ${
      verdict(manyRun.rssMiB <= 200)
    }   ${verified(manyOk)}`
  )
}

main().then(() => process.exit(), (error) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
