/**
 * Our daemon as a child process (`effect-torrent daemon`, from source, as
 * users run it) for the daemon's tests, and its HTTP API called with
 * Node's fetch. Everything on 127.0.0.1, every wait bounded.
 */
import { Effect, Layer } from "effect"
import { join } from "node:path"
import * as Daemon from "../../src/daemon/Daemon.ts"
import { Session } from "../../src/daemon/Session.ts"
import { managerLayer } from "./Leecher.ts"
import { type Child, ourCli, waitFor, waitForLine } from "./Swarm.ts"

export interface Running {
  readonly child: Child
  /** Its address, e.g. `http://127.0.0.1:PORT/`. */
  readonly url: string
}

/** `effect-torrent daemon --dir DIR --rpc-port 0 --port 0 --no-dht --no-lpd ...args`, once it prints its address. */
export const start = (label: string, dir: string, args: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const child = yield* ourCli(label, [
      "daemon",
      "--dir",
      dir,
      "--rpc-port",
      "0",
      "--port",
      "0",
      "--no-dht",
      "--no-lpd",
      ...args
    ])
    const url = yield* waitForLine(child, (line) => /^daemon on (http:\/\/\S+\/)$/.exec(line)?.[1], 60_000)
    return { child, url } satisfies Running
  })

/**
 * The daemon in this process, in the test's scope: its session in `dir`,
 * downloads in `dir/downloads`, the server on 127.0.0.1 (any port), no DHT
 * or local discovery. Its address.
 */
export const inProcess = (dir: string, options: Partial<Daemon.Options> = {}) =>
  Effect.gen(function*() {
    const downloadDir = join(dir, "downloads")
    const context = yield* Layer.build(
      Session.layer({ dir, downloadDir }).pipe(
        Layer.provideMerge(managerLayer(downloadDir, { dht: false, localDiscovery: false }))
      )
    )
    return yield* Daemon.start({ host: "127.0.0.1", port: 0, ...options }).pipe(Effect.provideContext(context))
  })

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: string
  /** The body's bytes (what `body` decodes as UTF-8). */
  readonly bytes: Buffer
}

/** An HTTP request to the daemon (JSON when `json` is given), its reply; 30 s at most. */
export const request = (
  url: string,
  options: {
    readonly method?: string
    readonly json?: unknown
    readonly headers?: Record<string, string>
  } = {}
) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(url, {
      method: options.method ?? (options.json === undefined ? "GET" : "POST"),
      headers: { ...(options.json === undefined ? {} : { "content-type": "application/json" }), ...options.headers },
      ...(options.json === undefined ? {} : { body: JSON.stringify(options.json) }),
      signal: AbortSignal.timeout(30_000)
    })
    const bytes = Buffer.from(await response.arrayBuffer())
    return { status: response.status, headers: response.headers, body: bytes.toString("utf8"), bytes }
  })

/** The API's JSON answer; dies unless the status is `status` (default 200). */
export const api = <A = unknown>(
  base: string,
  path: string,
  options: Parameters<typeof request>[1] & { readonly status?: number } = {}
) =>
  Effect.flatMap(request(`${base}api/v1/${path}`, options), (reply) =>
    reply.status === (options.status ?? 200)
      ? Effect.sync(() => (reply.body === "" ? undefined : JSON.parse(reply.body)) as A)
      : Effect.die(new Error(`${options.method ?? "GET"} ${path}: ${reply.status} ${reply.body}`)))

export interface Torrent {
  readonly id: number
  readonly infoHash: string
  readonly name: string
  readonly paused: boolean
  readonly state: string
  readonly done: number
  readonly wanted: number
  readonly downloaded: number
  readonly limits: { readonly upload: number; readonly download: number }
  readonly files?: ReadonlyArray<{ readonly index: number; readonly priority: string; readonly done: number }>
}

/** Polls torrent `id` until `check` holds; dies after `timeoutMillis` with its last state. */
export const waitForTorrent = (
  base: string,
  id: string | number,
  check: (t: Torrent) => boolean,
  timeoutMillis: number,
  headers: Record<string, string> = {}
) => {
  let last: Torrent | undefined
  return waitFor(
    Effect.map(api<Torrent>(base, `torrents/${id}`, { headers }), (t) => check(last = t)),
    {
      timeoutMillis,
      intervalMillis: 200,
      message: () => `torrent ${id} did not get there within ${timeoutMillis} ms: ${JSON.stringify(last)}`
    }
  ).pipe(Effect.andThen(Effect.sync(() => last!)))
}
