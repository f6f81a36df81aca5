/**
 * effect-torrent: a BitTorrent client and library built on Effect.
 * Each module is exported as a namespace, e.g. `TorrentManager.TorrentManager.layerNode()`.
 */
export * as TorrentManager from "./TorrentManager.ts"
export * as Torrent from "./torrent/Torrent.ts"
export * as TorrentConfig from "./torrent/TorrentConfig.ts"
export * as Orchestrator from "./torrent/Orchestrator.ts"
export * as Synchronizer from "./torrent/Synchronizer.ts"
export * as Monitor from "./torrent/Monitor.ts"
export * as DiskWriter from "./torrent/DiskWriter.ts"
export * as PeerSession from "./peer/PeerSession.ts"
export * as PeerConnector from "./peer/PeerConnector.ts"
export * as Tracker from "./tracker/Tracker.ts"
export * as HttpTracker from "./tracker/HttpTracker.ts"
export * as UdpTracker from "./tracker/UdpTracker.ts"
export * as Dht from "./dht/Dht.ts"
export * as Lpd from "./lpd/Lpd.ts"
export * as Bencode from "./protocol/Bencode.ts"
export * as Metainfo from "./protocol/Metainfo.ts"
export * as Magnet from "./protocol/Magnet.ts"
export * as InfoHash from "./protocol/InfoHash.ts"
export * as WireMessage from "./protocol/WireMessage.ts"
export * as Bitfield from "./protocol/Bitfield.ts"
