/**
 * uTP packets (BEP 29): the 20-byte header, the extension chain (selective
 * acks; ours for large packets on loopback), and the payload, as one UDP
 * datagram.
 *
 * ```
 * type|ver  extension  connection_id
 * timestamp_microseconds
 * timestamp_difference_microseconds
 * wnd_size
 * seq_nr  ack_nr
 * [extension type, length, bytes]…  payload
 * ```
 *
 * Pure: `read` parses a datagram into a reused `Header` (one per endpoint:
 * no allocation per packet; the payload stays in the datagram at
 * `payloadOffset`) and names what is wrong; `decode` does the same into a
 * fresh value, as a `Result` with a typed `UtpPacketError`. `write` fills a
 * header into a buffer the caller sized with `headerLength(sackBytes)`.
 */
import { Result, Schema } from "effect"

export const version = 1

export const Type = {
  /** Data, consuming a sequence number. */
  Data: 0,
  /** The last packet: its seq_nr ends the stream. */
  Fin: 1,
  /** An ack: carries no data and consumes no sequence number. */
  State: 2,
  /** The connection is gone (also the answer to a packet for no connection). */
  Reset: 3,
  /** Opens a connection. */
  Syn: 4
} as const
export type Type = (typeof Type)[keyof typeof Type]

/** Extension types: 1 is the selective ack bitmask. */
const sackExtension = 1
/** Extension type 2: libutp's 8 bytes of extension bits (all 0 here: none). */
const bitsExtension = 2
/**
 * Ours, in SYN and in the acceptor's STATEs: "send me packets of up to this
 * many payload bytes" (2 bytes), offered only on loopback, whose MTU is
 * 64 KiB. Other implementations skip extensions they do not know in the
 * chain (libutp, libtorrent), so they never see one and get 1400-byte
 * packets, which every uTP stack's receive buffer takes. It follows empty
 * extension bits: libutp drops a packet whose first extension is above 2
 * (it takes it for something that is not uTP).
 */
const largeExtension = 0x4c
/** Bytes the large-payload extension adds to a header (after the extension bits). */
export const largeExtensionLength = 2 + 8 + 2 + 2

/** Bytes of a header without extensions. */
export const baseHeaderLength = 20

/** Header bytes with a selective ack of `sackBytes` bytes (0: none). */
export const headerLength = (sackBytes: number) => sackBytes === 0 ? baseHeaderLength : baseHeaderLength + 2 + sackBytes

/** Sequence numbers are 16-bit and wrap. */
export const seqMask = 0xffff

/** Whether `a` comes before `b` in sequence space (the shorter way round). */
export const seqLess = (a: number, b: number) => a !== b && ((b - a) & seqMask) < 0x8000

/**
 * Whether a datagram is uTP, by its first byte (version 1, a known type) and
 * length, as libtorrent tells uTP from the DHT's bencoded KRPC ('d' is
 * 0x64: type 6) on one UDP port.
 */
export const isUtp = (datagram: Uint8Array) =>
  datagram.length >= baseHeaderLength && (datagram[0]! & 0x0f) === version && datagram[0]! >> 4 <= Type.Syn

/**
 * A parsed header. `sack*` locate the selective ack bitmask in the datagram
 * (length 0: none); `largePayload` is the large-payload extension's size (0: none).
 */
export interface Header {
  type: Type
  connectionId: number
  timestamp: number
  timestampDifference: number
  windowSize: number
  seq: number
  ack: number
  sackOffset: number
  sackLength: number
  largePayload: number
  payloadOffset: number
}

export const emptyHeader = (): Header => ({
  type: Type.State,
  connectionId: 0,
  timestamp: 0,
  timestampDifference: 0,
  windowSize: 0,
  seq: 0,
  ack: 0,
  sackOffset: 0,
  sackLength: 0,
  largePayload: 0,
  payloadOffset: 0
})

export class UtpPacketError extends Schema.TaggedError<UtpPacketError>()("UtpPacketError", {
  reason: Schema.Literals(["TooShort", "Version", "Type", "Extension", "SackLength", "Payload"]),
  length: Schema.Number
}) {
  override get message() {
    return `bad uTP packet (${this.length} bytes): ${problems[this.reason]}`
  }
}

type Problem = UtpPacketError["reason"]

const problems: Record<Problem, string> = {
  TooShort: `shorter than the ${baseHeaderLength}-byte header`,
  Version: `version is not ${version}`,
  Type: "unknown packet type",
  Extension: "an extension runs past the end",
  SackLength: "a selective ack whose length is not a multiple of 4",
  Payload: "a payload on a packet type that carries none"
}

