/**
 * Web seeds (BEP 19) over real HTTP: nginx serving the files on 127.0.0.1
 * as the only source (single-file and multi-file torrents, names that need
 * percent-encoding), nginx beside an aria2c seeder, and nginx beside small
 * misbehaving servers (200 for a range, 404, 500, a slow drip, a redirect
 * loop, wrong bytes) that must not stall the download. Every download is
 * checked byte for byte against the source.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type * as Net from "node:net"
import { join } from "node:path"
import type * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as CreateTorrent from "../../src/torrent/CreateTorrent.ts"
import type { TorrentEvent } from "../../src/torrent/TorrentEvents.ts"
import { sameBytes, tempDir, type FileSpec, writeTree } from "../util/Files.ts"
import { download, startManager, within } from "../util/Leecher.ts"
import { nginx } from "../util/Nginx.ts"
import { aria2Seeder } from "../util/Swarm.ts"

/** Files under `<root>/src`, and the download folder `<root>/dst`. */
const workspace = (label: string, files: ReadonlyArray<FileSpec>) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const src = join(root, "src")
    yield* writeTree(src, files)
    return { root, src, dst: join(root, "dst") }
  })

/** A workspace whose `input` (a file or folder under src) nginx serves too, from a folder of its own. */
const served = (label: string, files: ReadonlyArray<FileSpec>, input: string) =>
  Effect.gen(function*() {
    const root = yield* tempDir("webseed-root")
    const server = yield* nginx(root)
    const ws = yield* workspace(label, files)
    Fs.cpSync(join(ws.src, input), join(root, input), { recursive: true })
    return { ...ws, server }
  })

/** A torrent of `input` in 32 KiB pieces with these web seeds, and its .torrent file. */
const torrentOf = (input: string, webSeeds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const created = yield* CreateTorrent.create(input, { pieceLength: 32 * 1024, webSeeds }).pipe(
      Effect.provide(NodeServices.layer),
      Effect.orDie
    )
    const file = `${input}.torrent`
    Fs.writeFileSync(file, created.bytes)
    return { meta: created.meta, file }
  })

const assertSameFiles = (meta: Metainfo.Metainfo, src: string, dst: string) => {
  for (const file of meta.files) {
    assert.isTrue(sameBytes(join(src, ...file.path), join(dst, ...file.path)), `${file.path.join("/")} differs`)
  }
}

