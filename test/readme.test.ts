/** The README's examples (every ```ts block) must compile against the current API. */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

describe("README", () => {
  it("examples type-check", () => {
    const readme = readFileSync("README.md", "utf8")
    const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!)
    assert.isAtLeast(examples.length, 2)
    const dir = mkdtempSync(join("test", ".readme-"))
    try {
      const files = examples.map((example, i) => {
        const file = `example-${i}.ts`
        writeFileSync(
          join(dir, file),
          example
            .replace(/from "effect-torrent"/g, "from \"../../src/index.ts\"")
            .replace(/from "effect-torrent\/testing"/g, "from \"../../src/testing.ts\"")
        )
        return file
      })
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({ extends: "../../tsconfig.json", include: [...files, "../../src/types"] })
      )
      execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", join(dir, "tsconfig.json")], {
        stdio: "pipe"
      })
    } catch (error) {
      const out = (error as { stdout?: Buffer }).stdout?.toString() ?? String(error)
      assert.fail(`a README example does not compile:\n${out}`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
