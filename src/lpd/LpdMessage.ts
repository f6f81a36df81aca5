/**
 * BEP 14 Local Service Discovery announces: HTTP-like text in one UDP
 * datagram sent to a multicast group.
 *
 *     BT-SEARCH * HTTP/1.1
 *     Host: 239.192.152.143:6771
 *     Port: <TCP port, decimal>
 *     Infohash: <40 hex digits>      (one or more lines)
 *     cookie: <opaque, optional>
 *     <empty line>
 *
 * Lines end with CRLF. `decode` never throws: a datagram over 1400 bytes (the
 * BEP's limit) or one that is not an announce is a `MalformedAnnounce`.
 * Header names are case-insensitive; headers we do not use are ignored.
 */
import { Result, Schema } from "effect"

/** BEP 14: an announce must fit 1400 bytes (no IP fragmentation). */
export const MAX_SIZE = 1400

export class MalformedAnnounce extends Schema.TaggedError<MalformedAnnounce>()("MalformedAnnounce", {
  problem: Schema.String
}) {
  override get message() {
    return `invalid LSD announce: ${this.problem}`
  }
}

export interface Announce {
  /** The Host header: the multicast group and port it was sent to, e.g. "239.192.152.143:6771". */
  readonly host: string
  /** The sender's BitTorrent (TCP) port. */
  readonly port: number
  /** Lower-case, 40 hex digits each. */
  readonly infoHashes: ReadonlyArray<string>
  /** Lets a client recognise its own announces when multicast loops them back. */
  readonly cookie: string | undefined
}

const REQUEST_LINE = "BT-SEARCH * HTTP/1.1"
const INFO_HASH = /^[0-9a-f]{40}$/i

export const encode = (announce: Announce): Uint8Array => {
  const lines = [
    REQUEST_LINE,
    `Host: ${announce.host}`,
    `Port: ${announce.port}`,
    ...announce.infoHashes.map((infoHash) => `Infohash: ${infoHash}`),
    ...(announce.cookie === undefined ? [] : [`cookie: ${announce.cookie}`])
  ]
  return new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n\r\n`)
}

export const decode = (bytes: Uint8Array): Result.Result<Announce, MalformedAnnounce> => {
  const malformed = (problem: string) => Result.fail(new MalformedAnnounce({ problem }))
  if (bytes.length > MAX_SIZE) return malformed(`a ${bytes.length}-byte datagram; the limit is ${MAX_SIZE}`)
  const [requestLine, ...headers] = Buffer.from(bytes).toString("latin1").split("\r\n")
  if (requestLine !== REQUEST_LINE) return malformed(`it does not start with "${REQUEST_LINE}"`)
  let host: string | undefined
  let port: number | undefined
  let cookie: string | undefined
  const infoHashes = new Set<string>()
  for (const line of headers) {
    if (line === "") break // the blank line ends the headers
    const colon = line.indexOf(":")
    if (colon < 0) return malformed(`the header line "${line.slice(0, 50)}" has no ':'`)
    const value = line.slice(colon + 1).trim()
    switch (line.slice(0, colon).trim().toLowerCase()) {
      case "host":
        host = value
        break
      case "port":
        port = /^\d{1,5}$/.test(value) ? Number(value) : 0
        if (port < 1 || port > 65535) return malformed(`Port "${value.slice(0, 20)}" is not a port number`)
        break
      case "infohash":
        if (!INFO_HASH.test(value)) return malformed(`Infohash "${value.slice(0, 50)}" is not 40 hex digits`)
        infoHashes.add(value.toLowerCase())
        break
      case "cookie":
        cookie = value
        break
    }
  }
  if (host === undefined) return malformed("no Host header")
  if (port === undefined) return malformed("no Port header")
  if (infoHashes.size === 0) return malformed("no Infohash header")
  return Result.succeed({ host, port, infoHashes: Array.from(infoHashes), cookie })
}
