/**
 * `npm run format` formats the TypeScript sources; `--check` (in `npm run
 * lint`) lists the files that are not formatted and exits 1. It runs dprint's
 * own formatter library with its TypeScript plugin, both from npm, with the
 * settings of dprint.json: no plugin download at run time (the dprint CLI
 * fetches plugins from the network, and its per-platform binaries do not all
 * resolve from this registry).
 */
import { createFromBuffer } from "@dprint/formatter"
import { getPath } from "@dprint/typescript"
import * as Fs from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const config = JSON.parse(Fs.readFileSync(join(root, "dprint.json"), "utf8")) as {
  readonly lineWidth: number
  readonly indentWidth: number
  readonly typescript: Record<string, unknown>
}
const formatter = createFromBuffer(Fs.readFileSync(getPath()))
formatter.setConfig({ lineWidth: config.lineWidth, indentWidth: config.indentWidth }, config.typescript)
const problems = formatter.getConfigDiagnostics()
if (problems.length > 0) throw new Error(`dprint.json: ${problems.map((p) => p.message).join("; ")}`)

/** The .ts files under src/, test/ and scripts/, and at the top level. */
const files = (dir: string, deep: boolean): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return deep && !entry.name.startsWith(".") ? files(path, true) : []
    return entry.isFile() && entry.name.endsWith(".ts") ? [path] : []
  })

const check = process.argv.includes("--check")
const unformatted: Array<string> = []
for (
  const file of [...files(root, false), ...["src", "test", "scripts"].flatMap((dir) => files(join(root, dir), true))]
) {
  const text = Fs.readFileSync(file, "utf8")
  const formatted = formatter.formatText({ filePath: file, fileText: text })
  if (formatted === text) continue
  unformatted.push(relative(root, file))
  if (!check) Fs.writeFileSync(file, formatted)
}
if (check && unformatted.length > 0) {
  console.error(`not formatted (run npm run format): ${unformatted.join(", ")}`)
  process.exit(1)
}
if (!check && unformatted.length > 0) console.log(`formatted ${unformatted.length} files`)
