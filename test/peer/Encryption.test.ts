/**
 * Message stream encryption over the in-memory network, under TestClock:
 * two of our ends (each policy against the others), peers without MSE, and
 * hostile handshakes from either side, each closed within its stage's
 * deadline with the reason named.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Queue, Random, type Scope } from "effect"
import * as Socket from "effect/socket/Socket"
import { TestClock } from "effect/testing"
import { randomBytes } from "node:crypto"
import * as Encryption from "../../src/peer/Encryption.ts"
import * as MemoryNetwork from "../../src/peer/MemoryNetwork.ts"
import { type Address, type Connection, Network } from "../../src/peer/Network.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as Mse from "../../src/protocol/Mse.ts"

const infoHash = Uint8Array.from({ length: 20 }, (_, i) => i + 1)
const unknownHash = new Uint8Array(20).fill(0xee)
const stageMillis = 5_000
const server: Address = { host: "10.0.0.1", port: 6881 }

const handshakeBytes = (id: number) =>
  Handshake.encode(Handshake.make({ infoHash, peerId: new Uint8Array(20).fill(id), features: ["extensions"] }))

const concat = (parts: ReadonlyArray<Uint8Array>) => new Uint8Array(Buffer.concat(parts))

const contains = (haystack: Uint8Array, needle: Uint8Array) => Mse.indexOf(haystack, needle) >= 0

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

const isDone = <A, E>(fiber: Fiber.Fiber<A, E>) => fiber.pollUnsafe() !== undefined

/** The Network of `host` on `network`. */
const on = (network: MemoryNetwork.MemoryNetwork, host: string) =>
  Effect.service(Network).pipe(Effect.provide(network.layer(host)))

/** `inner`, recording the bytes its dialled sockets write and counting the dials. */
const tapped = (inner: Network["Service"]) => {
  const wire: Array<Uint8Array> = []
  let dials = 0
  const network = Network.of({
    ...inner,
    connect: (address, timeoutMillis, options) =>
      Effect.map(inner.connect(address, timeoutMillis, options), (socket) =>
        Socket.make({
          reader: Effect.suspend(() => {
            dials++
            return socket.reader
          }),
          writer: Effect.map(socket.writer, (writer) => ({
            write: (chunk: Uint8Array | string | Socket.CloseEvent) => {
              if (chunk instanceof Uint8Array) wire.push(chunk.slice())
              return writer.write(chunk)
            },
            writeAll: (chunks) => {
              for (const chunk of chunks) if (chunk instanceof Uint8Array) wire.push(chunk.slice())
              return writer.writeAll(chunks)
            }
          }))
        }))
  })
  return { network, wire: () => concat(wire), dials: () => dials }
}

/** A socket opened in the current scope, read and written as a test does. */
interface Raw {
  readonly read: (n: number) => Effect.Effect<Uint8Array, Socket.SocketError>
  /** Reads through `marker`; returns what came before it. */
  readonly readThrough: (marker: Uint8Array) => Effect.Effect<Uint8Array, Socket.SocketError>
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, Socket.SocketError>
  /** Reads until the connection fails; succeeds with that error. */
  readonly ended: Effect.Effect<Socket.SocketError>
}

const open = (socket: Socket.Socket): Effect.Effect<Raw, Socket.SocketError, Scope.Scope> =>
  Effect.gen(function*() {
    const pull = yield* Socket.readerBytes(socket)
    const writer = yield* socket.writer
    let buffer = new Uint8Array(0)
    const more = Effect.map(pull, (chunks) => {
      buffer = concat([buffer, ...chunks])
    })
    const read = (n: number) =>
      Effect.gen(function*() {
        while (buffer.length < n) yield* more
        const out = buffer.slice(0, n)
        buffer = buffer.subarray(n)
        return out
      })
    const readThrough = (marker: Uint8Array) =>
      Effect.gen(function*() {
        while (!contains(buffer, marker)) yield* more
        const at = Mse.indexOf(buffer, marker)
        const before = buffer.slice(0, at)
        buffer = buffer.subarray(at + marker.length)
        return before
      })
    const ended = Effect.gen(function*() {
      while (true) yield* more
    }).pipe(Effect.flip)
    return { read, readThrough, write: (bytes) => writer.write(bytes), ended }
  })

