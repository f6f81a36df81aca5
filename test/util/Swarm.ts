/**
 * Real peers and trackers for the interop tests, each a resource of the
 * test's scope: child processes (webtorrent, aria2c, opentracker, our own
 * CLI) are stopped (SIGTERM, then SIGKILL) and awaited when it closes.
 * Everything listens on 127.0.0.1 only, on ports picked at random; every wait
 * is bounded and fails with what the process printed.
 */
import { Deferred, Effect } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import type * as Metainfo from "../../src/protocol/Metainfo.ts"
import { tempDir } from "./Files.ts"

export const projectRoot = fileURLToPath(new URL("../..", import.meta.url))

/** Fails the test with `message` (a defect: these are test failures, not domain errors). */
const die = (message: string) => Effect.die(new Error(message))

interface WaitOptions {
  readonly timeoutMillis: number
  readonly intervalMillis?: number
  readonly message: () => string
}

/** Runs `check` every `intervalMillis` until it is true; dies with `message()` after `timeoutMillis`. */
export const waitFor = <E, R>(check: Effect.Effect<boolean, E, R>, options: WaitOptions): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    while (!(yield* check)) yield* Effect.sleep(options.intervalMillis ?? 50)
  }).pipe(Effect.timeoutOrElse({ duration: options.timeoutMillis, orElse: () => die(options.message()) }))

/** `waitFor` with a plain (or promised) check. */
export const waitUntil = (check: () => boolean | Promise<boolean>, options: WaitOptions): Effect.Effect<void> =>
  waitFor(Effect.promise(async () => check()), options)

/** A TCP port that was free a moment ago on 127.0.0.1 (children cannot be handed a bound socket). */
export const freePort: Effect.Effect<number> = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.once("error", (error) => resume(Effect.die(error)))
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Whether something accepts TCP connections on host:port (resolves once our socket is closed). */
const accepts = (port: number, host: string) =>
  new Promise<boolean>((resolve) => {
    let connected = false
    const socket = Net.connect({ host, port })
    socket.once("connect", () => {
      connected = true
      socket.destroy()
    })
    socket.once("error", () => {})
    socket.once("close", () => resolve(connected))
  })

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

export interface Child {
  readonly label: string
  readonly process: ChildProcess
  /** Everything it printed so far (stdout and stderr, last 64 KiB). */
  readonly output: () => string
  /** Resolves with the exit code (or the signal's name) when it exits. */
  readonly exit: Promise<number | string>
  /** Calls `f` with each complete stdout line from now on. */
  readonly onLine: (f: (line: string) => void) => void
}

/** Spawns a child that is stopped and awaited when the scope closes. */
export const spawnChild = (
  label: string,
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string } = {}
) =>
  Effect.acquireRelease(
    Effect.sync((): Child => {
      const child = spawn(command, args, { cwd: options.cwd ?? projectRoot, stdio: ["pipe", "pipe", "pipe"] })
      let output = ""
      const lineListeners: Array<(line: string) => void> = []
      let partial = ""
      const keep = (text: string) => {
        output = (output + text).slice(-65536)
      }
      child.stdout!.setEncoding("utf8").on("data", (text: string) => {
        keep(text)
        const lines = (partial + text).split("\n")
        partial = lines.pop()!
        for (const line of lines) for (const f of lineListeners) f(line)
      })
      child.stderr!.setEncoding("utf8").on("data", keep)
      child.stdin!.on("error", () => {}) // the child may be gone when we close its stdin
      const exit = new Promise<number | string>((resolve) => {
        child.once("error", (error) => {
          keep(`\n[spawn error: ${error.message}]`)
          resolve("spawn-error")
        })
        child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
      })
      return { label, process: child, output: () => output, exit, onLine: (f) => lineListeners.push(f) }
    }),
    stop
  )

/**
 * Our CLI from source (`node --import tsx src/cli/main.ts …args`), not
 * node_modules/.bin/tsx: that one runs the CLI in a child process of its
 * own, which a SIGKILL sent to tsx would leave running.
 */
export const ourCli = (label: string, args: ReadonlyArray<string>) =>
  spawnChild(label, process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args])

export interface Run {
  /** The exit code, or null when a signal ended it. */
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Our CLI from source run to completion (killed after `timeoutMillis`, or if the test is interrupted). */
export const runCli = (args: ReadonlyArray<string>, timeoutMillis = 60_000) =>
  Effect.callback<Run>((resume, signal) => {
    execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
      cwd: projectRoot,
      encoding: "utf8",
      maxBuffer: 16 * 1024 * 1024,
      timeout: timeoutMillis,
      signal
    }, (error, stdout, stderr) => {
      resume(
        Effect.succeed({
          code: error === null ? 0 : typeof error.code === "number" ? error.code : null,
          stdout,
          stderr
        })
      )
    })
  })

