/**
 * The extension protocol (BEP 10): after the BitTorrent handshake, both sides
 * send an extended handshake (`Extended` message id 0) listing in `m` the
 * extensions they speak and the message id each should arrive on, with a few
 * facts about themselves (`v` client, `p` listening port, `reqq` request
 * queue, `yourip`, our `ipv6`, BEP 9 `metadata_size`, BEP 21 `upload_only`: it will
 * download nothing more, a seed or a partial seed).
 *
 * Each side picks the ids it receives on: `ours` are the ids peers send us;
 * a peer's `m` gives the ids we send it. Extensions we do not speak are
 * ignored; an id of 0 turns one off. A later handshake updates the earlier.
 *
 * `ExtensionError` covers bad bytes in any extension message we read (this
 * handshake, ut_metadata, ut_pex).
 */
import { Result, Schema } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import * as Bencode from "./Bencode.ts"
import { ipBytes } from "./CompactPeer.ts"

export class ExtensionError extends Schema.TaggedError<ExtensionError>()("ExtensionError", {
  /** "handshake", "ut_metadata" or "ut_pex". */
  extension: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `peer sent a bad ${this.extension} message: ${this.detail}`
  }
}

/** The extensions we speak, and the message ids we receive them on. */
export const ours = { ut_metadata: 1, ut_pex: 2 } as const
export type Name = keyof typeof ours

/** Our `v`. */
export const client = "effect-torrent 0.1.0"

/** Limits for decoding a small extension dictionary (handshake, PEX, a metadata header). */
export const smallLimits: Bencode.Limits = { maxBytes: 64 * 1024, maxDepth: 8, maxTokens: 4096 }

const MessageId = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))

/** The extended handshake as it is on the wire (other keys are ignored). */
export const ExtensionHandshake = Schema.Struct({
  m: Schema.Record(Schema.String, Schema.Unknown),
  v: Schema.optionalKey(Schema.Uint8Array),
  p: Schema.optionalKey(Schema.Int),
  reqq: Schema.optionalKey(Schema.Int),
  yourip: Schema.optionalKey(Schema.Uint8Array),
  metadata_size: Schema.optionalKey(Schema.Int),
  upload_only: Schema.optionalKey(Schema.Int)
})
export type ExtensionHandshake = typeof ExtensionHandshake.Type

/** What a peer's extended handshake tells us, checked. */
export interface PeerHandshake {
  /** The ids to send each extension we both speak on (absent: the peer does not speak it). */
  readonly ids: Partial<Record<Name, number>>
  /** Ids the peer turned off (0) in this handshake. */
  readonly disabled: ReadonlyArray<Name>
  readonly client?: string
  /** The port the peer listens on. */
  readonly port?: number
  /** How many requests the peer queues. */
  readonly reqq?: number
  /** Our address as the peer sees it. */
  readonly yourip?: string
  /** The size of the info dictionary (BEP 9), unchecked: the metadata fetcher judges it. */
  readonly metadataSize?: number
  /** BEP 21: the peer downloads nothing more (absent: not said, so no). */
  readonly uploadOnly?: boolean
}

const decodeWire = Schema.decodeUnknownResult(ExtensionHandshake)

const fail = (detail: string) => Result.fail(new ExtensionError({ extension: "handshake", detail }))

export const decodeHandshake = (payload: Uint8Array): Result.Result<PeerHandshake, ExtensionError> => {
  const decoded = Bencode.decode(payload, smallLimits)
  if (Result.isFailure(decoded)) return fail(decoded.failure.message)
  if (!Bencode.isDict(decoded.success)) return fail("it is not a dictionary")
  const wire = decodeWire(decoded.success)
  if (Result.isFailure(wire)) return fail(wire.failure.message.replace(/\n\s*/g, " "))
  const h = wire.success
  const ids: Partial<Record<Name, number>> = {}
  const disabled: Array<Name> = []
  for (const name of Object.keys(ours) as Array<Name>) {
    const id = h.m[name]
    if (id === undefined) continue
    if (!Schema.is(MessageId)(id)) return fail(`m.${name} is not a message id (an integer from 0 to 255)`)
    if (id === 0) disabled.push(name)
    else ids[name] = id
  }
  const yourip = h.yourip?.length === 4
    ? NetAddress.formatIp(NetAddress.ipv4FromBytesUnsafe(h.yourip))
    : h.yourip?.length === 16
    ? NetAddress.formatIp(NetAddress.ipv6FromBytesUnsafe(h.yourip))
    : undefined
  return Result.succeed({
    ids,
    disabled,
    ...(h.v !== undefined ? { client: Bencode.text(h.v) } : {}),
    ...(h.p !== undefined && h.p > 0 && h.p < 65536 ? { port: h.p } : {}),
    ...(h.reqq !== undefined && h.reqq > 0 ? { reqq: h.reqq } : {}),
    ...(yourip !== undefined ? { yourip } : {}),
    ...(h.metadata_size !== undefined ? { metadataSize: h.metadata_size } : {}),
    ...(h.upload_only !== undefined ? { uploadOnly: h.upload_only !== 0 } : {})
  })
}

/** Applies a later handshake to what an earlier one said (BEP 10: only the changes need be sent). */
export const update = (before: PeerHandshake | undefined, after: PeerHandshake): PeerHandshake => {
  if (before === undefined) return after
  const ids = { ...before.ids, ...after.ids }
  for (const name of after.disabled) delete ids[name]
  const { disabled: _, ids: __, ...rest } = before
  const { disabled, ids: ___, ...fresh } = after
  return { ...rest, ...fresh, ids, disabled }
}

/** Our extended handshake. */
export const encodeHandshake = (options: {
  /** The extensions we offer this peer (ut_pex is left out for private torrents). */
  readonly extensions: ReadonlyArray<Name>
  readonly port: number
  readonly reqq: number
  /** The peer's address, echoed as `yourip` when it is an IP. */
  readonly peerHost?: string | undefined
  /** Our IPv6 address, when we have one to tell (`ipv6`: a peer on IPv4 may reach us there too). */
  readonly ipv6?: string | undefined
  readonly metadataSize?: number | undefined
  /** BEP 21: we download nothing more. */
  readonly uploadOnly?: boolean | undefined
}): Uint8Array => {
  const yourip = options.peerHost === undefined ? undefined : ipBytes(options.peerHost)
  const ipv6 = options.ipv6 === undefined ? undefined : ipBytes(options.ipv6)
  return Bencode.encode({
    m: Object.fromEntries(options.extensions.map((name) => [name, ours[name]])),
    v: client,
    p: options.port,
    reqq: options.reqq,
    ...(yourip !== undefined ? { yourip } : {}),
    ...(ipv6?.length === 16 ? { ipv6 } : {}),
    ...(options.metadataSize !== undefined ? { metadata_size: options.metadataSize } : {}),
    ...(options.uploadOnly !== undefined ? { upload_only: options.uploadOnly ? 1 : 0 } : {})
  })
}
