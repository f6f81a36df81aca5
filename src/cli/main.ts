/** The `effect-torrent` command line. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Array as Arr, Cause, Console, Effect, Formatter, Logger, References } from "effect"
import { Command } from "effect/cli"
import * as Download from "./Download.ts"
import * as Format from "./Format.ts"
import * as Info from "./Info.ts"
import * as Create from "./Create.ts"

const root = Command.make("effect-torrent", Download.flags, Download.run).pipe(
  Command.withDescription("A BitTorrent client built on Effect: downloads the given torrents"),
  Command.withSubcommands([Download.seedCommand, Info.command, Create.command])
)

/**
 * The most characters of an error or log line. Messages quote names from
 * torrents, which may be kilobytes long; head and tail (what failed, and why)
 * are kept.
 */
const lineLimit = 500

/** One line for a failure; a full cause only for bugs. Both may quote a torrent's names. */
const report = (cause: Cause.Cause<unknown>) => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  const error = Cause.squash(cause)
  return Cause.hasFails(cause)
    ? Console.error(`effect-torrent: ${Format.printable(error instanceof Error ? error.message : String(error), lineLimit)}`)
    : Console.error(Format.printableLines(Cause.pretty(cause).split("\n")))
}

const text = (value: unknown): string => (typeof value === "string" ? value : Formatter.format(value))

/**
 * Log lines with the message made printable and bounded, and each annotation
 * too: trackers' warnings, peers' errors and torrent names (the `torrent`
 * annotation) come from the network. (Effect's default logger prints them
 * raw, whole.)
 */
const logger = Logger.withConsoleLog(Logger.make(({ cause, date, fiber, logLevel, message }) => {
  const annotations = Object.entries(fiber.getRef(References.CurrentLogAnnotations))
    .map(([key, value]) => ` ${key}=${Format.name(text(value))}`)
    .join("")
  const line = `[${date.toTimeString().slice(0, 8)}] ${logLevel.toUpperCase()}: ${
    Format.printable(Arr.ensure(message).map(text).join(" "), lineLimit)
  }${annotations}`
  return cause.reasons.length === 0 ? line : `${line}\n${Format.printableLines(Cause.pretty(cause).split("\n"))}`
}))

root.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.tapCause(report),
  Effect.provide([NodeServices.layer, Logger.layer([logger])]),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
