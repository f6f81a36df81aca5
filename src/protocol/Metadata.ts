/**
 * BEP 9 `ut_metadata` messages: the info dictionary of a torrent, exchanged
 * in 16 KiB pieces, so that a magnet link (an info-hash) is enough to start.
 *
 * A message is a bencoded dictionary `{msg_type, piece}`; a `data` message
 * adds `total_size` and is followed by the piece's bytes. Message types we do
 * not know are kept as `Other` (BEP 9: ignore them).
 *
 * Sizes: we accept metadata of 1 byte up to `maxSize` (16 MiB, libtorrent's
 * default limit too); a claim outside that range is refused before anything
 * is allocated. Every piece is `pieceLength` bytes except a short last one.
 */
import { Result, Schema } from "effect"
import * as Bencode from "./Bencode.ts"
import { ExtensionError, smallLimits } from "./Extension.ts"

/** Largest info dictionary we fetch or accept: 16 MiB (about 800,000 pieces). */
export const maxSize = 16 * 1024 * 1024
/** Bytes per metadata piece. */
export const pieceLength = 16 * 1024

const Piece = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: Math.ceil(maxSize / pieceLength) - 1 }))

export const MetadataMessage = Schema.TaggedUnion({
  Request: { piece: Piece },
  Data: { piece: Piece, totalSize: Schema.Int, block: Schema.Uint8Array },
  Reject: { piece: Piece },
  Other: { msgType: Schema.Int.check(Schema.isGreaterThan(2)) }
})
export type MetadataMessage = typeof MetadataMessage.Type

const msgTypes = { Request: 0, Data: 1, Reject: 2 } as const

const Header = Schema.Struct({
  msg_type: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  piece: Schema.optionalKey(Piece),
  total_size: Schema.optionalKey(Schema.Int)
})
const decodeHeader = Schema.decodeUnknownResult(Header)

const fail = (detail: string) => Result.fail(new ExtensionError({ extension: "ut_metadata", detail }))

/** Why `size` is not an acceptable metadata size, if it is not. */
export const checkSize = (size: number): string | undefined =>
  !Number.isSafeInteger(size) || size <= 0
    ? `a metadata size of ${size} bytes is not a positive integer`
    : size > maxSize
    ? `a metadata size of ${size} bytes is over our limit of ${maxSize}`
    : undefined

export const pieceCount = (size: number): number => Math.ceil(size / pieceLength)

/** The length of metadata piece `piece` of `size` bytes of metadata. */
export const lengthOf = (size: number, piece: number): number => Math.min(pieceLength, size - piece * pieceLength)

/** Reads a ut_metadata payload; `Data.block` is a view on `payload`. */
export const parse = (payload: Uint8Array): Result.Result<MetadataMessage, ExtensionError> => {
  const decoded = Bencode.decodePrefix(payload, { ...smallLimits, maxBytes: payload.length })
  if (Result.isFailure(decoded)) return fail(decoded.failure.message)
  const { end, value } = decoded.success
  if (!Bencode.isDict(value)) return fail("it is not a dictionary")
  const header = decodeHeader(value)
  if (Result.isFailure(header)) return fail(header.failure.message.replace(/\n\s*/g, " "))
  const { msg_type, piece, total_size } = header.success
  if (msg_type > 2) return Result.succeed({ _tag: "Other", msgType: msg_type })
  if (piece === undefined) return fail(`a message of type ${msg_type} has no piece`)
  if (msg_type === msgTypes.Request) return Result.succeed({ _tag: "Request", piece })
  if (msg_type === msgTypes.Reject) return Result.succeed({ _tag: "Reject", piece })
  if (total_size === undefined) return fail("a data message has no total_size")
  return Result.succeed({ _tag: "Data", piece, totalSize: total_size, block: payload.subarray(end) })
}

export const encode = (message: MetadataMessage): Uint8Array => {
  switch (message._tag) {
    case "Request":
    case "Reject":
      return Bencode.encode({ msg_type: msgTypes[message._tag], piece: message.piece })
    case "Other":
      return Bencode.encode({ msg_type: message.msgType })
    case "Data":
      return Buffer.concat([
        Bencode.encode({ msg_type: msgTypes.Data, piece: message.piece, total_size: message.totalSize }),
        message.block
      ])
  }
}

/** The `data` (or, without metadata, `reject`) answer to a request for `piece` of `metadata`. */
export const answer = (metadata: Uint8Array | undefined, piece: number): MetadataMessage => {
  if (metadata === undefined || piece >= pieceCount(metadata.length)) return { _tag: "Reject", piece }
  const begin = piece * pieceLength
  return {
    _tag: "Data",
    piece,
    totalSize: metadata.length,
    block: metadata.subarray(begin, begin + lengthOf(metadata.length, piece))
  }
}
