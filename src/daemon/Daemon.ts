/**
 * The daemon: one TorrentManager whose session (`Session`) is kept in a
 * folder and restored on start, a watched folder (`Watch`), and one HTTP
 * server for everything that drives it, each request through the `Guard`
 * first:
 *
 * - `/api/v1/...`: the typed API (`Api`, `ApiHandlers`), its OpenAPI
 *   document and its event stream;
 * - `/transmission/rpc`: Transmission's RPC (`TransmissionRpc`);
 * - `/`: the web page (`WebUi`);
 * - `/files/<torrent>/<index>/<name>`: each torrent's files, with ranges
 *   (`Streaming`), for players and the page's links;
 * - `/metrics`: Prometheus metrics (`Metrics`).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import * as Http from "node:http"
import { isLoopback } from "../http/Loopback.ts"
import * as ApiHandlers from "./ApiHandlers.ts"
import * as Guard from "./Guard.ts"
import * as Metrics from "./Metrics.ts"
import * as Session from "./Session.ts"
import * as Streaming from "./Streaming.ts"
import * as TransmissionRpc from "./TransmissionRpc.ts"
import * as Watch from "./Watch.ts"
import * as WebUi from "./WebUi.ts"

export interface Options {
  /** Where the HTTP server listens (default 127.0.0.1). */
  readonly host: string
  /** Its TCP port; 0 for any free one. */
  readonly port: number
  /** `USER:PASS`: HTTP basic authentication for every request. */
  readonly auth?: string | undefined
  /** A folder whose .torrent files are added. */
  readonly watch?: string | undefined
  /** The largest request body, in bytes (default 16 MiB: a 10 MiB .torrent in base64, with room). */
  readonly maxBodyBytes?: number | undefined
}

/**
 * The daemon until interrupted: its session restored from `session.dir`, the
 * server started, then `onStart` with its address. Needs TorrentManager,
 * FileSystem and Path.
 */
export const run = <E, R>(
  options: Options & { readonly session: Session.Options },
  onStart: (url: string) => Effect.Effect<void, E, R>
) =>
  Effect.gen(function*() {
    yield* onStart(yield* start(options))
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(Session.Session.layer(options.session)))

/** Starts the server (and the watched folder) in the caller's scope; its address, e.g. `http://127.0.0.1:9091/`. Needs Session. */
export const start = Effect.fnUntraced(function*(options: Options) {
  const routes = Layer.mergeAll(
    ApiHandlers.layer,
    TransmissionRpc.layer,
    WebUi.layer,
    Streaming.layer,
    Metrics.layer,
    Guard.layer({
      loopback: isLoopback(options.host),
      auth: options.auth,
      maxBodyBytes: options.maxBodyBytes ?? 16 * 1024 * 1024
    })
  )
  const context = yield* Layer.build(
    HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provide(NodeHttpServer.layerHttpServices),
      Layer.provideMerge(NodeHttpServer.layerServer(() => Http.createServer(), {
        host: options.host,
        port: options.port,
        // Event streams never end by themselves: they are cut after this when the daemon stops.
        gracefulShutdownTimeout: "1 second"
      })),
      Layer.provide(Layer.succeed(Session.Session, yield* Session.Session))
    )
  )
  if (options.watch !== undefined) yield* Watch.run(options.watch)
  const address = Context.get(context, HttpServer.HttpServer).address
  return `${HttpServer.formatAddress(address)}/`
})
