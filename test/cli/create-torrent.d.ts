// create-torrent@5 ships no types; the CLI tests use only its main function.
declare module "create-torrent" {
  interface Options {
    readonly name?: string
    readonly creationDate?: Date
    readonly comment?: string
    readonly createdBy?: string
    readonly private?: boolean
    readonly pieceLength?: number
    readonly announceList?: ReadonlyArray<ReadonlyArray<string>>
    readonly urlList?: ReadonlyArray<string>
  }
  function createTorrent(
    input: string,
    options: Options,
    callback: (error: Error | null, torrent: Uint8Array) => void
  ): void
  export default createTorrent
}
