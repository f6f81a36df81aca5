/**
 * TcpSocket: an outgoing TCP connection whose reads land in reused memory.
 *
 * Node's sockets read into a fresh 64 KiB buffer each time. At a few
 * hundred MiB/s that is thousands of buffers a second, all garbage once their
 * blocks are copied into pieces, and V8 lets up to 64 MiB of such external
 * memory pile up before it collects: that was a third of a download's peak
 * memory. Here each read goes into a slot taken from a pool shared by every
 * connection (`onread`), and the slot goes back to the pool when the reader
 * pulls again.
 *
 * So a chunk from `pull` is lent: valid until the next pull. Every reader of
 * peer connections copies what it keeps (`Frame.FrameDecoder`, and the
 * encryption handshake's inbox, which gathers into its own buffer, as it
 * concatenates before it pulls again).
 */
import { Deferred, Effect, Scope } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Socket from "effect/socket/Socket"
import * as Net from "node:net"

/**
 * Slot sizes: a connection whose last read filled its slot reads into a
 * large one next, else a small one, so that idle connections (hundreds of
 * them) hold little while each waits for its next read.
 */
const smallSlot = 4 * 1024
const largeSlot = 64 * 1024
/** Slots kept for reuse, per size (1 and 4 MiB at most): enough for every busy connection's few. */
const pooled = { small: 256, large: 64 }
const free: { readonly small: Array<Uint8Array>; readonly large: Array<Uint8Array> } = { small: [], large: [] }

const takeSlot = (large: boolean): Uint8Array =>
  (large ? free.large : free.small).pop() ?? new Uint8Array(large ? largeSlot : smallSlot)

const giveSlot = (slot: Uint8Array): void => {
  const large = slot.length === largeSlot
  const pool = large ? free.large : free.small
  if (pool.length < (large ? pooled.large : pooled.small)) pool.push(slot)
}

/**
 * Unread bytes over which the connection stops reading until it is pulled:
 * the rest waits in the kernel's buffers (TCP holds the sender back from
 * there), not in ours.
 */
const pauseBytes = 256 * 1024

const closeError = (code: number) => new Socket.SocketError({ reason: new Socket.SocketCloseError({ code }) })

export interface Options {
  readonly host: string
  readonly port: number
  readonly timeoutMillis: number
}

/** Dials when its reader is acquired, in that scope, which closes the connection. */
export const make = (options: Options): Socket.Socket => {
  const opened = Deferred.makeUnsafe<Net.Socket>()
  const reader = Effect.gen(function*() {
    const scope = yield* Effect.scope
    /** Chunks read and not pulled yet, and their slots. */
    let chunks: Array<Uint8Array> = []
    let slots: Array<Uint8Array> = []
    let bytes = 0
    /** Slots of the chunks the last pull lent. */
    let lent: Array<Uint8Array> = []
    /** Whether the next read goes into a large slot: the last one filled its own. */
    let large = false
    let paused = false
    let failure: Socket.SocketError | undefined
    let waiter: ((chunks: Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError>) => void) | undefined

    const deliver = () => {
      if (waiter === undefined) return
      const resume = waiter
      if (chunks.length > 0) {
        waiter = undefined
        const out = chunks as unknown as NonEmptyReadonlyArray<Uint8Array>
        lent = slots
        chunks = []
        slots = []
        bytes = 0
        resume(Effect.succeed(out))
      } else if (failure !== undefined) {
        waiter = undefined
        resume(Effect.fail(failure))
      }
    }
    const fail = (error: Socket.SocketError) => {
      failure ??= error
      deliver()
    }

    const conn = yield* Effect.callback<Net.Socket, Socket.SocketError>((resume) => {
      const conn = Net.connect({
        host: options.host,
        port: options.port,
        noDelay: true,
        onread: {
          buffer: () => takeSlot(large),
          callback: (n, buf) => {
            const slot = buf as Uint8Array
            chunks.push(slot.subarray(0, n))
            slots.push(slot)
            bytes += n
            large = n === slot.length
            deliver()
            if (bytes < pauseBytes) return true
            paused = true
            return false
          }
        }
      })
      const timer = setTimeout(() => {
        conn.destroy()
        resume(Effect.fail(openError("Timeout", new Error("connection timed out"))))
      }, options.timeoutMillis)
      conn.once("connect", () => {
        clearTimeout(timer)
        resume(Effect.succeed(conn))
      })
      conn.on("error", (cause) => {
        clearTimeout(timer)
        resume(Effect.fail(openError("Unknown", cause)))
        fail(new Socket.SocketError({ reason: new Socket.SocketReadError({ cause }) }))
      })
      conn.on("end", () => fail(closeError(1000)))
      conn.on("close", (hadError) => fail(closeError(hadError ? 1006 : 1000)))
      return Effect.sync(() => {
        clearTimeout(timer)
        conn.destroy()
      })
    })
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        fail(closeError(1006))
        // After its writes are out; a connection never opened is gone already.
        conn.destroySoon()
      })
    )
    Deferred.doneUnsafe(opened, Effect.succeed(conn))

    const pull = Effect.callback<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError>((resume) => {
      for (const slot of lent) giveSlot(slot)
      lent = []
      waiter = resume
      deliver()
      if (paused && bytes < pauseBytes) {
        paused = false
        conn.resume()
      }
      return Effect.sync(() => {
        if (waiter === resume) waiter = undefined
      })
    })
    return { pull, upgrade: Socket.SocketUpgradeError.unsupported } satisfies Socket.Reader
  })

  const write = (chunk: Uint8Array | string | Socket.CloseEvent) =>
    Effect.flatMap(Deferred.await(opened), (conn): Effect.Effect<void, Socket.SocketError> => {
      if (Socket.isCloseEvent(chunk)) return Effect.sync(() => conn.destroy())
      // A failed write is the reader's failure too (the connection's `error`).
      return conn.write(chunk) ? Effect.void : drained(conn)
    })
  return Socket.make({
    reader,
    writer: Effect.succeed({
      write,
      writeAll: (chunks) => Effect.forEach(chunks, write, { discard: true })
    })
  })
}

/** Waits until the connection takes writes again (or fails: it is gone). */
const drained = (conn: Net.Socket) =>
  Effect.callback<void, Socket.SocketError>((resume) => {
    const done = () => {
      conn.off("drain", done)
      conn.off("close", done)
      resume(conn.destroyed ? Effect.fail(writeError) : Effect.void)
    }
    conn.on("drain", done)
    conn.on("close", done)
    return Effect.sync(() => {
      conn.off("drain", done)
      conn.off("close", done)
    })
  })

const writeError = new Socket.SocketError({
  reason: new Socket.SocketWriteError({ cause: new Error("the connection closed") })
})

const openError = (kind: "Timeout" | "Unknown", cause: unknown) =>
  new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind, cause }) })
