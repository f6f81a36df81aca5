/**
 * The HTTP server over real HTTP on 127.0.0.1, with an in-memory torrent
 * (test/util/MemoryServed.ts): ranges as curl asks for them, 416, malformed
 * Range headers, HEAD, ETag and If-Range, paths that name no file, the
 * pages, 1,000 requests at once, and clients that go away mid-body (every
 * stream they started is finalized). Served.stream waits for ever past the
 * bytes that are "there", as a torrent's reader waits for missing pieces.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Http from "node:http"
import { TorrentServer } from "../../src/http/TorrentServer.ts"
import { deterministicBytes } from "../util/Files.ts"
import * as MemoryServed from "../util/MemoryServed.ts"
import * as Curl from "../util/Curl.ts"
import { waitUntil } from "../util/Swarm.ts"

/** One request with Node's client (sends the path as given, `..` included), on a connection of its own. */
const request = (
  port: number,
  path: string,
  options: { readonly method?: string; readonly headers?: Record<string, string> } = {}
) =>
  Effect.callback<Curl.Reply>((resume) => {
    const req = Http.request(
      { host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: options.headers, agent: false },
      (res) => {
        const chunks: Array<Buffer> = []
        let aborted = false
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("aborted", () => {
          aborted = true
        })
        res.on("error", () => {
          aborted = true
        })
        res.on("close", () =>
          resume(Effect.succeed({
            status: res.statusCode ?? 0,
            headers: Object.fromEntries(
              Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")])
            ),
            body: Buffer.concat(chunks),
            aborted: aborted || !res.complete
          })))
      }
    )
    req.on("error", (error) => resume(Effect.die(error)))
    req.end()
    return Effect.sync(() => req.destroy())
  }).pipe(Effect.timeoutOrElse({ duration: 20_000, orElse: () => Effect.die(new Error(`no answer to ${path}`)) }))

/** curl (a real client) with `args`; a transfer cut short is a reply too (`aborted`). */
const curl = (args: ReadonlyArray<string>) => Curl.curl(args, { maxTimeSeconds: 20, partial: true })

/** The server on 127.0.0.1 (any free port) for the test's scope, serving `served`. */
const serve = (served: MemoryServed.MemoryServed) =>
  Layer.build(TorrentServer.layerNode({ port: 0 }).pipe(Layer.provide(served.layer))).pipe(
    Effect.map((context) => Context.get(context, TorrentServer))
  )

const size = 300_000 + 17
const video = deterministicBytes(size, 1)
const text = deterministicBytes(5_000, 2)

/** A torrent of a video, a text file, an empty file, and a file that is not there yet past 40000 bytes. */
const torrent = () =>
  MemoryServed.make({
    name: "Show",
    files: [
      { index: 0, path: ["Show", "episode 1.mkv"], data: video },
      { index: 2, path: ["Show", "notes.txt"], data: text },
      { index: 3, path: ["Show", "empty.mp3"], data: new Uint8Array(0) },
      { index: 4, path: ["Show", "partial.mp4"], data: deterministicBytes(200_000, 3), available: 40_000 }
    ]
  })

