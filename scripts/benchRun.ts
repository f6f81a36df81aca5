/**
 * What the benchmark scripts share: a work folder and the children they
 * start (each leads its own process group, killed with it when the script
 * exits, the folder removed), bounded waits, commands timed by
 * /usr/bin/time, and the figures of a row (median, every run, met or
 * MISSED).
 */
import { Effect } from "effect"
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import type * as Metainfo from "../src/protocol/Metainfo.ts"
import { TorrentManager } from "../src/TorrentManager.ts"

/** What every bench reads: the data's size in MiB (BENCH_MIB, default 1 GiB) and the runs of each download (BENCH_RUNS, default 3). */
export const mib = Number(process.env.BENCH_MIB ?? 1024)
export const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))
/**
 * The node that runs our built CLI (BENCH_NODE, default this one): users run
 * Node >= 22, where the CLI also caps V8's young generation (see the `bin`).
 */
export const ourNode = process.env.BENCH_NODE ?? process.execPath
/** Which Node runs our CLI, for the benches' headers. */
export const ourNodeVersion = (): string => execFileSync(ourNode, ["--version"], { encoding: "utf8" }).trim()

// ---------------------------------------------------------------------------
// Children and the work folder
// ---------------------------------------------------------------------------

const children = new Set<ChildProcess>()

/** SIGKILL to the child's process group (it leads one: see `spawnGroup`). */
export const killGroup = (child: ChildProcess) => {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
  } catch {
    // already gone
  }
}

/**
 * A fresh folder under the system's temporary one. At exit (normal, SIGINT
 * or SIGTERM) every child's group still known is killed and the folder removed.
 */
export const workDir = (prefix: string) => {
  const work = mkdtempSync(join(tmpdir(), prefix))
  process.on("exit", () => {
    for (const child of children) killGroup(child)
    rmSync(work, { recursive: true, force: true })
  })
  process.on("SIGINT", () => process.exit(130))
  process.on("SIGTERM", () => process.exit(143))
  return work
}

/** A child leading its own process group (it and what it starts are killed together), known until it exits. */
export const spawnGroup = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly stdio?: StdioOptions; readonly env?: NodeJS.ProcessEnv } = {}
) => {
  const child = spawn(command, args, {
    stdio: options.stdio ?? "ignore",
    env: options.env === undefined ? process.env : { ...process.env, ...options.env },
    detached: true
  })
  children.add(child)
  // The group is gone with its leader as long as nothing in it outlives it; a leftover is still killed at exit.
  child.once("exit", () => {
    try {
      process.kill(-child.pid!, 0)
    } catch {
      children.delete(child)
    }
  })
  return child
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** `promise`, or a failure naming `what` after `ms`. */
export const within = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

/**
 * What `pattern`'s first group matches in the first line of the child's
 * stdout that matches it (an address it prints once it listens), within
 * `ms`; fails if the child exits first (with the end of its stderr). Its
 * stdout is read on after.
 */
export const printed = (child: ChildProcess, pattern: RegExp, ms: number, what: string) => {
  let stderr = ""
  child.stderr?.on("data", (d) => (stderr += d))
  const lines = createInterface({ input: child.stdout! })
  return within(
    new Promise<string>((resolve, reject) => {
      lines.on("line", (line) => {
        const match = pattern.exec(line)
        if (match !== null) resolve(match[1]!)
      })
      child.once("exit", (code) => reject(new Error(`${what}: the child exited (${code}): ${stderr.slice(-500)}`)))
    }),
    ms,
    what
  )
}

/** Resolves with the exit code (null when killed by a signal) once the child has exited. */
export const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode)
    child.once("exit", (code) => resolve(code))
  })

/** Kills the child's group and waits (bounded) until it is gone. */
export const stop = async (child: ChildProcess) => {
  killGroup(child)
  await within(exited(child), 10_000, `stopping pid ${child.pid}`)
  children.delete(child)
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** CPU seconds a process has used so far, every thread (Linux: /proc/<pid>/stat, utime + stime in 1/100 s). */
export const cpuOf = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "latin1").replace(/^.*\) /, "").split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

// ---------------------------------------------------------------------------
// Timed commands
// ---------------------------------------------------------------------------

export interface Measure {
  /** Wall seconds from /usr/bin/time's start of the command to its exit. */
  readonly seconds: number
  /** User + system CPU seconds. */
  readonly cpu: number
  readonly rssMiB: number
}

export interface Timed {
  /** /usr/bin/time, leading the command's process group. */
  readonly child: ChildProcess
  /** Date.now() just before the spawn. */
  readonly launchedAt: number
  /** Settles when the command exits: 0, or after `stop()`; any other exit, or the deadline, fails it. */
  readonly result: Promise<Measure>
  /** SIGINT to the command (time's child), a clean stop after which time reports; SIGKILL to the group after 15 s. */
  readonly stop: () => Promise<Measure>
}

