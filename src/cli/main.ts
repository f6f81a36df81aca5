/**
 * The `effect-torrent` command line.
 *
 * Exit codes: 0 done, 1 a failure (one line on stderr), 2 a usage error (one
 * line and where the help is), 130 interrupted (Ctrl-C).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Array as Arr, Cause, Console, Effect, Formatter, Layer, Logger, References } from "effect"
import { CliConfig, CliOutput, Command, GlobalFlag } from "effect/cli"
import * as Create from "./Create.ts"
import * as Daemon from "./Daemon.ts"
import * as Download from "./Download.ts"
import * as Format from "./Format.ts"
import * as Help from "./Help.ts"
import * as Info from "./Info.ts"
import * as Remote from "./Remote.ts"
import { Screen } from "./Screen.ts"
import * as Serve from "./Serve.ts"
import * as Usage from "./Usage.ts"

const root = Command.make("effect-torrent", Download.flags, Download.run).pipe(
  Command.withDescription(
    "Downloads the given .torrent files and magnet links into a folder, checking every piece, with a live " +
      "progress display and a summary at the end. Exit status: 0 complete, 1 failed, 2 usage error, " +
      "130 interrupted (run the same command again to resume)."
  ),
  Command.withExamples([
    { command: "effect-torrent ubuntu.iso.torrent -o ~/Downloads", description: "download into ~/Downloads" },
    {
      command: "effect-torrent 'magnet:?xt=urn:btih:...' --save-torrent x.torrent",
      description: "a magnet link, quoted"
    },
    { command: "effect-torrent info big.torrent", description: "list its files with the indexes --select takes" },
    {
      command: "effect-torrent big.torrent --select 0,2 --max-download 2M",
      description: "two of its files, at most 2 MiB/s"
    },
    {
      command: "effect-torrent a.torrent --on-done 'mv \"$ET_DIR/$ET_NAME\" ~/done/'",
      description: "move each torrent's data once it is complete"
    },
    {
      command: "effect-torrent a.torrent --seed --seed-ratio 1.5",
      description: "then seed until 1.5 times its size is sent"
    }
  ]),
  Command.withSubcommands([
    Download.seedCommand,
    Serve.command,
    Daemon.command,
    Remote.command,
    Info.command,
    Create.command
  ])
)

/**
 * The most characters of an error or log line. Messages quote names from
 * torrents, which may be kilobytes long; head and tail (what failed, and why)
 * are kept.
 */
const lineLimit = 500

/** One line for a failure (usage errors point to the help); a full cause only for bugs. Both may quote a torrent's names. */
const report = (cause: Cause.Cause<unknown>) => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  const error = Cause.squash(cause)
  if (error instanceof Usage.UsageError) return Console.error(Usage.lines(error.detail, error.command))
  return Cause.hasFails(cause)
    ? Console.error(
      `effect-torrent: ${Format.printable(error instanceof Error ? error.message : String(error), lineLimit)}`
    )
    : Console.error(Format.printableLines(Cause.pretty(cause).split("\n")))
}

const text = (value: unknown): string => (typeof value === "string" ? value : Formatter.format(value))

/**
 * Log lines, one each, printed above the progress display on stderr:
 * "12:00:00 WARN <torrent>: <message>: <why>". The message, the cause and
 * every annotation are made printable and bounded: trackers' warnings,
 * peers' errors and torrent names come from the network.
 */
const logger = (screen: Screen["Service"]) =>
  Logger.make(({ cause, date, fiber, logLevel, message }) => {
    const { infoHash, torrent, ...others } = fiber.getRef(References.CurrentLogAnnotations)
    const subject = torrent ?? infoHash
    const why = cause.reasons.length === 0 || Cause.hasInterruptsOnly(cause) ? "" : `: ${text(Cause.squash(cause))}`
    const line = `${date.toTimeString().slice(0, 8)} ${logLevel.toUpperCase()} ${
      subject === undefined ? "" : `${Format.name(text(subject))}: `
    }${Arr.ensure(message).map(text).join(" ")}${why}${
      Object.entries(others).map(([key, value]) => ` ${key}=${Format.name(text(value))}`).join("")
    }`
    screen.print(Format.printable(line.replace(/\s*\n\s*/g, " "), lineLimit))
  })

/** effect-torrent's help, its parse errors as usage errors, its logger and its terminal. */
const cli = Layer.mergeAll(
  Help.layer,
  // A parse error is reported as a usage error (below), not with the whole help before it.
  CliOutput.layerPresenter({
    present: (event) => event._tag === "InvalidInvocation" ? Effect.void : CliOutput.defaultPresenter.present(event)
  }),
  CliConfig.layer({ builtIns: [GlobalFlag.Help, GlobalFlag.Version] }),
  Layer.unwrap(Effect.gen(function*() {
    return Logger.layer([logger(yield* Screen)])
  }))
).pipe(Layer.provideMerge(Screen.layer))

root.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.catchTag("ShowHelp", (help) =>
    help.errors.length === 0
      ? Effect.void
      : Effect.fail(
        new Usage.UsageError({ detail: Usage.describe(help.errors[0]!), command: help.commandPath.join(" ") })
      )),
  Effect.tapCause(report),
  Effect.provide([NodeServices.layer, cli]),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
