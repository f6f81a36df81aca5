/**
 * `--on-done CMD`: a shell command run once for each torrent when it is
 * complete and verified, as Transmission's `script-torrent-done`,
 * webtorrent-cli's `--on-done` and aria2c's `--on-bt-download-complete` do.
 * The torrent is described in its environment: `ET_NAME` (the file or
 * folder under `ET_DIR`), `ET_INFO_HASH`, `ET_DIR` (the download folder,
 * absolute) and `ET_SIZE` (bytes of the selected files). What it prints is
 * shown above the progress display, on stderr (stdout may carry `--json`);
 * a failure is a warning, not the download's.
 */
import { Effect, Stream } from "effect"
import { ChildProcess } from "effect/process"
import * as Format from "./Format.ts"
import { Screen } from "./Screen.ts"

export interface Done {
  readonly name: string
  readonly infoHash: string
  readonly dir: string
  readonly size: number
}

export const run = Effect.fn("OnDone.run")(function*(command: string, done: Done) {
  const screen = yield* Screen
  const exitCode = yield* Effect.gen(function*() {
    const child = yield* ChildProcess.make(command, {
      shell: true,
      extendEnv: true,
      env: { ET_NAME: done.name, ET_INFO_HASH: done.infoHash, ET_DIR: done.dir, ET_SIZE: String(done.size) },
      stdin: "ignore"
    })
    yield* child.all.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.runForEach((line) => Effect.sync(() => screen.print(Format.printable(line, 500))))
    )
    return yield* child.exitCode
  }).pipe(Effect.scoped, Effect.catch((error) => Effect.succeed(Format.failure(error))))
  if (exitCode !== 0) {
    const why = typeof exitCode === "number" ? `exited with code ${exitCode}` : `could not run: ${exitCode}`
    yield* Effect.logWarning(`--on-done ${why} for ${Format.name(done.name)}`)
  }
})
