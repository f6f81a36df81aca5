/** Reads what the user named on the command line: a .torrent file or a magnet link. */
import { Effect, FileSystem, Result, Schema } from "effect"
import * as Magnet from "../protocol/Magnet.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import * as Format from "./Format.ts"

export class InputError extends Schema.TaggedError<InputError>()("InputError", {
  input: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    // The input may be a file name from a glob over untrusted files.
    return `${Format.name(this.input)}: ${this.detail}`
  }
}

export type Source =
  | { readonly _tag: "Torrent"; readonly meta: Metainfo.Metainfo }
  | { readonly _tag: "Magnet"; readonly magnet: Magnet.Magnet }

export const load = Effect.fn("Input.load")(function*(input: string) {
  if (Magnet.isMagnet(input)) {
    const parsed = Magnet.parse(input)
    if (Result.isFailure(parsed)) return yield* new InputError({ input: "magnet", detail: parsed.failure.message })
    return { _tag: "Magnet", magnet: parsed.success } satisfies Source as Source
  }
  const fs = yield* FileSystem.FileSystem
  const info = yield* fs.stat(input).pipe(
    Effect.mapError((error) =>
      new InputError({ input, detail: error.reason._tag === "NotFound" ? "no such file" : Format.failure(error) })
    )
  )
  if (info.type !== "File") return yield* new InputError({ input, detail: "not a file" })
  if (Number(info.size) > 10 * 1024 * 1024) {
    return yield* new InputError({ input, detail: `${info.size} bytes is too large for a .torrent file` })
  }
  const bytes = yield* fs.readFile(input).pipe(
    Effect.mapError((error) => new InputError({ input, detail: Format.failure(error) }))
  )
  const meta = Metainfo.decode(bytes)
  if (Result.isFailure(meta)) return yield* new InputError({ input, detail: meta.failure.message })
  return { _tag: "Torrent", meta: meta.success } satisfies Source as Source
})
