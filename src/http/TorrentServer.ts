/**
 * A torrent over HTTP, for browsers and players (Effect's HTTP server on
 * Node's; only the `Range` header is parsed here, in `ByteRange`):
 *
 * - `GET /`: the files as an HTML list (sizes, progress), each linking to its
 *   stream; the playlist and the status.
 * - `GET|HEAD /files/<index>` and `/files/<index>/<name>`: the file's bytes.
 *   `Accept-Ranges: bytes`; one range (`a-b`, `a-`, `-n`) is answered 206 with
 *   `Content-Range`, a range past the end 416, anything else the whole file
 *   (200). `ETag` (strong: the info-hash and the index fix the bytes),
 *   `If-Range`, `If-None-Match`; `Content-Type` from the extension. `<name>`
 *   must be the file's own name (what the links carry, so players see an
 *   extension): anything else, like an index that is no file's, is 404.
 * - `GET /playlist.m3u`: the audio and video files as an M3U playlist.
 * - `GET /status`: the progress as JSON.
 *
 * The bytes come from `Served.stream` as the client reads them; a client
 * that goes away interrupts its stream, which releases what it held.
 *
 * Names come from whoever made the torrent: in HTML they are escaped, and
 * control characters (terminal escapes, line breaks, bidi overrides) are
 * shown as `\xHH`/`\uHHHH`, in the page and in the playlist. The files are
 * served with `Content-Security-Policy: sandbox` and `nosniff`, so an HTML
 * file of the torrent cannot run scripts as this server. Bound to loopback,
 * the server answers only requests whose `Host` is an IP address or
 * `localhost`, so a web page cannot reach it through a DNS name it rebinds
 * to 127.0.0.1.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Effect, Layer, Option, Stream } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse, Mime } from "effect/http"
import * as Http from "node:http"
import * as ByteRange from "./ByteRange.ts"
import { isLoopback } from "./Loopback.ts"
import { Served, type ServedError, type ServedFile } from "./Served.ts"

export interface Options {
  /** The address to listen on (default: 127.0.0.1, this computer only). */
  readonly host?: string | undefined
  /** The TCP port; 0 for any free one. */
  readonly port: number
}

export class TorrentServer extends Context.Service<TorrentServer, {
  /** Where it listens, e.g. `http://127.0.0.1:8000/`. */
  readonly url: string
  readonly port: number
}>()("effect-torrent/http/TorrentServer") {
  /** The server on Node, listening until the layer's scope closes (which ends every response); needs `Served`. */
  static readonly layerNode = (options: Options) => Layer.effect(TorrentServer, make(options))
}

export const make = Effect.fnUntraced(function*(options: Options) {
  const host = options.host ?? "127.0.0.1"
  const context = yield* Layer.build(
    HttpRouter.serve(routes({ loopback: isLoopback(host) }), { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layerServer(() => Http.createServer(), {
        host,
        port: options.port,
        // Players open many connections at once; the default backlog (511) drops some.
        backlog: 1024,
        // Responses still streaming when it closes are cut after this (they may wait for pieces for ever).
        gracefulShutdownTimeout: "1 second"
      }))
    )
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  return TorrentServer.of({
    url: `${HttpServer.formatAddress(address)}/`,
    port: address._tag === "UnixPathAddress" ? 0 : address.port
  })
})

/** The routes, on any HttpServer; `loopback`: refuse Host names other than addresses and localhost. */
export const routes = (options: { readonly loopback: boolean }) =>
  HttpRouter.use(Effect.fnUntraced(function*(router) {
    const served = yield* Served
    const guarded = <E, R>(handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
      options.loopback
        ? Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          hostAllowed(request.headers["host"])
            ? handler
            : Effect.succeed(
              HttpServerResponse.text("use the address (127.0.0.1) or localhost in the URL\n", { status: 403 })
            ))
        : handler
    // `/files/:index/*` is also `/files/:index`, with no name.
    const file = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const params = yield* HttpRouter.params
      return yield* serveFile(served, request, params["index"], params["*"])
    })
    yield* router.add("GET", "/", guarded(index(served)))
    yield* router.add("GET", "/status", guarded(status(served)))
    yield* router.add("GET", "/playlist.m3u", guarded(playlist(served)))
    yield* router.add("GET", "/files/:index/*", guarded(file))
  }))

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

