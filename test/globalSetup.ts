/**
 * Builds dist/ once, before any test file runs: the built-CLI test and the
 * packed-package test use it, so they never run a stale build, and no two
 * test files build at once.
 */
import { execFileSync } from "node:child_process"

export default function setup(): void {
  execFileSync("npm", ["run", "build", "--silent"], { stdio: "inherit" })
}
