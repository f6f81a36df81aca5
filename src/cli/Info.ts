/**
 * `effect-torrent info`: what a .torrent file or magnet link holds; with
 * `--scrape`, what each of its trackers counts (BEP 48).
 */
import { Console, Effect, Layer } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as InfoHash from "../protocol/InfoHash.ts"
import * as Magnet from "../protocol/Magnet.ts"
import type * as Metainfo from "../protocol/Metainfo.ts"
import type * as Tracker from "../tracker/Tracker.ts"
import * as Format from "./Format.ts"
import * as Input from "./Input.ts"

const describeTorrent = (meta: Metainfo.Metainfo) => ({
  name: meta.name,
  infoHash: meta.infoHash,
  ...(meta.infoHashV2 !== undefined ? { infoHashV2: meta.infoHashV2 } : {}),
  version: meta.infoHashV2 === undefined ? "v1" : meta.pieces.length > 0 ? "hybrid" : "v2",
  length: meta.length,
  pieceLength: meta.pieceLength,
  pieceCount: meta.pieceCount,
  private: meta.private,
  files: meta.files.map((file) => ({ path: file.path.join("/"), length: file.length })),
  trackers: meta.announce,
  webSeeds: meta.urlList,
  ...(meta.comment !== undefined ? { comment: meta.comment } : {}),
  ...(meta.createdBy !== undefined ? { createdBy: meta.createdBy } : {}),
  ...(meta.creationDate !== undefined ? { creationDate: new Date(meta.creationDate * 1000).toISOString() } : {}),
  magnet: Magnet.format(Magnet.fromMetainfo(meta))
})

const textOfTorrent = (meta: Metainfo.Metainfo): string => {
  const d = describeTorrent(meta)
  const lines = [
    `name:        ${d.name}`,
    ...Format.infoHashLines(meta),
    `size:        ${Format.bytes(d.length)} (${d.length} bytes)`,
    `pieces:      ${d.pieceCount} × ${Format.bytes(d.pieceLength)}`,
    `private:     ${d.private ? "yes" : "no"}`
  ]
  if (d.comment !== undefined) lines.push(`comment:     ${d.comment}`)
  if (d.createdBy !== undefined) lines.push(`created by:  ${d.createdBy}`)
  if (d.creationDate !== undefined) lines.push(`created:     ${d.creationDate}`)
  for (const [i, tier] of d.trackers.entries()) lines.push(`tracker tier ${i + 1}: ${tier.join(" ")}`)
  if (d.webSeeds.length > 0) lines.push(`web seeds:   ${d.webSeeds.join(" ")}`)
  // Each file with the index --select takes.
  lines.push(`magnet:      ${d.magnet}`, `files (${d.files.length}; --select takes the index):`)
  const indexWidth = String(d.files.length - 1).length
  for (const [i, file] of d.files.entries()) {
    lines.push(`  ${String(i).padStart(indexWidth)}  ${String(file.length).padStart(14)}  ${file.path}`)
  }
  // Names, comments and trackers are the torrent maker's strings. (The JSON form keeps them exact.)
  return Format.printableLines(lines)
}

const textOfMagnet = (magnet: Magnet.Magnet): string =>
  Format.printableLines([
    `name:        ${magnet.name ?? "(unknown until the metadata is fetched)"}`,
    ...Format.infoHashLines(magnet),
    ...magnet.trackers.map((tr) => `tracker:     ${tr}`),
    ...magnet.webSeeds.map((ws) => `web seed:    ${ws}`),
    ...magnet.peers.map((pe) => `peer:        ${pe}`),
    `magnet:      ${Magnet.format(magnet)}`
  ])

/** One tracker's counts, or why it gave none. */
type Scraped =
  | { readonly url: string } & Tracker.ScrapeResponse
  | { readonly url: string; readonly error: { readonly reason: string; readonly message: string } }

/**
 * Every tracker scraped at once; a UDP tracker is given 15 s (one try), as
 * an HTTP one is: the command should not wait for BEP 15's two hours. The
 * trackers' code loads only here: `info` alone starts without it.
 */
const scrapeAll = (urls: ReadonlyArray<string>, infoHash: InfoHash.InfoHash) =>
  Effect.gen(function*() {
    const [{ Network }, HttpTracker, Tracker, UdpTracker] = yield* Effect.promise(() =>
      Promise.all([
        import("../peer/Network.ts"),
        import("../tracker/HttpTracker.ts"),
        import("../tracker/Tracker.ts"),
        import("../tracker/UdpTracker.ts")
      ])
    )
    return yield* Effect.flatMap(Effect.service(Tracker.Tracker), (tracker) =>
      Effect.forEach(
        urls,
        (url): Effect.Effect<Scraped> =>
          tracker.scrape(url, InfoHash.toBytes(infoHash)).pipe(
            Effect.map((counts) => ({ url, ...counts })),
            Effect.catch((error) =>
              Effect.succeed({ url, error: { reason: error.reason._tag, message: error.message } })
            )
          ),
        { concurrency: "unbounded" }
      )).pipe(
        Effect.provide(Tracker.Tracker.layer.pipe(Layer.provide([
          HttpTracker.layerNode,
          UdpTracker.layerWith({ maxRetransmits: 0 }).pipe(Layer.provide(Network.layerNode))
        ])))
      )
  })

const textOfScrape = (scraped: ReadonlyArray<Scraped>): string =>
  Format.printableLines([
    scraped.length === 0 ? "scrape:      no trackers" : "scrape:",
    ...scraped.map((s) =>
      "error" in s
        ? `  ${s.url}  failed: ${s.error.message}`
        : `  ${s.url}  seeders ${s.seeders}  leechers ${s.leechers}  downloaded ${s.downloaded}`
    )
  ])

export const command = Command.make(
  "info",
  {
    torrent: Argument.String("torrent").pipe(Argument.withDescription("a .torrent file or a magnet link")),
    json: Flag.Boolean("json").pipe(Flag.withDescription("print JSON"), Flag.withDefault(false)),
    scrape: Flag.Boolean("scrape").pipe(
      Flag.withDescription("ask each tracker for its seeders, leechers and downloads (BEP 48)"),
      Flag.withDefault(false)
    )
  },
  Effect.fn("Info.run")(function*({ json, scrape, torrent }) {
    const source = yield* Input.load(torrent)
    const value = source._tag === "Torrent"
      ? describeTorrent(source.meta)
      : { ...source.magnet, magnet: Magnet.format(source.magnet) }
    const text = source._tag === "Torrent" ? textOfTorrent(source.meta) : textOfMagnet(source.magnet)
    if (!scrape) return yield* Console.log(json ? JSON.stringify(value, null, 2) : text)
    const trackers = source._tag === "Torrent" ? [...new Set(source.meta.announce.flat())] : source.magnet.trackers
    const scraped = yield* scrapeAll(trackers, value.infoHash)
    yield* Console.log(
      json ? JSON.stringify({ ...value, scrape: scraped }, null, 2) : `${text}\n${textOfScrape(scraped)}`
    )
  })
).pipe(Command.withDescription("Show what a .torrent file or magnet link holds"))
