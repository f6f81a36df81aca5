/**
 * An in-memory `Served` for the HTTP server's tests: files given as bytes,
 * of which only the first `available` bytes may be there (a stream reaching
 * the rest waits for ever, as a reader waits for missing pieces), or which
 * fail at `failAt`. It counts the streams started and finalized, so a test
 * can tell that every one was released (a client that went away interrupts
 * its stream).
 */
import { Effect, Layer, Stream } from "effect"
import { Served, ServedError, type ServedFile } from "../../src/http/Served.ts"

export interface MemoryFile {
  readonly index: number
  readonly path: ReadonlyArray<string>
  readonly data: Uint8Array
  /** Bytes there (default: all); a stream waits for ever at this offset. */
  readonly available?: number
  /** A stream fails when it reaches this offset. */
  readonly failAt?: number
}

export interface MemoryServed {
  readonly layer: Layer.Layer<Served>
  /** Streams started so far. */
  readonly opened: () => number
  /** Streams finalized so far (done, failed or interrupted). */
  readonly closed: () => number
}

const chunkSize = 16 * 1024

export const make = (options: {
  readonly name: string
  readonly id?: string
  readonly files: ReadonlyArray<MemoryFile>
}): MemoryServed => {
  let opened = 0
  let closed = 0
  const files: ReadonlyArray<ServedFile> = options.files.map(({ data, index, path }) => ({
    index,
    path,
    length: data.length
  }))
  const byIndex = new Map(options.files.map((f) => [f.index, f]))

  const stream = (index: number, range: { readonly start: number; readonly end: number }) => {
    const file = byIndex.get(index)
    if (file === undefined) return Stream.die(new Error(`no file ${index}`))
    if (!(0 <= range.start && range.start < range.end && range.end <= file.data.length)) {
      return Stream.die(new Error(`bad range ${range.start}-${range.end} of file ${index}`))
    }
    const there = Math.min(range.end, file.available ?? file.data.length, file.failAt ?? Infinity)
    const chunks: Array<Uint8Array> = []
    for (let at = range.start; at < there; at += chunkSize) {
      chunks.push(file.data.subarray(at, Math.min(there, at + chunkSize)))
    }
    const rest: Stream.Stream<Uint8Array, ServedError> = there === range.end
      ? Stream.empty
      : file.failAt !== undefined && there === file.failAt
      ? Stream.fail(new ServedError({ index, reason: "Unreadable", detail: "the test made it fail" }))
      : Stream.never
    return Stream.unwrap(Effect.sync(() => {
      opened++
      return Stream.fromIterable(chunks).pipe(Stream.concat(rest))
    })).pipe(Stream.ensuring(Effect.sync(() => void closed++)))
  }

  return {
    layer: Layer.succeed(
      Served,
      Served.of({
        id: options.id ?? "0123456789abcdef0123456789abcdef01234567",
        name: Effect.succeed(options.name),
        files: Effect.succeed(files),
        stream,
        progress: Effect.succeed({
          state: "downloading",
          done: 0,
          wanted: options.files.reduce((n, f) => n + f.data.length, 0),
          downloadRate: 0,
          uploadRate: 0,
          peers: 0,
          eta: null,
          files: options.files.reduce<Array<number>>((all, f) => {
            all[f.index] = f.available ?? f.data.length
            return all
          }, [])
        })
      })
    ),
    opened: () => opened,
    closed: () => closed
  }
}
