/**
 * DHT nodes on an in-memory UDP network (MemoryUdp), for tests under
 * TestClock: our node on sockets of the network, and scripted remote nodes
 * that record what they receive and answer what a test tells them to.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Clock, Effect, Layer, Result } from "effect"
import * as Dht from "../../src/dht/Dht.ts"
import * as Krpc from "../../src/dht/Krpc.ts"
import type * as MemoryUdp from "../../src/peer/MemoryUdp.ts"

export const ourHost = "10.0.0.1"

/** Our node, on `ourHost:6881`, or on the given hosts (one per family). */
export const memoryDht = (
  network: MemoryUdp.Network,
  settings: Partial<Dht.Settings> = {},
  hosts: { readonly ipv4?: string; readonly ipv6?: string } = { ipv4: ourHost }
) =>
  Effect.gen(function*() {
    const sockets = {
      ipv4: hosts.ipv4 === undefined ? undefined : yield* network.socket(hosts.ipv4, 6881),
      ipv6: hosts.ipv6 === undefined ? undefined : yield* network.socket(hosts.ipv6, 6881)
    }
    const context = yield* Layer.build(
      Dht.Dht.layerWithSockets({ bootstrap: [], ...settings }, sockets).pipe(Layer.provide(NodeServices.layer))
    )
    return context.mapUnsafe.get(Dht.Dht.key) as Dht.Dht["Service"]
  })

export interface Received {
  readonly at: number
  readonly message: Krpc.Message
}

/**
 * A scripted node at `host`: records what it receives (with the test time)
 * and sends back what `reply` returns, if anything.
 */
export const remoteNode = (
  network: MemoryUdp.Network,
  host: string,
  reply: (message: Krpc.Message, id: Uint8Array) => Krpc.Message | undefined,
  port = 6881,
  id: Uint8Array = new Uint8Array(20).fill(0xee)
) =>
  Effect.gen(function*() {
    const socket = yield* network.socket(host, port)
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    const received: Array<Received> = []
    yield* Effect.gen(function*() {
      for (const { address, payload } of yield* reader.pull) {
        const message = Result.getOrThrow(Krpc.decode(payload))
        received.push({ at: yield* Clock.currentTimeMillis, message })
        const answer = reply(message, id)
        if (answer !== undefined) yield* writer.write({ payload: Krpc.encode(answer), address })
      }
    }).pipe(Effect.forever, Effect.forkScoped)
    return { id, address: { host, port }, received, writer }
  })

/** Answers every query as a node that knows `nodes` (none by default). */
export const answering = (message: Krpc.Message, id: Uint8Array, fields: Partial<Krpc.Response> = {}) =>
  message._tag === "Query"
    ? {
      _tag: "Response" as const,
      transactionId: message.transactionId,
      response: { id, nodes: [], values: [], token: undefined, ...fields }
    }
    : undefined

export const silent = () => undefined

/** Lets the forked fibers run (no time passes on this network). */
export const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

export const queriesOf = (received: ReadonlyArray<Received>) =>
  received.flatMap(({ at, message }) => message._tag === "Query" ? [{ at, query: message.query }] : [])