/** Our CLI downloading `torrentFile` into `dst` from the peer at `from` only (no DHT, no local discovery). */
export const cliDownload = (
  label: string,
  torrentFile: string,
  dst: string,
  from: { readonly host: string; readonly port: number }
) =>
  Effect.flatMap(
    freePort,
    (port) =>
      ourCli(label, [
        torrentFile,
        "-o",
        dst,
        "--peer",
        `${from.host}:${from.port}`,
        "--port",
        String(port),
        "--quiet",
        "--no-dht",
        "--no-lpd"
      ])
  )

/** The child's exit code (or signal), or dies after `timeoutMillis` with what it printed. */
export const exitOf = (child: Child, timeoutMillis: number) =>
  Effect.promise(() => child.exit).pipe(
    Effect.timeoutOrElse({
      duration: timeoutMillis,
      orElse: () => die(`${child.label} did not exit within ${timeoutMillis} ms:\n${child.output()}`)
    })
  )

/** SIGTERM, then SIGKILL after 3 s; waits for the exit (at most 6 s). */
export const stop = (child: Child) =>
  Effect.promise(async () => {
    const p = child.process
    if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return
    p.stdin?.end()
    p.kill("SIGTERM")
    const killer = setTimeout(() => p.kill("SIGKILL"), 3000)
    const bound = new Promise((resolve) => setTimeout(resolve, 6000).unref())
    await Promise.race([child.exit, bound])
    clearTimeout(killer)
  })

/** Waits for a stdout line that `match` accepts (returns what it returns), or dies. */
export const waitForLine = <A>(child: Child, match: (line: string) => A | undefined, timeoutMillis: number) =>
  Effect.callback<A>((resume) => {
    let done = false
    child.onLine((line) => {
      const value = done ? undefined : match(line)
      if (value !== undefined) {
        done = true
        resume(Effect.succeed(value))
      }
    })
    void child.exit.then((code) => {
      if (!done) resume(die(`${child.label} exited (${code}) before it was ready:\n${child.output()}`))
    })
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeoutMillis,
      orElse: () => die(`${child.label} was not ready within ${timeoutMillis} ms:\n${child.output()}`)
    })
  )

/** Waits until the child accepts TCP connections on `port` (of 127.0.0.1, or `host`), or dies. */
export const waitForPort = (child: Child, port: number, timeoutMillis: number, host = "127.0.0.1") =>
  waitUntil(async () => {
    if (child.process.exitCode !== null || child.process.signalCode !== null) return true
    return accepts(port, host)
  }, {
    timeoutMillis,
    intervalMillis: 100,
    message: () => `${child.label} did not listen on ${port} within ${timeoutMillis} ms:\n${child.output()}`
  }).pipe(
    Effect.andThen(Effect.suspend(() =>
      child.process.exitCode !== null || child.process.signalCode !== null
        ? die(`${child.label} exited before listening on ${port}:\n${child.output()}`)
        : Effect.void
    ))
  )

// ---------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------

export interface Seeder {
  readonly child: Child
  readonly port: number
  /** Bytes it has uploaded, as it last reported (webtorrent: every 100 ms; aria2c: every second). */
  readonly uploaded: () => number
}

/**
 * A webtorrent@1.9.7 seeder (test/util/webtorrent-seeder.cjs) of `torrent`,
 * whose data is under `dir`. Ready once it has verified all of it. With
 * `trackers`, it announces to the torrent's trackers; with `dhtBootstrap`, it
 * runs a DHT node that starts from those (local) nodes and announces there.
 */