/** Parses `datagram` into `into`; returns what is wrong, or undefined. */
export const read = (datagram: Uint8Array, into: Header): Problem | undefined => {
  if (datagram.length < baseHeaderLength) return "TooShort"
  const first = datagram[0]!
  if ((first & 0x0f) !== version) return "Version"
  const type = first >> 4
  if (type > Type.Syn) return "Type"
  into.type = type as Type
  into.connectionId = uint16(datagram, 2)
  into.timestamp = uint32(datagram, 4)
  into.timestampDifference = uint32(datagram, 8)
  into.windowSize = uint32(datagram, 12)
  into.seq = uint16(datagram, 16)
  into.ack = uint16(datagram, 18)
  into.sackOffset = 0
  into.sackLength = 0
  into.largePayload = 0
  let extension = datagram[1]!
  let offset = baseHeaderLength
  while (extension !== 0) {
    if (offset + 2 > datagram.length) return "Extension"
    const next = datagram[offset]!
    const length = datagram[offset + 1]!
    if (offset + 2 + length > datagram.length) return "Extension"
    if (extension === sackExtension) {
      if (length === 0 || length % 4 !== 0) return "SackLength"
      into.sackOffset = offset + 2
      into.sackLength = length
    } else if (extension === largeExtension && length === 2) {
      into.largePayload = uint16(datagram, offset + 2)
    } // other extensions (libtorrent's close reason…) are skipped
    extension = next
    offset += 2 + length
  }
  into.payloadOffset = offset
  if (offset < datagram.length && into.type !== Type.Data && into.type !== Type.Fin) return "Payload"
  return undefined
}

/** A whole packet, parsed into a fresh value (tests, tools; the engine uses `read`). */
export interface Packet extends Header {
  readonly payload: Uint8Array
  /** Sequence numbers the selective ack names as received. */
  readonly sacked: ReadonlyArray<number>
}

export const decode = (datagram: Uint8Array): Result.Result<Packet, UtpPacketError> => {
  const header = emptyHeader()
  const problem = read(datagram, header)
  if (problem !== undefined) return Result.fail(new UtpPacketError({ reason: problem, length: datagram.length }))
  const sacked: Array<number> = []
  forEachSacked(datagram, header, (seq) => sacked.push(seq))
  return Result.succeed({ ...header, payload: datagram.subarray(header.payloadOffset), sacked })
}

/** Calls `f` with each sequence number the header's selective ack names (bit i: ack + 2 + i). */
export const forEachSacked = (datagram: Uint8Array, header: Header, f: (seq: number) => void) => {
  for (let byte = 0; byte < header.sackLength; byte++) {
    const bits = datagram[header.sackOffset + byte]!
    if (bits === 0) continue
    for (let bit = 0; bit < 8; bit++) {
      if ((bits & (1 << bit)) !== 0) f((header.ack + 2 + byte * 8 + bit) & seqMask)
    }
  }
}

/**
 * Writes a header at the start of `buffer` (sized by `headerLength(sackBytes)`
 * plus the payload). The selective ack's bits are the caller's to set, at
 * `baseHeaderLength + 2`. With `largePayload` (no selective ack then), the
 * large-payload extension follows the base header (`largeExtensionLength`
 * bytes more).
 */
export const write = (
  buffer: Uint8Array,
  type: Type,
  connectionId: number,
  timestamp: number,
  timestampDifference: number,
  windowSize: number,
  seq: number,
  ack: number,
  sackBytes: number,
  largePayload = 0
) => {
  buffer[0] = (type << 4) | version
  buffer[1] = sackBytes !== 0 ? sackExtension : largePayload !== 0 ? bitsExtension : 0
  setUint16(buffer, 2, connectionId)
  setUint32(buffer, 4, timestamp)
  setUint32(buffer, 8, timestampDifference)
  setUint32(buffer, 12, windowSize)
  setUint16(buffer, 16, seq)
  setUint16(buffer, 18, ack)
  if (sackBytes !== 0) {
    buffer[baseHeaderLength] = 0
    buffer[baseHeaderLength + 1] = sackBytes
    buffer.fill(0, baseHeaderLength + 2, baseHeaderLength + 2 + sackBytes)
  } else if (largePayload !== 0) {
    buffer[baseHeaderLength] = largeExtension
    buffer[baseHeaderLength + 1] = 8
    buffer.fill(0, baseHeaderLength + 2, baseHeaderLength + 10)
    buffer[baseHeaderLength + 10] = 0
    buffer[baseHeaderLength + 11] = 2
    setUint16(buffer, baseHeaderLength + 12, largePayload)
  }
}

// Big-endian fields by hand: a DataView per packet would be an allocation per packet.
const uint16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!
const uint32 = (b: Uint8Array, at: number) =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0
const setUint16 = (b: Uint8Array, at: number, value: number) => {
  b[at] = (value >>> 8) & 0xff
  b[at + 1] = value & 0xff
}
const setUint32 = (b: Uint8Array, at: number, value: number) => {
  b[at] = (value >>> 24) & 0xff
  b[at + 1] = (value >>> 16) & 0xff
  b[at + 2] = (value >>> 8) & 0xff
  b[at + 3] = value & 0xff
}
