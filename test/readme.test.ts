/** The README's library example must compile against the current API. */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

describe("README", () => {
  it("library example type-checks", () => {
    const readme = readFileSync("README.md", "utf8")
    const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
    assert.isDefined(example)
    const dir = mkdtempSync(join("test", ".readme-"))
    try {
      writeFileSync(join(dir, "example.ts"), example!.replace(/from "effect-torrent"/g, 'from "../../src/index.ts"'))
      writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ extends: "../../tsconfig.json", include: ["example.ts", "../../src/types"] }))
      execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", join(dir, "tsconfig.json")], { stdio: "pipe" })
    } catch (error) {
      const out = (error as { stdout?: Buffer }).stdout?.toString() ?? String(error)
      assert.fail(`README example does not compile:\n${out}`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
