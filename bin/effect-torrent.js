#!/usr/bin/env node
// The CLI is bundled (dist/bundle/cli.js): loading effect's hundreds of
// modules one by one took 0.9 s of start-up, the bundle 0.4 s. The engine is
// a chunk of its own that only the commands which run torrents load, so
// `info`, `create` and the help start with a third of the code. Node >= 22.1
// also caches the compiled code between runs.
import module from "node:module"
import v8 from "node:v8"

// A download makes V8 grow its young generation to 16 MiB semi-spaces, 32 MiB
// of the peak RSS; capped at 4 MiB it took 20-26 MiB off a download's peak at
// no measurable cost in CPU (Node 20 and 22). And glibc gives each thread that
// allocates (V8's compiler threads, the thread pool) an arena of its own: 21
// MiB of a 1 GiB download's peak on Node 22 when the PieceWorker had a thread
// too. One arena for all took the peak from 127 to 114 MiB then, and from 108
// (MALLOC_ARENA_MAX=8 given) to 96 MiB without that thread, at the same CPU.
// V8 reads the cap and glibc the arenas only as the process starts, so where
// Node can replace its process in place (process.execve: Node >= 22.15, not
// Windows) the CLI restarts itself once with both, unless it was given them. (Elsewhere than
// glibc, MALLOC_ARENA_MAX means nothing; commands the CLI runs, such as
// --on-done's, inherit it.) Commands that print and exit skip the restart:
// they hold no pieces, and Node's second start was a third of `info`'s 0.34 s
// (Node 22).
const youngCap = "--max-semi-space-size"
const arenas = "MALLOC_ARENA_MAX"
const capGiven = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].some((arg) =>
  arg.startsWith(youngCap)
)
const printsAndExits = ["info", "create", "remote", "--help", "-h", "--version"].includes(process.argv[2] ?? "--help")
if (typeof process.execve === "function" && !printsAndExits && (!capGiven || process.env[arenas] === undefined)) {
  try {
    process.execve(
      process.execPath,
      [process.execPath, ...(capGiven ? [] : [`${youngCap}=4`]), ...process.execArgv, ...process.argv.slice(1)],
      { ...process.env, [arenas]: process.env[arenas] ?? "1" }
    )
  } catch {
    // Not replaced (the call failed): run here as started.
  }
}

// Fifty torrents downloading at once keep requests alive across many young
// collections, so V8 promotes them, and it let 60 MiB of that garbage pile up
// in the old generation before its first full collection (peak RSS 207-215
// MiB). Favouring size, it collects sooner: 139-148 MiB. V8 reads this flag
// at each collection, so setting it once running is enough (Node 20 has no
// way to restart with it). It is not free: with the young generation capped,
// one torrent's 1 GiB took a tenth more CPU with it than without (Node 22,
// 512 KiB pieces), but 256 KiB pieces peaked at 110 MiB without it, against
// 96, and the fifty at 168-190 against 110-154. Limits on the old
// generation's growth instead (--heap-growing-percent,
// --initial-old-space-size) made a seeder collect it 35-75 times per GiB sent,
// at 1.3-2 times the CPU: the blocks it sends are fresh buffers outside V8's
// heap, which count towards those limits.
v8.setFlagsFromString("--optimize-for-size")

module.enableCompileCache?.()
await import("../dist/bundle/cli.js")
