/**
 * Peer wire messages (BEP 3, fast extension BEP 6, extension protocol BEP 10,
 * DHT port BEP 5, v2 hash messages BEP 52) and their binary form: a 4-byte big-endian length, a 1-byte
 * id, the payload. A zero length is a keep-alive.
 *
 * The Schema describes the shapes (types, `WireMessage.match`, guards,
 * arbitraries for property tests); it is not the hot path: `parse` and
 * `encodeInto` read and write bytes directly. Checks needing torrent context
 * (piece index < piece count, block length <= 16 KiB, bitfield size) are the
 * Coordinator's.
 */
import { Result, Schema } from "effect"

/** A message whose payload length does not fit its id. */
export class InvalidLength extends Schema.TaggedError<InvalidLength>()("InvalidLength", {
  id: Schema.Int,
  length: Schema.Int,
  expected: Schema.String
}) {
  override get message() {
    const what = `a ${names[this.id]} message (id ${this.id})`
    return `peer sent ${what} with a ${this.length}-byte payload; expected ${this.expected}`
  }
}

export class UnknownMessage extends Schema.TaggedError<UnknownMessage>()("UnknownMessage", {
  id: Schema.Int,
  length: Schema.Int
}) {
  override get message() {
    return `peer sent a message with unknown id ${this.id} (${this.length}-byte payload)`
  }
}

/** A declared frame length (id + payload) over the decoder's limit; see `Frame.maxFrameFor`. */
export class FrameTooLarge extends Schema.TaggedError<FrameTooLarge>()("FrameTooLarge", {
  length: Schema.Int,
  limit: Schema.Int
}) {
  override get message() {
    return `peer sent a ${this.length}-byte frame; the limit is ${this.limit}`
  }
}

/** Bad bytes from a peer after the handshake; `Effect.catchReason("WireError", …)` picks one kind. */
export class WireError extends Schema.TaggedError<WireError>()("WireError", {
  reason: Schema.Union([InvalidLength, UnknownMessage, FrameTooLarge])
}) {
  override get message() {
    return this.reason.message
  }
}

const Uint32 = Schema.Number.check(Schema.isUint32())
/** The fields naming a block: Request, Cancel, RejectRequest. */
const BlockRange = { index: Uint32, begin: Uint32, length: Uint32 }
/**
 * The fields naming hashes of a v2 file's Merkle tree (BEP 52): HashRequest,
 * Hashes, HashReject. `length` nodes of layer `baseLayer` (0: the blocks')
 * from `index`, and the uncle hashes proving them up `proofLayers` layers.
 */
const HashRange = {
  piecesRoot: Schema.Uint8Array.check(Schema.isBetweenLength(32, 32)),
  baseLayer: Uint32,
  index: Uint32,
  length: Uint32,
  proofLayers: Uint32
}

export const WireMessage = Schema.TaggedUnion({
  KeepAlive: {},
  Choke: {},
  Unchoke: {},
  Interested: {},
  NotInterested: {},
  Have: { index: Uint32 },
  Bitfield: { bytes: Schema.Uint8Array },
  Request: BlockRange,
  Piece: { index: Uint32, begin: Uint32, block: Schema.Uint8Array },
  Cancel: BlockRange,
  Port: { port: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0xffff })) },
  HaveAll: {},
  HaveNone: {},
  Suggest: { index: Uint32 },
  RejectRequest: BlockRange,
  AllowedFast: { index: Uint32 },
  HashRequest: HashRange,
  /** `hashes`: the nodes, then the uncles, 32 bytes each. */
  Hashes: { ...HashRange, hashes: Schema.Uint8Array },
  HashReject: HashRange,
  Extended: { id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0xff })), payload: Schema.Uint8Array }
})
export type WireMessage = typeof WireMessage.Type

/** Message ids on the wire (KeepAlive has none: it is an empty frame). */
export const ids = {
  Choke: 0,
  Unchoke: 1,
  Interested: 2,
  NotInterested: 3,
  Have: 4,
  Bitfield: 5,
  Request: 6,
  Piece: 7,
  Cancel: 8,
  Port: 9,
  Suggest: 13,
  HaveAll: 14,
  HaveNone: 15,
  RejectRequest: 16,
  AllowedFast: 17,
  Extended: 20,
  HashRequest: 21,
  Hashes: 22,
  HashReject: 23
} as const satisfies Record<Exclude<WireMessage["_tag"], "KeepAlive">, number>

