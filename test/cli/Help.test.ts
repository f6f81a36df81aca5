/**
 * `--help` fits an 80-column terminal, shows defaults and examples, and
 * documents the exit codes; for every command.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Format from "../../src/cli/Format.ts"
import { runCli } from "../util/Swarm.ts"

describe("effect-torrent --help", () => {
  it.live("fits 80 columns for every command, with defaults and examples", () =>
    Effect.gen(function*() {
      const commands = [[], ["seed"], ["serve"], ["daemon"], ["remote"], ["remote", "add"], ["info"], ["create"]]
      const runs = yield* Effect.forEach(commands, (command) => runCli([...command, "--help"]), { concurrency: 2 })
      runs.forEach((run, i) => {
        const name = ["effect-torrent", ...commands[i]!].join(" ")
        assert.deepStrictEqual([run.code, run.stderr], [0, ""], name)
        for (const line of run.stdout.split("\n")) assert.isAtMost(Format.width(line), 80, `${name}: ${line}`)
        assert.match(run.stdout, new RegExp(`^Usage: ${name} `), name)
      })
      const [root, seed, serve, daemon] = runs
      // Every command that runs the engine takes its connection flags.
      for (const run of [root!, seed!, serve!, daemon!]) {
        assert.include(run.stdout, "--encryption MODE")
        assert.include(run.stdout, "--utp MODE")
      }
      for (const run of [root!, seed!]) {
        assert.include(run.stdout, "--port PORT")
        assert.include(run.stdout, "(default: 6881)")
        assert.include(run.stdout, "\nExamples:\n")
      }
      assert.include(
        root!.stdout.replace(/\s+/g, " "),
        "Exit status: 0 complete, 1 failed, 2 usage error, 130 interrupted"
      )
      assert.include(root!.stdout, "       effect-torrent <seed|serve|daemon|remote|info|create> [flags] ...")
    }), 60_000)
})
