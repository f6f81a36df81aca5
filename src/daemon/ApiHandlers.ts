/**
 * The HTTP API's handlers (`Api`), each a call on the `Session`; and the
 * event stream `GET /api/v1/events` as Server-Sent Events, one `data:` line
 * of JSON per event of the manager (`{ infoHash, event }`).
 */
import { Effect, Layer, Stream } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { Api, BadInput, fieldNames, type TorrentInfo } from "./Api.ts"
import { Session } from "./Session.ts"

/** `fields=name,state` → only those (with id and infoHash); an unknown name is a BadInput. */
const pick = (fields: string) => {
  const names = fields.split(",").map((name) => name.trim()).filter((name) => name !== "")
  const unknown = names.find((name) => !(fieldNames as ReadonlyArray<string>).includes(name))
  if (unknown !== undefined) {
    return Effect.fail(
      new BadInput({ detail: `no field ${JSON.stringify(unknown)}; the fields: ${fieldNames.join(", ")}` })
    )
  }
  const kept = new Set(["id", "infoHash", ...names])
  return Effect.succeed((info: TorrentInfo) =>
    Object.fromEntries(Object.entries(info).filter(([key]) => kept.has(key))) as TorrentInfo
  )
}

const torrents = HttpApiBuilder.group(Api, "torrents", (handlers) =>
  Effect.gen(function*() {
    const session = yield* Session
    return handlers.handleAll({
      // The whole list is answered with the JSON kept for each torrent, not encoded again through the schema
      // (which gives the same JSON: `TorrentInfo` has no transformations); most of the time of listing a thousand.
      list: ({ query: { fields } }) =>
        fields === undefined
          ? Effect.map(session.listJson, (json) => HttpServerResponse.text(json, { contentType: "application/json" }))
          : Effect.gen(function*() {
            const f = yield* pick(fields)
            return (yield* session.list).map(f)
          }),
      add: ({ payload }) =>
        Effect.gen(function*() {
          const given = [payload.torrent, payload.magnet, payload.url].filter((x) => x !== undefined).length
          if (given !== 1) return yield* new BadInput({ detail: "give exactly one of torrent, magnet and url" })
          const source = payload.torrent !== undefined
            ? { _tag: "Torrent" as const, bytes: Buffer.from(payload.torrent, "base64") }
            : payload.url !== undefined
            ? { _tag: "Url" as const, url: payload.url }
            : { _tag: "Magnet" as const, uri: payload.magnet! }
          return yield* session.add(source, payload)
        }),
      get: ({ params }) => session.get(params.id),
      pause: ({ params }) => session.pause(params.id),
      resume: ({ params }) => session.resume(params.id),
      remove: ({ params, query }) => session.remove(params.id, query.deleteFiles === "true"),
      setFiles: ({ params, payload }) => session.setFiles(params.id, payload),
      setLimits: ({ params, payload }) => session.setLimits(params.id, payload),
      peers: ({ params }) => session.peers(params.id)
    })
  }))

const session = HttpApiBuilder.group(Api, "session", (handlers) =>
  Effect.gen(function*() {
    const session = yield* Session
    return handlers.handleAll({
      get: () =>
        Effect.gen(function*() {
          return {
            version: "0.1.0",
            port: session.port,
            downloadDir: session.downloadDir,
            limits: yield* session.limits,
            torrents: (yield* session.list).length
          }
        }),
      setLimits: ({ payload }) => session.setGlobalLimits(payload)
    })
  }))

const create = HttpApiBuilder.group(
  Api,
  "create",
  (handlers) => Effect.map(Session, (session) => handlers.handle("create", ({ payload }) => session.create(payload)))
)

const encoder = new TextEncoder()

/** The manager's events as Server-Sent Events, from the moment the request came, until the client goes. */
const events = HttpRouter.add(
  "GET",
  "/api/v1/events",
  Effect.gen(function*() {
    const session = yield* Session
    const stream = yield* session.subscribe
    return HttpServerResponse.stream(
      Stream.concat(
        // A first comment so the client knows at once it is subscribed.
        Stream.make(encoder.encode(": subscribed\n\n")),
        stream.pipe(Stream.map((event) => encoder.encode(`data: ${JSON.stringify(event)}\n\n`)))
      ),
      { contentType: "text/event-stream", headers: { "cache-control": "no-store" } }
    )
  })
)

/** The API's routes, its OpenAPI document at /api/v1/openapi.json, and the event stream; needs Session. */
export const layer = Layer.mergeAll(
  HttpApiBuilder.layer(Api, { openapiPath: "/api/v1/openapi.json" }).pipe(
    Layer.provide([torrents, create, session])
  ),
  events
)
