/**
 * BEP 6 allowed-fast set: the pieces a peer may download from us even while
 * we choke it, derived from its IPv4 address and the info-hash so that every
 * client computes the same set for it.
 */
import { createHash } from "node:crypto"

/** How many pieces we allow (the size mainline clients use). */
export const defaultSize = 10

/** Smaller torrents get no allowed-fast set: it would be much of the torrent, defeating choking. */
export const minPieceCount = 100

/** The allowed-fast set for an IPv4 peer; empty for other addresses (BEP 6 defines IPv4 only). */
export const compute = (ip: string, infoHash: Uint8Array, pieceCount: number, k = defaultSize): Array<number> => {
  const octets = ip.split(".").map(Number)
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return []
  const size = Math.min(k, pieceCount)
  let x: Buffer = Buffer.concat([Buffer.from([octets[0]!, octets[1]!, octets[2]!, 0]), infoHash])
  const out: Array<number> = []
  while (out.length < size) {
    x = createHash("sha1").update(x).digest()
    for (let i = 0; i < 5 && out.length < size; i++) {
      const index = x.readUInt32BE(i * 4) % pieceCount
      if (!out.includes(index)) out.push(index)
    }
  }
  return out
}
