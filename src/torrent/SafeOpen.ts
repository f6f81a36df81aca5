/**
 * SafeOpen: opens a torrent's file below the download folder without
 * following a symlink on the way, so a folder swapped for a symlink while the
 * download runs cannot make us write, or create a file or folder, outside it.
 * A check of the path before opening is not enough: the swap can come
 * between the check and the open.
 *
 * Node has no openat(2). On Linux, `/proc/self/fd/<fd>/<name>` stands in for
 * it: the kernel resolves the magic link to the folder already open, not back
 * through its path, and O_NOFOLLOW refuses a symlink at `<name>` itself. So
 * each folder of the path is made (when writing) and opened that way in turn,
 * then the file. Every symlink below the download folder is refused, even one
 * leading to another place inside it: following it safely would mean
 * resolving it ourselves, and no torrent needs one. The download folder
 * itself may be a symlink (the user's choice); it is opened once.
 *
 * Without /proc (macOS), the file is opened by its path (O_NOFOLLOW for its
 * last component), then its real path must be inside the folder and be the
 * file opened (device and inode). That refuses a write that a swap
 * redirected, but cannot undo a file or folder created outside while a swap
 * lasted.
 */
import { Data, Effect } from "effect"
import * as NodeFs from "node:fs"
import { dirname, isAbsolute, join, relative } from "node:path"

/** A path that leads through a symlink, or changed while it was being opened. */
export class UnsafePath extends Data.TaggedError("UnsafePath")<{
  readonly detail: string
}> {}

/** The download folder, open for the torrent's lifetime. */
export interface Folder {
  readonly path: string
  /** Its real path (symlinks resolved). */
  readonly real: string
  readonly fd: number
  /** Whether `/proc/self/fd/<fd>` leads to it, so files are opened beneath it. */
  readonly beneath: boolean
}

/**
 * A `node:fs` call as an Effect. Open files are plain descriptors (not
 * FileSystem.File) because the PieceWorker writes to them by number (on its
 * thread, if it has one).
 */
export const nodeFs = <A>(call: (done: (error: NodeJS.ErrnoException | null, value: A) => void) => void) =>
  Effect.callback<A, NodeJS.ErrnoException>((resume) =>
    call((error, value) => resume(error === null ? Effect.succeed(value) : Effect.fail(error)))
  )

export const close = (fd: number) => Effect.ignore(nodeFs((done) => NodeFs.close(fd, (e) => done(e, undefined))))

const { O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_RDONLY, O_RDWR } = NodeFs.constants
const folderFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW
const fileFlags = (writable: boolean) => (writable ? O_RDWR | O_CREAT : O_RDONLY) | O_NOFOLLOW

/** Whether `path` is `folder` or below it (both absolute, symlinks resolved or not alike). */
export const isInside = (folder: string, path: string) => {
  const rel = relative(folder, path)
  return !rel.startsWith("..") && !isAbsolute(rel)
}

/** Makes (if missing) and opens the download folder; the caller closes `fd` (run it uninterruptibly not to lose it). */
export const openFolder = (path: string): Effect.Effect<Folder, NodeJS.ErrnoException> =>
  Effect.gen(function*() {
    yield* nodeFs((done) => NodeFs.mkdir(path, { recursive: true }, (e) => done(e, undefined)))
    const real = yield* nodeFs<string>((done) => NodeFs.realpath(path, done))
    const fd = yield* nodeFs<number>((done) => NodeFs.open(path, O_RDONLY | O_DIRECTORY, done))
    const beneath = yield* Effect.all([
      nodeFs<NodeFs.Stats>((done) => NodeFs.fstat(fd, done)),
      nodeFs<NodeFs.Stats>((done) => NodeFs.stat(`/proc/self/fd/${fd}`, done))
    ]).pipe(Effect.map(([a, b]) => a.dev === b.dev && a.ino === b.ino), Effect.orElseSucceed(() => false))
    return { path, real, fd, beneath }
  })

/**
 * Opens the file at `components` below `folder`: read-only, or read-write and
 * created (with its folders) if missing. The caller closes the descriptor
 * (run it uninterruptibly not to lose it).
 */
export const openFile = (
  folder: Folder,
  components: ReadonlyArray<string>,
  writable: boolean
): Effect.Effect<number, UnsafePath | NodeJS.ErrnoException> =>
  folder.beneath ? openBeneath(folder.fd, folder.path, components, writable) : openChecked(folder, components, writable)

/** Turns the errors that mean `path` is not, or was not while we opened it, what it should be into UnsafePath. */
const refuse = (path: string, writable: boolean, isFolder: boolean) =>
  Effect.mapError((e: NodeJS.ErrnoException): UnsafePath | NodeJS.ErrnoException => {
    if (e.code === "ELOOP" || (isFolder && e.code === "ENOTDIR")) {
      const what = isFolder ? "not a folder" : "a symlink"
      return new UnsafePath({ detail: `${path} is ${what} (symlinks in the download folder are not followed)` })
    }
    // Writing, every folder on the way was made if missing: one gone now was moved meanwhile.
    if (writable && e.code === "ENOENT") {
      return new UnsafePath({ detail: `${path} was moved or replaced while it was being opened` })
    }
    return e
  })

const openBeneath = (
  dir: number,
  dirPath: string,
  [name, ...rest]: ReadonlyArray<string>,
  writable: boolean
): Effect.Effect<number, UnsafePath | NodeJS.ErrnoException> => {
  const at = `/proc/self/fd/${dir}/${name}`
  const path = join(dirPath, name!)
  if (rest.length === 0) {
    return nodeFs<number>((done) => NodeFs.open(at, fileFlags(writable), 0o666, done)).pipe(
      refuse(path, writable, false)
    )
  }
  const made = writable
    ? nodeFs((done) => NodeFs.mkdir(at, (e) => done(e?.code === "EEXIST" ? null : e, undefined)))
    : Effect.void
  return Effect.acquireUseRelease(
    made.pipe(
      Effect.andThen(nodeFs<number>((done) => NodeFs.open(at, folderFlags, done))),
      refuse(path, writable, true)
    ),
    (sub) => openBeneath(sub, path, rest, writable),
    close
  )
}

const openChecked = Effect.fnUntraced(function*(folder: Folder, components: ReadonlyArray<string>, writable: boolean) {
  const path = join(folder.path, ...components)
  if (writable) yield* nodeFs((done) => NodeFs.mkdir(dirname(path), { recursive: true }, (e) => done(e, undefined)))
  const fd = yield* nodeFs<number>((done) => NodeFs.open(path, fileFlags(writable), 0o666, done)).pipe(
    refuse(path, writable, false)
  )
  const same = yield* Effect.gen(function*() {
    const real = yield* nodeFs<string>((done) => NodeFs.realpath(path, done))
    const [opened, named] = yield* Effect.all([
      nodeFs<NodeFs.Stats>((done) => NodeFs.fstat(fd, done)),
      nodeFs<NodeFs.Stats>((done) => NodeFs.lstat(real, done))
    ])
    return isInside(folder.real, real) && opened.dev === named.dev && opened.ino === named.ino
  }).pipe(Effect.orElseSucceed(() => false))
  if (same) return fd
  yield* close(fd)
  return yield* new UnsafePath({
    detail: `${path} leads outside the download folder, or changed while it was being opened`
  })
})
