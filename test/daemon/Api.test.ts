/**
 * The daemon's HTTP API over real HTTP on 127.0.0.1: through its own typed
 * client (a torrent downloaded from a rate-limited aria2c seeder, its peers,
 * files, limits, pause, resume, remove), through curl (and its OpenAPI
 * document validated as OpenAPI 3.1), its events as Server-Sent Events,
 * `effect-torrent remote` (our CLI, a child process), and bad input: each
 * refused with its 4xx, the daemon still answering after.
 */
import { assert, describe, it } from "@effect/vitest"
import { Validator } from "@seriousme/openapi-schema-validator"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as Client from "../../src/daemon/Client.ts"
import * as Curl from "../util/Curl.ts"
import * as Daemon from "../util/Daemon.ts"
import { createWithMktorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { aria2Seeder, runCli, waitFor } from "../util/Swarm.ts"

const curl = (args: ReadonlyArray<string>) => Curl.curl(args, { maxTimeSeconds: 60 })

const magnetOf = (hex: string) => `magnet:?xt=urn:btih:${hex.repeat(40 / hex.length)}&dn=nowhere`

describe("daemon HTTP API", () => {
  it.live(
    "the typed client: add, list with fields, files, limits, peers, pause, resume, remove with files",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-api")
        const src = join(root, "src")
        yield* writeTree(src, [{ path: "show/a.bin", size: 2 * 1024 * 1024 + 3 }, { path: "show/b.bin", size: 70_000 }])
        const show = yield* createWithMktorrent(join(src, "show"), join(root, "show.torrent"), {
          pieceLength: 32 * 1024,
          announce: []
        })
        const seeder = yield* aria2Seeder({ torrent: show.file, dir: src, uploadLimit: 512 * 1024 })
        const url = yield* Daemon.inProcess(join(root, "session"))
        const client = yield* Client.make(url)

        const added = yield* client.torrents.add({
          payload: { torrent: Fs.readFileSync(show.file).toString("base64"), peers: [`127.0.0.1:${seeder.port}`] }
        })
        assert.strictEqual(added.infoHash, show.meta.infoHash)
        assert.strictEqual(added.name, "show")
        // A peer shows while the data comes.
        yield* waitFor(
          Effect.map(
            client.torrents.peers({ params: { id: String(added.id) } }),
            (peers) => peers.some((p) => p.address === `127.0.0.1:${seeder.port}` && p.outgoing)
          ),
          { timeoutMillis: 30_000, message: () => "the seeder was never listed as a peer" }
        )
        yield* waitFor(
          Effect.map(client.torrents.get({ params: { id: added.infoHash } }), (t) => t.state === "seeding"),
          { timeoutMillis: 60_000, message: () => "the torrent did not complete" }
        )
        const downloads = join(root, "session", "downloads")
        assert.isTrue(sameBytes(join(src, "show", "a.bin"), join(downloads, "show", "a.bin")))

        const listed = yield* client.torrents.list({ query: { fields: "name,paused" } })
        assert.deepStrictEqual(listed, [{ id: added.id, infoHash: added.infoHash, name: "show", paused: false }])

        yield* client.torrents.setFiles({ params: { id: "1" }, payload: { priorities: ["high", "skip"] } })
        yield* client.torrents.setLimits({ params: { id: "1" }, payload: { upload: 1000, download: 2000 } })
        yield* client.session.setLimits({ payload: { upload: 0, download: 5000 } })
        const detail = yield* client.torrents.get({ params: { id: "1" } })
        assert.deepStrictEqual(detail.files.map((f) => [f.path, f.length, f.done, f.priority]), [
          ["show/a.bin", 2 * 1024 * 1024 + 3, 2 * 1024 * 1024 + 3, "high"],
          ["show/b.bin", 70_000, 70_000, "skip"]
        ])
        assert.deepStrictEqual(detail.limits, { upload: 1000, download: 2000 })
        assert.deepStrictEqual((yield* client.session.get()).limits, { upload: 0, download: 5000 })

        yield* client.torrents.pause({ params: { id: "1" } })
        const paused = yield* client.torrents.get({ params: { id: "1" } })
        assert.deepStrictEqual([paused.paused, paused.state], [true, "complete"])
        yield* client.torrents.resume({ params: { id: "1" } })
        assert.isFalse((yield* client.torrents.get({ params: { id: "1" } })).paused)

        yield* client.torrents.remove({ params: { id: "1" }, query: { deleteFiles: "true" } })
        assert.deepStrictEqual(yield* client.torrents.list({ query: {} }), [])
        assert.isFalse(Fs.existsSync(join(downloads, "show", "a.bin")), "its files are deleted")
        const missing = yield* client.torrents.get({ params: { id: "1" } }).pipe(Effect.flip)
        assert.strictEqual(missing._tag, "TorrentNotFound")
      }),
    { timeout: 120_000 }
  )

  it.live(
    "curl: list, add a magnet, its events as Server-Sent Events; the OpenAPI document is valid OpenAPI 3.1",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-curl")
        const url = yield* Daemon.inProcess(root)

        // The event stream, subscribed before the torrent comes.
        const events = yield* Effect.promise(() =>
          fetch(`${url}api/v1/events`, { signal: AbortSignal.timeout(30_000) })
        )
        assert.strictEqual(events.headers.get("content-type"), "text/event-stream")
        const reader = events.body!.getReader()
        const first = new TextDecoder().decode((yield* Effect.promise(() => reader.read())).value)
        assert.match(first, /^: subscribed/)

        const magnet = magnetOf("ab")
        const added = yield* curl([
          "-H",
          "content-type: application/json",
          "-d",
          JSON.stringify({ magnet, paused: true }),
          `${url}api/v1/torrents`
        ])
        assert.strictEqual(added.status, 200)
        assert.strictEqual(JSON.parse(added.body.toString()).name, "nowhere")
        yield* curl(["-X", "POST", `${url}api/v1/torrents/1/resume`])
        // The resumed torrent's state change comes as an event.
        let seen = ""
        yield* waitFor(
          Effect.promise(async () => {
            seen += new TextDecoder().decode((await reader.read()).value)
            return seen.includes(`data: {"infoHash":"${"ab".repeat(20)}","event":{"_tag":"StateChanged"`)
          }),
          { timeoutMillis: 20_000, message: () => `no StateChanged event: ${seen}` }
        )
        yield* Effect.promise(() => reader.cancel())

        const listed = yield* curl([`${url}api/v1/torrents?fields=state`])
        assert.deepStrictEqual(JSON.parse(listed.body.toString()), [{
          id: 1,
          infoHash: "ab".repeat(20),
          state: "fetching metadata"
        }])

        const document = yield* curl([`${url}api/v1/openapi.json`])
        const validator = new Validator()
        const result = yield* Effect.promise(() => validator.validate(JSON.parse(document.body.toString())))
        assert.isTrue(result.valid, JSON.stringify(result.errors))
        assert.strictEqual(validator.version, "3.1")
        const paths = Object.keys(JSON.parse(document.body.toString()).paths)
        assert.includeMembers(paths, [
          "/api/v1/torrents",
          "/api/v1/torrents/{id}",
          "/api/v1/session/limits",
          "/api/v1/create"
        ])
      }),
    { timeout: 60_000 }
  )

  it.live(
    "bad input: 401 without credentials, 403 for a foreign Host or Origin, 413, 400, 404; it answers after",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-bad")
        const url = yield* Daemon.inProcess(root, { auth: "me:pw" })
        const api = `${url}api/v1/torrents`
        const auth = ["-u", "me:pw"]
        const status = (args: ReadonlyArray<string>) => Effect.map(curl(args), (reply) => reply.status)

        const refused = yield* curl([api])
        assert.strictEqual(refused.status, 401)
        assert.strictEqual(refused.headers["www-authenticate"], "Basic realm=\"effect-torrent\"")
        assert.strictEqual(yield* status(["-u", "me:wrong", api]), 401)
        assert.strictEqual(yield* status(["-X", "POST", `${url}transmission/rpc`]), 401)
        assert.strictEqual(yield* status([...auth, api]), 200)

        assert.strictEqual(yield* status([...auth, "-H", "Host: evil.example:9091", api]), 403)
        assert.strictEqual(
          yield* status([...auth, "-H", "Origin: http://evil.example", "-X", "POST", `${api}/1/pause`]),
          403
        )

        const big = join(root, "big.bin")
        Fs.writeFileSync(big, "")
        Fs.truncateSync(big, 100 * 1024 * 1024)
        const tooBig = yield* Curl.curl([
          ...auth,
          "-H",
          "content-type: application/json",
          "--data-binary",
          `@${big}`,
          api
        ], {
          maxTimeSeconds: 60,
          partial: true
        })
        assert.strictEqual(tooBig.status, 413)

        const json = ["-H", "content-type: application/json"]
        assert.strictEqual(yield* status([...auth, ...json, "-d", "{not json", api]), 400)
        assert.strictEqual(yield* status([...auth, ...json, "-d", "{\"magnet\": 7}", api]), 400)
        const badMagnet = yield* curl([...auth, ...json, "-d", "{\"magnet\":\"magnet:?xt=urn:btih:xyz\"}", api])
        assert.strictEqual(badMagnet.status, 400)
        assert.strictEqual(JSON.parse(badMagnet.body.toString())._tag, "BadInput")
        assert.strictEqual(yield* status([...auth, ...json, "-d", "{\"torrent\":\"bm90IGEgdG9ycmVudA==\"}", api]), 400)
        assert.strictEqual(yield* status([...auth, `${api}?fields=name,bogus`]), 400)

        const notFound = yield* curl([...auth, `${api}/42`])
        assert.strictEqual(notFound.status, 404)
        assert.deepStrictEqual(JSON.parse(notFound.body.toString()), { _tag: "TorrentNotFound", id: "42" })
        assert.strictEqual(yield* status([...auth, "-X", "POST", `${api}/${"cd".repeat(20)}/pause`]), 404)
        assert.strictEqual(yield* status([...auth, "-X", "DELETE", `${api}/7`]), 404)

        // Transmission's RPC: the session id first (409), then malformed requests are 400.
        const rpc = `${url}transmission/rpc`
        const handshake = yield* curl([...auth, "-X", "POST", rpc])
        assert.strictEqual(handshake.status, 409)
        const session = ["-H", `X-Transmission-Session-Id: ${handshake.headers["x-transmission-session-id"]}`]
        assert.strictEqual(yield* status([...auth, ...session, "-d", "][", rpc]), 400)
        assert.strictEqual(yield* status([...auth, ...session, "-d", "{\"arguments\":{}}", rpc]), 400)
        const unknown = yield* curl([...auth, ...session, "-d", "{\"method\":\"nope\",\"tag\":5}", rpc])
        assert.deepStrictEqual(JSON.parse(unknown.body.toString()), {
          result: "method name not recognized",
          arguments: {},
          tag: 5
        })

        assert.strictEqual(yield* status([...auth, api]), 200)
      }),
    { timeout: 120_000 }
  )

  it.live(
    "effect-torrent remote: add, list, start, stop, info, limit, remove; an unknown torrent and a wrong password fail",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-remote")
        const url = yield* Daemon.inProcess(root, { auth: "me:pw" })
        const remote = (args: ReadonlyArray<string>) => runCli(["remote", ...args, "--url", url, "--auth", "me:pw"])
        const magnet = magnetOf("ef")

        const added = yield* remote(["add", magnet, "--paused"])
        assert.deepStrictEqual([added.code, added.stdout], [0, "added 1: nowhere\n"], added.stderr)
        const listed = yield* remote(["list"])
        assert.match(listed.stdout, /^\s+1\s+n\/a\s+paused\s+.*nowhere\n$/)
        assert.strictEqual((yield* remote(["start", "1"])).code, 0)
        assert.strictEqual((yield* remote(["stop", "1"])).code, 0)
        const info = yield* remote(["info", "1"])
        assert.match(info.stdout, /state:\s+paused/)
        assert.include(info.stdout, `info-hash:  ${"ef".repeat(20)}`)
        const limited = yield* remote(["limit", "--id", "1", "--max-download", "2M"])
        assert.strictEqual(limited.code, 0, limited.stderr)
        const client = yield* Client.make(url, "me:pw")
        assert.deepStrictEqual((yield* client.torrents.get({ params: { id: "1" } })).limits, {
          upload: 0,
          download: 2 * 1024 * 1024
        })

        const unknown = yield* remote(["stop", "9"])
        assert.deepStrictEqual([unknown.code, unknown.stderr], [1, "effect-torrent: the daemon: no torrent 9\n"])
        const wrong = yield* runCli(["remote", "list", "--url", url, "--auth", "me:nope"])
        assert.strictEqual(wrong.code, 1)
        assert.match(wrong.stderr, /^effect-torrent: --url /)

        assert.strictEqual((yield* remote(["remove", "1"])).code, 0)
        assert.strictEqual((yield* remote(["list"])).stdout, "")
      }),
    { timeout: 120_000 }
  )
})
