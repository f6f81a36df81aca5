/**
 * Each torrent's files over HTTP on the daemon's server, as
 * `effect-torrent serve` serves one torrent's (`TorrentServer.serveFile`:
 * ranges, ETags, the file's own name in the URL), at
 * `/files/<torrent>/<index>/<name>`, `<torrent>` being its number or
 * info-hash. The web page links every file there, so a browser plays it
 * while it downloads; the Guard checks these requests like any other.
 */
import { Effect } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { serveFile } from "../http/TorrentServer.ts"
import { Session } from "./Session.ts"

/** The files' route; needs Session. */
export const layer = HttpRouter.use(Effect.fnUntraced(function*(router) {
  const session = yield* Session
  yield* router.add(
    "GET",
    "/files/:id/:index/*",
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const params = yield* HttpRouter.params
      const served = yield* session.served(params["id"] ?? "")
      return yield* serveFile(served, request, params["index"], params["*"])
    }).pipe(
      Effect.catchTag(
        "TorrentNotFound",
        (error) => Effect.succeed(HttpServerResponse.text(`${error.message}\n`, { status: 404 }))
      )
    )
  )
}))
