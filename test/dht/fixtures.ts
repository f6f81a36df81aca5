/**
 * DHT test fixtures: bittorrent-dht@11 nodes and effect-torrent nodes on
 * 127.0.0.1 (never the public DHT), each closed with the test's scope, and a
 * bounded wait for a condition to hold.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import DHT from "bittorrent-dht"
import { Duration, Effect, Layer, Schedule } from "effect"
import { Network } from "../../src/peer/Network.ts"
import * as Dht from "../../src/dht/Dht.ts"

export const localhost = "127.0.0.1"

/** A bittorrent-dht node listening on 127.0.0.1 that knows no other node yet. */
export const bittorrentDht = Effect.acquireRelease(
  Effect.callback<DHT>((resume) => {
    const dht = new DHT({ bootstrap: false })
    dht.on("error", () => {})
    dht.on("warning", () => {})
    dht.listen(0, localhost, () => resume(Effect.succeed(dht)))
  }),
  (dht) => Effect.callback<void>((resume) => dht.destroy(() => resume(Effect.void)))
)

export const addressOf = (dht: DHT) => ({ host: localhost, port: dht.address().port })

/** Makes `dht` ping `address` and waits until the node there is in its table. */
export const connect = (dht: DHT, address: { readonly host: string; readonly port: number }) =>
  Effect.sync(() => dht.addNode(address)).pipe(
    Effect.andThen(eventually(
      Effect.sync(() => dht.nodes.toArray().some((node) => node.port === address.port)),
      `bittorrent-dht to know the node at port ${address.port}`
    ))
  )

/** An effect-torrent DHT node on 127.0.0.1, open for the test's scope. */
export const effectDht = (settings: Partial<Dht.Settings> = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      Dht.Dht.layer({ host: localhost, host6: undefined, bootstrap: [], ...settings }).pipe(
        Layer.provide([NodeServices.layer, Network.layerNode])
      )
    )
    return context.mapUnsafe.get(Dht.Dht.key) as Dht.Dht["Service"]
  })

/** Waits (polling every 20 ms, at most `seconds`) until `check` holds; fails naming `what` otherwise. */
export const eventually = (check: Effect.Effect<boolean>, what: string, seconds = 10) =>
  check.pipe(
    Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced("20 millis") }),
    Effect.timeoutOrElse({
      duration: Duration.seconds(seconds),
      orElse: () => Effect.die(new Error(`timed out after ${seconds} s waiting for ${what}`))
    }),
    Effect.asVoid
  )

/** A recognisable info-hash per test. */
export const infoHashOf = (n: number) => new Uint8Array(20).fill(n)
