/**
 * The daemon's metrics, as Effect `Metric`s: `GET /metrics` renders them in
 * Prometheus' text format, and `Otlp.layerJson` (the daemon's `--otlp URL`)
 * exports the same registry over OTLP.
 *
 * Counted from the manager's events, per torrent (`torrent="<info-hash>"`)
 * and in all (no label): pieces verified, hash failures, announces by
 * result, peer connections by direction. Read from each torrent's progress
 * when scraped, per torrent and summed: rates, bytes down and up, bytes done
 * and wanted, peers; and the number of torrents. A removed torrent's series
 * are dropped at the next scrape (the totals keep what it counted).
 */
import { type Duration, Effect, Layer, Metric, Stream } from "effect"
import { FetchHttpClient, HttpRouter, HttpServerResponse } from "effect/http"
import { Otlp, PrometheusMetrics } from "effect/observability"
import type { TorrentInfo } from "./Api.ts"
import { Session } from "./Session.ts"

const counter = (name: string, description: string) =>
  Metric.counter(`effect_torrent_${name}_total`, { description, incremental: true })

const piecesVerified = counter("pieces_verified", "pieces verified and written")
const hashFailures = counter("hash_failures", "pieces that failed their hash check")
const announces = counter("announces", "tracker announces, by result (ok, failed)")
const connections = counter("peer_connections", "peer connections made, by direction (in, out)")

/** Adds 1 to the counter for the torrent and to its total. */
const count = (metric: Metric.Metric<number, unknown>, torrent: string, attributes: Record<string, string> = {}) =>
  Effect.andThen(
    Metric.update(Metric.withAttributes(metric, { ...attributes, torrent }), 1),
    Metric.update(Metric.withAttributes(metric, attributes), 1)
  )

/** Every series a torrent may have, with the attributes `count` and `sample` give them. */
const seriesOf = (torrent: string): ReadonlyArray<Metric.Metric<number, unknown>> => [
  Metric.withAttributes(piecesVerified, { torrent }),
  Metric.withAttributes(hashFailures, { torrent }),
  ...["ok", "failed"].map((result) => Metric.withAttributes(announces, { result, torrent })),
  ...["in", "out"].map((direction) => Metric.withAttributes(connections, { direction, torrent })),
  ...gauges.map(([gauge]) => Metric.withAttributes(gauge, { torrent }))
]

const gauges: ReadonlyArray<readonly [Metric.Metric<number, unknown>, (t: TorrentInfo) => number]> = [
  [Metric.gauge("effect_torrent_download_rate_bytes", { description: "bytes/s received" }), (t) => t.downloadRate ?? 0],
  [Metric.gauge("effect_torrent_upload_rate_bytes", { description: "bytes/s sent" }), (t) => t.uploadRate ?? 0],
  [
    Metric.gauge("effect_torrent_downloaded_bytes", { description: "bytes received since the daemon started" }),
    (t) => t.downloaded ?? 0
  ],
  [
    Metric.gauge("effect_torrent_uploaded_bytes", { description: "bytes sent since the daemon started" }),
    (t) => t.uploaded ?? 0
  ],
  [
    Metric.gauge("effect_torrent_done_bytes", { description: "verified bytes of the selected files" }),
    (t) => t.done ?? 0
  ],
  [Metric.gauge("effect_torrent_wanted_bytes", { description: "bytes of the selected files" }), (t) => t.wanted ?? 0],
  [Metric.gauge("effect_torrent_peers", { description: "peers connected" }), (t) => t.peers ?? 0]
]
const torrentCount = Metric.gauge("effect_torrent_torrents", { description: "torrents in the session" })

/**
 * Sets the gauges from the torrents' progress, per torrent and summed, after
 * dropping the series of the torrents in `labelled` (those given series so
 * far) that are gone.
 */
const sample = (torrents: ReadonlyArray<TorrentInfo>, labelled: Set<string>) =>
  Effect.gen(function*() {
    const present = new Set(torrents.map((t) => t.infoHash))
    const gone = [...labelled].filter((torrent) => !present.has(torrent))
    for (const torrent of gone) labelled.delete(torrent)
    for (const torrent of present) labelled.add(torrent)
    yield* Effect.forEach(gone.flatMap(seriesOf), Metric.remove, { discard: true })
    yield* Metric.update(torrentCount, torrents.length)
    yield* Effect.forEach(gauges, ([gauge, read]) =>
      Effect.andThen(
        Effect.forEach(torrents, (t) => Metric.update(Metric.withAttributes(gauge, { torrent: t.infoHash }), read(t))),
        Metric.update(gauge, torrents.reduce((sum, t) => sum + read(t), 0))
      ), { discard: true })
  })

/** Counts the session's events for as long as the daemon runs; each torrent counted goes in `labelled`. */
const counting = (labelled: Set<string>) =>
  Effect.gen(function*() {
    const session = yield* Session
    const events = yield* session.subscribe
    yield* events.pipe(
      Stream.runForEach(({ event, infoHash }) => {
        labelled.add(infoHash)
        switch (event._tag) {
          case "PieceVerified":
            return count(piecesVerified, infoHash)
          case "HashFailed":
            return count(hashFailures, infoHash)
          case "TrackerAnnounced":
            return count(announces, infoHash, { result: "ok" })
          case "TrackerFailed":
            return count(announces, infoHash, { result: "failed" })
          case "PeerConnected":
            return count(connections, infoHash, { direction: event.outgoing ? "out" : "in" })
          default:
            return Effect.void
        }
      }),
      Effect.forkScoped
    )
  })

/** `GET /metrics`, and the counting; needs Session. */
export const layer = HttpRouter.use(Effect.fnUntraced(function*(router) {
  const session = yield* Session
  const labelled = new Set<string>()
  yield* counting(labelled)
  yield* router.add(
    "GET",
    "/metrics",
    Effect.gen(function*() {
      yield* sample(yield* session.list, labelled)
      return HttpServerResponse.text(yield* PrometheusMetrics.format(), {
        contentType: "text/plain; version=0.0.4; charset=utf-8"
      })
    })
  )
}))

/** The metrics (and traces and logs) sent to an OTLP collector at `url` (JSON over HTTP), every `interval`. */
export const otlp = (url: string, interval: Duration.Input = "10 seconds") =>
  Otlp.layerJson({
    baseUrl: url,
    resource: { serviceName: "effect-torrent", serviceVersion: "0.1.0" },
    metricsExportInterval: interval,
    loggerMergeWithExisting: true
  }).pipe(Layer.provide(FetchHttpClient.layer))
