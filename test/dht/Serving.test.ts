/**
 * What our node answers, over real UDP on 127.0.0.1: raw KRPC queries sent
 * from a node:dgram socket, replies decoded with bencode@4 (not our decoder).
 */
import { assert, describe, it } from "@effect/vitest"
import bencode from "bencode"
import { Duration, Effect, Option } from "effect"
import * as Dgram from "node:dgram"
import * as Krpc from "../../src/dht/Krpc.ts"
import { effectDht, infoHashOf, localhost } from "./fixtures.ts"

const text = (bytes: unknown) => Buffer.from(bytes as Uint8Array).toString()

/**
 * A UDP client on 127.0.0.1: sends one datagram and returns the reply (a
 * response or an error; our node's own queries, such as the ping it sends
 * a newcomer, are skipped), if one comes within `wait`.
 */
const client = Effect.acquireRelease(
  Effect.callback<Dgram.Socket>((resume) => {
    const socket = Dgram.createSocket("udp4")
    socket.bind(0, localhost, () => resume(Effect.succeed(socket)))
  }),
  (socket) => Effect.sync(() => socket.close())
).pipe(Effect.map((socket) => ({
  port: socket.address().port,
  exchange: (port: number, datagram: Uint8Array | object, wait = Duration.seconds(1)) =>
    Effect.callback<Reply>((resume) => {
      const onMessage = (datagram: Buffer) => {
        const reply = bencode.decode(datagram) as Reply
        if (text(reply.y) !== "q") resume(Effect.succeed(reply))
      }
      socket.on("message", onMessage)
      socket.send(datagram instanceof Uint8Array ? datagram : bencode.encode(datagram), port, localhost)
      return Effect.sync(() => socket.off("message", onMessage))
    }).pipe(Effect.timeoutOption(wait), Effect.map(Option.getOrUndefined))
})))

/** A decoded reply; `exchange` returns `undefined` when none came. */
// biome-ignore lint/suspicious/noExplicitAny: KRPC replies are whatever the node sent; each test checks the fields it reads
type Reply = Record<string, any>

const answer = (reply: Reply | undefined): Reply => {
  assert.isDefined(reply, "an answer")
  return reply!
}

const clientId = new Uint8Array(20).fill(0x77)

/** How long to wait for the answer that should not come (loopback answers take well under 1 ms). */
const quiet = Duration.millis(200)

describe("Dht serving", () => {
  it.live("answers ping, find_node, get_peers and announce_peer", () =>
    Effect.gen(function*() {
      const ours = yield* effectDht()
      const port = yield* ours.port
      const other = yield* effectDht()
      yield* ours.addNode({ host: localhost, port: yield* other.port })
      const { exchange, port: clientPort } = yield* client

      const pong = answer(yield* exchange(port, { t: "p1", y: "q", q: "ping", a: { id: clientId } }))
      assert.strictEqual(text(pong.t), "p1")
      assert.strictEqual(text(pong.y), "r")
      assert.deepStrictEqual(new Uint8Array(pong.r.id), ours.nodeId)

      const found = answer(
        yield* exchange(port, { t: "f1", y: "q", q: "find_node", a: { id: clientId, target: other.nodeId } })
      )
      assert.deepStrictEqual(Krpc.decodeNodes(found.r.nodes), [{
        id: other.nodeId,
        host: localhost,
        port: yield* other.port
      }])

      const infoHash = infoHashOf(20)
      const before = answer(
        yield* exchange(port, { t: "g1", y: "q", q: "get_peers", a: { id: clientId, info_hash: infoHash } })
      )
      assert.isUndefined(before.r.values, "no peers yet")
      assert.strictEqual(before.r.nodes.length, 26, "our closest node instead")
      const token = before.r.token as Uint8Array

      const announced = answer(
        yield* exchange(port, {
          t: "a1",
          y: "q",
          q: "announce_peer",
          a: { id: clientId, info_hash: infoHash, port: 7020, token }
        })
      )
      assert.strictEqual(text(announced.y), "r")
      yield* exchange(port, {
        t: "a2",
        y: "q",
        q: "announce_peer",
        a: { id: clientId, info_hash: infoHash, port: 0, implied_port: 1, token }
      })
      const after = answer(
        yield* exchange(port, { t: "g2", y: "q", q: "get_peers", a: { id: clientId, info_hash: infoHash } })
      )
      const peers = (after.r.values as Array<Uint8Array>).map((value) =>
        `${value.subarray(0, 4).join(".")}:${(value[4]! << 8) | value[5]!}`
      )
      assert.sameMembers(
        peers,
        [`${localhost}:7020`, `${localhost}:${clientPort}`],
        "implied_port: the UDP source port"
      )
    }), { timeout: 20_000 })

  it.live("answers bad queries with KRPC errors, drops garbage, and keeps serving", () =>
    Effect.gen(function*() {
      const ours = yield* effectDht()
      const port = yield* ours.port
      const { exchange } = yield* client
      const errorOf = (reply: Reply | undefined) => {
        assert.strictEqual(text(answer(reply).y), "e")
        return [reply!.e[0], text(reply!.e[1])] as const
      }

      const [badToken, badTokenText] = errorOf(
        yield* exchange(port, {
          t: "a1",
          y: "q",
          q: "announce_peer",
          a: { id: clientId, info_hash: infoHashOf(21), port: 7021, token: "made up" }
        })
      )
      assert.strictEqual(badToken, 203)
      assert.include(badTokenText, "token")

      const [unknown, unknownText] = errorOf(yield* exchange(port, { t: "u1", y: "q", q: "vote", a: { id: clientId } }))
      assert.strictEqual(unknown, 204)
      assert.include(unknownText, "vote")

      const malformed = yield* exchange(port, { t: "m1", y: "q", q: "find_node", a: { id: clientId } })
      assert.strictEqual(text(answer(malformed).t), "m1")
      assert.strictEqual(errorOf(malformed)[0], 203)

      for (const garbage of ["hello", "d1:y1:re", "le", "d1:t2:xx1:y1:re"]) {
        assert.isUndefined(yield* exchange(port, new TextEncoder().encode(garbage), quiet), `no answer to ${garbage}`)
      }
      assert.isUndefined(yield* exchange(port, new Uint8Array(2000).fill(0x6c), quiet), "nor to deep nesting")

      const pong = answer(yield* exchange(port, { t: "p1", y: "q", q: "ping", a: { id: clientId } }))
      assert.deepStrictEqual(new Uint8Array(pong.r.id), ours.nodeId, "still serving")
    }), { timeout: 20_000 })

  it.live("a port already taken is a DhtError naming it", () =>
    Effect.gen(function*() {
      const { port } = yield* client
      const error = yield* Effect.flip(effectDht({ port }))
      assert.strictEqual(error._tag, "DhtError")
      assert.include(error.message, `cannot open the DHT's UDP socket on ${localhost}:${port}`)
    }), { timeout: 10_000 })
})
