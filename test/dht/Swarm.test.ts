/**
 * DHTs made only of effect-torrent nodes on 127.0.0.1: peers announced by one
 * node are found by another, and a node restarted with its state file comes
 * back with the same id and its nodes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope, Stream } from "effect"
import { join } from "node:path"
import { tempDir } from "../util/Files.ts"
import { effectDht, eventually, infoHashOf, localhost } from "./fixtures.ts"

describe("Dht of effect-torrent nodes", () => {
  it.live("six nodes bootstrapping from the first find peers announced by one of them", () =>
    Effect.gen(function*() {
      const first = yield* effectDht()
      const router = { host: localhost, port: yield* first.port }
      const others = yield* Effect.forEach([1, 2, 3, 4, 5], () => effectDht({ bootstrap: [router] }))
      yield* eventually(Effect.map(first.nodes, (n) => n === 5), "the first node to know the other five")
      yield* others[1]!.announce(infoHashOf(10), 7010)
      yield* others[2]!.announce(infoHashOf(10), 7011)
      const found = yield* Stream.runCollect(others[4]!.lookup(infoHashOf(10)))
      assert.sameDeepMembers(found, [{ host: localhost, port: 7010 }, { host: localhost, port: 7011 }])
      assert.deepStrictEqual(
        yield* Stream.runCollect(others[4]!.lookup(infoHashOf(11))),
        [],
        "nothing for another hash"
      )
    }), { timeout: 30_000 })

  it.live("the routing table saved on close is restored at the next start", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("dht-state")
      const stateFile = join(dir, "state", "dht.dat")
      const a = yield* effectDht()
      const b = yield* effectDht()
      const known = [{ host: localhost, port: yield* a.port }, { host: localhost, port: yield* b.port }]

      const scope = yield* Scope.make()
      const first = yield* effectDht({ stateFile, bootstrap: known }).pipe(Scope.provide(scope))
      yield* eventually(Effect.map(first.nodes, (n) => n === 2), "the node to bootstrap")
      yield* Scope.close(scope, Exit.void)

      const again = yield* effectDht({ stateFile })
      assert.deepStrictEqual(again.nodeId, first.nodeId)
      yield* eventually(Effect.map(again.nodes, (n) => n === 2), "the saved nodes to be back in the table")
    }), { timeout: 30_000 })
})