export const webtorrentSeeder = (options: {
  readonly torrent: string
  readonly dir: string
  readonly trackers: boolean
  readonly uploadLimit?: number
  readonly dhtBootstrap?: ReadonlyArray<string>
  /** Message stream encryption on (webtorrent's `secure`). */
  readonly secure?: boolean
  /** uTP on (utp-native, on the TCP port's number). */
  readonly utp?: boolean
}) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const child = yield* spawnChild(`webtorrent seeder :${port}`, process.execPath, [
      fileURLToPath(new URL("./webtorrent-seeder.cjs", import.meta.url)),
      JSON.stringify({ ...options, port })
    ])
    const ready = yield* waitForLine(child, (line) => {
      try {
        return JSON.parse(line) as { ready: boolean; progress: number }
      } catch {
        return undefined
      }
    }, 30_000)
    if (!ready.ready) return yield* die(`webtorrent has only ${ready.progress} of the data:\n${child.output()}`)
    let uploaded = 0
    const firstTypes = Deferred.makeUnsafe<ReadonlyArray<string>>()
    child.onLine((line) => {
      const report = /^\{"uploaded":(\d+)\}$/.exec(line)
      if (report !== null) uploaded = Number(report[1])
      if (!line.startsWith("{\"types\":")) return
      const { types } = JSON.parse(line) as { types: ReadonlyArray<string> }
      if (types.length > 0) Deferred.doneUnsafe(firstTypes, Effect.succeed(types))
    })
    const seeder: Seeder = { child, port, uploaded: () => uploaded }
    /**
     * `connected`: the kinds of its first connections ("tcpIncoming",
     * "utpIncoming"…), once it has any. The report may come after a quick
     * download is over, and the connection gone: it is kept, not polled.
     */
    const connected = Deferred.await(firstTypes).pipe(
      Effect.timeoutOrElse({
        duration: 30_000,
        orElse: () => die(`webtorrent reported no connection within 30 s:\n${child.output()}`)
      })
    )
    return { ...seeder, connected }
  })

/**
 * An aria2c seeder of `torrent` (data under `dir`, not re-checked). aria2c
 * takes no peer address, so leechers find it through the torrent's tracker.
 */
/** aria2c downloading `torrent` into `dir` from whom the torrent's trackers name (only loopback, no DHT, LPD or PEX), then exiting. */
export const aria2Leecher = (
  options: {
    readonly torrent: string
    readonly dir: string
    /** More aria2c options (e.g. --bt-require-crypto=true). */
    readonly extraArgs?: ReadonlyArray<string>
    /** The port it listens on for peers (default: a free one). */
    readonly port?: number
  }
) =>
  Effect.gen(function*() {
    const port = options.port ?? (yield* freePort)
    return yield* spawnChild("aria2c leecher", "aria2c", [
      `--dir=${options.dir}`,
      `--listen-port=${port}`,
      "--interface=127.0.0.1",
      "--disable-ipv6=true",
      "--enable-dht=false",
      "--bt-enable-lpd=false",
      "--enable-peer-exchange=false",
      "--seed-time=0",
      "--summary-interval=0",
      "--console-log-level=warn",
      ...(options.extraArgs ?? []),
      options.torrent
    ])
  })

export const aria2Seeder = (
  options: {
    readonly torrent: string
    readonly dir: string
    readonly uploadLimit?: number
    /** On ::1 instead of 127.0.0.1 (peers and trackers over IPv6). */
    readonly ipv6?: boolean
    /** An IPv6 DHT node (on ::1) to join with aria2c's own, which then announces the torrent there (implies `ipv6`). */
    readonly dht6EntryPoint?: { readonly host: string; readonly port: number }
    /** More aria2c options (e.g. --bt-require-crypto=true). */
    readonly extraArgs?: ReadonlyArray<string>
  }
) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const entry = options.dht6EntryPoint
    const host = options.ipv6 === true || entry !== undefined ? "::1" : "127.0.0.1"
    const dht6Port = entry === undefined ? undefined : yield* freePort
    const dht6 = entry === undefined ? ["--enable-dht6=false"] : [
      "--enable-dht6=true",
      "--dht-listen-addr6=::1",
      `--dht-listen-port=${dht6Port}`,
      `--dht-file-path6=${join(yield* tempDir("aria2c-dht6"), "dht6.dat")}`,
      `--dht-entry-point6=[${entry.host}]:${entry.port}`
    ]
    const child = yield* spawnChild(`aria2c seeder ${host === "::1" ? "[::1]" : ""}:${port}`, "aria2c", [
      "--bt-seed-unverified=true",
      "--check-integrity=false",
      `--dir=${options.dir}`,
      `--listen-port=${port}`,
      `--interface=${host}`,
      `--disable-ipv6=${host === "127.0.0.1"}`,
      "--enable-dht=false",
      ...dht6,
      "--bt-enable-lpd=false",
      "--enable-peer-exchange=false",
      "--seed-ratio=0.0",
      "--summary-interval=1",
      "--console-log-level=warn",
      "--auto-save-interval=0",
      "--bt-save-metadata=false",
      "--rpc-save-upload-metadata=false",
      "--allow-overwrite=false",
      ...(options.uploadLimit !== undefined ? [`--max-upload-limit=${options.uploadLimit}`] : []),
      ...(options.extraArgs ?? []),
      options.torrent
    ])
    yield* waitForPort(child, port, 15_000, host)
    // Its once-a-second summary shows "UL:<rate>(<total>)".
    let uploaded = 0
    child.onLine((line) => {
      const total = /UL:[^(]*\(([\d.]+)(B|KiB|MiB|GiB)\)/.exec(line)
      if (total !== null) uploaded = Number(total[1]) * 1024 ** ["B", "KiB", "MiB", "GiB"].indexOf(total[2]!)
    })
    return { child, port, uploaded: () => uploaded, dht6Port } satisfies Seeder & { dht6Port: number | undefined }
  })

