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
// no measurable cost in CPU (Node 20 and 22), and at 2 MiB (without
// --optimize-for-size: src/cli/HeapSize.ts) another 3-4 MiB, at less CPU.
// And glibc gives each thread that allocates (V8's compiler threads, the
// thread pool) an arena of its own: 21 MiB of a 1 GiB download's peak on Node
// 22 when the PieceWorker had a thread too. One arena for all took the peak
// from 127 to 114 MiB then, and from 108 (MALLOC_ARENA_MAX=8 given) to 96 MiB
// without that thread, at the same CPU. V8 reads the cap and glibc the arenas
// only as the process starts, so where Node can replace its process in place
// (process.execve: Node >= 22.15, not Windows) the CLI restarts itself once
// with both, unless it was given them. (Elsewhere than glibc,
// MALLOC_ARENA_MAX means nothing; commands the CLI runs, such as --on-done's,
// inherit it.) Commands that print and exit skip the restart: they hold no
// pieces, and Node's second start was a third of `info`'s 0.34 s (Node 22).
// (Their names are repeated here from src/cli/main.ts: the bin decides before
// it loads the CLI.)
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
      [process.execPath, ...(capGiven ? [] : [`${youngCap}=2`]), ...process.execArgv, ...process.argv.slice(1)],
      { ...process.env, [arenas]: process.env[arenas] ?? "1" }
    )
  } catch {
    // Not replaced (the call failed): run here as started.
  }
}

// With the young generation uncapped (Node 20 cannot restart), favouring size
// also keeps it small; the commands that run many torrents at once set this
// flag where it is capped too (src/cli/HeapSize.ts says why only they).
if (!capGiven) v8.setFlagsFromString("--optimize-for-size")

module.enableCompileCache?.()
await import("../dist/bundle/cli.js")