describe("TorrentServer", () => {
  it.live(
    "curl: whole file, start, middle, end and suffix ranges, with the right headers",
    () =>
      Effect.gen(function*() {
        const served = torrent()
        const server = yield* serve(served)
        assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
        const url = `${server.url}files/0/episode%201.mkv`

        const whole = yield* curl([url])
        assert.strictEqual(whole.status, 200)
        assert.isTrue(whole.body.equals(video))
        assert.strictEqual(whole.headers["content-length"], String(size))
        assert.strictEqual(whole.headers["accept-ranges"], "bytes")
        assert.strictEqual(whole.headers["content-type"], "video/x-matroska")
        assert.match(whole.headers["etag"]!, /^"[0-9a-f]{40}-0"$/)

        const cases: ReadonlyArray<readonly [string, number, number]> = [
          ["0-99", 0, 100],
          ["0-0", 0, 1],
          ["123456-234567", 123456, 234568],
          [`${size - 1000}-`, size - 1000, size],
          ["-500", size - 500, size],
          [`-${size + 10}`, 0, size], // a suffix longer than the file: all of it
          [`1000-${size + 5000}`, 1000, size] // an end past the end: to the end
        ]
        for (const [range, start, end] of cases) {
          const part = yield* curl(["--range", range, url])
          assert.strictEqual(part.status, 206, range)
          assert.strictEqual(part.headers["content-range"], `bytes ${start}-${end - 1}/${size}`, range)
          assert.strictEqual(part.headers["content-length"], String(end - start), range)
          assert.isTrue(part.body.equals(video.subarray(start, end)), range)
        }
        // The index alone serves the same file; the text file gets its own type.
        assert.isTrue((yield* curl([`${server.url}files/0`])).body.equals(video))
        const notes = yield* curl([`${server.url}files/2/notes.txt`])
        assert.strictEqual(notes.headers["content-type"], "text/plain")
        assert.strictEqual(notes.headers["content-security-policy"], "sandbox")
        assert.isTrue(notes.body.equals(text))
        assert.strictEqual(served.closed(), served.opened())
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("416 for a range past the end, with Content-Range: bytes */size", () =>
    Effect.gen(function*() {
      const server = yield* serve(torrent())
      const url = `${server.url}files/0/episode%201.mkv`
      for (const range of [`${size}-`, `${size}-${size + 10}`, `${size + 5}-${size + 10}`, "-0"]) {
        const reply = yield* request(server.port, "/files/0", { headers: { range: `bytes=${range}` } })
        assert.strictEqual(reply.status, 416, range)
        assert.strictEqual(reply.headers["content-range"], `bytes */${size}`, range)
        assert.strictEqual(reply.body.length, 0, range)
      }
      const byCurl = yield* curl(["--range", `${size}-`, url])
      assert.strictEqual(byCurl.status, 416)
      // An empty file has no byte to give.
      const empty = yield* request(server.port, "/files/3/empty.mp3", { headers: { range: "bytes=0-" } })
      assert.strictEqual(empty.status, 416)
      assert.strictEqual(empty.headers["content-range"], "bytes */0")
    }).pipe(Effect.scoped))

  it.live("a malformed Range gets the whole file or 416, never a crash", () =>
    Effect.gen(function*() {
      const served = torrent()
      const server = yield* serve(served)
      const malformed = [
        "bytes=abc",
        "bytes=5-2",
        "bytes=0-1,4-5",
        "items=0-5",
        "bytes=",
        "bytes=-",
        "bytes=--5",
        "bytes=1-2-3",
        "bytes=0x10-",
        "bytes=-1.5",
        "bytes = 0 - 1 trailing",
        "\u00ff\u00fe",
        `bytes=${"9".repeat(400)}-`,
        `bytes=0-${"9".repeat(400)}`,
        `bytes=-${"9".repeat(400)}`,
        `bytes=${"0-1,".repeat(2000)}0-1`
      ]
      for (const range of malformed) {
        const reply = yield* request(server.port, "/files/0", { headers: { range } })
        const label = JSON.stringify(range.slice(0, 40))
        if (reply.status === 416) {
          assert.strictEqual(reply.body.length, 0, label)
        } else if (reply.status === 206) {
          // `0-<huge>` and `-<huge>` are well-formed: the whole file as one part.
          assert.strictEqual(reply.headers["content-range"], `bytes 0-${size - 1}/${size}`, label)
          assert.isTrue(reply.body.equals(video), label)
        } else {
          assert.strictEqual(reply.status, 200, label)
          assert.isTrue(reply.body.equals(video), label)
        }
      }
      // Still serving, and nothing left open.
      assert.strictEqual((yield* request(server.port, "/files/2")).status, 200)
      assert.strictEqual(served.closed(), served.opened())
    }).pipe(Effect.scoped))

  it.live("HEAD: the headers of GET, no body, and no stream started", () =>
    Effect.gen(function*() {
      const served = torrent()
      const server = yield* serve(served)
      const head = yield* curl(["--head", `${server.url}files/0/episode%201.mkv`])
      assert.strictEqual(head.status, 200)
      assert.strictEqual(head.headers["content-length"], String(size))
      assert.strictEqual(head.headers["accept-ranges"], "bytes")
      assert.strictEqual(head.headers["content-type"], "video/x-matroska")
      assert.strictEqual(head.body.length, 0)
      const part = yield* request(server.port, "/files/0", { method: "HEAD", headers: { range: "bytes=10-19" } })
      assert.deepStrictEqual(
        [part.status, part.headers["content-range"], part.headers["content-length"]],
        [206, `bytes 10-19/${size}`, "10"]
      )
      assert.strictEqual(part.body.length, 0)
      // A file whose bytes are not all there answers HEAD at once.
      assert.strictEqual((yield* request(server.port, "/files/4", { method: "HEAD" })).status, 200)
      assert.strictEqual(served.opened(), 0)
    }).pipe(Effect.scoped))

  it.live("ETag and If-Range: the range only while the tag matches; If-None-Match gives 304", () =>
    Effect.gen(function*() {
      const server = yield* serve(torrent())
      const etag = (yield* request(server.port, "/files/2", { method: "HEAD" })).headers["etag"]!
      assert.notStrictEqual(etag, (yield* request(server.port, "/files/0", { method: "HEAD" })).headers["etag"])

      const same = yield* curl(["--range", "100-199", "--header", `If-Range: ${etag}`, `${server.url}files/2`])
      assert.strictEqual(same.status, 206)
      assert.isTrue(same.body.equals(text.subarray(100, 200)))
      for (const other of ["\"something-else\"", `W/${etag}`, "Tue, 01 Jan 2030 00:00:00 GMT"]) {
        const changed = yield* request(server.port, "/files/2", {
          headers: { range: "bytes=100-199", "if-range": other }
        })
        assert.strictEqual(changed.status, 200, other)
        assert.isTrue(changed.body.equals(text), other)
      }
      const cached = yield* request(server.port, "/files/2", { headers: { "if-none-match": `"x", ${etag}` } })
      assert.deepStrictEqual([cached.status, cached.body.length, cached.headers["etag"]], [304, 0, etag])
      assert.strictEqual(
        (yield* request(server.port, "/files/2", { headers: { "if-none-match": "\"x\"" } })).status,
        200
      )
    }).pipe(Effect.scoped))

  it.live("paths that name no file get 404", () =>
    Effect.gen(function*() {
      const served = torrent()
      const server = yield* serve(served)
      const paths = [
        "/files/99",
        "/files/1", // a padding file's index, say: not served
        "/files/-1",
        "/files/00",
        "/files/1e0",
        "/files/0x0",
        "/files/0/../../etc/passwd",
        "/files/0/..%2F..%2Fetc%2Fpasswd",
        "/files/0/%2e%2e/%2e%2e/etc/passwd",
        "/files/0/episode%201.mkv/..",
        "/files/0/other.mkv",
        "/files/0/Show/episode%201.mkv",
        "/files/2/episode%201.mkv",
        "/files/",
        "/files",
        "/etc/passwd",
        "/../../etc/passwd",
        `/files/${"9".repeat(30)}`
      ]
      for (const path of paths) {
        const reply = yield* request(server.port, path)
        assert.strictEqual(reply.status, 404, path)
      }
      const byCurl = yield* curl(["--path-as-is", `${server.url}files/0/../../etc/passwd`])
      assert.strictEqual(byCurl.status, 404)
      assert.strictEqual(served.opened(), 0)
    }).pipe(Effect.scoped))

  it.live("the index page, playlist and status: hostile names escaped, one playlist line per field", () =>
    Effect.gen(function*() {
      const osc = "\x1b]0;pwned\x07"
      const served = MemoryServed.make({
        name: `<script>alert(1)</script>${osc}`,
        files: [
          { index: 0, path: ["t", "<img src=x onerror=alert(1)>.mp4"], data: new Uint8Array(10) },
          { index: 1, path: ["t", `line\nhttp://evil.example/x${osc}.mp3`], data: new Uint8Array(20) },
          { index: 2, path: ["t", "readme \"&\".txt"], data: new Uint8Array(30) }
        ]
      })
      const server = yield* serve(served)
      const page = (yield* request(server.port, "/")).body.toString("utf8")
      assert.notInclude(page, "<script>")
      assert.notInclude(page, "<img")
      assert.notInclude(page, "\x1b")
      assert.notMatch(page, /line\n/)
      assert.include(page, "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b]0;pwned\\x07")
      assert.include(page, "href=\"/files/0/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.mp4\"")
      assert.include(page, "readme &quot;&amp;&quot;.txt")
      // Each link leads to its file.
      for (const href of page.matchAll(/href="(\/files\/[^"]+)"/g)) {
        assert.strictEqual((yield* request(server.port, href[1]!.replace(/&#39;/g, "'"))).status, 200, href[1])
      }

      const playlist = yield* request(server.port, "/playlist.m3u")
      assert.strictEqual(playlist.headers["content-type"], "audio/x-mpegurl; charset=utf-8")
      const lines = playlist.body.toString("utf8").trimEnd().split("\n")
      assert.strictEqual(lines.length, 5) // the header, then a title and a URL per media file: no .txt
      assert.strictEqual(lines[0], "#EXTM3U")
      assert.strictEqual(lines[3], "#EXTINF:-1,line\\x0ahttp://evil.example/x\\x1b]0;pwned\\x07.mp3")
      for (const url of [lines[2]!, lines[4]!]) {
        assert.isTrue(url.startsWith(`http://127.0.0.1:${server.port}/files/`), url)
        assert.strictEqual((yield* request(server.port, new URL(url).pathname)).status, 200, url)
      }

      const status = JSON.parse((yield* request(server.port, "/status")).body.toString("utf8"))
      assert.strictEqual(status.name, `<script>alert(1)</script>${osc}`) // JSON keeps the exact name
      assert.deepStrictEqual(
        [status.state, status.wanted, status.eta, status.files],
        ["downloading", 60, null, [
          10,
          20,
          30
        ]]
      )
    }).pipe(Effect.scoped))

  it.live("bound to loopback, it answers only Host names that are addresses or localhost (no DNS rebinding)", () =>
    Effect.gen(function*() {
      const server = yield* serve(torrent())
      for (const host of ["evil.example", `evil.example:${server.port}`, "127.0.0.1.evil.example"]) {
        assert.strictEqual((yield* request(server.port, "/status", { headers: { host } })).status, 403, host)
      }
      for (const host of [`127.0.0.1:${server.port}`, `localhost:${server.port}`, "[::1]", "localhost"]) {
        assert.strictEqual((yield* request(server.port, "/status", { headers: { host } })).status, 200, host)
      }
    }).pipe(Effect.scoped))

  it.live("1,000 requests at once are all answered, and every stream is finalized", () =>
    Effect.gen(function*() {
      const served = torrent()
      const server = yield* serve(served)
      const replies = yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => i),
        (i) => {
          const start = (i * 997) % (size - 100)
          return request(server.port, "/files/0", { headers: { range: `bytes=${start}-${start + 99 + i}` } }).pipe(
            Effect.map((reply) => {
              const end = Math.min(size, start + 100 + i)
              return reply.status === 206 && !reply.aborted && reply.body.equals(video.subarray(start, end))
            })
          )
        },
        { concurrency: "unbounded" }
      )
      assert.strictEqual(replies.filter((ok) => ok).length, 1000)
      yield* waitUntil(() => served.closed() === 1000, {
        timeoutMillis: 10_000,
        message: () => `${served.opened()} streams opened, ${served.closed()} finalized`
      })
      assert.strictEqual(served.opened(), 1000)
    }).pipe(Effect.scoped), 60_000)

  it.live(
    "clients that go away mid-body interrupt their streams: all of them are finalized",
    () =>
      Effect.gen(function*() {
        const served = torrent()
        const server = yield* serve(served)
        const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length
        const before = sockets()
        // File 4 has 40000 of its 200000 bytes: each client reads some, then hangs up while its stream waits.
        const clients = 50
        yield* Effect.forEach(Array.from({ length: clients }, (_, i) => i), (i) =>
          Effect.callback<void>((resume) => {
            const req = Http.get(
              { host: "127.0.0.1", port: server.port, path: "/files/4/partial.mp4", agent: false },
              (res) => {
                let got = 0
                res.on("data", (chunk: Buffer) => {
                  got += chunk.length
                  if (got >= 1000 + i * 500) req.destroy()
                })
                res.on("close", () => resume(Effect.void))
              }
            )
            req.on("error", () => resume(Effect.void))
          }), { concurrency: "unbounded" })
        assert.strictEqual(served.opened(), clients)
        yield* waitUntil(() => served.closed() === clients, {
          timeoutMillis: 10_000,
          message: () => `${served.opened()} streams opened, ${served.closed()} finalized`
        })
        // The server closed its ends of the connections too.
        yield* waitUntil(() => sockets() <= before, {
          timeoutMillis: 10_000,
          message: () => `${sockets()} TCP sockets open, ${before} before`
        })
        // curl too: it gets the 40000 bytes there, gives up after a second (the rest never comes) and hangs up.
        const cut = yield* curl(["--max-time", "1", `${server.url}files/4/partial.mp4`])
        assert.isTrue(cut.aborted)
        assert.strictEqual(cut.body.length, 40_000)
        yield* waitUntil(() => served.closed() === clients + 1, {
          timeoutMillis: 10_000,
          message: () => `${served.opened()} streams opened, ${served.closed()} finalized`
        })
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("a stream that fails mid-body cuts the response (never a short body passed off as whole)", () =>
    Effect.gen(function*() {
      const served = MemoryServed.make({
        name: "t",
        files: [{ index: 0, path: ["bad.bin"], data: deterministicBytes(100_000, 4), failAt: 50_000 }]
      })
      const server = yield* serve(served)
      const reply = yield* request(server.port, "/files/0")
      assert.strictEqual(reply.status, 200)
      assert.isTrue(reply.aborted)
      assert.isBelow(reply.body.length, 100_000)
      const byCurl = yield* curl([`${server.url}files/0`])
      assert.isTrue(byCurl.aborted)
      // The server goes on.
      const part = yield* request(server.port, "/files/0", { headers: { range: "bytes=0-999" } })
      assert.deepStrictEqual([part.status, part.body.length, part.aborted], [206, 1000, false])
      assert.strictEqual(served.closed(), served.opened())
    }).pipe(Effect.scoped))
})
