/**
 * PieceWorker: hashes pieces and writes them to disk, in this thread
 * (`layer`) or on a worker thread of its own (`layerThread`).
 *
 * In this thread is the default: on a 2-core machine, downloading 1 GiB
 * from one aria2c seeder, the thread cost more than it saved (CPU 4.58 →
 * 4.16 s, peak RSS 107 → 99 MiB without it; see the README). Each piece is
 * hashed and written in one step of the Orchestrator's verifier, between
 * other fibers' steps, as aria2c and Transmission do in their one loop. The
 * thread is for an embedder whose event loop must never wait on the disk.
 *
 * Why a thread of our own and not the thread pool: a piece is written in
 * 64 KiB writes (see `writeChunk`), and each thread-pool write wakes a pool
 * thread (a costly futex wake-up in a VM): 16 per MiB. The thread does one
 * piece's writes in a row on one message, and hashes on the same thread.
 *
 * Pieces live in shared memory (`allocate`), so posting one to the thread
 * copies nothing; an ordinary buffer is copied by `postMessage`, which is
 * correct but slower. The owner must not change a buffer while a request on
 * it is in flight (the Orchestrator's pending pieces are not touched).
 */
import { Context, Data, Effect, Layer } from "effect"
import { Digest } from "effect/crypto"
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { Worker } from "node:worker_threads"
import * as Merkle from "../protocol/Merkle.ts"

/**
 * Largest single write. One write of a whole piece makes the kernel fill the
 * page cache with large folios, which measured 3-4 times the CPU of 64 KiB
 * writes (and varied tenfold between runs); 64 KiB writes were the cheapest.
 */
const writeChunk = 64 * 1024

/** Inputs smaller than this are hashed in place: a round trip costs more. */
const offloadBytes = 64 * 1024

export class WriteFailed extends Data.TaggedError("WriteFailed")<{
  /** The system error code, e.g. ENOSPC. */
  readonly code: string
  readonly message: string
  /** Which of the parts failed. */
  readonly part: number
}> {}

/** Bytes `offset` to `offset + length` of a piece, to be written at `position` of the open file `fd`. */
export interface Part {
  readonly fd: number
  readonly offset: number
  readonly length: number
  readonly position: number
}

/**
 * How v2 pieces are hashed: in place unless a layer says otherwise (the
 * PieceWorker's `layerMerkle`, which `layerNode` provides beside `layerDigest`).
 */
export class MerkleHasher extends Context.Reference<{
  readonly root: (data: Uint8Array, leaves: number) => Effect.Effect<Uint8Array>
}>("effect-torrent/torrent/PieceWorker/MerkleHasher", {
  defaultValue: () => ({ root: (data, leaves) => Effect.sync(() => Merkle.blocksRoot(Merkle.sha256, data, leaves)) })
}) {}

export class PieceWorker extends Context.Service<PieceWorker, {
  readonly sha1: (data: Uint8Array) => Effect.Effect<Uint8Array>
  /** BEP 52: the root of the SHA-256 tree over `data`'s 16 KiB blocks, padded to `leaves` leaves. */
  readonly merkleRoot: (data: Uint8Array, leaves: number) => Effect.Effect<Uint8Array>
  /**
   * Writes each part of `data` to its file; with `sha1`, only if that is
   * the SHA-1 of `data` (false, and nothing written, if not): one round trip
   * to the thread per piece, where hashing and then writing took two. Not
   * interruptible: once started it finishes, so no `fd` is closed (and its
   * number reused by another file) under a write.
   */
  readonly write: (
    data: Uint8Array,
    parts: ReadonlyArray<Part>,
    sha1?: Uint8Array
  ) => Effect.Effect<boolean, WriteFailed>
}>()("effect-torrent/torrent/PieceWorker") {
  /** In this thread: each request is done in one step of the fiber that asks. */
  static readonly layer = Layer.sync(PieceWorker, () => {
    const serve = serveWith(Crypto, Fs, writeChunk, Merkle.blocksRoot)
    return serviceOf((ask) => Effect.sync(() => serve({ ...ask, id: 0 })))
  })

  /** On one worker thread of its own, stopped when the layer's scope closes. */
  static readonly layerThread = Layer.effect(PieceWorker, Effect.suspend(() => makeThread))

  /** `Digest` with large SHA-1 inputs hashed by the PieceWorker (on its thread, if it has one), the rest in place. */
  static readonly layerDigest = Layer.effect(
    Digest.Digest,
    Effect.gen(function*() {
      const worker = yield* PieceWorker
      const inPlace = yield* Effect.service(Digest.Digest).pipe(Effect.provide(NodeCrypto.layerDigest))
      return Digest.Digest.of({
        digest: (algorithm, data) =>
          algorithm.name === "SHA-1" && data.length >= offloadBytes
            ? worker.sha1(data)
            : inPlace.digest(algorithm, data),
        digestHex: inPlace.digestHex
      })
    })
  )

  /** `MerkleHasher` by the PieceWorker. */
  static readonly layerMerkle = Layer.effect(
    MerkleHasher,
    Effect.map(Effect.service(PieceWorker), (worker) => ({ root: worker.merkleRoot }))
  )
}

const sha1Equals = (data: Uint8Array, sha1: Uint8Array): boolean =>
  Crypto.createHash("sha1").update(data).digest().equals(sha1)

/** A zeroed buffer in shared memory: posted to the PieceWorker's thread without a copy. */
export const allocate = (size: number): Uint8Array => new Uint8Array(new SharedArrayBuffer(size))

type Ask =
  | { readonly op: "sha1"; readonly data: Uint8Array }
  | { readonly op: "merkle"; readonly data: Uint8Array; readonly leaves: number }
  | {
    readonly op: "write"
    readonly data: Uint8Array
    readonly parts: ReadonlyArray<Part>
    readonly sha1: Uint8Array | undefined
  }

