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
// no measurable cost in CPU (Node 20 and 22). V8 reads the cap only as it
// starts, so where Node can replace its process in place (process.execve:
// Node >= 22.15, not Windows) the CLI restarts itself once with the cap,
// unless it was given one.
const youngCap = "--max-semi-space-size"
if (
  typeof process.execve === "function" &&
  ![...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].some((arg) => arg.startsWith(youngCap))
) {
  try {
    process.execve(process.execPath, [process.execPath, `${youngCap}=4`, ...process.execArgv, ...process.argv.slice(1)])
  } catch {
    // Not replaced (the call failed): run here, uncapped.
  }
}

// Fifty torrents downloading at once keep requests alive across many young
// collections, so V8 promotes them, and it let 60 MiB of that garbage pile up
// in the old generation before its first full collection (peak RSS 207-215
// MiB). Favouring size, it collects sooner: 139-148 MiB, and one torrent's
// download costs no more CPU. V8 reads this flag at each collection, so
// setting it once running is enough (Node 20 has no way to restart with it).
v8.setFlagsFromString("--optimize-for-size")

module.enableCompileCache?.()
await import("../dist/bundle/cli.js")
