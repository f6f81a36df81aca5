/**
 * The 68-byte BitTorrent handshake (BEP 3): pstrlen 19, "BitTorrent protocol",
 * 8 reserved bytes (feature bits), the 20-byte info-hash and the 20-byte peer id.
 *
 * On a connection it is read as the first state of `Frame.decodeWithHandshake`,
 * so the bytes a peer sends right after it are not lost.
 */
import { Result, Schema } from "effect"

export const protocol = "BitTorrent protocol"

/** Size of a handshake on the wire. */
export const length = 68

const expected = { length, pstrlen: protocol.length, protocol } as const

export class HandshakeError extends Schema.TaggedError<HandshakeError>()("HandshakeError", {
  /** Which part of the handshake was wrong. */
  field: Schema.Literals(["length", "pstrlen", "protocol"]),
  /** What the peer sent there. */
  found: Schema.Union([Schema.Number, Schema.String])
}) {
  override get message() {
    return `bad handshake: ${this.field} is ${JSON.stringify(this.found)}; expected ${
      JSON.stringify(expected[this.field])
    }`
  }
}

const bytes = (n: number) => Schema.Uint8Array.check(Schema.isBetweenLength(n, n))

export const Handshake = Schema.TaggedStruct("Handshake", {
  reserved: bytes(8),
  infoHash: bytes(20),
  peerId: bytes(20)
})
export type Handshake = typeof Handshake.Type

/** Reserved bits we know: [byte, mask]. */
const features = {
  /** BEP 10 extension protocol (ut_metadata, ut_pex, …). */
  extensions: [5, 0x10],
  /** BEP 6 fast extension (HaveAll, HaveNone, Suggest, RejectRequest, AllowedFast). */
  fast: [7, 0x04],
  /** BEP 5 DHT (the peer accepts `port` messages). */
  dht: [7, 0x01],
  /** BEP 52 v2 torrents (libtorrent's bit: the peer speaks hash requests and knows v2 info-hashes). */
  v2: [7, 0x10]
} as const

export type Feature = keyof typeof features

/** Our handshake; throws (a bug) if `infoHash` or `peerId` is not 20 bytes. */
export const make = (options: {
  readonly infoHash: Uint8Array
  readonly peerId: Uint8Array
  readonly features?: Iterable<Feature> | undefined
}): Handshake => {
  const reserved = new Uint8Array(8)
  for (const feature of options.features ?? []) {
    const [byte, mask] = features[feature]
    reserved[byte] |= mask
  }
  return Handshake.make({ reserved, infoHash: options.infoHash, peerId: options.peerId })
}

export const supports = (handshake: Handshake, feature: Feature): boolean => {
  const [byte, mask] = features[feature]
  return (handshake.reserved[byte]! & mask) !== 0
}

const protocolBytes = new TextEncoder().encode(protocol)
const latin1 = new TextDecoder("latin1")

export const encode = (handshake: Handshake): Uint8Array => {
  const out = new Uint8Array(length)
  out[0] = protocol.length
  out.set(protocolBytes, 1)
  out.set(handshake.reserved, 20)
  out.set(handshake.infoHash, 28)
  out.set(handshake.peerId, 48)
  return out
}

/**
 * Checks the first bytes of a handshake before all 68 have arrived, so that a
 * peer sending something else is dropped at once rather than at the
 * handshake deadline.
 */
export const checkPrefix = (prefix: Uint8Array): HandshakeError | undefined => {
  if (prefix.length > 0 && prefix[0] !== protocol.length) {
    return new HandshakeError({ field: "pstrlen", found: prefix[0]! })
  }
  const name = prefix.subarray(1, 1 + protocol.length)
  for (let i = 0; i < name.length; i++) {
    if (name[i] !== protocolBytes[i]) return new HandshakeError({ field: "protocol", found: latin1.decode(name) })
  }
  return undefined
}

/**
 * Reads exactly 68 bytes. The fields are copies: the input is a view on a
 * socket buffer and a handshake lives as long as the session.
 */
export const decode = (input: Uint8Array): Result.Result<Handshake, HandshakeError> => {
  if (input.length !== length) return Result.fail(new HandshakeError({ field: "length", found: input.length }))
  if (input[0] !== protocol.length) return Result.fail(new HandshakeError({ field: "pstrlen", found: input[0]! }))
  const name = latin1.decode(input.subarray(1, 20))
  if (name !== protocol) return Result.fail(new HandshakeError({ field: "protocol", found: name }))
  return Result.succeed({
    _tag: "Handshake",
    reserved: input.slice(20, 28),
    infoHash: input.slice(28, 48),
    peerId: input.slice(48, 68)
  })
}