type Request = Ask & { readonly id: number }

type Reply =
  | { readonly id: number; readonly hash: Uint8Array }
  | { readonly id: number; readonly written: boolean }
  | { readonly id: number; readonly error: { readonly code: string; readonly message: string; readonly part: number } }

/**
 * What the PieceWorker does with a request, given the built-ins it needs.
 * The thread runs it from its source text (`eval`), so it must use nothing
 * from this module, only what it is given.
 */
function serveWith(
  { createHash }: typeof import("node:crypto"),
  { writeSync }: typeof import("node:fs"),
  chunk: number,
  blocksRoot: typeof Merkle.blocksRoot
) {
  return (request: Request): Reply => {
    let part = 0
    try {
      if (request.op === "sha1") return { id: request.id, hash: createHash("sha1").update(request.data).digest() }
      if (request.op === "merkle") {
        // An arrow in place: one bound to a name gets a helper call from
        // esbuild's keepNames (tsx), which the thread does not have.
        const hash = blocksRoot((data) => createHash("sha256").update(data).digest(), request.data, request.leaves)
        return { id: request.id, hash }
      }
      if (request.sha1 !== undefined && !createHash("sha1").update(request.data).digest().equals(request.sha1)) {
        return { id: request.id, written: false }
      }
      const { data, parts } = request
      for (; part < parts.length; part++) {
        const { fd, length, offset, position } = parts[part]!
        for (let at = 0; at < length;) {
          const written = writeSync(fd, data, offset + at, Math.min(chunk, length - at), position + at)
          if (written === 0) throw Object.assign(new Error("the file took no bytes"), { code: "EIO" })
          at += written
        }
      }
      return { id: request.id, written: true }
    } catch (error) {
      const e = error as { readonly code?: unknown; readonly message?: unknown }
      return { id: request.id, error: { code: String(e.code ?? "EIO"), message: String(e.message ?? error), part } }
    }
  }
}

/** The thread's whole program: it answers each request with what `serve` makes of it. */
function threadMain({ parentPort }: typeof import("node:worker_threads"), serve: (request: Request) => Reply) {
  parentPort!.on("message", (request: Request) => parentPort!.postMessage(serve(request)))
}

const makeThread = Effect.gen(function*() {
  const worker = yield* Effect.acquireRelease(
    Effect.sync(() =>
      new Worker(
        `(${threadMain})(require("node:worker_threads"), (${serveWith})(require("node:crypto"), require("node:fs"), ${writeChunk}, ${Merkle.blocksRoot}))`,
        // No inherited flags: a loader (e.g. tsx's) would cost the thread
        // memory and start-up for nothing.
        { eval: true, execArgv: [] }
      )
    ),
    (worker) => Effect.promise(() => worker.terminate())
  )
  const waiting = new Map<number, (reply: Reply) => void>()
  let nextId = 0
  // The thread keeps the process alive only while it has work.
  worker.unref()
  worker.on("message", (reply: Reply) => {
    const resume = waiting.get(reply.id)
    waiting.delete(reply.id)
    if (waiting.size === 0) worker.unref()
    resume?.(reply)
  })
  // Should the thread die, whoever waits (and asks later) gets the reason.
  let dead: Reply | undefined
  const die = (message: string) => {
    dead ??= { id: -1, error: { code: "EWORKER", message, part: 0 } }
    for (const resume of waiting.values()) resume(dead)
    waiting.clear()
  }
  worker.on("error", (error) => die(`the piece worker failed: ${error.message}`))
  worker.on("exit", (code) => die(`the piece worker exited (${code})`))

  return serviceOf((request) =>
    Effect.callback<Reply>((resume) => {
      if (dead !== undefined) return resume(Effect.succeed(dead))
      const id = nextId++
      if (waiting.size === 0) worker.ref()
      waiting.set(id, (reply) => resume(Effect.succeed(reply)))
      worker.postMessage({ ...request, id })
      return Effect.sync(() => {
        waiting.delete(id)
        if (waiting.size === 0) worker.unref()
      })
    })
  )
})

/** The service, given how a request is answered (in this thread, or by a round trip to the PieceWorker's). */
const serviceOf = (call: (ask: Ask) => Effect.Effect<Reply>) => {
  const hash = (ask: Ask) =>
    Effect.flatMap(call(ask), (reply) =>
      "hash" in reply
        ? Effect.succeed(reply.hash)
        : Effect.die(new Error(`hashing failed: ${"error" in reply ? reply.error.message : "no hash"}`)))
  return PieceWorker.of({
    sha1: (data) => hash({ op: "sha1", data }),
    merkleRoot: (data, leaves) =>
      data.length >= offloadBytes
        ? hash({ op: "merkle", data, leaves })
        : Effect.sync(() => Merkle.blocksRoot(Merkle.sha256, data, leaves)),
    write: (data, parts, sha1) => {
      // A small piece is checked in place: a bad one is refused at once,
      // without a round trip to a thread (a peer sending bad pieces fast
      // fails fewer of them before it is banned), and a good one is not
      // hashed twice.
      const inPlace = sha1 !== undefined && data.length < offloadBytes
      if (inPlace && !sha1Equals(data, sha1)) return Effect.succeed(false)
      return Effect.uninterruptible(
        Effect.flatMap(
          // The hash is a copy: it is a view on the torrent's piece hashes,
          // and posting a view copies all of the memory under it.
          call({ op: "write", data, parts, sha1: inPlace ? undefined : sha1?.slice() }),
          (reply) =>
            "error" in reply
              ? Effect.fail(new WriteFailed(reply.error))
              : Effect.succeed("written" in reply && reply.written)
        )
      )
    }
  })
}
