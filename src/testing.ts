/**
 * effect-torrent/testing: the engine in memory, for tests and simulations.
 * `Swarm.run` downloads a torrent among whole TorrentManagers under
 * TestClock, the same way on every run; its parts serve tests of your own:
 * a network in memory (MemoryNetwork, MemorySocket, MemoryUdp); storage in
 * memory is `Storage.layerMemory`, from the main entry.
 */
export * as MemoryNetwork from "./peer/MemoryNetwork.ts"
export * as MemorySocket from "./peer/MemorySocket.ts"
export * as MemoryUdp from "./peer/MemoryUdp.ts"
export * as Swarm from "./testing/Swarm.ts"
