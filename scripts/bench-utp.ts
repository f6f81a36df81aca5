/**
 * `npm run bench:utp` (and the end of `npm run bench`): uTP's rate and CPU on
 * loopback, against TCP.
 *
 * A BENCH_MIB MiB file (default 1024, 1 MiB pieces), downloaded into our
 * library in this process (`TorrentManager.layerNode` with `utp: "only"`, or
 * `disable` for TCP):
 *
 * 1. from another effect-torrent process (this script with `--seed`), over
 *    uTP and over TCP, BENCH_RUNS times each (default 3, taking turns);
 * 2. from a webtorrent@1.9.7 seeder (utp-native) over uTP, once;
 * 3. and seeded by our library to a webtorrent@1.9.7 leecher dialling us over
 *    uTP, once (timed until it has every byte).
 *
 * Each row: the median rate (every rate in brackets), our CPU seconds per
 * GiB (this process, all its threads) and the other side's CPU seconds per
 * GiB; downloads are checked by SHA-1, the leecher's file too.
 */
import { Effect, References } from "effect"
import { execFileSync, type ChildProcess } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import type * as Utp from "../src/peer/Utp.ts"
import * as Metainfo from "../src/protocol/Metainfo.ts"
import { TorrentManager } from "../src/TorrentManager.ts"
import { sha1File, writeData } from "./benchData.ts"
import {
  cpuOf,
  entry,
  freePort,
  type Download,
  mib,
  printDownloads,
  runs,
  spawnGroup,
  timedDownload,
  workDir
} from "./benchRun.ts"

const perGiB = (cpu: number) => (cpu * 1024) / mib

/** A child in its own process group; resolves with the first stdout line `match` accepts. */
const spawnUntil = <A>(args: ReadonlyArray<string>, match: (line: string) => A | undefined, what: string) =>
  new Promise<{ readonly value: A; readonly pid: number; readonly child: ChildProcess }>((resolve, reject) => {
    const child = spawnGroup(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] })
    const timer = setTimeout(() => reject(new Error(`${what} did not report within 10 minutes`)), 600_000)
    let out = ""
    child.stdout!.setEncoding("utf8").on("data", (text: string) => {
      out += text
      for (const line of out.split("\n")) {
        const value = match(line)
        if (value !== undefined) {
          clearTimeout(timer)
          return resolve({ value, pid: child.pid!, child })
        }
      }
    })
    child.once("exit", (code) => reject(new Error(`${what} exited (${code})`)))
  })

/** Runs `effect` with our library (uTP by `utp`), logging only errors. */
const manager =
  (downloadDir: string, port: number, utp: Utp.Policy) => <A, E>(effect: Effect.Effect<A, E, TorrentManager>) =>
    effect.pipe(
      Effect.provide(TorrentManager.layerNode({ downloadDir, port, listenHost: "127.0.0.1", utp })),
      Effect.provideService(References.MinimumLogLevel, "Error")
    )

const download = (meta: Metainfo.Metainfo, out: string, seeder: { port: number; pid: number }, utp: Utp.Policy) =>
  timedDownload(meta, seeder).pipe(manager(out, 0, utp))

/** Seeder mode (`bench-utp.ts --seed <torrent> <dir> <policy>`): prints `ready <port>` once checked, seeds until killed. */
const seed = (torrentFile: string, dir: string, utp: Utp.Policy) =>
  Effect.gen(function*() {
    const meta = yield* Effect.fromResult(Metainfo.decode(readFileSync(torrentFile)))
    const port = yield* Effect.promise(freePort)
    return yield* Effect.gen(function*() {
      const handle = yield* (yield* TorrentManager).add(meta, { seed: true })
      yield* handle.completed
      process.stdout.write(`ready ${port}\n`)
      return yield* Effect.never
    }).pipe(Effect.scoped, manager(dir, port, utp))
  })

const readyPort = (line: string) => {
  const ready = /^ready (\d+)/.exec(line)
  return ready === null ? undefined : Number(ready[1])
}

const json = <A>(key: string) => (line: string): A | undefined => {
  try {
    const value = JSON.parse(line) as Record<string, A>
    return key in value ? value[key] : undefined
  } catch {
    return undefined
  }
}

