/**
 * curl, a real HTTP client, for the tests of our HTTP server: its status
 * line, headers and body (`--include`).
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"

export interface Reply {
  readonly status: number
  /** Header names in lower case. */
  readonly headers: Record<string, string>
  readonly body: Buffer
  /** The connection ended before the whole body came. */
  readonly aborted: boolean
}

/**
 * curl with `args`, giving up after `maxTimeSeconds`. A failed transfer
 * fails the test, unless `partial` (then what came is the reply, `aborted`).
 */
export const curl = (
  args: ReadonlyArray<string>,
  options: { readonly maxTimeSeconds: number; readonly partial?: boolean }
) =>
  Effect.callback<Reply>((resume, signal) => {
    execFile(
      "curl",
      ["--silent", "--show-error", "--include", "--max-time", String(options.maxTimeSeconds), ...args],
      { encoding: "buffer", maxBuffer: 64 * 1024 * 1024, signal },
      (error, stdout, stderr) => {
        if (error !== null && (options.partial !== true || stdout.length === 0)) {
          return resume(Effect.die(new Error(`curl ${args.join(" ")} failed: ${stderr}`)))
        }
        const end = stdout.indexOf("\r\n\r\n")
        const head = stdout.subarray(0, end).toString("latin1").split("\r\n")
        resume(Effect.succeed({
          status: Number(head[0]!.split(" ")[1]),
          headers: Object.fromEntries(
            head.slice(1).map((line) => {
              const colon = line.indexOf(":")
              return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
            })
          ),
          body: stdout.subarray(end + 4),
          aborted: error !== null
        }))
      }
    )
  })
