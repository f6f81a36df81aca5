/**
 * Adding a torrent by its URL, from a real HTTP server on 127.0.0.1
 * (node:http): through the API (`url`) and Transmission's `torrent-add`
 * (`filename`). A .torrent is fetched (after a redirect too); a 404, a loop
 * of redirects, a body that is no .torrent, one too large (declared, or sent
 * without a length) and a port where nothing listens are each refused with
 * a 422 `UrlFailed` naming the problem, and nothing is added.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import { join } from "node:path"
import * as Client from "../../src/daemon/Client.ts"
import { maxBytes } from "../../src/daemon/FetchTorrent.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as Daemon from "../util/Daemon.ts"
import { deterministicBytes, tempDir } from "../util/Files.ts"

const torrentFile = (name: string) =>
  Buffer.from(Bencode.encode({
    info: { name, length: 16384, "piece length": 16384, pieces: deterministicBytes(20, name.length) }
  }))

/** The server, closed with the scope: its base URL. */
const server = (handler: Http.RequestListener) =>
  Effect.acquireRelease(
    Effect.callback<Http.Server>((resume) => {
      const s = Http.createServer(handler)
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.callback<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((s) => `http://127.0.0.1:${(s.address() as Net.AddressInfo).port}`))

/** A port on 127.0.0.1 where nothing listens (a server's, closed). */
const closedPort = Effect.scoped(
  Effect.map(server((_, response) => response.end()), (url) => url)
)

const one = torrentFile("one.bin")
const two = torrentFile("two.bin")

const files: Http.RequestListener = (request, response) => {
  switch (request.url) {
    case "/one.torrent":
      return response.writeHead(200, { "content-type": "application/x-bittorrent" }).end(one)
    case "/two.torrent":
      return response.writeHead(200).end(two)
    case "/moved":
      return response.writeHead(302, { location: "/two.torrent" }).end()
    case "/loop":
      return response.writeHead(302, { location: "/loop" }).end()
    case "/garbage":
      return response.writeHead(200).end("<html>not a torrent</html>")
    case "/declared": // a length over the limit: refused before the body is read
      response.writeHead(200, { "content-length": String(maxBytes + 1) })
      return response.end(Buffer.alloc(maxBytes + 1))
    case "/endless": { // no length, and more than the limit: read until over the limit, then dropped
      response.writeHead(200)
      response.on("error", () => {})
      let left = 3 * maxBytes
      const write = () => {
        while (left > 0) {
          left -= 1024 * 1024
          if (!response.write(Buffer.alloc(1024 * 1024))) return response.once("drain", write)
        }
        response.end()
      }
      return write()
    }
    default:
      return response.writeHead(404).end("no such file")
  }
}

describe("daemon: adding by URL", () => {
  it.live(
    "the API and Transmission's torrent-add fetch .torrent files; each failure is a 422 naming its problem",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-url")
        const base = yield* server(files)
        const url = yield* Daemon.inProcess(join(root, "session"))

        const added = yield* Daemon.api<Daemon.Torrent>(url, "torrents", { json: { url: `${base}/one.torrent` } })
        assert.strictEqual(added.infoHash, Result.getOrThrow(Metainfo.decode(one)).infoHash)
        assert.strictEqual(added.name, "one.bin")

        const refused = (path: string) =>
          Effect.map(
            Daemon.request(`${url}api/v1/torrents`, { json: { url: path.startsWith("http") ? path : base + path } }),
            (reply) => {
              assert.strictEqual(reply.status, 422, reply.body)
              return JSON.parse(reply.body) as { _tag: string; problem: string; url: string; detail: string }
            }
          )
        const missing = yield* refused("/missing.torrent")
        assert.deepStrictEqual(missing, {
          _tag: "UrlFailed",
          url: `${base}/missing.torrent`,
          problem: "Status",
          detail: "the server answered 404, not 200"
        })
        assert.strictEqual((yield* refused("/loop")).problem, "Redirects")
        const garbage = yield* refused("/garbage")
        assert.strictEqual(garbage.problem, "NotTorrent")
        assert.match(garbage.detail, /^it is not a \.torrent file: /)
        assert.strictEqual((yield* refused("/declared")).problem, "TooLarge")
        const endless = yield* refused("/endless")
        assert.deepStrictEqual(
          [endless.problem, endless.detail],
          ["TooLarge", `it is over ${maxBytes} bytes, the most a .torrent may have`]
        )
        const nowhere = yield* refused(`${yield* closedPort}/one.torrent`)
        assert.strictEqual(nowhere.problem, "Unreachable")
        const ftp = yield* Daemon.request(`${url}api/v1/torrents`, { json: { url: "ftp://127.0.0.1/x.torrent" } })
        assert.strictEqual(JSON.parse(ftp.body).problem, "BadUrl")

        // The typed client sees the error as a value.
        const client = yield* Client.make(url)
        const failed = yield* client.torrents.add({ payload: { url: `${base}/garbage` } }).pipe(Effect.flip)
        assert.strictEqual(failed._tag, "UrlFailed")

        // Transmission's RPC: an http filename is fetched (through the redirect here).
        const rpc = `${url}transmission/rpc`
        const handshake = yield* Daemon.request(rpc, { method: "POST" })
        const headers = { "x-transmission-session-id": handshake.headers.get("x-transmission-session-id")! }
        const add = (filename: string) =>
          Effect.map(
            Daemon.request(rpc, { json: { method: "torrent-add", arguments: { filename } }, headers }),
            (reply) => JSON.parse(reply.body) as { result: string; arguments: Record<string, { name: string }> }
          )
        const viaRpc = yield* add(`${base}/moved`)
        assert.strictEqual(viaRpc.result, "success")
        assert.strictEqual(viaRpc.arguments["torrent-added"]!.name, "two.bin")
        assert.strictEqual(
          (yield* add(`${base}/missing.torrent`)).result,
          `${base}/missing.torrent: the server answered 404, not 200`
        )

        const listed = yield* Daemon.api<ReadonlyArray<Daemon.Torrent>>(url, "torrents?fields=name")
        assert.deepStrictEqual(listed.map((t) => t.name), ["one.bin", "two.bin"])
      }),
    { timeout: 120_000 }
  )
})