const webtorrent = (script: string, options: object) => [
  join("test", "util", script),
  JSON.stringify(options)
]

const main = async () => {
  const work = workDir("et-bench-utp-")
  const seedDir = join(work, "seed")
  const { path: data, sha1: expected } = writeData(seedDir, mib)
  const torrent = join(work, "data.torrent")
  execFileSync("mktorrent", ["-l", "20", "-o", torrent, data], { stdio: "ignore" })
  const decoded = Metainfo.decode(readFileSync(torrent))
  if (decoded._tag === "Failure") throw new Error("mktorrent made a torrent we cannot read")
  const meta = decoded.success
  const script = ["--import", "tsx", "scripts/bench-utp.ts", "--seed", torrent, seedDir]
  const ours = {
    only: await spawnUntil([...script, "only"], readyPort, "our uTP seeder"),
    disable: await spawnUntil([...script, "disable"], readyPort, "our TCP seeder")
  }
  const rows: Array<{ label: string; measures: Array<Download> }> = [
    { label: "uTP ← effect-torrent", measures: [] },
    { label: "TCP ← effect-torrent", measures: [] }
  ]
  let ok = true
  const out = join(work, "out")
  const run = async (utp: Utp.Policy, seeder: { port: number; pid: number }) => {
    rmSync(out, { recursive: true, force: true })
    const measure = await Effect.runPromise(download(meta, out, seeder, utp))
    ok &&= sha1File(join(out, "data.bin")) === expected
    return measure
  }
  for (let i = 0; i < runs; i++) {
    for (const r of i % 2 === 0 ? [0, 1] : [1, 0]) {
      const seeder = r === 0 ? ours.only : ours.disable
      rows[r]!.measures.push(await run(r === 0 ? "only" : "disable", { port: seeder.value, pid: seeder.pid }))
    }
  }
  for (const seeder of Object.values(ours)) process.kill(-seeder.pid, "SIGKILL")

  const port = await freePort()
  const webSeeder = await spawnUntil(
    webtorrent("webtorrent-seeder.cjs", { torrent, dir: seedDir, port, trackers: false, utp: true }),
    json<boolean>("ready"),
    "the webtorrent seeder"
  )
  rows.push({ label: "uTP ← webtorrent", measures: [await run("only", { port, pid: webSeeder.pid })] })
  process.kill(-webSeeder.pid, "SIGKILL")

  // Ours seeding to a webtorrent leecher that dials us over uTP.
  const leecherDir = join(work, "webtorrent")
  const uploaded = await Effect.runPromise(
    Effect.gen(function*() {
      const torrents = yield* TorrentManager
      const handle = yield* torrents.add(meta, { seed: true })
      yield* handle.completed
      const cpu = process.cpuUsage()
      const start = performance.now()
      const leecher = yield* Effect.promise(() =>
        spawnUntil(
          webtorrent("webtorrent-leecher.cjs", {
            torrent,
            dir: leecherDir,
            port,
            peers: [`127.0.0.1:${torrents.port}`],
            utp: true
          }),
          (line) => line.startsWith("{\"done\":true") ? true : undefined,
          "the webtorrent leecher"
        )
      )
      const used = process.cpuUsage(cpu)
      return {
        seconds: (performance.now() - start) / 1000,
        cpu: (used.user + used.system) / 1e6,
        otherCpu: cpuOf(leecher.pid)
      } satisfies Download
    }).pipe(Effect.scoped, manager(seedDir, 0, "prefer"))
  )
  ok &&= sha1File(join(leecherDir, "data.bin")) === expected
  rows.push({ label: "uTP → webtorrent", measures: [uploaded] })

  printDownloads(
    `effect-torrent uTP bench: ${mib} MiB on loopback; rate, our CPU s/GiB (the other side's), every rate`,
    rows,
    { unit: "CPU s/GiB", of: (cpu) => perGiB(cpu).toFixed(1) },
    ok
  )
}

entry(main, (args) => Effect.runPromise(seed(args[0]!, args[1]!, args[2] as Utp.Policy)))
