/**
 * The package as an embedder gets it: `npm pack` (of the build made before
 * the tests, test/globalSetup.ts), the tarball
 * unpacked into a fresh app's node_modules beside its peer dependencies
 * (linked from ours: no registry), then every TypeScript example of the
 * README type-checked against the packed declarations, and the swarm
 * example run three times from the packed JavaScript, with the same result
 * each time.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { projectRoot } from "../util/Swarm.ts"

const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 240_000 })

describe("the packed package", () => {
  it("installs into a fresh app whose README examples type-check and run, three runs identical", () => {
    const work = Fs.mkdtempSync(join(tmpdir(), "et-pack-"))
    try {
      const tarball = run("npm", ["pack", "--silent", "--ignore-scripts", "--pack-destination", work], projectRoot)
        .trim().split("\n")
        .pop()!
      const app = join(work, "app")
      const modules = join(app, "node_modules")
      Fs.mkdirSync(join(modules, "effect-torrent"), { recursive: true })
      run("tar", ["xzf", join(work, tarball), "-C", join(modules, "effect-torrent"), "--strip-components=1"], work)
      for (const dependency of [
        "effect",
        "@effect/platform-node",
        "@effect/platform-node-shared",
        "bencode",
        "@types/node"
      ]) {
        Fs.mkdirSync(join(modules, dependency, ".."), { recursive: true })
        Fs.symlinkSync(join(projectRoot, "node_modules", dependency), join(modules, dependency))
      }
      Fs.writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", type: "module", private: true }))
      const examples = [...Fs.readFileSync(join(projectRoot, "README.md"), "utf8").matchAll(/```ts\n([\s\S]*?)```/g)]
        .map((m) => m[1]!)
      assert.isAtLeast(examples.length, 2)
      for (const [i, example] of examples.entries()) Fs.writeFileSync(join(app, `example${i}.ts`), example)
      Fs.writeFileSync(
        join(app, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            module: "nodenext",
            moduleResolution: "nodenext",
            target: "es2022",
            noEmit: true,
            skipLibCheck: true,
            types: ["node"]
          },
          include: ["*.ts"]
        })
      )
      try {
        run(process.execPath, [join(projectRoot, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], app)
      } catch (error) {
        assert.fail(`the README examples do not compile against the package:\n${(error as { stdout?: string }).stdout}`)
      }
      const swarm = examples.findIndex((example) => example.includes("effect-torrent/testing"))
      assert.isAtLeast(swarm, 0, "a README example uses effect-torrent/testing")
      const outcomes = [1, 2, 3].map(() => {
        const output = run(join(projectRoot, "node_modules/.bin/tsx"), [`example${swarm}.ts`], app)
        return /(\d+ events in \d+ ms of simulated time)/.exec(output)?.[1]
      })
      assert.isDefined(outcomes[0], "the swarm example reported its events")
      assert.deepStrictEqual(outcomes, [outcomes[0], outcomes[0], outcomes[0]])
    } finally {
      Fs.rmSync(work, { recursive: true, force: true })
    }
  }, 300_000)
})
