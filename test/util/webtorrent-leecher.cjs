// A webtorrent@1.9.7 leecher, run as a child process by the interop tests:
//   node webtorrent-leecher.cjs '<json options>'
// Options: torrent (a magnet link), dir (download folder), port, peers
// (host:port addresses to dial; no trackers, DHT or local discovery), utp
// (uTP, dialled first, falling back to TCP; optional). ut_pex
// is on (webtorrent reads it; it never sends it).
// Prints JSON lines: {"metadata":true} once it has the metadata,
// {"wires":["host:port",...]} whenever the set of peers it talks to changes,
// {"types":[...]} whenever the kinds of those connections change
// ("tcpOutgoing", "utpOutgoing"…), {"done":true} once it has all the data. Exits when stdin closes or on SIGTERM.
"use strict"
const WebTorrent = require("./webtorrent-loopback.cjs")

const options = JSON.parse(process.argv[2])
const client = new WebTorrent({ dht: false, lsd: false, utp: options.utp === true, webSeeds: false, tracker: false, torrentPort: options.port })
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
client.on("error", (error) => {
  process.stderr.write(`webtorrent error: ${error.message}\n`)
  process.exit(2)
})
const torrent = client.add(options.torrent, { path: options.dir })
torrent.on("warning", (warning) => process.stderr.write(`webtorrent warning: ${warning.message ?? warning}\n`))
// webtorrent 1.9.7's addPeer reads the peer's host only when a blocklist is set, and
// without it never picks uTP: with utp, peers go to the _addPeer it would call.
const addPeer = (peer) => (options.utp === true ? torrent._addPeer(peer, "utp") : torrent.addPeer(peer))
torrent.on("infoHash", () => options.peers.forEach(addPeer))
torrent.on("metadata", () => print({ metadata: true }))
torrent.on("done", () => print({ done: true }))
let last = ""
let types = ""
setInterval(() => {
  const now = JSON.stringify(torrent.wires.map((wire) => wire.type).sort())
  if (now !== types) print({ types: JSON.parse((types = now)) })
  const wires = torrent.wires.map((wire) => `${wire.remoteAddress}:${wire.remotePort}`).sort()
  if (JSON.stringify(wires) === last) return
  last = JSON.stringify(wires)
  print({ wires })
}, 100)
const stop = () => client.destroy(() => process.exit(0))
process.stdin.on("end", stop)
process.stdin.resume()
process.on("SIGTERM", stop)
