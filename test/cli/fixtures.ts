/** Torrents for the CLI tests, each with an aria2c seeder on 127.0.0.1. */
import { Effect } from "effect"
import { join } from "node:path"
import { createWithMktorrent, tempDir, writeTree } from "../util/Files.ts"
import { aria2Seeder } from "../util/Swarm.ts"

/**
 * A torrent per name (`<name>.bin`, `size` bytes, data under `<root>/src-<name>`,
 * announcing to `announce`), each seeded by its own aria2c, which the CLI
 * reaches with `--peer 127.0.0.1:<seeder.port>`.
 */
export const seededTorrents = (
  label: string,
  names: ReadonlyArray<string>,
  size: number,
  announce: ReadonlyArray<string>
) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const torrents = yield* Effect.forEach(names, (name) =>
      Effect.gen(function*() {
        const src = join(root, `src-${name}`)
        yield* writeTree(src, [{ path: `${name}.bin`, size }])
        const file = join(root, `${name}.torrent`)
        const { meta } = yield* createWithMktorrent(join(src, `${name}.bin`), file, {
          pieceLength: 64 * 1024,
          announce
        })
        const seeder = yield* aria2Seeder({ torrent: file, dir: src })
        return { name, src, file, meta, seeder }
      }))
    return { root, torrents, peers: torrents.flatMap((t) => ["--peer", `127.0.0.1:${t.seeder.port}`]) }
  })
