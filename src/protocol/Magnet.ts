/**
 * Magnet links (BEP 9): `xt=urn:btih:` with a 40-hex or 32-base32 info-hash,
 * and BEP 52's `xt=urn:btmh:1220` with a v2 info-hash (a SHA-256 multihash;
 * both in a hybrid torrent's link), `dn`, repeated `tr`, `x.pe` peer addresses, `ws` web seeds and
 * `so`, the files to download (BEP 53: indexes and ranges, `0,2,4-6`). Other
 * parameters (`xl`, `as`, `kt`, …) carry nothing we use and are ignored, as
 * other clients do.
 */
import { Result, Schema } from "effect"
import * as InfoHash from "./InfoHash.ts"
import type { Metainfo } from "./Metainfo.ts"

export class MagnetError extends Schema.TaggedError<MagnetError>()("MagnetError", {
  detail: Schema.String
}) {
  override get message() {
    return `invalid magnet link: ${this.detail}`
  }
}

export const Magnet = Schema.Struct({
  /** The v1 info-hash; for a v2-only link its v2 info-hash truncated to 20 bytes. */
  infoHash: InfoHash.InfoHash,
  /** The v2 info-hash (`urn:btmh:`), if the link has one. */
  infoHashV2: Schema.optionalKey(InfoHash.InfoHashV2),
  name: Schema.optionalKey(Schema.String),
  trackers: Schema.Array(Schema.String),
  /** `x.pe` peers as `host:port` (IPv6 hosts in brackets). */
  peers: Schema.Array(Schema.String),
  webSeeds: Schema.Array(Schema.String),
  /** `so` (BEP 53): the files to download, as ranges of indexes (both ends included); absent: every file. */
  selectOnly: Schema.optionalKey(Schema.Array(Schema.Struct({ from: Schema.Int, to: Schema.Int })))
})
export type Magnet = typeof Magnet.Type

/** The indexes `so` selects among a torrent's `files` files (those beyond it are left out). */
export const selectedFiles = (magnet: Magnet, files: number): Array<number> | undefined => {
  if (magnet.selectOnly === undefined) return undefined
  const chosen = new Set<number>()
  for (const { from, to } of magnet.selectOnly) for (let i = from; i <= Math.min(to, files - 1); i++) chosen.add(i)
  return [...chosen].sort((a, b) => a - b)
}

/** `so`'s value: indexes and ranges separated by commas. */
const parseSelectOnly = (value: string): Array<{ readonly from: number; readonly to: number }> | undefined => {
  const ranges = value.split(",").map((part) => /^(\d{1,9})(?:-(\d{1,9}))?$/.exec(part.trim()))
  if (ranges.some((match) => match === null)) return undefined
  const out = ranges.map((match) => ({ from: Number(match![1]), to: Number(match![2] ?? match![1]) }))
  return out.every(({ from, to }) => from <= to) ? out : undefined
}

const fail = (detail: string) => Result.fail(new MagnetError({ detail }))

export const isMagnet = (input: string): boolean => input.toLowerCase().startsWith("magnet:?")

export const parse = (uri: string): Result.Result<Magnet, MagnetError> => {
  if (!isMagnet(uri)) return fail("it does not start with magnet:?")
  let params: URLSearchParams
  try {
    params = new URLSearchParams(uri.slice("magnet:?".length))
  } catch {
    return fail("its query string cannot be decoded")
  }
  const topics = params.getAll("xt")
  const btih = topics.filter((xt) => xt.toLowerCase().startsWith("urn:btih:"))
  const btmh = topics.filter((xt) => xt.toLowerCase().startsWith("urn:btmh:"))
  if (btih.length === 0 && btmh.length === 0) return fail("it has no xt=urn:btih: or xt=urn:btmh: info-hash")
  const decoded = btih.map((xt) => decodeHash(xt.slice("urn:btih:".length)))
  const bad = decoded.indexOf(undefined)
  if (bad >= 0) return fail(`the info-hash in ${JSON.stringify(btih[bad])} is neither 40 hex nor 32 base32 characters`)
  const decodedV2 = btmh.map((xt) => /^1220([0-9a-f]{64})$/i.exec(xt.slice("urn:btmh:".length))?.[1]?.toLowerCase())
  const badV2 = decodedV2.indexOf(undefined)
  if (badV2 >= 0) {
    return fail(
      `the info-hash in ${JSON.stringify(btmh[badV2])} is not 1220 and 64 hex characters (a SHA-256 multihash)`
    )
  }
  if (new Set(decoded).size > 1 || new Set(decodedV2).size > 1) return fail("it names more than one info-hash")
  const infoHashV2 = decodedV2[0] as InfoHash.InfoHashV2 | undefined
  const infoHash = decoded[0] ?? InfoHash.truncate(infoHashV2!)
  const peers = params.getAll("x.pe")
  const badPeer = peers.find((peer) => parsePeer(peer) === undefined)
  if (badPeer !== undefined) return fail(`x.pe ${JSON.stringify(badPeer)} is not a host:port address`)
  const trackers = unique(params.getAll("tr"))
  const badTracker = trackers.find((url) => !/^(https?|udp|wss?):\/\/[^/]/i.test(url))
  if (badTracker !== undefined) return fail(`tr ${JSON.stringify(badTracker)} is not a tracker URL`)
  const name = params.get("dn")
  const so = params.get("so")
  const selectOnly = so === null ? undefined : parseSelectOnly(so)
  if (so !== null && selectOnly === undefined) {
    return fail(`so ${JSON.stringify(so)} is not a list of file indexes and ranges (like 0,2,4-6)`)
  }
  return Result.succeed({
    infoHash,
    ...(infoHashV2 !== undefined ? { infoHashV2 } : {}),
    ...(name !== null && name !== "" ? { name } : {}),
    trackers,
    peers: unique(peers),
    webSeeds: unique(params.getAll("ws")),
    ...(selectOnly === undefined ? {} : { selectOnly })
  })
}

