/**
 * Usage errors: what the user typed that the CLI cannot take. Each is one
 * line naming the flag or argument and what it needs, then a pointer to the
 * help (not the whole help: the problem would scroll away); the exit code
 * is 2, as for other tools (1 is for failures, 130 for Ctrl-C).
 */
import { Runtime, Schema } from "effect"
import { type CliError, Flag } from "effect/cli"
import * as Format from "./Format.ts"

export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  detail: Schema.String,
  /** The command it was given to, e.g. "effect-torrent seed" (default: effect-torrent). */
  command: Schema.optional(Schema.String)
}) {
  override readonly [Runtime.errorExitCode] = 2
  override get message() {
    return this.detail
  }
}

/** The lines printed for a usage error in `command` (e.g. "effect-torrent seed"). */
export const lines = (detail: string, command: string = "effect-torrent"): string =>
  `effect-torrent: ${Format.printable(detail, 500)}\nrun ${command} --help`

/** effect/cli's expectation ("Expected: a string representing a finite number", "\"a\" | \"b\"") as the end of our sentence. */
const expectation = (expected: string): string => {
  const text = expected.replace(/^Expected:?\s*/, "")
  if (/integer/.test(text)) return "a whole number"
  if (/finite number/.test(text)) return "a number"
  const choices = /^"[^"]*"(?: \| "[^"]*")+$/.test(text)
    ? text.split(" | ").map((choice) => choice.slice(1, -1))
    : undefined
  return choices === undefined ? text : `one of ${choices.join(", ")}`
}

/** effect/cli's parse error as one line in our words (its own may span lines, with suggestions). */
export const describe = (error: CliError.NonShowHelpErrors): string => {
  switch (error._tag) {
    case "UnrecognizedOption":
      return `unknown flag ${error.option}${
        error.suggestions.length > 0 ? ` (did you mean ${error.suggestions.join(" or ")}?)` : ""
      }`
    case "MissingOption":
      return `missing --${error.option}`
    case "MissingArgument":
      return `missing <${error.argument}>`
    case "UnexpectedArgument":
      return `unexpected argument ${error.arguments.map((a) => JSON.stringify(a)).join(", ")}`
    case "InvalidValue": {
      const what = error.kind === "argument" ? `<${error.option}>` : `--${error.option}`
      return error.value === ""
        ? `${what} needs a value: ${expectation(error.expected)}`
        : `${what}: ${JSON.stringify(error.value)} is not ${expectation(error.expected)}`
    }
    case "UnknownSubcommand":
      return `unknown command ${JSON.stringify(error.subcommand)}`
    default:
      return error.message.split("\n")[0]!
  }
}

/** A number flag that takes only values from `min` to `max`; `what` ends "--flag: 7 is not …". */
export const range = (min: number, max: number, what: string) =>
  Flag.filter((n: number) => n >= min && n <= max, () => what)