// ---------------------------------------------------------------------------
// Trackers
// ---------------------------------------------------------------------------

export interface TrackerUrls {
  readonly http: string
  readonly udp: string
}

/** The announce URLs of a tracker on 127.0.0.1:port (HTTP and UDP on the same number). */
export const trackerUrls = (port: number): TrackerUrls => ({
  http: `http://127.0.0.1:${port}/announce`,
  udp: `udp://127.0.0.1:${port}/announce`
})

/**
 * opentracker on 127.0.0.1:port, HTTP and UDP. Debian builds it in
 * whitelist mode, so it serves only the given torrents; it chroots into
 * `dir` (made world-readable: it drops to `nobody`) and reads its whitelist there.
 */
export const opentracker = (options: {
  readonly port: number
  readonly dir: string
  readonly torrents: ReadonlyArray<Metainfo.Metainfo>
}) =>
  Effect.gen(function*() {
    yield* Effect.sync(() => {
      Fs.chmodSync(options.dir, 0o755)
      Fs.writeFileSync(join(options.dir, "whitelist"), options.torrents.map((t) => `${t.infoHash}\n`).join(""), {
        mode: 0o644
      })
    })
    const port = String(options.port)
    const child = yield* spawnChild(`opentracker :${port}`, "opentracker", [
      "-i",
      "127.0.0.1",
      "-p",
      port,
      "-P",
      port,
      "-d",
      options.dir,
      "-w",
      "/whitelist"
    ])
    yield* waitForPort(child, options.port, 10_000)
    return trackerUrls(options.port)
  })

/** An HTTP GET on a fresh connection (no agent), body as bytes; resolves once the connection is closed. */
const get = (url: string) =>
  new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    let result: { status: number; body: Buffer } | undefined
    const request = Http.get(url, { agent: false, headers: { connection: "close" }, timeout: 5000 }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => {
        result = { status: response.statusCode ?? 0, body: Buffer.concat(chunks) }
        request.destroy()
      })
    })
    request.on("timeout", () => request.destroy(new Error("scrape timed out")))
    request.on("error", () => {})
    request.on("close", () => (result === undefined ? reject(new Error(`GET ${url} failed`)) : resolve(result)))
  })

export interface Swarm {
  /** Seeders. */
  readonly complete: number
  /** Leechers. */
  readonly incomplete: number
}

/** What the tracker knows of the torrent's swarm, by HTTP scrape (BEP 48); zeros if it knows nothing or fails. */
export const scrape = async (announceUrl: string, meta: Metainfo.Metainfo): Promise<Swarm> => {
  const hash = InfoHash.toBytes(meta.infoHash)
  const query = [...hash].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")
  const url = `${announceUrl.replace(/\/announce$/, "/scrape")}?info_hash=${query}`
  const none = { complete: 0, incomplete: 0 }
  try {
    const { body, status } = await get(url)
    if (status !== 200) return none
    const decoded = Bencode.decode(body)
    if (decoded._tag === "Failure") return none
    const files = (decoded.success as { files?: Record<string, Partial<Swarm>> }).files
    const entry = files === undefined ? undefined : Object.values(files)[0]
    return { complete: entry?.complete ?? 0, incomplete: entry?.incomplete ?? 0 }
  } catch {
    return none
  }
}

/** Waits until the tracker lists at least `count` seeders of the torrent (so our first announce finds them). */
export const waitForSeeders = (announceUrl: string, meta: Metainfo.Metainfo, count: number, timeoutMillis = 20_000) => {
  let last = 0
  return waitUntil(async () => (last = (await scrape(announceUrl, meta)).complete) >= count, {
    timeoutMillis,
    intervalMillis: 200,
    message: () => `the tracker at ${announceUrl} lists ${last} seeders after ${timeoutMillis} ms, not ${count}`
  })
}