/** Whether the link names a v2-only torrent (no v1 info-hash). */
export const isV2Only = (magnet: Magnet): boolean =>
  magnet.infoHashV2 !== undefined && InfoHash.truncate(magnet.infoHashV2) === magnet.infoHash

/** The canonical magnet string: hex info-hashes first (v1, then v2), then dn, tr, ws, x.pe, so in that order. */
export const format = (magnet: Magnet): string => {
  const parts = isV2Only(magnet) ? [] : [`xt=urn:btih:${magnet.infoHash}`]
  if (magnet.infoHashV2 !== undefined) parts.push(`xt=urn:btmh:1220${magnet.infoHashV2}`)
  if (magnet.name !== undefined) parts.push(`dn=${encodeURIComponent(magnet.name)}`)
  for (const tr of magnet.trackers) parts.push(`tr=${encodeURIComponent(tr)}`)
  for (const ws of magnet.webSeeds) parts.push(`ws=${encodeURIComponent(ws)}`)
  for (const pe of magnet.peers) parts.push(`x.pe=${encodeURIComponent(pe)}`)
  if (magnet.selectOnly !== undefined) {
    parts.push(`so=${magnet.selectOnly.map(({ from, to }) => (from === to ? `${from}` : `${from}-${to}`)).join(",")}`)
  }
  return `magnet:?${parts.join("&")}`
}

export const fromMetainfo = (meta: Metainfo): Magnet => ({
  infoHash: meta.infoHash,
  ...(meta.infoHashV2 !== undefined ? { infoHashV2: meta.infoHashV2 } : {}),
  name: meta.name,
  trackers: unique(meta.announce.flat()),
  peers: [],
  webSeeds: [...meta.urlList]
})

/** A `host:port` (or `[v6]:port`) address. */
export const parsePeer = (peer: string): { readonly host: string; readonly port: number } | undefined => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(peer)
  if (match === null) return undefined
  const port = Number(match[3])
  return port > 0 && port < 65536 ? { host: match[1] ?? match[2]!, port } : undefined
}

/** The magnet's `x.pe` peers as addresses (parse checked them). */
export const peerAddresses = (magnet: Magnet): Array<{ readonly host: string; readonly port: number }> =>
  magnet.peers.flatMap((peer) => parsePeer(peer) ?? [])

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

const decodeHash = (text: string): InfoHash.InfoHash | undefined => {
  if (/^[0-9a-fA-F]{40}$/.test(text)) return text.toLowerCase() as InfoHash.InfoHash
  if (!/^[A-Za-z2-7]{32}$/.test(text)) return undefined
  const bytes = new Uint8Array(20)
  let bits = 0, value = 0, at = 0
  for (const ch of text.toUpperCase()) {
    value = (value << 5) | BASE32.indexOf(ch)
    bits += 5
    if (bits >= 8) {
      bits -= 8
      bytes[at++] = (value >>> bits) & 0xff
    }
  }
  return InfoHash.fromBytes(bytes)
}

const unique = (items: ReadonlyArray<string>): Array<string> => [...new Set(items)]
