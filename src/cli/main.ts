/** The `effect-torrent` command line. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Cause, Console, Effect } from "effect"
import { Command } from "effect/cli"
import * as Download from "./Download.ts"
import * as Info from "./Info.ts"
import * as Create from "./Create.ts"

const root = Command.make("effect-torrent", Download.flags, Download.run).pipe(
  Command.withDescription("A BitTorrent client built on Effect: downloads the given torrents"),
  Command.withSubcommands([Download.seedCommand, Info.command, Create.command])
)

/** One line for a failure; a full cause only for bugs. */
const report = (cause: Cause.Cause<unknown>) => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  const error = Cause.squash(cause)
  return Cause.hasFails(cause)
    ? Console.error(`effect-torrent: ${error instanceof Error ? error.message : String(error)}`)
    : Console.error(Cause.pretty(cause))
}

root.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.tapCause(report),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
