/**
 * The choking algorithm as the Orchestrator runs it: a round every
 * `Choker.roundMillis` (10 s) on the TestClock, peers faked by their
 * outboxes, rates fed through `Tick` events. `Math.random` (which picks the
 * optimistic unchoke) is stubbed. The pure round logic has its own tests in
 * Choker.test.ts.
 */
import { afterEach, assert, beforeEach, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { TestClock } from "effect/testing"
import { vi } from "vitest"
import type { PeerCommand, PeerKey } from "../../src/peer/PeerEvent.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import type { WireMessage } from "../../src/protocol/WireMessage.ts"
import * as Choker from "../../src/torrent/Choker.ts"
import * as Fixtures from "./fixtures.ts"

const fixture = Fixtures.make([30_000, 37_536])
const meta = fixture.meta
const infoHash = InfoHash.toBytes(meta.infoHash)

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/** Moves the TestClock and lets the Orchestrator handle what fell due. */
const advance = (millis: number) => Effect.andThen(TestClock.adjust(millis), settle)

const names = "ABCDEFGH"

/**
 * A running Orchestrator (every piece already ours when `seeding`) and
 * `count` fake sessions named A, B, C… in connection order. The peers have
 * no pieces, so the only commands they get are about choking (and
 * disconnecting).
 */
const start = Effect.fnUntraced(function*(count: number, options?: { readonly seeding?: boolean }) {
  const { orchestrator, sync } = yield* Fixtures.orchestrator(fixture)
  if (options?.seeding === true) {
    for (let i = 0; i < meta.pieceCount; i++) sync.markHave(i)
    assert.isTrue(sync.isComplete())
  }
  yield* Effect.forkChild(orchestrator.run)

  const peers: Array<{ readonly name: string; readonly peer: PeerKey; readonly outbox: Queue.Queue<PeerCommand> }> = []
  for (let i = 0; i < count; i++) {
    const name = names[i]!
    const peer = `10.0.0.${i + 1}:6881`
    const outbox = yield* Queue.unbounded<PeerCommand>()
    const peerId = new Uint8Array(20).fill(name.charCodeAt(0))
    yield* orchestrator.offer({
      _tag: "Connected",
      peer,
      handshake: Handshake.make({ infoHash, peerId }),
      outbox,
      outgoing: true
    })
    peers.push({ name, peer, outbox })
  }
  yield* settle
  const byName = (name: string) => peers.find((p) => p.name === name)!

  /** One socket read's worth of messages from the named peer. */
  const says = (name: string, messages: ReadonlyArray<WireMessage>) =>
    Effect.andThen(
      orchestrator.offer({ _tag: "Messages", peer: byName(name).peer, messages, released: [], depth: 10 }),
      settle
    )
  const interested = Effect.fnUntraced(function*(...who: ReadonlyArray<string>) {
    for (const name of who) yield* says(name, [{ _tag: "Interested" }])
  })
  /** The session's once-a-second report: `rate` from the peer, `uploaded` to it. */
  const tick = (
    name: string,
    rate: number,
    options?: { readonly uploaded?: number; readonly snubbing?: boolean }
  ) =>
    Effect.andThen(
      orchestrator.offer({
        _tag: "Tick",
        peer: byName(name).peer,
        released: [],
        depth: 10,
        rate,
        uploaded: options?.uploaded ?? 0,
        snubbing: options?.snubbing ?? false
      }),
      settle
    )
  const rates = Effect.fnUntraced(function*(byPeer: Readonly<Record<string, number>>) {
    for (const [name, rate] of Object.entries(byPeer)) yield* tick(name, rate)
  })

  /** What the sessions were told, kept as "we choke / unchoke them". */
  const unchokedNow = new Set<string>()
  /**
   * Drains every outbox: the commands each peer got since the last call
   * (peers that got none are left out), and who is unchoked now, sorted.
   */
  const observe = Effect.gen(function*() {
    const sent: Record<string, Array<PeerCommand["_tag"]>> = {}
    for (const p of peers) {
      const commands = yield* Queue.clear(p.outbox)
      if (commands.length === 0) continue
      sent[p.name] = commands.map((c) => c._tag)
      for (const c of commands) {
        if (c._tag === "Unchoke") unchokedNow.add(p.name)
        if (c._tag === "Choke") unchokedNow.delete(p.name)
      }
    }
    return { sent, unchoked: [...unchokedNow].sort().join("") }
  })

  return { sync, says, interested, tick, rates, observe }
})

const nothing = (unchoked: string) => ({ sent: {}, unchoked })

describe("Choking, as the Orchestrator runs it", () => {
  let random: ReturnType<typeof vi.spyOn>
  beforeEach(() => {
    // Candidates for the optimistic slot are the choked interested peers in
    // connection order, all "new" (3×) for the first minute: with two of
    // them, below 0.5 picks the first, above it the second.
    random = vi.spyOn(Math, "random").mockReturnValue(0.2)
  })
  afterEach(() => random.mockRestore())

  it("the timing the tests assume", () => {
    assert.strictEqual(Choker.roundMillis, 10_000)
    assert.strictEqual(Choker.optimisticRounds, 3)
    assert.strictEqual(Choker.defaultSlots, 4)
  })

  it.effect("the first four interested are unchoked at once; the round keeps the four fastest plus one optimistic", () =>
    Effect.gen(function*() {
      const { interested, observe, rates } = yield* start(6)
      yield* rates({ A: 10, B: 60, C: 20, D: 50, E: 40, F: 30 })
      assert.deepStrictEqual(yield* observe, nothing(""), "nobody is interested yet")

      yield* interested("A", "B", "C", "D", "E", "F")
      assert.deepStrictEqual(
        yield* observe,
        { sent: { A: ["Unchoke"], B: ["Unchoke"], C: ["Unchoke"], D: ["Unchoke"] }, unchoked: "ABCD" },
        "free slots are given at once, to the first four; E and F wait for the round"
      )

      yield* advance(Choker.roundMillis - 1)
      assert.deepStrictEqual(yield* observe, nothing("ABCD"), "not yet")

      yield* advance(1)
      // Fastest: B 60, D 50, E 40, F 30. A and C compete for the optimistic
      // slot; 0.2 picks A, which therefore stays unchoked.
      assert.deepStrictEqual(
        yield* observe,
        { sent: { C: ["Choke"], E: ["Unchoke"], F: ["Unchoke"] }, unchoked: "ABDEF" }
      )
    }))

  it.effect("when rates change, the next round gives the regular slots to the new fastest four", () =>
    Effect.gen(function*() {
      const { interested, observe, rates } = yield* start(6)
      yield* rates({ A: 10, B: 60, C: 20, D: 50, E: 40, F: 30 })
      yield* interested("A", "B", "C", "D", "E", "F")
      yield* advance(Choker.roundMillis)
      assert.strictEqual((yield* observe).unchoked, "ABDEF", "B D E F regular, A optimistic")

      // B slows down, C speeds up.
      yield* rates({ B: 5, C: 100 })
      // Not a rotating round: A stays optimistic whatever Math.random says
      // (0.9 would pick B, the other choked candidate).
      random.mockReturnValue(0.9)
      yield* advance(Choker.roundMillis - 1)
      assert.deepStrictEqual(yield* observe, nothing("ABDEF"), "not yet")

      yield* advance(1)
      assert.deepStrictEqual(
        yield* observe,
        { sent: { B: ["Choke"], C: ["Unchoke"] }, unchoked: "ACDEF" },
        "C 100, D 50, E 40, F 30 regular; B lost its slot; A still optimistic"
      )
    }))

  it.effect("the optimistic unchoke is picked at the first round and rotates every 30 s (3 rounds) after it", () =>
    Effect.gen(function*() {
      const { interested, observe, rates } = yield* start(6)
      yield* rates({ A: 10, B: 20, C: 30, D: 40, E: 50, F: 60 })
      yield* interested("A", "B", "C", "D", "E", "F")
      assert.strictEqual((yield* observe).unchoked, "ABCD")

      yield* advance(10_000)
      assert.deepStrictEqual(
        yield* observe,
        { sent: { B: ["Choke"], E: ["Unchoke"], F: ["Unchoke"] }, unchoked: "ACDEF" },
        "C D E F regular; A optimistic (0.2)"
      )

      // From now on a fresh pick would be B.
      random.mockReturnValue(0.9)
      yield* advance(10_000)
      assert.deepStrictEqual(yield* observe, nothing("ACDEF"), "20 s: A keeps the optimistic slot")
      yield* advance(10_000)
      assert.deepStrictEqual(yield* observe, nothing("ACDEF"), "30 s: A keeps the optimistic slot")
      yield* advance(9_999)
      assert.deepStrictEqual(yield* observe, nothing("ACDEF"), "not yet")
      yield* advance(1)
      assert.deepStrictEqual(
        yield* observe,
        { sent: { A: ["Choke"], B: ["Unchoke"] }, unchoked: "BCDEF" },
        "40 s, 30 s after the first pick: B is optimistic now"
      )

      // And again 30 s later (A and B are no longer "new": 0.2 of 1 + 1 picks A).
      random.mockReturnValue(0.2)
      yield* advance(29_999)
      assert.deepStrictEqual(yield* observe, nothing("BCDEF"), "50 s and 60 s keep B")
      yield* advance(1)
      assert.deepStrictEqual(
        yield* observe,
        { sent: { A: ["Unchoke"], B: ["Choke"] }, unchoked: "ACDEF" },
        "70 s: rotated back to A"
      )
    }))

  it.effect("anti-snubbing: a fast peer that snubs us loses its regular slot at the next round", () =>
    Effect.gen(function*() {
      const { interested, observe, rates, tick } = yield* start(6)
      yield* rates({ A: 10, B: 20, C: 30, D: 40, E: 50, F: 60 })
      yield* interested("A", "B", "C", "D", "E", "F")
      yield* advance(10_000)
      assert.strictEqual((yield* observe).unchoked, "ACDEF", "C D E F regular, A optimistic")

      // F, the fastest, stops sending us data (its rate is still the best).
      yield* tick("F", 60, { snubbing: true })
      assert.deepStrictEqual(
        yield* observe,
        { sent: { F: ["Disconnect"] }, unchoked: "ACDEF" },
        "the Orchestrator also asks the session to drop a snubbing peer; the slot waits for the round"
      )
      yield* advance(9_999)
      assert.deepStrictEqual(yield* observe, nothing("ACDEF"), "not yet")

      yield* advance(1)
      assert.deepStrictEqual(
        yield* observe,
        { sent: { B: ["Unchoke"], F: ["Choke"] }, unchoked: "ABCDE" },
        "B C D E regular, A still optimistic, F choked"
      )
    }))

  it.effect("seeding: the regular slots go to the peers we upload to fastest", () =>
    Effect.gen(function*() {
      const { interested, observe, sync, tick } = yield* start(6, { seeding: true })
      assert.isTrue(sync.isComplete())
      // Download rates rank them A > B > … > F; upload rates the other way round.
      const peers = ["A", "B", "C", "D", "E", "F"]
      for (const [i, name] of peers.entries()) yield* tick(name, 600 - 100 * i, { uploaded: 100 + 100 * i })
      yield* interested(...peers)
      assert.strictEqual((yield* observe).unchoked, "ABCD")

      random.mockReturnValue(0.9) // of A and B, B is optimistic
      yield* advance(9_999)
      assert.deepStrictEqual(yield* observe, nothing("ABCD"), "not yet")
      yield* advance(1)
      assert.deepStrictEqual(
        yield* observe,
        { sent: { A: ["Choke"], E: ["Unchoke"], F: ["Unchoke"] }, unchoked: "BCDEF" },
        "F E D C by upload rate (A, the fastest uploader to us, is choked), B optimistic"
      )
    }))

  it.effect("a peer that is not interested is never unchoked, however fast", () =>
    Effect.gen(function*() {
      const { interested, observe, rates, says, tick } = yield* start(7)
      yield* tick("A", 1000, { uploaded: 1000 })
      yield* rates({ B: 10, C: 20, D: 30, E: 40, F: 50, G: 60 })
      yield* interested("B", "C", "D", "E", "F", "G")
      assert.deepStrictEqual(yield* observe, {
        sent: { B: ["Unchoke"], C: ["Unchoke"], D: ["Unchoke"], E: ["Unchoke"] },
        unchoked: "BCDE"
      })

      // 0 picks the first candidate in connection order: that would be A, were it one.
      random.mockReturnValue(0)
      yield* advance(10_000)
      assert.deepStrictEqual(
        yield* observe,
        { sent: { C: ["Choke"], F: ["Unchoke"], G: ["Unchoke"] }, unchoked: "BDEFG" },
        "D E F G regular, B optimistic, A nothing"
      )

      // G, the fastest interested peer, loses interest: choked at the next round.
      yield* says("G", [{ _tag: "NotInterested" }])
      yield* advance(9_999)
      assert.deepStrictEqual(yield* observe, nothing("BDEFG"), "not yet")
      yield* advance(1)
      assert.deepStrictEqual(
        yield* observe,
        { sent: { C: ["Unchoke"], G: ["Choke"] }, unchoked: "BCDEF" },
        "C D E F regular, B optimistic"
      )

      // The rotation at 40 s has B as its only candidate, whatever the draw.
      for (const draw of [0, 0.99]) {
        random.mockReturnValue(draw)
        yield* advance(10_000)
        assert.deepStrictEqual(yield* observe, nothing("BCDEF"), `draw ${draw}`)
      }
      yield* advance(30_000)
      assert.deepStrictEqual(yield* observe, nothing("BCDEF"), "A and G are never unchoked")
    }))
})