/** Our encrypted listener on 10.0.0.1:6881 serving `infoHash`, and the client host's network (tapped). */
const setup = Effect.fnUntraced(function*(serverPolicy: Encryption.Policy, options?: MemoryNetwork.Options) {
  const network = yield* MemoryNetwork.make(options)
  const ours = Encryption.make(yield* on(network, server.host), {
    policy: serverPolicy,
    stageTimeoutMillis: stageMillis
  })
  yield* ours.encryption.serve(infoHash)
  const accepted = yield* Queue.unbounded<Connection>()
  yield* ours.network.listen({ port: server.port }, (c) => Queue.offerUnsafe(accepted, c))
  const client = tapped(yield* on(network, "10.0.0.2"))
  const dialler = (policy: Encryption.Policy) =>
    Encryption.make(client.network, { policy, stageTimeoutMillis: stageMillis }).network
  /** The next connection to our listener, opened (its handshake done) in the current scope. */
  const accept = Effect.flatMap(Queue.take(accepted), (c) => open(c.socket))
  /** The next connection's opening, in a fiber of its own: its exit (the scope closed, so the socket too). */
  const acceptExit = Queue.take(accepted).pipe(
    Effect.flatMap((c) => Effect.scoped(Effect.asVoid(open(c.socket)))),
    Effect.exit,
    Effect.forkScoped
  )
  return { network, client, dialler, accept, acceptExit }
})

/** A listener on 10.0.0.1:6881 of the raw network, each connection given to `handle` in a scope of its own. */
const rawListener = Effect.fnUntraced(function*(
  network: MemoryNetwork.MemoryNetwork,
  handle: (raw: Raw) => Effect.Effect<void, Socket.SocketError, Scope.Scope>
) {
  const inner = yield* on(network, server.host)
  const accepted = yield* Queue.unbounded<Connection>()
  let connections = 0
  yield* inner.listen({ port: server.port }, (c) => Queue.offerUnsafe(accepted, c))
  yield* Queue.take(accepted).pipe(
    Effect.tap(() => Effect.sync(() => connections++)),
    Effect.flatMap((c) => Effect.forkScoped(Effect.ignore(Effect.scoped(Effect.flatMap(open(c.socket), handle))))),
    Effect.forever,
    Effect.forkScoped
  )
  return { connections: () => connections }
})

/** A peer without MSE: answers a plain handshake with its own, hangs up on anything else. */
const plainPeer = (raw: Raw) =>
  Effect.gen(function*() {
    const first = yield* raw.read(20)
    if (!contains(first, Mse.plainPrefix)) return
    yield* raw.read(48)
    yield* raw.write(handshakeBytes(2))
    return yield* Effect.never
  })

const reasonOf = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) return "success"
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")?.error
  if (!Socket.isSocketError(error)) return `not a socket error: ${String(error)}`
  return Encryption.encryptionErrorOf(error)?.reason ?? error.reason
}

const tagOf = (exit: Exit.Exit<unknown, unknown>) => {
  const reason = reasonOf(exit)
  return typeof reason === "string" ? reason : reason._tag
}

