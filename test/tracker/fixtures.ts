/**
 * Tracker test fixtures: announce requests, and loopback servers (a real
 * bittorrent-tracker; tiny HTTP and UDP servers that answer what a test tells
 * them to), each closed with the test's scope.
 */
import { Server } from "bittorrent-tracker"
import { Effect } from "effect"
import * as Dgram from "node:dgram"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import type * as Tracker from "../../src/tracker/Tracker.ts"

/** Bytes that all need escaping, and some that must not be: " %+~\x00\xff" and friends. */
export const infoHash = Uint8Array.from([
  0x00,
  0x20,
  0x25,
  0x2b,
  0x7e,
  0xff,
  0x41,
  0x2d,
  0x2e,
  0x5f,
  0x3d,
  0x26,
  0x3f,
  0x80,
  0x7f,
  0x0a,
  0x30,
  0x7a,
  0x2f,
  0x23
])

export const peerId = (n: number) => new TextEncoder().encode(`-ET0100-${String(n).padStart(12, "0")}`)

export const request = (overrides: Partial<Tracker.AnnounceRequest> = {}): Tracker.AnnounceRequest => ({
  infoHash,
  peerId: peerId(1),
  port: 6881,
  uploaded: 0,
  downloaded: 0,
  left: 1000,
  event: "started",
  numWant: 50,
  ...overrides
})

type Listener = { once(event: "listening", f: () => void): unknown }

/** Calls `listen` and waits until every one of `sockets` is listening. */
const listening = (sockets: ReadonlyArray<Listener>, listen: () => void) =>
  Effect.callback<void>((resume) => {
    let pending = sockets.length
    for (const socket of sockets) {
      socket.once("listening", () => {
        if (--pending === 0) resume(Effect.void)
      })
    }
    listen()
  })

/**
 * A bittorrent-tracker with HTTP and UDP on 127.0.0.1 (`on: "ipv4"`), or on
 * ::1 (`on: "ipv6"`: HTTP and its IPv6 UDP socket there, its IPv4 one on
 * 127.0.0.1); returns both announce URLs and the server.
 */
export const trackerServerOn = (on: "ipv4" | "ipv6") =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const server = new Server({ udp: true, http: true, ws: false, stats: false })
      server.on("error", () => {}) // on IPv4 its IPv6 UDP socket may not bind; it is not used then
      server.on("warning", () => {})
      yield* listening(
        [server.http, on === "ipv4" ? server.udp4 : server.udp6],
        () => server.listen(0, { http: on === "ipv4" ? "127.0.0.1" : "::1", udp: "127.0.0.1", udp6: "::1" })
      )
      return server
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.http.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => ({
    server,
    http: on === "ipv4"
      ? `http://127.0.0.1:${(server.http.address() as AddressInfo).port}/announce`
      : `http://[::1]:${(server.http.address() as AddressInfo).port}/announce`,
    udp: on === "ipv4" ? `udp://127.0.0.1:${server.udp4.address().port}` : `udp://[::1]:${server.udp6.address().port}`
  })))

/** A bittorrent-tracker on 127.0.0.1 with HTTP and UDP; returns both announce URLs and the server. */
export const trackerServer = trackerServerOn("ipv4")

/** An HTTP server on 127.0.0.1 answering with `handler`; returns its base URL. */
export const httpServer = (handler: Http.RequestListener) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const server = Http.createServer(handler)
      yield* listening([server], () => server.listen(0, "127.0.0.1"))
      return server
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`))

/** A UDP server on 127.0.0.1 (or `host`) calling `handler` with each datagram and a reply function; returns its URL. */
export const udpServer = (
  handler: (packet: Buffer, reply: (bytes: Uint8Array) => void) => void,
  host: "127.0.0.1" | "::1" = "127.0.0.1"
) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const socket = Dgram.createSocket(host === "::1" ? "udp6" : "udp4")
      socket.on("message", (packet, from) => handler(packet, (bytes) => socket.send(bytes, from.port, from.address)))
      yield* listening([socket], () => socket.bind(0, host))
      return socket
    }),
    (socket) => Effect.sync(() => socket.close())
  ).pipe(Effect.map((socket) => `udp://${host === "::1" ? "[::1]" : host}:${socket.address().port}`))
