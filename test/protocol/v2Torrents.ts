import { Result } from "effect"
import { randomBytes } from "node:crypto"
import * as Create from "../../src/protocol/Create.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"

/**
 * A v2-only torrent of files of random bytes of `sizes` (one file: a
 * single-file torrent), with its piece layers (`full`), and the same as a
 * magnet link's metadata leaves it, without them (`bare`).
 */
export const v2Torrent = (sizes: ReadonlyArray<number>, pieceLength: number) => {
  const tree = new Create.FileTreeHasher(pieceLength)
  for (const size of sizes) {
    tree.startFile(size)
    tree.update(randomBytes(size))
  }
  const { meta } = Result.getOrThrow(Create.encode({
    name: "d",
    multiFile: sizes.length > 1,
    files: sizes.map((length, i) => ({ path: sizes.length > 1 ? [`${i}.bin`] : [], length })),
    pieceLength,
    pieces: new Uint8Array(0),
    v2: tree.files,
    trackers: [],
    webSeeds: [],
    private: false,
    createdBy: "test",
    creationDate: 0
  }))
  return { full: meta, bare: Result.getOrThrow(Metainfo.fromInfoBytes(meta.info, 1 << 20)) }
}
