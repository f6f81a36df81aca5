// A webtorrent@1.9.7 leecher, run as a child process by the interop tests:
//   node webtorrent-leecher.cjs '<json options>'
// Options: torrent (a magnet link), dir (download folder), port, peers
// (host:port addresses to dial; no trackers, DHT or local discovery). ut_pex
// is on (webtorrent reads it; it never sends it).
// Prints JSON lines: {"metadata":true} once it has the metadata,
// {"wires":["host:port",...]} whenever the set of peers it talks to changes,
// {"done":true} once it has all the data. Exits when stdin closes or on SIGTERM.
"use strict"
const WebTorrent = require("./webtorrent-loopback.cjs")

const options = JSON.parse(process.argv[2])
const client = new WebTorrent({ dht: false, lsd: false, utp: false, webSeeds: false, tracker: false, torrentPort: options.port })
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
client.on("error", (error) => {
  process.stderr.write(`webtorrent error: ${error.message}\n`)
  process.exit(2)
})
const torrent = client.add(options.torrent, { path: options.dir })
torrent.on("warning", (warning) => process.stderr.write(`webtorrent warning: ${warning.message ?? warning}\n`))
torrent.on("infoHash", () => options.peers.forEach((peer) => torrent.addPeer(peer)))
torrent.on("metadata", () => print({ metadata: true }))
torrent.on("done", () => print({ done: true }))
let last = ""
setInterval(() => {
  const wires = torrent.wires.map((wire) => `${wire.remoteAddress}:${wire.remotePort}`).sort()
  if (JSON.stringify(wires) === last) return
  last = JSON.stringify(wires)
  print({ wires })
}, 100)
const stop = () => client.destroy(() => process.exit(0))
process.stdin.on("end", stop)
process.stdin.resume()
process.on("SIGTERM", stop)
