/**
 * Hostile peers over real loopback TCP against the real engine
 * (TorrentManager.layerNode): for each case a scripted peer (HostilePeer)
 * misbehaves while an honest seeder (FakeSeeder) serves the torrent. Each
 * case asserts that the engine hung up on the offender within the expected
 * time (observed from the offender's side of the wire), that the download
 * completed with the right bytes without the honest seeder ever being
 * dropped, and records what it measured for SECURITY.md.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Net from "node:net"
import { join } from "node:path"
import * as Frame from "../../src/protocol/Frame.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import type * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as WireMessage from "../../src/protocol/WireMessage.ts"
import type { Settings } from "../../src/torrent/TorrentConfig.ts"
import * as FakeSeeder from "../util/FakeSeeder.ts"
import { createWithCreateTorrent, sameBytes, tempDir, torrentBytes, writeTree } from "../util/Files.ts"
import * as HostilePeer from "../util/HostilePeer.ts"
import { startManager, within } from "../util/Leecher.ts"
import { record } from "../util/SecurityResults.ts"
import { waitUntil } from "../util/Swarm.ts"

/** Short timeouts, so the timeout cases take seconds. */
const settings: Partial<Settings> = { handshakeTimeoutMillis: 2000, idleTimeoutMillis: 3000 }

/** 33 pieces of 32 KiB (the last short): the bitfield has 7 spare bits. */
const size = 32 * 32 * 1024 + 1000

interface Context {
  readonly meta: Metainfo.Metainfo
  readonly data: Uint8Array
  /** The port our engine listens on (for cases that come back). */
  readonly port: () => number
}

interface Case {
  readonly name: string
  readonly script: (ctx: Context) => (c: HostilePeer.Connection) => Promise<void>
  /** The engine must have hung up within this many ms of the connection (and not before `atLeast`). */
  readonly within: number
  readonly atLeast?: number
  /** Extra checks once the engine hung up (e.g. a banned peer coming back). */
  readonly after?: (ctx: Context, hostile: HostilePeer.HostilePeer) => Effect.Effect<string>
}

const is =
  <T extends WireMessage.WireMessage["_tag"]>(tag: T) =>
  (m: HostilePeer.Incoming): m is Extract<WireMessage.WireMessage, { _tag: T }> => m._tag === tag

const times = <A>(n: number, f: (i: number) => A): Array<A> => Array.from({ length: n }, (_, i) => f(i))

/** Once our handshake arrived: its handshake (for `infoHash`, default the torrent's), then `bytes`. */
const afterHandshake =
  (bytes: (ctx: Context) => Uint8Array, infoHash?: Uint8Array) =>
  (ctx: Context) =>
  async (c: HostilePeer.Connection) => {
    await c.next((m): m is Handshake.Handshake => m._tag === "Handshake")
    c.write(Buffer.concat([c.handshake(infoHash), bytes(ctx)]))
  }

const frames = (messages: ReadonlyArray<WireMessage.WireMessage>) => WireMessage.encodeBatch(messages)

const block = (ctx: Context, index: number, begin: number, length: number, corrupt = false) => {
  const bytes = Buffer.from(
    ctx.data.subarray(index * ctx.meta.pieceLength + begin, index * ctx.meta.pieceLength + begin + length)
  )
  if (corrupt) bytes[0] = bytes[0]! ^ 0xff
  return bytes
}

