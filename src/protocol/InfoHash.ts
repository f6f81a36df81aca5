/**
 * The info-hash: SHA-1 of a torrent's original `info` bytes, as 40 lowercase
 * hex characters (the form used in logs, magnets and maps), with its raw
 * 20-byte form for the wire.
 */
import { createHash } from "node:crypto"
import { Schema } from "effect"

export const InfoHash = Schema.String.check(Schema.isPattern(/^[0-9a-f]{40}$/)).pipe(Schema.brand("InfoHash"))
export type InfoHash = typeof InfoHash.Type

export const fromBytes = (bytes: Uint8Array): InfoHash => Buffer.from(bytes).toString("hex") as InfoHash

export const toBytes = (hash: InfoHash): Uint8Array => Buffer.from(hash, "hex")

export const ofInfo = (info: Uint8Array): InfoHash => createHash("sha1").update(info).digest("hex") as InfoHash
