#!/usr/bin/env node
// The CLI is bundled (dist/bundle/cli.js): loading effect's hundreds of
// modules one by one took 0.9 s of start-up, the bundle 0.4 s. The engine is
// a chunk of its own that only the commands which run torrents load, so
// `info`, `create` and the help start with a third of the code. Node >= 22.1
// also caches the compiled code between runs.
import module from "node:module"
module.enableCompileCache?.()
await import("../dist/bundle/cli.js")
