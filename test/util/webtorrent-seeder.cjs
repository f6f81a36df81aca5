// A webtorrent@1.9.7 seeder, run as a child process by the interop tests:
//   node webtorrent-seeder.cjs '<json options>'
// Options: torrent (path of a .torrent), dir (folder holding its data), port,
// trackers (announce to the torrent's trackers), uploadLimit (bytes/s, optional),
// dhtBootstrap (["127.0.0.1:port", ...]: run a DHT node that starts from these
// local nodes only, and announce there; optional), secure (message stream
// encryption: dial with it first, accept it; optional), utp (uTP on the
// same port as TCP, dialled first; optional).
// Prints one JSON line {"ready":true,...} once it has verified its data and
// listens, then {"uploaded":n} whenever the bytes it uploaded changed (at most
// every 100 ms), and {"types":[...]} whenever the kinds of its connections
// changed ("tcpIncoming", "utpIncoming"…: at each new connection, else within
// 100 ms); exits when stdin closes or on SIGTERM.
"use strict"
const fs = require("node:fs")
const WebTorrent = require("./webtorrent-loopback.cjs")

const options = JSON.parse(process.argv[2])
const client = new WebTorrent({
  dht: options.dhtBootstrap ? { bootstrap: options.dhtBootstrap } : false,
  lsd: false,
  utPex: false,
  utp: options.utp === true,
  webSeeds: false,
  tracker: options.trackers ? { wrtc: false } : false,
  torrentPort: options.port,
  ...(options.uploadLimit !== undefined ? { uploadLimit: options.uploadLimit } : {}),
  ...(options.secure === true ? { secure: true } : {})
})
client.on("error", (error) => {
  process.stderr.write(`webtorrent error: ${error.message}\n`)
  process.exit(2)
})
const torrent = client.add(fs.readFileSync(options.torrent), { path: options.dir })
torrent.on("warning", (warning) => process.stderr.write(`webtorrent warning: ${warning.message ?? warning}\n`))
const report = () => {
  const ready = torrent.progress === 1
  process.stdout.write(`${JSON.stringify({ ready, infoHash: torrent.infoHash, port: client.torrentPort, progress: torrent.progress })}\n`)
  if (!ready) process.exit(3)
  let uploaded = 0
  let types = ""
  const reportTypes = () => {
    const now = JSON.stringify(torrent.wires.map((wire) => wire.type).sort())
    if (now !== types) process.stdout.write(`{"types":${(types = now)}}\n`)
  }
  // At once for a new connection: one that ends within 100 ms is still told.
  torrent.on("wire", reportTypes)
  setInterval(() => {
    reportTypes()
    if (torrent.uploaded === uploaded) return
    uploaded = torrent.uploaded
    process.stdout.write(`${JSON.stringify({ uploaded })}\n`)
  }, 100)
}
torrent.on("ready", () => (torrent.done ? report() : torrent.once("done", report)))
setTimeout(() => { if (!torrent.done) report() }, 20_000).unref()
const stop = () => client.destroy(() => process.exit(0))
process.stdin.on("end", stop)
process.stdin.resume()
process.on("SIGTERM", stop)