/** A small HTTP server on 127.0.0.1 for the scope, answering every request with `handle`. */
const server = (handle: (request: Http.IncomingMessage, response: Http.ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.callback<Http.Server>((resume) => {
      const s = Http.createServer(handle)
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.callback<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((s) => `http://127.0.0.1:${(s.address() as Net.AddressInfo).port}/`))

const rangeOf = (request: Http.IncomingMessage) => {
  const match = /^bytes=(\d+)-(\d+)$/.exec(request.headers.range ?? "")
  return match === null ? undefined : { start: Number(match[1]), end: Number(match[2]) }
}

describe("web seeds over real HTTP", () => {
  it.live("a single-file torrent from nginx alone, in ranged GETs", () =>
    Effect.gen(function*() {
      const files = [{ path: "odd.bin", size: 1_000_003 }]
      const ws = yield* served("webseed-single", files, "odd.bin")
      const server = ws.server
      const { meta } = yield* torrentOf(join(ws.src, "odd.bin"), [`${server.url}odd.bin`])

      const observed = yield* download(meta, { downloadDir: ws.dst })

      assertSameFiles(meta, ws.src, ws.dst)
      assert.strictEqual(observed.last().hashFailures, 0)
      const requests = server.requests()
      assert.isAbove(requests.length, 0)
      for (const line of requests) assert.match(line, /^206 "GET \/odd\.bin HTTP\/1\.1" "bytes=\d+-\d+"$/)
    }), 60_000)

  it.live(
    "a multi-file torrent from nginx alone: the URL is the folder, names percent-encoded",
    () =>
      Effect.gen(function*() {
        const files = [
          { path: "set/a dir/ü file #1.bin", size: 70_000 },
          { path: "set/100%.bin", size: 1 },
          { path: "set/what?.bin", size: 300_000 },
          { path: "set/b.bin", size: 200_003 }
        ]
        const ws = yield* served("webseed-multi", files, "set")
        // The folder holding the torrent's folder, as BEP 19 has it; without its trailing slash.
        const { meta } = yield* torrentOf(join(ws.src, "set"), [ws.server.url.replace(/\/$/, "")])

        const observed = yield* download(meta, { downloadDir: ws.dst })

        assertSameFiles(meta, ws.src, ws.dst)
        assert.strictEqual(observed.last().hashFailures, 0)
        const paths = new Set(ws.server.requests().map((line) => line.split(" ")[2]))
        assert.deepStrictEqual(
          [...paths].sort(),
          ["/set/100%25.bin", "/set/a%20dir/%C3%BC%20file%20%231.bin", "/set/b.bin", "/set/what%3F.bin"]
        )
      }),
    60_000
  )

  it.live("beside an aria2c seeder: both give pieces", () =>
    Effect.gen(function*() {
      const files = [{ path: "big.bin", size: 4 * 1024 * 1024 + 5 }]
      const ws = yield* served("webseed-aria2", files, "big.bin")
      const server = ws.server
      const torrent = yield* torrentOf(join(ws.src, "big.bin"), [`${server.url}big.bin`])
      const seeder = yield* aria2Seeder({ torrent: torrent.file, dir: ws.src, uploadLimit: 1024 * 1024 })

      const observed = yield* download(torrent.meta, {
        downloadDir: ws.dst,
        peers: [{ host: "127.0.0.1", port: seeder.port }],
        // The web seed at most as fast as aria2c, so that both have a share.
        settings: { maxDownloadRate: 2 * 1024 * 1024 }
      })

      assertSameFiles(torrent.meta, ws.src, ws.dst)
      assert.strictEqual(observed.last().hashFailures, 0)
      assert.isAbove(server.requests().length, 0, "nothing asked of the web seed")
      yield* Effect.sleep(1500) // aria2c's once-a-second summary
      assert.isAbove(seeder.uploaded(), 0, "nothing came from aria2c")
    }), 90_000)

  it.live(
    "beside servers that answer 200 for a range, 404, 500, drip, redirect in a loop or send wrong bytes",
    () =>
      Effect.gen(function*() {
        // More than every seed's share of requests (512 KiB each), so that each is asked.
        const files = [{ path: "data.bin", size: 4 * 1024 * 1024 + 1 }]
        const ws = yield* served("webseed-bad", files, "data.bin")
        const good = ws.server
        const data = Fs.readFileSync(join(ws.src, "data.bin"))
        const whole = yield* server((_, response) => {
          response.writeHead(200, { "Content-Length": data.length })
          response.end(data)
        })
        const missing = yield* server((_, response) => response.writeHead(404).end())
        const failing = yield* server((_, response) => response.writeHead(500).end())
        const loop = yield* server((_, response) => response.writeHead(302, { Location: "/data.bin" }).end())
        const drips: Array<NodeJS.Timeout> = []
        yield* Effect.addFinalizer(() => Effect.sync(() => drips.forEach(clearInterval)))
        const drip = yield* server((request, response) => {
          const range = rangeOf(request)!
          response.writeHead(206, {
            "Content-Range": `bytes ${range.start}-${range.end}/${data.length}`,
            "Content-Length": range.end - range.start + 1
          })
          let at = range.start
          drips.push(setInterval(() => response.write(data.subarray(at, ++at)), 200))
        })
        const wrong = yield* server((request, response) => {
          const range = rangeOf(request)!
          response.writeHead(206, {
            "Content-Range": `bytes ${range.start}-${range.end}/${data.length}`,
            "Content-Length": range.end - range.start + 1
          })
          response.end(Buffer.alloc(range.end - range.start + 1, 0x55))
        })
        const bad = { whole, missing, failing, loop, drip, wrong }
        const { meta } = yield* torrentOf(join(ws.src, "data.bin"), [
          `${good.url}data.bin`,
          ...Object.values(bad).map((url) => `${url}data.bin`)
        ])

        const { manager } = yield* startManager(ws.dst, { requestTimeoutMillis: 2000 })
        const events: Array<TorrentEvent> = []
        const handle = yield* manager.add(meta)
        yield* handle.events.pipe(Stream.runForEach((e) => Effect.sync(() => events.push(e))), Effect.forkScoped)
        yield* handle.completed.pipe(within(60_000, "downloading beside bad web seeds"))

        assertSameFiles(meta, ws.src, ws.dst)
        const left = (url: string) => events.filter((e) => e._tag === "PeerDisconnected" && e.peer === `${url}data.bin`)
        const warned = (text: string) => events.some((e) => e._tag === "Warning" && e.detail.includes(text))
        assert.isTrue(warned(`web seed ${whole}data.bin dropped: answered a range with the whole file`))
        assert.isTrue(
          events.some((e) => e._tag === "HashFailed" && e.peers.length === 1 && e.peers[0] === `${wrong}data.bin`)
        )
        const banned = left(wrong)[0]
        assert.strictEqual(banned?._tag === "PeerDisconnected" ? banned.reason : undefined, "Banned")
        for (
          const [url, text] of [[missing, "answered 404"], [failing, "answered 500"], [loop, "redirected more than"]]
        ) {
          const ends = left(url!)
          assert.isAbove(ends.length, 0, `${url} never failed`)
          assert.include(ends[0]?._tag === "PeerDisconnected" ? ends[0].detail : "", text)
        }
      }),
    90_000
  )
})