const names: Record<number, string> = Object.fromEntries(Object.entries(ids).map(([name, id]) => [id, name]))

/** Bytes on the wire, length prefix included. */
export const encodedLength = (msg: WireMessage): number => {
  switch (msg._tag) {
    case "KeepAlive":
      return 4
    case "Choke":
    case "Unchoke":
    case "Interested":
    case "NotInterested":
    case "HaveAll":
    case "HaveNone":
      return 5
    case "Have":
    case "Suggest":
    case "AllowedFast":
      return 9
    case "Request":
    case "Cancel":
    case "RejectRequest":
      return 17
    case "Port":
      return 7
    case "Bitfield":
      return 5 + msg.bytes.length
    case "Piece":
      return pieceHeaderLength + msg.block.length
    case "Extended":
      return 6 + msg.payload.length
    case "HashRequest":
    case "HashReject":
      return 53
    case "Hashes":
      return 53 + msg.hashes.length
  }
}

/**
 * Writes `msg` at `offset` and returns the offset after it. Trusts its input
 * (build messages with `WireMessage.cases.X.make` where they are not ours).
 */
export const encodeInto = (msg: WireMessage, buf: Uint8Array, offset: number): number =>
  write(msg, buf, new DataView(buf.buffer, buf.byteOffset, buf.byteLength), offset)

/** A Piece message's bytes before its block: length prefix, id, index and begin. */
export const pieceHeaderLength = 13

/**
 * Writes the header of a Piece message carrying `length` bytes at `offset`
 * and returns the offset after it, where the block goes.
 */
export const encodePieceHeader = (buf: Uint8Array, offset: number, index: number, begin: number, length: number) => {
  const view = new DataView(buf.buffer, buf.byteOffset + offset, pieceHeaderLength)
  view.setUint32(0, pieceHeaderLength - 4 + length)
  view.setUint8(4, ids.Piece)
  view.setUint32(5, index)
  view.setUint32(9, begin)
  return offset + pieceHeaderLength
}

/** A batch of messages in one buffer: one allocation, each block copied once. */
export const encodeBatch = (msgs: ReadonlyArray<WireMessage>): Uint8Array => {
  let size = 0
  for (const msg of msgs) size += encodedLength(msg)
  const buf = new Uint8Array(size)
  const view = new DataView(buf.buffer)
  let offset = 0
  for (const msg of msgs) offset = write(msg, buf, view, offset)
  return buf
}

/** One message in its own buffer; prefer `encodeBatch` for what goes out together. */
export const encode = (msg: WireMessage): Uint8Array => encodeBatch([msg])

const write = (msg: WireMessage, buf: Uint8Array, view: DataView, offset: number): number => {
  const end = offset + encodedLength(msg)
  view.setUint32(offset, end - offset - 4)
  if (msg._tag === "KeepAlive") return end
  buf[offset + 4] = ids[msg._tag]
  const at = offset + 5
  switch (msg._tag) {
    case "Have":
    case "Suggest":
    case "AllowedFast":
      view.setUint32(at, msg.index)
      break
    case "Request":
    case "Cancel":
    case "RejectRequest":
      view.setUint32(at, msg.index)
      view.setUint32(at + 4, msg.begin)
      view.setUint32(at + 8, msg.length)
      break
    case "Piece":
      // The header as uploads write it (the prefix and id again, the same bytes).
      buf.set(msg.block, encodePieceHeader(buf, offset, msg.index, msg.begin, msg.block.length))
      break
    case "Bitfield":
      buf.set(msg.bytes, at)
      break
    case "Port":
      view.setUint16(at, msg.port)
      break
    case "Extended":
      buf[at] = msg.id
      buf.set(msg.payload, at + 1)
      break
    case "HashRequest":
    case "Hashes":
    case "HashReject":
      buf.set(msg.piecesRoot, at)
      view.setUint32(at + 32, msg.baseLayer)
      view.setUint32(at + 36, msg.index)
      view.setUint32(at + 40, msg.length)
      view.setUint32(at + 44, msg.proofLayers)
      if (msg._tag === "Hashes") buf.set(msg.hashes, at + 48)
      break
  }
  return end
}

