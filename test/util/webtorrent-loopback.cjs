// webtorrent listens on every interface and has no option for it: this binds
// its server(s) to 127.0.0.1 (listen(port, cb) becomes listen(port,
// "127.0.0.1", cb), for TCP and for utp-native's uTP socket) and returns the
// WebTorrent class. For the child-process
// seeder and leecher of the interop tests.
"use strict"
const net = require("node:net")

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1")
  return listen.apply(this, args)
}
const Utp = require("utp-native")
const listenUtp = Utp.prototype.listen
Utp.prototype.listen = function (port, ip, onListening) {
  if (typeof ip !== "string") return listenUtp.call(this, port, "127.0.0.1", typeof ip === "function" ? ip : onListening)
  return listenUtp.call(this, port, ip, onListening)
}
module.exports = require("webtorrent")
