/**
 * Test doubles for the peer side of the engine:
 *
 * - `FakePeer.make(end)`: a scripted remote peer on the remote end of a
 *   MemorySocket pair. It records every message our side sends (decoded with
 *   `Frame.FrameDecoder.makeWithHandshake`, our handshake first) and sends
 *   what the test tells it to.
 * - `makeOrchestrator(pieceCount)`: an Orchestrator that records the
 *   `PeerEvent`s sessions offer and owns no pieces (or the ones given).
 * - `makeDisk(data)`: a DiskWriter over a byte array that records the blocks
 *   read for uploading.
 */
import { createHash } from "node:crypto"
import { Deferred, Effect, Layer, Result, type Scope, SubscriptionRef } from "effect"
import type * as Socket from "effect/socket/Socket"
import type { PeerEvent, PeerKey } from "../../src/peer/PeerEvent.ts"
import * as Bitfield from "../../src/protocol/Bitfield.ts"
import * as Frame from "../../src/protocol/Frame.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import type * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as WireMessage from "../../src/protocol/WireMessage.ts"
import { type DiskError, DiskWriter } from "../../src/torrent/DiskWriter.ts"
import { Orchestrator, type Progress, readerOf } from "../../src/torrent/Orchestrator.ts"
import type * as MemorySocket from "../../src/peer/MemorySocket.ts"

export interface FakePeer {
  /** What our side sent, decoded, in order (its handshake first). */
  readonly received: ReadonlyArray<Handshake.Handshake | WireMessage.WireMessage>
  /** Our side closed the connection (the remote's pull failed with SocketCloseError). */
  readonly closed: () => boolean
  /** Why the remote's reader stopped, if it did. */
  readonly readError: () => unknown
  readonly sendHandshake: (options: {
    readonly infoHash: Uint8Array
    readonly peerId: Uint8Array
    readonly features?: ReadonlyArray<Handshake.Feature>
  }) => Effect.Effect<void, Socket.SocketError>
  readonly send: (messages: ReadonlyArray<WireMessage.WireMessage>) => Effect.Effect<void, Socket.SocketError>
  /** Writes bytes as they are (e.g. a handshake and messages in one chunk). */
  readonly sendRaw: (bytes: Uint8Array) => Effect.Effect<void, Socket.SocketError>
  /** Closes the connection from the remote side. */
  readonly close: Effect.Effect<void>
}

/** Plays the remote end of a MemorySocket pair, in the current scope. */
export const make = Effect.fnUntraced(function*(
  end: MemorySocket.End,
  options: { readonly pieceCount: number }
): Effect.fn.Return<FakePeer, Socket.SocketError, Scope.Scope> {
  const reader = yield* end.socket.reader
  const writer = yield* end.socket.writer
  const decoder = Frame.FrameDecoder.makeWithHandshake({ maxFrame: Frame.maxFrameFor(options.pieceCount) })
  const received: Array<Handshake.Handshake | WireMessage.WireMessage> = []
  let readError: unknown
  let closed = false
  yield* Effect.forkScoped(
    Effect.gen(function*() {
      while (true) {
        const chunks = yield* reader.pull
        for (const chunk of chunks) {
          if (typeof chunk === "string") continue
          const result = decoder.push(chunk, received)
          if (Result.isFailure(result)) return yield* result.failure
        }
      }
    }).pipe(
      Effect.catch((error) =>
        Effect.sync(() => {
          readError = error
          closed = error._tag === "SocketError" && error.reason._tag === "SocketCloseError"
        })
      )
    )
  )
  return {
    received,
    closed: () => closed,
    readError: () => readError,
    sendHandshake: (hs) =>
      writer.write(
        Handshake.encode(Handshake.make({ infoHash: hs.infoHash, peerId: hs.peerId, features: hs.features }))
      ),
    send: (messages) => writer.write(WireMessage.encodeBatch(messages)),
    sendRaw: (bytes) => writer.write(bytes),
    close: end.close
  }
})

export interface RecordingOrchestrator {
  /** Every event offered, in order. */
  readonly events: Array<PeerEvent>
  readonly service: Orchestrator["Service"]
  readonly layer: Layer.Layer<Orchestrator>
}

/** An Orchestrator that records events; it has the pieces `have` (none by default). */
export const makeOrchestrator = Effect.fnUntraced(function*(
  pieceCount: number,
  options?: { readonly isBanned?: (peer: PeerKey) => boolean; readonly have?: ReadonlyArray<number> }
) {
  const events: Array<PeerEvent> = []
  const progress = yield* SubscriptionRef.make<Progress>({
    state: "downloading",
    done: 0,
    wanted: 0,
    verified: 0,
    downloaded: 0,
    uploaded: 0,
    downloadRate: 0,
    uploadRate: 0,
    peers: 0,
    eta: Infinity,
    trackers: "none",
    files: [],
    uploadingTo: 0,
    downloadingFrom: 0,
    hashFailures: 0
  })
  const completed = yield* Deferred.make<void, DiskError>()
  const service = Orchestrator.of({
    offer: (event) => Effect.sync(() => void events.push(event)),
    bitfield: Effect.sync(() => {
      const bits = Bitfield.make(pieceCount)
      for (const index of options?.have ?? []) bits.set(index)
      return bits
    }),
    progress: readerOf(progress),
    completed,
    meta: () => {
      throw new Error("the recording Orchestrator has no metadata")
    },
    layersIn: yield* Deferred.make<Metainfo.Metainfo>(),
    prioritize: () => Effect.void,
    setSequential: () => Effect.void,
    reading: () => Effect.void,
    doneReading: () => Effect.void,
    awaitPiece: () => Effect.void,
    isBanned: options?.isBanned ?? (() => false),
    run: Effect.never
  })
  return { events, service, layer: Layer.succeed(Orchestrator, service) } satisfies RecordingOrchestrator
})

export interface RecordingDisk {
  /** Blocks read for uploading, in order. */
  readonly reads: Array<{ readonly index: number; readonly begin: number; readonly length: number }>
  readonly written: Map<number, Uint8Array>
  /** How many times the files were synced. */
  readonly flushes: () => number
  readonly layer: Layer.Layer<DiskWriter>
}

/** A DiskWriter over the torrent's bytes `data` (pieces of `pieceLength`). */
export const makeDisk = (data: Uint8Array, pieceLength: number): RecordingDisk => {
  const reads: RecordingDisk["reads"] = []
  const written = new Map<number, Uint8Array>()
  let flushes = 0
  const at = (index: number, begin: number, length: number) =>
    data.subarray(index * pieceLength + begin, index * pieceLength + begin + length)
  const service = DiskWriter.of({
    prepare: Effect.void,
    write: (index, piece, sha1) =>
      Effect.sync(() => {
        if (sha1 !== undefined && !createHash("sha1").update(piece).digest().equals(sha1)) return false
        written.set(index, piece.slice())
        return true
      }),
    read: (index, into) =>
      Effect.sync(() => {
        into.set(at(index, 0, into.length))
        return true
      }),
    readBlock: (index, begin, into) =>
      Effect.sync(() => {
        reads.push({ index, begin, length: into.length })
        into.set(at(index, begin, into.length))
      }),
    flush: Effect.sync(() => {
      flushes++
    })
  })
  return { reads, written, flushes: () => flushes, layer: Layer.succeed(DiskWriter, service) }
}
