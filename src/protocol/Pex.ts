/**
 * BEP 11 `ut_pex` messages: peers a peer is connected to (`added`, each with
 * a flags byte in `added.f`) and peers it dropped since its last message,
 * IPv4 in compact 6-byte form, IPv6 (`added6`, `dropped6`) in 18-byte form.
 *
 * A message lists at most `maxPeers` added and `maxPeers` dropped peers, and
 * a peer sends one at most once a minute (see `PeerExchange`).
 */
import { Result, Schema } from "effect"
import * as Bencode from "./Bencode.ts"
import * as CompactPeer from "./CompactPeer.ts"
import { ExtensionError, smallLimits } from "./Extension.ts"

/** Most added (and most dropped) peers in one message. */
export const maxPeers = 50

/** The bits of a peer's flags byte. */
export const flags = {
  prefersEncryption: 0x01,
  /** A seed (or upload-only). */
  seed: 0x02,
  utp: 0x04,
  holepunch: 0x08,
  /** We connected to it: it accepts connections. */
  reachable: 0x10
} as const

const Address = Schema.Struct({ host: Schema.String, port: Schema.Port })
export type Address = typeof Address.Type

export const PexMessage = Schema.Struct({
  added: Schema.Array(
    Schema.Struct({ ...Address.fields, flags: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 })) })
  ),
  dropped: Schema.Array(Address)
})
export type PexMessage = typeof PexMessage.Type

const Wire = Schema.Struct({
  added: Schema.optionalKey(Schema.Uint8Array),
  "added.f": Schema.optionalKey(Schema.Uint8Array),
  added6: Schema.optionalKey(Schema.Uint8Array),
  "added6.f": Schema.optionalKey(Schema.Uint8Array),
  dropped: Schema.optionalKey(Schema.Uint8Array),
  dropped6: Schema.optionalKey(Schema.Uint8Array)
})
const decodeWire = Schema.decodeUnknownResult(Wire)

const fail = (detail: string) => Result.fail(new ExtensionError({ extension: "ut_pex", detail }))

const empty = new Uint8Array(0)

export const parse = (payload: Uint8Array): Result.Result<PexMessage, ExtensionError> => {
  const decoded = Bencode.decode(payload, smallLimits)
  if (Result.isFailure(decoded)) return fail(decoded.failure.message)
  if (!Bencode.isDict(decoded.success)) return fail("it is not a dictionary")
  const wire = decodeWire(decoded.success)
  if (Result.isFailure(wire)) return fail(wire.failure.message.replace(/\n\s*/g, " "))
  const w = wire.success
  const lists = [
    CompactPeer.decodeList(w.added ?? empty, 6, maxPeers),
    CompactPeer.decodeList(w.added6 ?? empty, 18, maxPeers),
    CompactPeer.decodeList(w.dropped ?? empty, 6, maxPeers),
    CompactPeer.decodeList(w.dropped6 ?? empty, 18, maxPeers)
  ] as const
  const bad = lists.find(Result.isFailure)
  if (bad !== undefined) return fail(bad.failure)
  const [added4, added6, dropped4, dropped6] = lists.map(Result.getOrThrow)
  // At most `maxPeers` of each list are read: more is more than a peer may send. Flags are optional
  // hints: a missing or short list means none.
  const withFlags = (peers: ReadonlyArray<Address>, f: Uint8Array | undefined) =>
    peers.map((peer, i) => ({ ...peer, flags: f?.[i] ?? 0 }))
  return Result.succeed({
    added: [...withFlags(added4!, w["added.f"]), ...withFlags(added6!, w["added6.f"])],
    dropped: [...dropped4!, ...dropped6!]
  })
}

/** Peers given by host name rather than IP cannot be sent and are left out. */
export const encode = (message: PexMessage): Uint8Array => {
  const compact = (peers: ReadonlyArray<Address & { readonly flags?: number }>, size: 6 | 18) => {
    const entries = peers.flatMap((peer) => {
      const bytes = CompactPeer.encode(peer)
      return bytes?.length === size ? [{ bytes, flags: peer.flags ?? 0 }] : []
    })
    return { bytes: Buffer.concat(entries.map((e) => e.bytes)), flags: Uint8Array.from(entries.map((e) => e.flags)) }
  }
  const added4 = compact(message.added, 6)
  const added6 = compact(message.added, 18)
  return Bencode.encode({
    added: added4.bytes,
    "added.f": added4.flags,
    added6: added6.bytes,
    "added6.f": added6.flags,
    dropped: compact(message.dropped, 6).bytes,
    dropped6: compact(message.dropped, 18).bytes
  })
}
