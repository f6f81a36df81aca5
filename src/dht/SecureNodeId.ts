/**
 * BEP 42 node ids: the first 21 bits of a node's id are fixed by its IP
 * address, so a node cannot pick an id next to a chosen info-hash (to
 * hijack its lookups) without owning addresses there.
 *
 * The prefix is CRC-32C over the address's leading bytes, masked, with 3
 * random bits `r` in the top of the first byte; the id's last byte carries
 * `r` so others can check it. IPv4 uses 4 bytes masked with 03 0f 3f ff,
 * IPv6 the first 8 masked with 01 03 07 0f 1f 3f 7f ff.
 *
 * Local addresses (loopback, private and link-local ranges, IPv6 unique
 * local) are exempt: a node cannot know an external address there, and such
 * nodes are only reachable on the same network anyway.
 */
import { Result } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import * as CompactPeer from "../protocol/CompactPeer.ts"

const ipv4Mask = [0x03, 0x0f, 0x3f, 0xff]
const ipv6Mask = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff]

/** The id prefix for an address (4 or 16 bytes) and `r` (its low 3 bits are used): 32 bits, of which 21 count. */
export const prefix = (ip: Uint8Array, r: number): number => {
  const mask = ip.length === 4 ? ipv4Mask : ipv6Mask
  const masked = mask.map((m, i) => ip[i]! & m)
  masked[0] = masked[0]! | ((r & 7) << 5)
  return crc32c(masked)
}

/** An id that conforms for `ip` (4 or 16 bytes): its prefix, then `random` (20 bytes; its byte 19 is `r`). */
export const make = (ip: Uint8Array, random: Uint8Array): Uint8Array => {
  const id = new Uint8Array(random)
  const crc = prefix(ip, id[19]!)
  id[0] = crc >>> 24
  id[1] = (crc >>> 16) & 0xff
  id[2] = ((crc >>> 8) & 0xf8) | (id[2]! & 0x07)
  return id
}

/** Whether `id` is what BEP 42 allows a node at `ip` (4 or 16 bytes) to have. */
export const conforms = (id: Uint8Array, ip: Uint8Array): boolean => {
  const crc = prefix(ip, id[19]!)
  return id[0] === crc >>> 24 && id[1] === ((crc >>> 16) & 0xff) && (id[2]! & 0xf8) === ((crc >>> 8) & 0xf8)
}

/** Whether a node at `host` is exempt from the check (a local address), or it has no IP address at all. */
export const exempt = (host: string): boolean => {
  const parsed = NetAddress.ipFromString(host)
  if (Result.isFailure(parsed)) return true
  const ip = parsed.success
  return NetAddress.isLoopback(ip) || NetAddress.isLinkLocal(ip) || NetAddress.isUnspecified(ip) ||
    (NetAddress.isIpv4Address(ip) ? NetAddress.isPrivate(ip) : NetAddress.isUniqueLocal(ip))
}

/** Whether a node at `host` with `id` is acceptable: exempt, or conforming. */
export const acceptable = (id: Uint8Array, host: string): boolean => {
  if (exempt(host)) return true
  return conforms(id, CompactPeer.ipBytes(host)!)
}

// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), one table lookup per byte.
const table = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  return c
})

export const crc32c = (bytes: ArrayLike<number>): number => {
  let crc = 0xffffffff
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}
