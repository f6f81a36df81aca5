/**
 * The watched folder: every `.torrent` file in it is added to the session,
 * then renamed `<name>.torrent.added` (as Transmission does) so it is not
 * added again. The folder is read when the daemon starts and again after
 * each change in it (a burst of changes, as a copy makes, reads it once).
 * A file that is not a torrent (yet: it may still be being written) stays
 * where it is, and is tried again on the next change; it is warned of once
 * per size.
 */
import { Deferred, Effect, Exit, FileSystem, Path, Semaphore, Stream } from "effect"
import { Session } from "./Session.ts"

export const run = Effect.fnUntraced(function*(dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const session = yield* Session
  /** Files warned of, with the size they had. */
  const warned = new Map<string, number>()

  const addFile = (file: string) =>
    Effect.gen(function*() {
      const bytes = yield* fs.readFile(file)
      const added = yield* session.add({ _tag: "Torrent", bytes }).pipe(Effect.result)
      if (added._tag === "Success") {
        warned.delete(file)
        yield* fs.rename(file, `${file}.added`)
        yield* Effect.logInfo(`added ${file}`)
      } else if (warned.get(file) !== bytes.length) {
        warned.set(file, bytes.length)
        yield* Effect.logWarning(`${file} not added: ${added.failure.message}`)
      }
    }).pipe(Effect.catch((error) => Effect.logWarning(`${file}: ${error.message}`)))

  const scan = fs.readDirectory(dir).pipe(
    Effect.flatMap((names) =>
      Effect.forEach(
        names.filter((name) => name.toLowerCase().endsWith(".torrent")),
        (name) => addFile(path.join(dir, name)),
        { discard: true }
      )
    ),
    Effect.catch((error) => Effect.logWarning(`cannot read the watched folder ${dir}: ${error.message}`))
  )

  // Watching first, then reading: a file dropped in between is seen. One scan at a time.
  const lock = Semaphore.makeUnsafe(1)
  const ready = yield* Deferred.make<void>()
  yield* fs.watch(dir, { onReady: () => Deferred.doneUnsafe(ready, Exit.void) }).pipe(
    Stream.debounce("200 millis"),
    Stream.runForEach(() => lock.withPermits(1)(scan)),
    Effect.catch((error) => Effect.logWarning(`cannot watch ${dir}: ${error.message}`)),
    Effect.ensuring(Deferred.done(ready, Exit.void)),
    Effect.forkScoped
  )
  yield* Deferred.await(ready)
  yield* lock.withPermits(1)(scan)
})
