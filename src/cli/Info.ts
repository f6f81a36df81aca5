/** `effect-torrent info`: what a .torrent file or magnet link holds. */
import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Magnet from "../protocol/Magnet.ts"
import type * as Metainfo from "../protocol/Metainfo.ts"
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

export const command = Command.make(
  "info",
  {
    torrent: Argument.String("torrent").pipe(Argument.withDescription("a .torrent file or a magnet link")),
    json: Flag.Boolean("json").pipe(Flag.withDescription("print JSON"), Flag.withDefault(false))
  },
  Effect.fn("Info.run")(function*({ json, torrent }) {
    const source = yield* Input.load(torrent)
    const value = source._tag === "Torrent"
      ? describeTorrent(source.meta)
      : { ...source.magnet, magnet: Magnet.format(source.magnet) }
    const text = source._tag === "Torrent" ? textOfTorrent(source.meta) : textOfMagnet(source.magnet)
    yield* Console.log(json ? JSON.stringify(value, null, 2) : text)
  })
).pipe(Command.withDescription("Show what a .torrent file or magnet link holds"))
