/**
 * What the hardening tests measured, for SECURITY.md: each test calls
 * `record` once its assertions passed, with what it observed (runs, time to
 * disconnect, bytes…). `npm run security-report` (scripts/security-report.ts)
 * runs those tests and renders the table from these records and vitest's own
 * pass/fail report, so the published results are the measured ones.
 */
import * as Fs from "node:fs"
import { join } from "node:path"
import { expect } from "vitest"
import { projectRoot } from "./Swarm.ts"

export const resultsDir = join(projectRoot, ".security-results")
export const resultsFile = join(resultsDir, "measured.jsonl")

export interface Measured {
  /** The test's full name (describe blocks and title, joined by " > "). */
  readonly test: string
  readonly measured: string
}

/** Appends what the current test measured (one JSON line; files of several workers may append at once). */
export const record = (measured: string): void => {
  const test = expect.getState().currentTestName ?? "unknown"
  Fs.mkdirSync(resultsDir, { recursive: true })
  Fs.appendFileSync(resultsFile, `${JSON.stringify({ test, measured } satisfies Measured)}\n`)
}
