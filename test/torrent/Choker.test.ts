import { assert, describe, it } from "@effect/vitest"
import * as Choker from "../../src/torrent/Choker.ts"

const peer = (
  name: string,
  rates: { down?: number; up?: number; interested?: boolean; snubbing?: boolean; age?: number } = {}
) => ({
  peer: name,
  interested: rates.interested ?? true,
  downloadRate: rates.down ?? 0,
  uploadRate: rates.up ?? 0,
  snubbing: rates.snubbing ?? false,
  connectedAt: 1_000_000 - (rates.age ?? 600_000)
})

const round = (
  candidates: ReadonlyArray<Choker.Candidate>,
  options: Partial<{ seeding: boolean; rotate: boolean; previousOptimistic: string; random: () => number }> = {}
) =>
  Choker.rechoke(candidates, {
    slots: 4,
    seeding: options.seeding ?? false,
    now: 1_000_000,
    rotate: options.rotate ?? true,
    previousOptimistic: options.previousOptimistic,
    random: options.random ?? (() => 0)
  })

describe("Choker", () => {
  it("leeching: unchokes the four interested peers that upload to us fastest, plus one optimistic", () => {
    const peers = ["a", "b", "c", "d", "e", "f"].map((name, i) => peer(name, { down: (i + 1) * 100 }))
    const result = round(peers)
    const regular = [...result.unchoked].filter((p) => p !== result.optimistic)
    assert.deepStrictEqual(regular.sort(), ["c", "d", "e", "f"])
    assert.include(["a", "b"], result.optimistic)
    assert.strictEqual(result.unchoked.size, 5)
  })

  it("seeding: ranks by our upload rate to them", () => {
    const peers = [
      peer("a", { up: 900 }),
      peer("b", { up: 10 }),
      peer("c", { up: 500 }),
      peer("d", { up: 700 }),
      peer("e", { up: 800 }),
      peer("f", { up: 1 })
    ]
    const result = round(peers, { seeding: true, random: () => 0.99 })
    assert.isTrue(["a", "c", "d", "e"].every((p) => result.unchoked.has(p)))
    assert.isFalse(result.unchoked.has("b") && result.optimistic !== "b")
  })

  it("uninterested peers are never unchoked", () => {
    const result = round([peer("a", { interested: false, down: 1e9 }), peer("b")])
    assert.isFalse(result.unchoked.has("a"))
    assert.isTrue(result.unchoked.has("b"))
  })

  it("anti-snubbing: a snubbing peer loses its regular slot while we download", () => {
    const peers = [
      peer("fast-snub", { down: 1e6, snubbing: true }),
      peer("a", { down: 1 }),
      peer("b", { down: 2 }),
      peer("c", { down: 3 }),
      peer("d", { down: 4 })
    ]
    const result = round(peers, { random: () => 0.999 })
    assert.deepStrictEqual([...result.unchoked].filter((p) => p !== result.optimistic).sort(), ["a", "b", "c", "d"])
  })

  it("the optimistic unchoke stays between rotations and moves when rotated", () => {
    const peers = ["a", "b", "c", "d", "e", "f", "g"].map((name, i) => peer(name, { down: (i + 1) * 100 }))
    const first = round(peers, { random: () => 0 })
    assert.strictEqual(first.optimistic, "a")
    const kept = round(peers, { rotate: false, previousOptimistic: "a", random: () => 0.99 })
    assert.strictEqual(kept.optimistic, "a")
    const rotated = round(peers, { rotate: true, previousOptimistic: "a", random: () => 0.99 })
    assert.strictEqual(rotated.optimistic, "c")
  })

  it("newly connected peers are three times as likely to be the optimistic unchoke", () => {
    const peers = [...["a", "b", "c", "d"].map((n) => peer(n, { down: 1000 })), peer("old"), peer("new", { age: 1000 })]
    // weights: old 1, new 3 → [0, 0.25) old, [0.25, 1) new
    assert.strictEqual(round(peers, { random: () => 0.2 }).optimistic, "old")
    assert.strictEqual(round(peers, { random: () => 0.3 }).optimistic, "new")
  })
})