/**
 * Reads the message with `id` from its payload (the frame after the id byte).
 * `Piece.block`, `Bitfield.bytes` and `Extended.payload` are views on
 * `payload`, not copies: a block goes on to disk as is; whoever keeps the
 * others copies them.
 */
export const parse = (id: number, payload: Uint8Array): Result.Result<WireMessage, WireError> => {
  const spec = specs[id]
  if (spec === undefined) {
    return Result.fail(new WireError({ reason: new UnknownMessage({ id, length: payload.length }) }))
  }
  if (spec.exact ? payload.length !== spec.size : payload.length < spec.size) {
    const expected = `${spec.exact ? "exactly" : "at least"} ${spec.size}`
    return Result.fail(new WireError({ reason: new InvalidLength({ id, length: payload.length, expected }) }))
  }
  return Result.succeed(spec.read(payload, new DataView(payload.buffer, payload.byteOffset, payload.length)))
}

/** How to read each id: its payload size (exact, or a minimum) and its fields. */
interface Spec {
  readonly size: number
  readonly exact: boolean
  readonly read: (payload: Uint8Array, view: DataView) => WireMessage
}
const exactly = (size: number, read: Spec["read"]): Spec => ({ size, exact: true, read })
const atLeast = (size: number, read: Spec["read"]): Spec => ({ size, exact: false, read })

const specs: Record<number, Spec | undefined> = {
  [ids.Choke]: exactly(0, () => ({ _tag: "Choke" })),
  [ids.Unchoke]: exactly(0, () => ({ _tag: "Unchoke" })),
  [ids.Interested]: exactly(0, () => ({ _tag: "Interested" })),
  [ids.NotInterested]: exactly(0, () => ({ _tag: "NotInterested" })),
  [ids.Have]: exactly(4, (_, v) => ({ _tag: "Have", index: v.getUint32(0) })),
  [ids.Bitfield]: atLeast(0, (p) => ({ _tag: "Bitfield", bytes: p })),
  [ids.Request]: exactly(12, (_, v) => ({
    _tag: "Request",
    index: v.getUint32(0),
    begin: v.getUint32(4),
    length: v.getUint32(8)
  })),
  [ids.Piece]: atLeast(8, (p, v) => ({
    _tag: "Piece",
    index: v.getUint32(0),
    begin: v.getUint32(4),
    block: p.subarray(8)
  })),
  [ids.Cancel]: exactly(12, (_, v) => ({
    _tag: "Cancel",
    index: v.getUint32(0),
    begin: v.getUint32(4),
    length: v.getUint32(8)
  })),
  [ids.Port]: exactly(2, (_, v) => ({ _tag: "Port", port: v.getUint16(0) })),
  [ids.Suggest]: exactly(4, (_, v) => ({ _tag: "Suggest", index: v.getUint32(0) })),
  [ids.HaveAll]: exactly(0, () => ({ _tag: "HaveAll" })),
  [ids.HaveNone]: exactly(0, () => ({ _tag: "HaveNone" })),
  [ids.RejectRequest]: exactly(12, (_, v) => ({
    _tag: "RejectRequest",
    index: v.getUint32(0),
    begin: v.getUint32(4),
    length: v.getUint32(8)
  })),
  [ids.AllowedFast]: exactly(4, (_, v) => ({ _tag: "AllowedFast", index: v.getUint32(0) })),
  [ids.Extended]: atLeast(1, (p) => ({ _tag: "Extended", id: p[0]!, payload: p.subarray(1) })),
  [ids.HashRequest]: exactly(48, (p, v) => ({ _tag: "HashRequest", ...hashRange(p, v) })),
  [ids.Hashes]: atLeast(48, (p, v) => ({ _tag: "Hashes", ...hashRange(p, v), hashes: p.subarray(48) })),
  [ids.HashReject]: exactly(48, (p, v) => ({ _tag: "HashReject", ...hashRange(p, v) }))
}

/** The fields of a hash message; the root is copied (it outlives the read). */
function hashRange(p: Uint8Array, v: DataView) {
  return {
    piecesRoot: p.slice(0, 32),
    baseLayer: v.getUint32(32),
    index: v.getUint32(36),
    length: v.getUint32(40),
    proofLayers: v.getUint32(44)
  }
}