const notFound = HttpServerResponse.text("no such file\n", { status: 404 })

const unavailable = (error: ServedError) =>
  Effect.succeed(HttpServerResponse.text(`${visible(error.message)}\n`, { status: 503 }))

/** "7" → 7; anything but a plain decimal (`-1`, `07`, `1e0`, ` 1`) → undefined. */
const parseIndex = (text: string | undefined): number | undefined =>
  text !== undefined && /^(0|[1-9]\d{0,8})$/.test(text) ? Number(text) : undefined

/** The last path component: the name in the file's URL. */
const baseName = (file: ServedFile): string => file.path[file.path.length - 1] ?? ""

/** Its URL path: `/files/3/movie.mkv`. */
export const filePath = (file: ServedFile): string => `/files/${file.index}/${encodeURIComponent(baseName(file))}`

/** A GET of file `indexText` (named `name`, if given) of `served`, as `/files/<index>/<name>` answers it. */
export const serveFile = (
  served: Served["Service"],
  request: HttpServerRequest.HttpServerRequest,
  indexText: string | undefined,
  name: string | undefined
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.gen(function*() {
    const index = parseIndex(indexText)
    if (index === undefined) return notFound
    const file = (yield* served.files).find((f) => f.index === index)
    if (file === undefined || (name !== undefined && name !== baseName(file))) return notFound
    const etag = `"${served.id}-${file.index}"`
    const headers = {
      "accept-ranges": "bytes",
      etag,
      "content-security-policy": "sandbox",
      "x-content-type-options": "nosniff"
    }
    const ifNoneMatch = request.headers["if-none-match"]
    if (ifNoneMatch !== undefined && matchesAny(ifNoneMatch, etag)) {
      return HttpServerResponse.empty({ status: 304, headers })
    }
    const ifRange = request.headers["if-range"]
    const answer = ifRange !== undefined && ifRange.trim() !== etag
      ? { _tag: "Whole" as const } // the client's copy is not these bytes: all of them
      : ByteRange.parse(request.headers["range"], file.length)
    const contentType = contentTypeOf(baseName(file))
    const body = (start: number, end: number) =>
      served.stream(file.index, { start, end }).pipe(
        Stream.tapError((error) => Effect.logWarning(`HTTP ${request.url}: ${error.message}`))
      )
    switch (answer._tag) {
      case "Unsatisfiable":
        return HttpServerResponse.empty({
          status: 416,
          headers: { ...headers, "content-range": ByteRange.unsatisfiedRange(file.length) }
        })
      case "Whole":
        return file.length === 0
          ? HttpServerResponse.uint8Array(new Uint8Array(0), { contentType, headers })
          : HttpServerResponse.stream(body(0, file.length), { contentType, contentLength: file.length, headers })
      case "Part":
        return HttpServerResponse.stream(body(answer.start, answer.end), {
          status: 206,
          contentType,
          contentLength: answer.end - answer.start,
          headers: { ...headers, "content-range": ByteRange.contentRange(answer, file.length) }
        })
    }
  }).pipe(Effect.catchTag("ServedError", unavailable))

/** Whether an If-None-Match list names `etag` (or is `*`); weak tags compare as strong ones (RFC 9110 §13.1.2). */
const matchesAny = (list: string, etag: string): boolean =>
  list.split(",").some((tag) => {
    const t = tag.trim()
    return t === "*" || t === etag || t === `W/${etag}`
  })

/** Media types the standard table leaves out. */
const mediaTypes: Record<string, string> = {
  mkv: "video/x-matroska",
  mk3d: "video/x-matroska",
  mka: "audio/x-matroska",
  avi: "video/x-msvideo",
  wmv: "video/x-ms-wmv",
  flv: "video/x-flv",
  m4v: "video/mp4",
  flac: "audio/flac",
  wma: "audio/x-ms-wma",
  srt: "application/x-subrip"
}

const contentTypeOf = (name: string): string => {
  const extension = /\.([^.]+)$/.exec(name)?.[1]?.toLowerCase()
  return (extension !== undefined ? mediaTypes[extension] : undefined) ??
    Option.getOrElse(Mime.getType(name), () => "application/octet-stream")
}

const isMedia = (file: ServedFile): boolean => /^(audio|video)\//.test(contentTypeOf(baseName(file)))

// ---------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------

const index = (served: Served["Service"]) =>
  Effect.gen(function*() {
    const name = yield* served.name
    const files = yield* served.files
    const progress = yield* served.progress
    const rows = files.map((file) => {
      const done = progress.files[file.index] ?? 0
      const percent = file.length === 0 ? 100 : Math.floor((done / file.length) * 1000) / 10
      return `<tr><td>${file.index}</td><td><a href="${escapeHtml(filePath(file))}">${
        escapeHtml(visible(file.path.join("/")))
      }</a></td><td>${size(file.length)}</td><td>${percent}%</td></tr>`
    })
    const page = [
      "<!doctype html>",
      `<html><head><meta charset="utf-8"><title>${escapeHtml(visible(name))}</title></head><body>`,
      `<h1>${escapeHtml(visible(name))}</h1>`,
      `<p>${escapeHtml(progress.state)}: ${size(progress.done)} of ${
        size(progress.wanted)
      }, ${progress.peers} peers</p>`,
      "<table><tr><th>#</th><th>file</th><th>size</th><th>done</th></tr>",
      ...rows,
      "</table>",
      `<p><a href="/playlist.m3u">playlist</a> · <a href="/status">status</a></p>`,
      "</body></html>",
      ""
    ].join("\n")
    return HttpServerResponse.text(page, { contentType: "text/html; charset=utf-8" })
  }).pipe(Effect.catchTag("ServedError", unavailable))

const status = (served: Served["Service"]) =>
  Effect.gen(function*() {
    const name = yield* served.name
    const progress = yield* served.progress
    return yield* HttpServerResponse.json({ name, id: served.id, ...progress })
  }).pipe(Effect.orDie)

/** The absolute URL the client reached us by (from its Host header, if it is a plain host), else none. */
const origin = (request: HttpServerRequest.HttpServerRequest): string => {
  const host = request.headers["host"]
  return host !== undefined && /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/.test(host) ? `http://${host}` : ""
}

const playlist = (served: Served["Service"]) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const files = (yield* served.files).filter(isMedia)
    const base = origin(request)
    const lines = [
      "#EXTM3U",
      ...files.flatMap((file) => [`#EXTINF:-1,${visible(baseName(file))}`, base + filePath(file)])
    ]
    return HttpServerResponse.text(`${lines.join("\n")}\n`, { contentType: "audio/x-mpegurl; charset=utf-8" })
  }).pipe(Effect.catchTag("ServedError", unavailable))

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

/** Control characters, line breaks and bidi controls: what must never reach a page, playlist line or terminal raw. */
const unprintable = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g

/** `text` with every unprintable character shown as `\xHH` or `\uHHHH`. */
const visible = (text: string): string =>
  text.replace(unprintable, (c) => {
    const code = c.charCodeAt(0)
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`
  })

const entities: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => entities[c]!)

/** 1536 → "1.5 KiB". */
const size = (bytes: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`
}

/** A Host header naming an address or localhost (any port), or none at all. */
export const hostAllowed = (host: string | undefined): boolean =>
  host === undefined || /^(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/i.test(host)
