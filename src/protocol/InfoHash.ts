/**
 * The info-hash: SHA-1 of a torrent's original `info` bytes, as 40 lowercase
 * hex characters (the form used in logs, magnets and maps), with its raw
 * 20-byte form for the wire.
 *
 * A v2 torrent (BEP 52) is named by the SHA-256 of its info bytes
 * (`InfoHashV2`, 64 hex characters); where 20 bytes fit (the handshake,
 * trackers, the DHT) it goes truncated to its first 20, which is then the
 * `InfoHash` of a v2-only torrent.
 */
import { createHash } from "node:crypto"
import { Schema } from "effect"

export const InfoHash = Schema.String.check(Schema.isPattern(/^[0-9a-f]{40}$/)).pipe(Schema.brand("InfoHash"))
export type InfoHash = typeof InfoHash.Type

export const InfoHashV2 = Schema.String.check(Schema.isPattern(/^[0-9a-f]{64}$/)).pipe(Schema.brand("InfoHashV2"))
export type InfoHashV2 = typeof InfoHashV2.Type

export const fromBytes = (bytes: Uint8Array): InfoHash => Buffer.from(bytes).toString("hex") as InfoHash

export const toBytes = (hash: InfoHash): Uint8Array => Buffer.from(hash, "hex")

export const ofInfo = (info: Uint8Array): InfoHash => createHash("sha1").update(info).digest("hex") as InfoHash

export const ofInfoV2 = (info: Uint8Array): InfoHashV2 => createHash("sha256").update(info).digest("hex") as InfoHashV2

/** The 20 bytes of a v2 info-hash that stand for it in the handshake, on trackers and in the DHT. */
export const truncate = (hash: InfoHashV2): InfoHash => hash.slice(0, 40) as InfoHash

/** Whether `info` is the info dictionary `hash` names: by its SHA-1, or by its SHA-256 truncated (a v2 torrent's). */
export const names = (hash: InfoHash, info: Uint8Array): boolean =>
  ofInfo(info) === hash || truncate(ofInfoV2(info)) === hash

/**
 * The hashes peers, trackers and the DHT know a torrent by: its info-hash,
 * and a hybrid torrent's v2 info-hash truncated (BEP 52: a hybrid is announced
 * under both, and a v2-only peer names it by the second).
 */
export const swarmHashes = (
  torrent: { readonly infoHash: InfoHash; readonly infoHashV2?: InfoHashV2 | undefined }
): ReadonlyArray<InfoHash> => {
  const v2 = torrent.infoHashV2 === undefined ? undefined : truncate(torrent.infoHashV2)
  return v2 === undefined || v2 === torrent.infoHash ? [torrent.infoHash] : [torrent.infoHash, v2]
}