/** Starts a command under /usr/bin/time, its output ignored, in its own process group, killed at `deadlineMs`. */
export const startTimed = (
  command: string,
  args: ReadonlyArray<string>,
  deadlineMs: number,
  env?: NodeJS.ProcessEnv
): Timed => {
  const launchedAt = Date.now()
  const child = spawnGroup("/usr/bin/time", ["-f", "TIME %e %U %S %M", command, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    ...(env === undefined ? {} : { env })
  })
  let stderr = ""
  let stopped = false
  child.stderr!.on("data", (d) => (stderr += d))
  const timer = setTimeout(() => killGroup(child), deadlineMs)
  const result = new Promise<Measure>((resolve, reject) =>
    child.once("exit", (code) => {
      clearTimeout(timer)
      const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(stderr)
      if ((code !== 0 && !stopped) || m === null) {
        return reject(new Error(`${command} ${args.join(" ")} failed (${code}): ${stderr.slice(-500)}`))
      }
      resolve({ seconds: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), rssMiB: Number(m[4]) / 1024 })
    })
  )
  const stop = () => {
    stopped = true
    execFileSync("pkill", ["-INT", "-P", String(child.pid)])
    const hard = setTimeout(() => killGroup(child), 15_000)
    return result.finally(() => clearTimeout(hard))
  }
  return { child, launchedAt, result, stop }
}

/** A command under /usr/bin/time, to its exit. */
export const timed = (command: string, args: ReadonlyArray<string>, deadlineMs: number, env?: NodeJS.ProcessEnv) =>
  startTimed(command, args, deadlineMs, env).result

// ---------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------

export const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** Every run's value in brackets, when there is more than one. */
export const each = (values: ReadonlyArray<number>, digits: number) =>
  values.length > 1 ? `  (${values.map((v) => v.toFixed(digits)).join(" ")})` : ""

export const verdict = (met: boolean) => (met ? "met" : "MISSED")

/** A download measured: its time, our CPU seconds (this process, every thread) and the other side's. */
export interface Download {
  readonly seconds: number
  readonly cpu: number
  readonly otherCpu: number
}

/**
 * Our download of `meta` from the seeder at 127.0.0.1:`seeder.port`
 * (process `seeder.pid`), with the TorrentManager provided: its time, our
 * CPU and the seeder's meanwhile.
 */
export const timedDownload = (meta: Metainfo.Metainfo, seeder: { readonly port: number; readonly pid: number }) =>
  Effect.gen(function*() {
    const torrents = yield* TorrentManager
    const cpu = process.cpuUsage()
    const seederCpu = cpuOf(seeder.pid)
    const start = performance.now()
    const handle = yield* torrents.add(meta, { peers: [{ host: "127.0.0.1", port: seeder.port }] })
    yield* handle.completed.pipe(Effect.timeout("10 minutes"))
    const used = process.cpuUsage(cpu)
    return {
      seconds: (performance.now() - start) / 1000,
      cpu: (used.user + used.system) / 1e6,
      otherCpu: cpuOf(seeder.pid) - seederCpu
    } satisfies Download
  }).pipe(Effect.scoped)

/**
 * A table of downloads of `mib` MiB, a line per row: the median rate, the
 * median CPU of ours and (in brackets) of the other side, as `cpu` puts
 * them (with their unit), and every run's rate; then whether every
 * download's data was verified (the exit code is 1 when not).
 */
export const printDownloads = (
  title: string,
  rows: ReadonlyArray<{ readonly label: string; readonly measures: ReadonlyArray<Download> }>,
  cpu: { readonly unit: string; readonly of: (seconds: number) => string },
  verified: boolean
) => {
  console.log(title)
  for (const row of rows) {
    const rates = row.measures.map((m) => mib / m.seconds)
    const ours = cpu.of(median(row.measures.map((m) => m.cpu)))
    const other = cpu.of(median(row.measures.map((m) => m.otherCpu)))
    console.log(
      `  ${row.label.padEnd(24)} ${median(rates).toFixed(1).padStart(7)} MiB/s  ${
        ours.padStart(6)
      } ${cpu.unit} (${other})  (${rates.map((rate) => rate.toFixed(1)).join(" ")})`
    )
  }
  console.log(verified ? "data verified after every run" : "DATA MISMATCH")
  if (!verified) process.exitCode = 1
}

/**
 * A bench script's entry: `--seed <args>` runs `seed` (the script as its own
 * seeder process), else `main`; the process exits when it is done, with 1
 * and the reason on a failure.
 */
export const entry = (main: () => Promise<void>, seed: (args: ReadonlyArray<string>) => Promise<unknown>) => {
  const args = process.argv.slice(2)
  const run = args[0] === "--seed" ? () => seed(args.slice(1)) : main
  run().then(() => process.exit(), (error) => {
    console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  })
}

// ---------------------------------------------------------------------------
// aria2c
// ---------------------------------------------------------------------------

/** No way to peers but a tracker or the ones given (no DHT, LPD or PEX), and quiet. */
const aria2Alone = [
  "--enable-dht=false",
  "--enable-dht6=false",
  "--bt-enable-lpd=false",
  "--enable-peer-exchange=false",
  "--summary-interval=0",
  "--console-log-level=error"
]

/** An aria2c seeder's flags: the data under `dir` taken as it is (not checked), on 127.0.0.1:`port`, until stopped. */
export const aria2Seeding = (dir: string, port: number) => [
  "--bt-seed-unverified=true",
  "--check-integrity=false",
  `--dir=${dir}`,
  `--listen-port=${port}`,
  "--interface=127.0.0.1",
  "--disable-ipv6=true",
  "--seed-ratio=0.0",
  ...aria2Alone
]

/** An aria2c leecher's flags: into `dir`, listening on `port`, exiting once complete. */
export const aria2Leeching = (dir: string, port: number) => [
  `--dir=${dir}`,
  `--listen-port=${port}`,
  "--seed-time=0",
  "--file-allocation=none",
  ...aria2Alone
]
