/** The `effect-torrent` command line. */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Console, Effect } from "effect"
import { Command } from "effect/cli"
import * as Info from "./Info.ts"

const root = Command.make("effect-torrent").pipe(
  Command.withDescription("A BitTorrent client built on Effect"),
  Command.withSubcommands([Info.command])
)

root.pipe(
  Command.run({ version: "0.1.0" }),
  // Failures are one line naming the problem; only bugs get a full cause.
  Effect.tapCause((cause) =>
    Cause.hasInterruptsOnly(cause)
      ? Effect.void
      : Cause.hasFails(cause)
      ? Console.error(`effect-torrent: ${Cause.squash(cause) instanceof Error ? (Cause.squash(cause) as Error).message : String(Cause.squash(cause))}`)
      : Console.error(Cause.pretty(cause))
  ),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