describe("Encryption", () => {
  describe("two of our ends", () => {
    it.effect("prefer to prefer: the MSE handshake, then plaintext (RC4 only for a peer that wants nothing else)", () =>
      Effect.gen(function*() {
        const { client, dialler, accept } = yield* setup("prefer")
        const socket = yield* dialler("prefer").connect(server, 1000, { infoHash })
        const [ours, theirs] = yield* Effect.all([open(socket), accept], { concurrency: 2 })
        yield* ours.write(handshakeBytes(1))
        assert.deepStrictEqual(yield* theirs.read(68), handshakeBytes(1))
        const wire = client.wire()
        assert.isTrue(contains(wire, handshakeBytes(1)), "the payload went in the clear")
        // Before it: a DH key and the rest of the MSE handshake (the two hashes, VC, crypto_provide, the lengths).
        const at = Buffer.from(wire).indexOf(Buffer.from(handshakeBytes(1)))
        assert.isAtLeast(at, 96 + 20 + 20 + 8 + 4 + 2 + 2, "after the MSE handshake")
        assert.strictEqual(client.dials(), 1)
      }))

    for (const [dialling, listening] of [["require", "prefer"], ["prefer", "require"]] as const) {
      it.effect(`${dialling} to ${listening}: RC4 both ways, and neither handshake is readable on the wire`, () =>
        Effect.gen(function*() {
          const { client, dialler, accept } = yield* setup(listening)
          const socket = yield* dialler(dialling).connect(server, 1000, { infoHash })
          const [ours, theirs] = yield* Effect.all([open(socket), accept], { concurrency: 2 })
          const hello = handshakeBytes(1)
          const kept = hello.slice()
          yield* ours.write(hello)
          assert.deepStrictEqual(yield* theirs.read(68), kept)
          assert.deepStrictEqual(hello, kept, "the caller's buffer is not encrypted in place")
          const reply = concat([handshakeBytes(2), new Uint8Array(1000).fill(0x61)])
          yield* theirs.write(reply)
          assert.deepStrictEqual(yield* ours.read(reply.length), reply)
          const wire = client.wire()
          assert.isFalse(contains(wire, Mse.plainPrefix), "no plain handshake on the wire")
          assert.isFalse(contains(wire, infoHash), "no info-hash on the wire")
          assert.isAbove(wire.length, 96 + 20 + 20 + 16 + 68 - 1)
          assert.strictEqual(client.dials(), 1)
        }))
    }

    it.effect("an initiator's IA and the bytes after it in the same write come first from the reader, decrypted", () =>
      Effect.gen(function*() {
        const { network, accept } = yield* setup("require")
        const raw = yield* open(yield* (yield* on(network, "10.0.0.2")).connect(server, 1000))
        const privateKey = randomBytes(Mse.privateKeyLength)
        yield* raw.write(Mse.publicKey(privateKey))
        const theirs = yield* Effect.forkScoped(accept)
        const s = Mse.secret(privateKey, yield* raw.read(Mse.keyLength))
        const { encrypt } = Mse.ciphers(s, infoHash, "A")
        const ia = handshakeBytes(1)
        const after = Uint8Array.of(0, 0, 0, 1, 2) // an interested message
        const block = Mse.verificationBlock(encrypt, Mse.rc4, new Uint8Array(0), ia.length)
        const payload = concat([ia, after])
        encrypt.process(payload)
        yield* raw.write(concat([Mse.req1(s), Mse.xor(Mse.req2(infoHash), Mse.req3(s)), block, payload]))
        const opened = yield* Fiber.join(theirs)
        assert.deepStrictEqual(yield* opened.read(68 + 5), concat([ia, after]))
      }))

    it.effect("padding lengths come from Effect's Random: a seeded run's handshake takes the same simulated time", () =>
      Effect.gen(function*() {
        /** The simulated milliseconds of one handshake over a slow link, under `seed`. */
        const handshakeMillis = (seed: string) =>
          Effect.gen(function*() {
            const { dialler, accept } = yield* setup("prefer", {
              link: () => ({ latencyMillis: 5, bytesPerSecond: 20_000 })
            })
            const start = yield* Clock.currentTimeMillis
            const socket = yield* dialler("prefer").connect(server, 1000, { infoHash })
            const both = yield* Effect.forkScoped(Effect.all([open(socket), accept], { concurrency: 2 }))
            for (let ms = 0; ms < 1000 && !isDone(both); ms++) {
              yield* settle
              if (!isDone(both)) yield* TestClock.adjust(1)
            }
            yield* Fiber.join(both)
            return (yield* Clock.currentTimeMillis) - start
          }).pipe(Effect.scoped, Random.withSeed(seed))
        const first = yield* handshakeMillis("one")
        assert.isAbove(first, 10, "the link's latency and rate count")
        assert.strictEqual(yield* handshakeMillis("one"), first)
        const others = [yield* handshakeMillis("two"), yield* handshakeMillis("three")]
        assert.isTrue(others.some((millis) => millis !== first), "other seeds, other paddings")
      }))

    it.effect("prefer to a peer without MSE: it hangs up on our key, we dial again and speak plain", () =>
      Effect.gen(function*() {
        const network = yield* MemoryNetwork.make()
        const peer = yield* rawListener(network, plainPeer)
        const client = tapped(yield* on(network, "10.0.0.2"))
        const dialler = Encryption.make(client.network, { policy: "prefer", stageTimeoutMillis: stageMillis })
        const socket = yield* dialler.network.connect(server, 1000, { infoHash })
        const ours = yield* open(socket)
        yield* ours.write(handshakeBytes(1))
        assert.deepStrictEqual(yield* ours.read(68), handshakeBytes(2))
        assert.strictEqual(client.dials(), 2)
        assert.strictEqual(peer.connections(), 2)
      }))

    it.effect("prefer to a peer without MSE that reads 48 bytes past its length byte before checking: it hangs up at once", () =>
      Effect.gen(function*() {
        // As bittorrent-protocol before MSE: pstrlen, then pstrlen + 48 bytes, then the check. Our key's
        // first byte is any of 0-255, so a shorter PadA would leave such a peer waiting for bytes that
        // never come, and us waiting out the Yb stage before dialling plain.
        const lengthFirst = (raw: Raw) =>
          Effect.gen(function*() {
            const pstrlen = (yield* raw.read(1))[0]!
            const rest = yield* raw.read(pstrlen + 48)
            if (pstrlen !== 19 || !contains(concat([Uint8Array.of(pstrlen), rest]), Mse.plainPrefix)) return
            yield* raw.write(handshakeBytes(2))
            return yield* Effect.never
          })
        for (let seed = 0; seed < 40; seed++) {
          const fellBack = yield* Effect.gen(function*() {
            const network = yield* MemoryNetwork.make()
            yield* rawListener(network, lengthFirst)
            const client = tapped(yield* on(network, "10.0.0.2"))
            const dialler = Encryption.make(client.network, { policy: "prefer", stageTimeoutMillis: stageMillis })
            const opened = yield* Effect.forkScoped(open(yield* dialler.network.connect(server, 1000, { infoHash })))
            yield* settle
            return isDone(opened) && client.dials() === 2
          }).pipe(Effect.scoped, Random.withSeed(`lengthFirst${seed}`))
          assert.isTrue(fellBack, `seed ${seed}: dialled plain with no time passing`)
        }
      }))

    it.effect("require never falls back: a peer without MSE is a failed dial", () =>
      Effect.gen(function*() {
        const network = yield* MemoryNetwork.make()
        yield* rawListener(network, plainPeer)
        const client = tapped(yield* on(network, "10.0.0.2"))
        const dialler = Encryption.make(client.network, { policy: "require", stageTimeoutMillis: stageMillis })
        const socket = yield* dialler.network.connect(server, 1000, { infoHash })
        const exit = yield* Effect.exit(Effect.scoped(open(socket)))
        const reason = reasonOf(exit)
        assert.strictEqual(typeof reason === "string" ? reason : reason._tag, "HungUp")
        assert.strictEqual(typeof reason === "string" ? "" : (reason as Encryption.HungUp).stage, "Yb")
        assert.strictEqual(client.dials(), 1)
      }))

    it.effect("a dial that reaches nobody fails as the dial did, and is not retried", () =>
      Effect.gen(function*() {
        const network = yield* MemoryNetwork.make()
        const client = tapped(yield* on(network, "10.0.0.2"))
        const dialler = Encryption.make(client.network, { policy: "prefer" })
        const exit = yield* Effect.exit(Effect.scoped(open(yield* dialler.network.connect(server, 1000, { infoHash }))))
        assert.strictEqual(tagOf(exit), "SocketOpenError")
        assert.strictEqual(client.dials(), 1)
      }))

    it.effect("a dial naming no torrent: prefer speaks plain, require fails with NoInfoHash", () =>
      Effect.gen(function*() {
        const network = yield* MemoryNetwork.make()
        yield* rawListener(network, plainPeer)
        const inner = yield* on(network, "10.0.0.2")
        const prefer = Encryption.make(inner, { policy: "prefer" }).network
        const ours = yield* open(yield* prefer.connect(server, 1000))
        yield* ours.write(handshakeBytes(1))
        assert.deepStrictEqual(yield* ours.read(68), handshakeBytes(2))
        const require = Encryption.make(inner, { policy: "require" }).network
        const exit = yield* Effect.exit(Effect.scoped(open(yield* require.connect(server, 1000))))
        assert.strictEqual(tagOf(exit), "NoInfoHash")
      }))

    it.effect("prefer takes a plain incoming connection as it came; require hangs up on it", () =>
      Effect.gen(function*() {
        for (const policy of ["prefer", "require"] as const) {
          const { network, accept, acceptExit } = yield* setup(policy)
          const raw = yield* open(yield* (yield* on(network, "10.0.0.2")).connect(server, 1000))
          const bytes = concat([handshakeBytes(1), Uint8Array.of(0, 0, 0, 0)])
          yield* raw.write(bytes)
          if (policy === "prefer") {
            const theirs = yield* accept
            assert.deepStrictEqual(yield* theirs.read(bytes.length), bytes)
          } else {
            const exit = yield* Fiber.join(yield* acceptExit)
            assert.strictEqual(tagOf(exit), "PlaintextRefused")
            assert.strictEqual((yield* raw.ended).reason._tag, "SocketCloseError")
          }
        }
      }))

    it.effect("an initiator offering only plaintext: prefer selects it (clear after the handshake), require refuses", () =>
      Effect.gen(function*() {
        for (const policy of ["prefer", "require"] as const) {
          const { network, accept, acceptExit } = yield* setup(policy)
          const client = tapped(yield* on(network, "10.0.0.2"))
          const socket = yield* client.network.connect(server, 1000)
          const initiate = Effect.gen(function*() {
            const pull = yield* Socket.readerBytes(socket)
            const writer = yield* socket.writer
            const established = yield* Encryption.initiate(
              { pull, writer },
              { peer: "10.0.0.1:6881", infoHash, provide: Mse.plaintext, stageMillis }
            )
            return { established, writer }
          })
          if (policy === "prefer") {
            const [{ established, writer }, theirs] = yield* Effect.all([initiate, accept], { concurrency: 2 })
            assert.isUndefined(established.encrypt)
            yield* writer.write(handshakeBytes(1))
            assert.deepStrictEqual(yield* theirs.read(68), handshakeBytes(1))
            assert.isTrue(contains(client.wire(), handshakeBytes(1)), "the handshake went in the clear")
          } else {
            const fiber = yield* acceptExit
            const initiated = yield* Effect.exit(Effect.scoped(initiate))
            assert.strictEqual(tagOf(yield* Fiber.join(fiber)), "NoCommonMethod")
            assert.isTrue(Exit.isFailure(initiated), "the initiator sees the responder hang up")
          }
        }
      }))
  })

  describe("hostile initiators, against our listener", () => {
    /** A raw connection to our listener, and our side's opening in a fiber. */
    const hostile = Effect.fnUntraced(function*(policy: Encryption.Policy = "prefer") {
      const env = yield* setup(policy)
      const raw = yield* open(yield* (yield* on(env.network, "10.0.0.2")).connect(server, 1000))
      const ours = yield* env.acceptExit
      return { raw, ours }
    })

    /** Sends a valid Ya (and `padA`), reads Yb: the secret. */
    const keyExchange = (raw: Raw, padA: Uint8Array = new Uint8Array(0)) =>
      Effect.gen(function*() {
        const privateKey = randomBytes(Mse.privateKeyLength)
        yield* raw.write(concat([Mse.publicKey(privateKey), padA]))
        return Mse.secret(privateKey, yield* raw.read(Mse.keyLength))
      })

    /** Our side failed with `tag`, and the connection is closed. */
    const assertRefused = Effect.fnUntraced(function*(
      raw: Raw,
      ours: Fiber.Fiber<Exit.Exit<void, Socket.SocketError>>,
      tag: string
    ) {
      yield* settle
      assert.isTrue(isDone(ours), "refused at once")
      const exit = yield* Fiber.join(ours)
      assert.strictEqual(tagOf(exit), tag)
      const ended = yield* Effect.forkScoped(raw.ended)
      yield* settle
      assert.isTrue(isDone(ended), "the connection is closed")
      return reasonOf(exit)
    })

    it.effect("garbage after the DH key (no HASH('req1', S) within 512 bytes of padding)", () =>
      Effect.gen(function*() {
        const { raw, ours } = yield* hostile()
        yield* keyExchange(raw, randomBytes(Mse.maxPadding + 20))
        const reason = yield* assertRefused(raw, ours, "MarkerNotFound")
        assert.strictEqual((reason as Encryption.MarkerNotFound).searched, Mse.maxPadding + 20)
      }))

    it.effect("a DH key outside 2 … P-2", () =>
      Effect.gen(function*() {
        const { raw, ours } = yield* hostile()
        yield* raw.write(new Uint8Array(Mse.keyLength).fill(0xff))
        yield* assertRefused(raw, ours, "BadPublicKey")
      }))

    it.effect("PadC past its limit", () =>
      Effect.gen(function*() {
        const { raw, ours } = yield* hostile()
        const s = yield* keyExchange(raw)
        const { encrypt } = Mse.ciphers(s, infoHash, "A")
        yield* raw.write(concat([
          Mse.req1(s),
          Mse.xor(Mse.req2(infoHash), Mse.req3(s)),
          Mse.verificationBlock(encrypt, Mse.rc4, new Uint8Array(Mse.maxPadding + 1), 0)
        ]))
        const reason = yield* assertRefused(raw, ours, "PaddingTooLong")
        assert.deepStrictEqual(
          [(reason as Encryption.PaddingTooLong).field, (reason as Encryption.PaddingTooLong).length],
          ["PadC", 513]
        )
      }))

    it.effect("an SKEY for no torrent we serve", () =>
      Effect.gen(function*() {
        const { raw, ours } = yield* hostile()
        const s = yield* keyExchange(raw)
        const { encrypt } = Mse.ciphers(s, unknownHash, "A")
        yield* raw.write(concat([
          Mse.req1(s),
          Mse.xor(Mse.req2(unknownHash), Mse.req3(s)),
          Mse.verificationBlock(encrypt, Mse.rc4, new Uint8Array(0), 0)
        ]))
        yield* assertRefused(raw, ours, "UnknownTorrent")
      }))

    it.effect("a verification constant under the wrong key", () =>
      Effect.gen(function*() {
        const { raw, ours } = yield* hostile()
        const s = yield* keyExchange(raw)
        const { encrypt } = Mse.ciphers(s, unknownHash, "A") // keys of another torrent
        yield* raw.write(concat([
          Mse.req1(s),
          Mse.xor(Mse.req2(infoHash), Mse.req3(s)),
          Mse.verificationBlock(encrypt, Mse.rc4, new Uint8Array(0), 0)
        ]))
        yield* assertRefused(raw, ours, "BadVerification")
      }))

    it.effect("a stall mid-handshake is closed exactly at the stage's deadline", () =>
      Effect.gen(function*() {
        const { raw, ours } = yield* hostile()
        yield* keyExchange(raw) // then nothing
        yield* settle
        yield* TestClock.adjust(stageMillis - 1)
        assert.isFalse(isDone(ours), "not yet 1 ms before the deadline")
        yield* TestClock.adjust(1)
        const reason = yield* assertRefused(raw, ours, "HandshakeTimeout")
        assert.strictEqual((reason as Encryption.HandshakeTimeout).stage, "req1")
      }))

    it.effect("a connection that sends nothing, or half a key, is closed at the first stage's deadline", () =>
      Effect.gen(function*() {
        for (const sent of [new Uint8Array(0), new Uint8Array(50).fill(1)]) {
          const { raw, ours } = yield* hostile()
          if (sent.length > 0) yield* raw.write(sent)
          yield* settle
          yield* TestClock.adjust(stageMillis - 1)
          assert.isFalse(isDone(ours), "not yet 1 ms before the deadline")
          yield* TestClock.adjust(1)
          const reason = yield* assertRefused(raw, ours, "HandshakeTimeout")
          assert.strictEqual((reason as Encryption.HandshakeTimeout).stage, "Ya")
        }
      }))
  })

  describe("hostile responders, against our dial", () => {
    /** A raw listener that answers our dial with `respond`, after reading Ya; and our dial (require) in a fiber. */
    const dialHostile = Effect.fnUntraced(function*(
      respond: (raw: Raw, ya: Uint8Array) => Effect.Effect<void, Socket.SocketError, Scope.Scope>,
      use: (raw: Raw) => Effect.Effect<void, Socket.SocketError> = () => Effect.void
    ) {
      const network = yield* MemoryNetwork.make()
      yield* rawListener(network, (raw) => Effect.flatMap(raw.read(Mse.keyLength), (ya) => respond(raw, ya)))
      const dialler = Encryption.make(yield* on(network, "10.0.0.2"), {
        policy: "require",
        stageTimeoutMillis: stageMillis
      })
      const socket = yield* dialler.network.connect(server, 1000, { infoHash })
      return yield* Effect.forkScoped(Effect.exit(Effect.scoped(Effect.flatMap(open(socket), use))))
    })

    /** Yb and `padB`, then reads through the initiator's message 3 (no PadC, no IA): the secret. */
    const answer = (raw: Raw, ya: Uint8Array, padB: Uint8Array = new Uint8Array(0)) =>
      Effect.gen(function*() {
        const privateKey = randomBytes(Mse.privateKeyLength)
        yield* raw.write(concat([Mse.publicKey(privateKey), padB]))
        const s = Mse.secret(privateKey, ya)
        yield* raw.readThrough(Mse.req1(s))
        yield* raw.read(20 + 8 + 4 + 2 + 2)
        return s
      })

    it.effect("PadB past its limit (no ENCRYPT(VC) within 512 bytes)", () =>
      Effect.gen(function*() {
        const ours = yield* dialHostile((raw, ya) =>
          Effect.andThen(answer(raw, ya, randomBytes(Mse.maxPadding + 100)), Effect.never)
        )
        yield* settle
        const reason = reasonOf(yield* Fiber.join(ours))
        assert.strictEqual(typeof reason === "string" ? reason : reason._tag, "MarkerNotFound")
        assert.strictEqual((reason as Encryption.MarkerNotFound).marker, "ENCRYPT(VC)")
      }))

    it.effect("PadD past its limit", () =>
      Effect.gen(function*() {
        const ours = yield* dialHostile((raw, ya) =>
          Effect.gen(function*() {
            const s = yield* answer(raw, ya)
            const { encrypt } = Mse.ciphers(s, infoHash, "B")
            yield* raw.write(Mse.verificationBlock(encrypt, Mse.rc4, new Uint8Array(Mse.maxPadding + 88)))
            return yield* Effect.never
          })
        )
        yield* settle
        const reason = reasonOf(yield* Fiber.join(ours))
        assert.deepStrictEqual(
          [(reason as Encryption.PaddingTooLong)._tag, (reason as Encryption.PaddingTooLong).field],
          ["PaddingTooLong", "PadD"]
        )
      }))

    it.effect("a crypto method we did not provide", () =>
      Effect.gen(function*() {
        const ours = yield* dialHostile((raw, ya) =>
          Effect.gen(function*() {
            const s = yield* answer(raw, ya)
            const { encrypt } = Mse.ciphers(s, infoHash, "B")
            yield* raw.write(Mse.verificationBlock(encrypt, Mse.plaintext, new Uint8Array(0)))
            return yield* Effect.never
          })
        )
        yield* settle
        assert.strictEqual(tagOf(yield* Fiber.join(ours)), "BadSelect")
      }))

    it.effect("a responder's payload in the same write as its VC block comes first from the reader, decrypted", () =>
      Effect.gen(function*() {
        const reply = concat([handshakeBytes(2), Uint8Array.of(0, 0, 0, 1, 1)])
        const ours = yield* dialHostile((raw, ya) =>
          Effect.gen(function*() {
            const s = yield* answer(raw, ya)
            const { encrypt } = Mse.ciphers(s, infoHash, "B")
            const block = Mse.verificationBlock(encrypt, Mse.rc4, new Uint8Array(7))
            const payload = reply.slice()
            encrypt.process(payload)
            yield* raw.write(concat([block, payload]))
            return yield* Effect.never
          }), (raw) => Effect.map(raw.read(reply.length), (bytes) => assert.deepStrictEqual(bytes, reply)))
        yield* settle
        assert.strictEqual(tagOf(yield* Fiber.join(ours)), "success")
      }))

    it.effect("a responder that stalls after its key is dropped at the VC stage's deadline", () =>
      Effect.gen(function*() {
        const ours = yield* dialHostile((raw, ya) => Effect.andThen(answer(raw, ya), Effect.never))
        yield* settle
        yield* TestClock.adjust(stageMillis - 1)
        assert.isFalse(isDone(ours), "not yet 1 ms before the deadline")
        yield* TestClock.adjust(1)
        yield* settle
        const reason = reasonOf(yield* Fiber.join(ours))
        assert.strictEqual((reason as Encryption.HandshakeTimeout)._tag, "HandshakeTimeout")
        assert.strictEqual((reason as Encryption.HandshakeTimeout).stage, "VC")
      }))

    it.effect("a responder that never answers our key is dropped at the Yb stage's deadline", () =>
      Effect.gen(function*() {
        const ours = yield* dialHostile(() => Effect.never)
        yield* settle
        yield* TestClock.adjust(stageMillis - 1)
        assert.isFalse(isDone(ours), "not yet 1 ms before the deadline")
        yield* TestClock.adjust(1)
        yield* settle
        const reason = reasonOf(yield* Fiber.join(ours))
        assert.strictEqual((reason as Encryption.HandshakeTimeout).stage, "Yb")
      }))
  })
})