/** Waits for our engine to unchoke it, then answers its requests with `reply`'s blocks, until closed. */
const serve =
  (reply: (ctx: Context, r: { index: number; begin: number; length: number }) => Uint8Array) =>
  (ctx: Context) =>
  async (c: HostilePeer.Connection) => {
    await c.next((m): m is Handshake.Handshake => m._tag === "Handshake")
    c.write(c.handshake())
    c.send([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
    while (!c.closed()) {
      const r = await c.next(is("Request"))
      if (r === undefined) return
      c.send([{ _tag: "Piece", index: r.index, begin: r.begin, block: reply(ctx, r) }])
    }
  }

const cases: ReadonlyArray<Case> = [
  {
    name: "declares a frame of 2^32-1 bytes",
    script: afterHandshake(() => HostilePeer.rawFrame(0xffffffff)),
    within: 2000
  },
  {
    name: "declares a frame one byte over the limit",
    script: afterHandshake((ctx) =>
      HostilePeer.rawFrame(Frame.maxFrameFor(ctx.meta.pieceCount) + 1, 7, new Uint8Array(100))
    ),
    within: 2000
  },
  {
    name: "sends a have with a 5-byte payload",
    script: afterHandshake(() => HostilePeer.rawFrame(6, 4, new Uint8Array(5))),
    within: 2000
  },
  {
    name: "sends a request with an 11-byte payload",
    script: afterHandshake(() => HostilePeer.rawFrame(12, 6, new Uint8Array(11))),
    within: 2000
  },
  {
    name: "sends a message with unknown id 99",
    script: afterHandshake(() => HostilePeer.rawFrame(3, 99, new Uint8Array(2))),
    within: 2000
  },
  {
    name: "sends a bitfield one byte too long",
    script: afterHandshake((ctx) =>
      frames([{ _tag: "Bitfield", bytes: new Uint8Array(Math.ceil(ctx.meta.pieceCount / 8) + 1) }])
    ),
    within: 2000
  },
  {
    name: "sends a bitfield with its spare bits set",
    script: afterHandshake((ctx) =>
      frames([{ _tag: "Bitfield", bytes: new Uint8Array(Math.ceil(ctx.meta.pieceCount / 8)).fill(0xff) }])
    ),
    within: 2000
  },
  {
    name: "sends a message before its handshake",
    script: () => async (c) => c.write(frames([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])),
    within: 2000
  },
  {
    name: "answers with a handshake for another torrent",
    script: afterHandshake(() => new Uint8Array(0), new Uint8Array(20).fill(0xab)),
    within: 2000
  },
  {
    name: "sends its handshake one byte per second (slow loris)",
    script: () => async (c) => {
      const handshake = c.handshake()
      for (let i = 0; i < handshake.length && !c.closed(); i++) {
        c.write(handshake.subarray(i, i + 1))
        await c.sleep(1000)
      }
    },
    atLeast: 1900,
    within: 4000
  },
  {
    name: "accepts the connection and sends nothing",
    script: () => async () => {},
    atLeast: 1900,
    within: 4000
  },
  {
    name: "goes silent after its handshake",
    script: afterHandshake(() => new Uint8Array(0)),
    atLeast: 2900,
    within: 6000
  },
  {
    name: "sends 300 blocks never requested",
    script: afterHandshake((ctx) =>
      frames(times(300, () => ({ _tag: "Piece", index: 0, begin: 0, block: block(ctx, 0, 0, 16384) })))
    ),
    within: 3000
  },
  {
    name: "sends a block of a piece out of range",
    script: afterHandshake((ctx) =>
      frames([{ _tag: "Piece", index: ctx.meta.pieceCount, begin: 0, block: new Uint8Array(16384) }])
    ),
    within: 2000
  },
  {
    name: "answers a request with a block of the wrong length",
    script: serve((ctx, r) => block(ctx, r.index, r.begin, r.length - 1)),
    within: 3000
  },
  {
    name: "floods 10000 duplicate haves",
    script: afterHandshake(() => frames(times(10_000, () => ({ _tag: "Have", index: 0 })))),
    within: 3000
  },
  {
    name: "floods 10000 requests while choked",
    script: afterHandshake(() =>
      frames(times(10_000, (i) => ({ _tag: "Request", index: 0, begin: (i % 2) * 16384, length: 16384 })))
    ),
    within: 3000
  },
  {
    name: "floods 10000 cancels of nothing",
    script: afterHandshake(() =>
      frames(times(10_000, (i) => ({ _tag: "Cancel", index: 1, begin: (i % 2) * 16384, length: 16384 })))
    ),
    within: 3000
  },
  {
    name: "floods 10000 extension messages",
    script: afterHandshake(() =>
      frames(times(10_000, () => ({ _tag: "Extended", id: 3, payload: new Uint8Array(8) })))
    ),
    within: 3000
  }
]

describe("hostile peers", () => {
  const setup = Effect.gen(function*() {
    const root = yield* tempDir("hostile")
    const src = join(root, "src")
    yield* writeTree(src, [{ path: "data.bin", size }])
    const { meta } = yield* createWithCreateTorrent(join(src, "data.bin"), join(root, "data.torrent"), {
      pieceLength: 32 * 1024,
      announce: []
    })
    return { meta, data: torrentBytes(src, meta), src, dst: join(root, "dst") }
  })

  /** Downloads from the hostile peer and an honest seeder; returns the offender and what was measured. */
  const run = (c: Case, extra: Partial<Settings> = {}) =>
    Effect.gen(function*() {
      const { data, dst, meta, src } = yield* setup
      let port = 0
      const ctx: Context = { meta, data, port: () => port }
      const hostile = yield* HostilePeer.make({
        infoHash: InfoHash.toBytes(meta.infoHash),
        pieceCount: meta.pieceCount,
        script: c.script(ctx)
      })
      const honest = yield* FakeSeeder.make({ meta, data, bytesPerSecond: 1024 * 1024 })
      const { manager } = yield* startManager(dst, { ...settings, ...extra })
      port = manager.port
      const handle = yield* manager.add(meta, { peers: [hostile.address, honest.address], seed: true })
      yield* handle.completed.pipe(within(30_000, "the download"))
      assert.strictEqual(honest.stats.closedByPeer, 0, "the honest seeder was never dropped")
      assert.isTrue(sameBytes(join(src, "data.bin"), join(dst, "data.bin")), "the file is correct")
      yield* waitUntil(() => hostile.stats.closedByEngineAfterMillis.length > 0, {
        timeoutMillis: c.within + 5000,
        message: () => `the engine did not hang up on the peer that ${c.name}`
      })
      const after = hostile.stats.closedByEngineAfterMillis[0]!
      assert.isAtMost(after, c.within, `hung up after ${after} ms`)
      assert.isAtLeast(after, c.atLeast ?? 0, `hung up after ${after} ms`)
      const more = c.after === undefined ? "" : `; ${yield* c.after(ctx, hostile)}`
      record(`disconnected after ${after} ms${more}; download complete and correct`)
    })

  for (const c of cases) {
    it.live(
      `a peer that ${c.name} is disconnected; the download completes from the honest seeder`,
      () => run(c),
      60_000
    )
  }

  it.live("a peer sending corrupt blocks is banned: when it comes back with the same peer id it is refused", () =>
    run({
      name: "sends corrupt blocks",
      script: serve((ctx, r) => block(ctx, r.index, r.begin, r.length, true)),
      within: 10_000,
      after: (ctx) =>
        Effect.promise(() => comeBack(ctx.port(), InfoHash.toBytes(ctx.meta.infoHash))).pipe(
          Effect.map((millis) => {
            assert.isDefined(millis, "the banned peer's new connection was not closed")
            return `banned: its new connection with the same peer id closed after ${millis} ms`
          })
        )
    }), 60_000)

  it.live(
    "a peer that fills our upload queue beyond its bound is disconnected; at most the bound is served",
    () =>
      Effect.gen(function*() {
        let served = 0
        yield* run({
          name: "sends 10000 requests for a piece we have while unchoked",
          script: () => async (c) => {
            await c.next((m): m is Handshake.Handshake => m._tag === "Handshake")
            c.write(c.handshake())
            c.send([{ _tag: "HaveNone" }, { _tag: "Interested" }])
            if ((await c.next(is("Unchoke"))) === undefined) return
            const have = await c.next(is("Have"), 20_000)
            if (have === undefined) return
            c.send(
              times(10_000, (i) => ({ _tag: "Request", index: have.index, begin: (i % 2) * 16384, length: 16384 }))
            )
            while ((await c.next(is("Piece"))) !== undefined) served++
          },
          within: 20_000
        })
        assert.isAtMost(served, 2000 + 64, `${served} blocks served`)
        record(`served ${served} of 10000 requested blocks before the disconnect (queue bound 2000)`)
      }),
    60_000
  )

  it.live(
    "many connections from one address: at most maxConnectionsPerHost are kept; the download completes",
    () =>
      Effect.gen(function*() {
        const { data, dst, meta, src } = yield* setup
        const honest = yield* FakeSeeder.make({ meta, data, bytesPerSecond: 1024 * 1024 })
        const { manager } = yield* startManager(dst, {
          ...settings,
          idleTimeoutMillis: 30_000,
          maxConnectionsPerHost: 4
        })
        const handle = yield* manager.add(meta, { peers: [honest.address], seed: true })
        // A torrent takes connections once it runs (before, the listener refuses them all).
        yield* handle.progress.changes.pipe(
          Stream.filter((p) => p.state !== "checking"),
          Stream.take(1),
          Stream.runDrain,
          within(10_000, "the torrent starting")
        )
        const closed = new Set<number>()
        yield* Effect.acquireRelease(
          Effect.sync(() =>
            times(40, (i) => {
              const socket = Net.connect({ host: "127.0.0.1", port: manager.port })
              const id = Buffer.from(`-XX0001-${String(i).padStart(12, "0")}`)
              socket.on("error", () => {})
              socket.resume() // a paused socket never sees the other side's end
              socket.on("close", () => closed.add(i))
              socket.write(Handshake.encode(Handshake.make({ infoHash: InfoHash.toBytes(meta.infoHash), peerId: id })))
              return socket
            })
          ),
          (sockets) => Effect.sync(() => sockets.forEach((s) => void s.destroy()))
        )
        yield* waitUntil(() => closed.size >= 36, {
          timeoutMillis: 3000,
          message: () => `${40 - closed.size} connections from one host still open`
        })
        yield* Effect.sleep(300)
        const open = 40 - closed.size
        assert.strictEqual(open, 4)
        yield* handle.completed.pipe(within(30_000, "the download"))
        assert.isTrue(sameBytes(join(src, "data.bin"), join(dst, "data.bin")), "the file is correct")
        record(`40 connections from 127.0.0.1: ${open} kept open (limit 4); download complete and correct`)
      }),
    60_000
  )
})

/** Connects to our engine with the hostile peer's id; resolves with how long until it was closed (undefined: not within 5 s). */
const comeBack = (port: number, infoHash: Uint8Array) =>
  new Promise<number | undefined>((resolve) => {
    const started = Date.now()
    const socket = Net.connect({ host: "127.0.0.1", port })
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(undefined)
    }, 5000)
    socket.on("error", () => {})
    socket.resume() // a paused socket never sees the other side's end
    socket.on("close", () => {
      clearTimeout(timer)
      resolve(Date.now() - started)
    })
    socket.on("connect", () => socket.write(Handshake.encode(Handshake.make({ infoHash, peerId: HostilePeer.peerId }))))
  })
