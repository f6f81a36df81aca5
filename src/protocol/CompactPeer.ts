/**
 * Compact peer addresses: 4 IPv4 bytes (BEP 23) or 16 IPv6 bytes (BEP 7),
 * then a big-endian port. Trackers and ut_pex (BEP 11) send lists of them.
 */
import { Result } from "effect"
import * as NetAddress from "effect/net/NetAddress"

export interface Address {
  readonly host: string
  readonly port: number
}

/** An address as text: `host:port`, an IPv6 host in brackets (`[::1]:6881`). */
export const format = (address: Address): string =>
  address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`

/** The first `limit` entries of a list of 6-byte (IPv4) or 18-byte (IPv6) ones; fails with the problem if its length does not fit. */
export const decodeList = (
  bytes: Uint8Array,
  size: 6 | 18,
  limit = Infinity
): Result.Result<Array<Address>, string> => {
  if (bytes.length % size !== 0) {
    return Result.fail(`a compact peer list of ${bytes.length} bytes is not a multiple of ${size}`)
  }
  const peers: Array<Address> = []
  for (let at = 0; at < bytes.length && peers.length < limit; at += size) {
    const ip = bytes.subarray(at, at + size - 2)
    peers.push({
      host: NetAddress.formatIp(size === 6 ? NetAddress.ipv4FromBytesUnsafe(ip) : NetAddress.ipv6FromBytesUnsafe(ip)),
      port: (bytes[at + size - 2]! << 8) | bytes[at + size - 1]!
    })
  }
  return Result.succeed(peers)
}

/** An IP address as 4 or 16 bytes (undefined for a host name). */
export const ipBytes = (host: string): Uint8Array | undefined => {
  const ip = NetAddress.ipFromString(host)
  if (Result.isFailure(ip)) return undefined
  return Uint8Array.from(
    NetAddress.isIpv4Address(ip.success) ? NetAddress.ipv4ToOctets(ip.success) : NetAddress.ipv6ToOctets(ip.success)
  )
}

/** The 6- or 18-byte form of an address (undefined for a host name). */
export const encode = (address: Address): Uint8Array | undefined => {
  const ip = ipBytes(address.host)
  if (ip === undefined) return undefined
  const out = new Uint8Array(ip.length + 2)
  out.set(ip)
  out[ip.length] = address.port >> 8
  out[ip.length + 1] = address.port & 0xff
  return out
}
