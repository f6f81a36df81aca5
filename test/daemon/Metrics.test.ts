/**
 * The daemon's metrics: after a download from an aria2c seeder, `/metrics`
 * (scraped with curl) counts every piece verified and the connection we
 * made, per torrent and in all, and shows the bytes done; each line is in
 * Prometheus' text format; once the torrent is removed its series are
 * gone, the totals stay. The same metrics reach an OTLP collector (a
 * local HTTP server) as OTLP JSON.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type * as Net from "node:net"
import { join } from "node:path"
import { otlp } from "../../src/daemon/Metrics.ts"
import * as Curl from "../util/Curl.ts"
import * as Daemon from "../util/Daemon.ts"
import { createWithMktorrent, tempDir, writeTree } from "../util/Files.ts"
import { aria2Seeder, waitUntil } from "../util/Swarm.ts"

/** An OTLP collector on 127.0.0.1: the bodies POSTed to /v1/metrics. */
const collector = Effect.acquireRelease(
  Effect.callback<{ readonly url: string; readonly metrics: Array<string>; readonly server: Http.Server }>((resume) => {
    const metrics: Array<string> = []
    const server = Http.createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        if (request.url === "/v1/metrics") metrics.push(Buffer.concat(chunks).toString("utf8"))
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({
        url: `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`,
        metrics,
        server
      })))
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
      server.closeAllConnections()
    })
)

describe("daemon metrics", () => {
  it.live(
    "/metrics in Prometheus format and OTLP: pieces verified, connections, bytes, per torrent and in all",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-metrics")
        const src = join(root, "src")
        yield* writeTree(src, [{ path: "data.bin", size: 1024 * 1024 + 9 }])
        const data = yield* createWithMktorrent(join(src, "data.bin"), join(root, "data.torrent"), {
          pieceLength: 32 * 1024,
          announce: []
        })
        const seeder = yield* aria2Seeder({ torrent: data.file, dir: src })
        const otel = yield* collector
        yield* Layer.build(otlp(otel.url, "200 millis"))
        const url = yield* Daemon.inProcess(join(root, "session"))
        yield* Daemon.api(url, "torrents", {
          json: { torrent: Fs.readFileSync(data.file).toString("base64"), peers: [`127.0.0.1:${seeder.port}`] }
        })
        yield* Daemon.waitForTorrent(url, 1, (t) => t.state === "seeding", 60_000)

        const reply = yield* Curl.curl([`${url}metrics`], { maxTimeSeconds: 30 })
        assert.match(reply.headers["content-type"]!, /^text\/plain; version=0\.0\.4/)
        const text = reply.body.toString("utf8")
        const torrent = `torrent="${data.meta.infoHash}"`
        const value = (name: string, labels: string) => {
          const line = text.split("\n").find((l) =>
            l.startsWith(`${name}{`) && l.includes(labels) || l.startsWith(`${name} `) && labels === ""
          )
          return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1))
        }
        assert.strictEqual(value("effect_torrent_pieces_verified_total", torrent), data.meta.pieceCount, text)
        assert.strictEqual(value("effect_torrent_pieces_verified_total", ""), data.meta.pieceCount)
        assert.strictEqual(value("effect_torrent_peer_connections_total", `direction="out"`), 1)
        assert.strictEqual(value("effect_torrent_done_bytes", torrent), data.meta.length)
        assert.strictEqual(value("effect_torrent_torrents", ""), 1)
        // Every line: a comment, or a sample (name, labels, value).
        for (const line of text.split("\n").filter((l) => l !== "")) {
          assert.match(
            line,
            /^(# (HELP|TYPE) \w+ .*|[a-zA-Z_:][\w:]*(\{(\w+="[^"]*",?)*\})? -?[\d.e+-]+|\S+ (NaN|[+-]Inf))$/,
            line
          )
        }

        // Removed, the torrent's own series go; the totals keep what it counted.
        yield* Daemon.api(url, "torrents/1", { method: "DELETE", status: 204 })
        const after = (yield* Curl.curl([`${url}metrics`], { maxTimeSeconds: 30 })).body.toString("utf8")
        assert.notInclude(after, torrent)
        assert.include(after, `effect_torrent_pieces_verified_total ${data.meta.pieceCount}`)
        assert.include(after, "effect_torrent_torrents 0")

        yield* waitUntil(() => otel.metrics.some((body) => body.includes("effect_torrent_pieces_verified_total")), {
          timeoutMillis: 20_000,
          message: () => `the collector got no pieces_verified metric: ${otel.metrics.length} exports`
        })
        const last = JSON.parse(
          otel.metrics.filter((body) => body.includes("effect_torrent_pieces_verified_total")).at(-1)!
        )
        assert.property(last, "resourceMetrics")
      }),
    { timeout: 120_000 }
  )
})
