/**
 * `--help` as plain text that fits 80 columns: usage, description, the
 * arguments and flags (defaults are in their descriptions), subcommands and
 * examples, each description wrapped under its own column.
 */
import { Option } from "effect"
import { CliOutput, type HelpDoc } from "effect/cli"
import * as Format from "./Format.ts"

const width = 80
/** Where descriptions start; longer names push theirs to the next line. */
const column = 28

/** `text` in lines of at most `width - indent` columns, each indented. */
const wrap = (text: string, indent: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && indent + Format.width(line) + 1 + Format.width(word) > width) {
      lines.push(line)
      line = word
    } else line = line === "" ? word : `${line} ${word}`
  }
  if (line !== "") lines.push(line)
  return lines.map((l) => `${" ".repeat(indent)}${l}`)
}

/** A name (flag, argument, command) and its wrapped description. */
const entry = (name: string, description: string): Array<string> => {
  const lines = wrap(description, column)
  const head = `  ${name}`
  if (Format.width(head) + 2 > column || lines.length === 0) return [head, ...lines]
  return [`${head.padEnd(column)}${lines[0]!.slice(column)}`, ...lines.slice(1)]
}

const flagName = (flag: HelpDoc.FlagDoc): string => {
  const short = flag.aliases.find((alias) => /^-\w$/.test(alias))
  const value = flag.type === "boolean" ? "" : ` ${flag.type}`
  return `${short === undefined ? "    " : `${short}, `}--${flag.name}${value}`
}

const section = (title: string, lines: ReadonlyArray<string>) => (lines.length === 0 ? [] : [title, ...lines, ""])

export const formatHelpDoc = (doc: HelpDoc.HelpDoc): string => {
  const description = (option: Option.Option<string>) => Option.getOrElse(option, () => "")
  // effect/cli writes "<subcommand>" into the usage even where none is needed: the commands get a line of their own.
  const commands = (doc.subcommands ?? []).flatMap((group) => group.commands.map((command) => command.name))
  // The commands named in the usage while they fit 80 columns; else `<command>` (the Commands section names them).
  const commandLine = (names: string) => `       ${doc.commandPath?.join(" ") ?? ""} <${names}> [flags] ...`
  const named = commandLine(commands.join("|"))
  const usage = [
    `Usage: ${doc.usage.replace("<subcommand> ", "")}`,
    ...(commands.length === 0 ? [] : [named.length <= 80 ? named : commandLine("command")])
  ]
  return [
    ...usage,
    "",
    ...(doc.description === "" ? [] : [...wrap(doc.description, 0), ""]),
    ...section(
      "Arguments:",
      (doc.args ?? []).flatMap((arg) =>
        entry(`<${arg.name}>${arg.variadic ? "..." : ""}`, description(arg.description))
      )
    ),
    ...section(
      "Flags:",
      [...doc.flags, ...(doc.inheritedFlags ?? []), ...(doc.globalFlags ?? [])].flatMap((flag) =>
        entry(flagName(flag), description(flag.description))
      )
    ),
    ...section(
      "Commands:",
      (doc.subcommands ?? []).flatMap((group) =>
        group.commands.flatMap((command) => entry(command.name, command.shortDescription ?? command.description))
      )
    ),
    ...section(
      "Examples:",
      (doc.examples ?? []).flatMap((example) => [
        ...wrap(example.command, 2),
        ...(example.description === undefined ? [] : wrap(example.description, 6))
      ])
    )
  ].join("\n").trimEnd()
}

export const layer = CliOutput.layer({ ...CliOutput.defaultFormatter({ colors: false }), formatHelpDoc })
