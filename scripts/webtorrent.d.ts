// webtorrent@1.9.7 ships no types; the demo uses only this much of it.
declare module "webtorrent" {
  export default class WebTorrent {
    constructor(options?: { dht?: boolean; lsd?: boolean; webSeeds?: boolean; tracker?: unknown; torrentPort?: number })
    seed(
      input: string,
      options: { announce?: ReadonlyArray<string>; pieceLength?: number },
      onSeed: (torrent: { torrentFile: Uint8Array; infoHash: string }) => void
    ): void
    destroy(callback?: () => void): void
  }
}
