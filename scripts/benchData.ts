/**
 * What every benchmark starts from: a data file of `mib` MiB of random
 * bytes (each MiB made distinct, so no two pieces are alike), synced to disk
 * before the first run (otherwise that run shares the machine with the
 * writeback), and its SHA-1 to check downloads against.
 */
import { createHash, randomBytes } from "node:crypto"
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs"
import { join } from "node:path"

export const sha1File = (path: string) => createHash("sha1").update(readFileSync(path)).digest("hex")

/** Writes `dir`/`name` (data.bin by default); returns its path and SHA-1. */
export const writeData = (dir: string, mib: number, name = "data.bin") => {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, name)
  const fd = openSync(path, "w")
  const chunk = randomBytes(1024 * 1024)
  for (let i = 0; i < mib; i++) {
    chunk.writeUInt32LE(i, 0)
    writeSync(fd, chunk)
  }
  fsyncSync(fd)
  closeSync(fd)
  return { path, sha1: sha1File(path) }
}
