/**
 * Encryption: message stream encryption (MSE/PE) as a decorator of the
 * `Network`, so that the rest of the engine reads and writes an ordinary
 * `Socket.Socket` whether or not the bytes on the wire are encrypted.
 *
 * `Encryption.layer(options)` takes the `Network` in the environment and
 * provides a `Network` over it, with an `Encryption` service beside it:
 *
 * - **Outgoing** (`connect` with the torrent's `infoHash`): the MSE
 *   handshake as the initiator, offering RC4 and plaintext (`prefer`) or
 *   RC4 alone (`require`); the peer picks. When
 *   it fails on a peer that was reached (it hung up, stalled or answered
 *   nonsense), `prefer` dials again and speaks plain BitTorrent; `require`
 *   fails. A dial that reaches nobody is not retried. Without an info-hash
 *   there is nothing to key the handshake with: `prefer` dials plain,
 *   `require` fails.
 * - **Incoming**: the first bytes tell (`Mse.classify`): 19 and "BitTorrent
 *   protocol" is a plain connection, passed on as it came (`require` hangs
 *   up); anything else is a DH key, answered as the responder. The SKEY of an
 *   incoming handshake must be the info-hash of a torrent we `serve`. Under
 *   `prefer` plaintext is selected when offered, else RC4; `require` selects
 *   only RC4.
 * - `disable`: the Network as it is.
 *
 * Why `prefer` dials encrypted first, as Transmission's "preferred" and
 * rTorrent's "prefer" do (libtorrent's `pe_enabled` dials plain first and
 * switches a peer to MSE for the next attempt after a failed one; PEX's
 * "prefers encryption" flag makes it start encrypted): a peer that requires
 * encryption drops a plain handshake, and plain-first would cost each such
 * peer a failed connection and a retry after the Monitor's backoff (15 s and
 * more), while a peer without MSE hangs up on our key at once (it is not a
 * BitTorrent handshake) and is dialled again plain immediately: one extra
 * round trip, on a minority of peers (libtorrent, Transmission, µTorrent,
 * Vuze, aria2, rTorrent and webtorrent all speak MSE). And a plain first
 * dial would show the info-hash in the clear on every connection, which is
 * what throttling middleboxes look for.
 *
 * Why `prefer` settles on plaintext after the handshake wherever the peer
 * allows it (as libtorrent's defaults do: `pe_both` without `prefer_rc4`,
 * and aria2c's `--bt-min-crypto-level=plain`): RC4 costs 2.6 CPU s per GiB
 * here (`npm run bench:encryption`), which halved a download from one
 * aria2c seeder, while a peer that insists on RC4 offers (or accepts) only
 * RC4 and gets it. `require` is RC4 on every connection.
 *
 * The handshake happens when the socket's reader is acquired (for an
 * outgoing socket, after the dial), each stage within `stageTimeoutMillis`;
 * a failed one fails the acquisition with a `SocketError` (`SocketOpenError`)
 * whose `cause` is an `EncryptionError` naming what was wrong. Bytes that
 * came with the end of the handshake are the first `pull`'s. Writes wait for
 * the handshake, then are encrypted into a copy (the caller's buffer may be
 * shared) in the order they reach the socket. A socket is one connection:
 * its reader is acquired once.
 */
import { Context, Deferred, Effect, Exit, Layer, Random, Result, Schema, Scope, Semaphore } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Socket from "effect/socket/Socket"
import { randomBytes } from "node:crypto"
import * as CompactPeer from "../protocol/CompactPeer.ts"
import * as Mse from "../protocol/Mse.ts"
import type { Rc4 } from "../protocol/Rc4.ts"
import { type Address, type ConnectOptions, Network } from "./Network.ts"

/**
 * `prefer`: outgoing connections try MSE first and fall back to plain;
 * incoming ones may be either; after the handshake RC4 only with peers that
 * want nothing else. `require`: MSE with RC4 both ways, nothing else.
 * `disable`: plain BitTorrent only.
 */
export type Policy = "prefer" | "require" | "disable"

export const policies: ReadonlyArray<Policy> = ["prefer", "require", "disable"]

export interface Options {
  readonly policy: Policy
  /** Longest wait for each stage of a handshake (default 10 s). */
  readonly stageTimeoutMillis?: number | undefined
}

export const defaultStageTimeoutMillis = 10_000

// ---------------------------------------------------------------------------
// Errors: one `EncryptionError` whose `reason` says what went wrong. Each
// reason's message is a phrase that follows "peer <address> ".
// ---------------------------------------------------------------------------

/** The stages of a handshake, each with its own deadline. */
export const Stage = Schema.Literals([
  /** Initiator: the peer's public key. */
  "Yb",
  /** Initiator: ENCRYPT(VC), after PadB. */
  "VC",
  /** Initiator: crypto_select, len(PadD), PadD. */
  "crypto_select",
  /** Responder: the first bytes (plain or not), then the peer's public key. */
  "Ya",
  /** Responder: HASH('req1', S), after PadA. */
  "req1",
  /** Responder: the SKEY hash, VC, crypto_provide, PadC and IA. */
  "crypto_provide"
])
export type Stage = typeof Stage.Type

export class HandshakeTimeout extends Schema.TaggedError<HandshakeTimeout>()("HandshakeTimeout", {
  stage: Stage,
  millis: Schema.Number
}) {
  override get message() {
    return `sent no ${this.stage} within ${this.millis} ms`
  }
}

export class HungUp extends Schema.TaggedError<HungUp>()("HungUp", {
  stage: Stage,
  cause: Schema.Defect()
}) {
  override get message() {
    return `closed the connection while we waited for ${this.stage}`
  }
}

export class BadPublicKey extends Schema.TaggedError<BadPublicKey>()("BadPublicKey", {}) {
  override get message() {
    return "sent a Diffie-Hellman public key outside 2 … P-2"
  }
}

/** PadA or PadB longer than 512 bytes: the marker after it was not within reach. */
export class MarkerNotFound extends Schema.TaggedError<MarkerNotFound>()("MarkerNotFound", {
  marker: Schema.Literals(["HASH('req1', S)", "ENCRYPT(VC)"]),
  searched: Schema.Number
}) {
  override get message() {
    return `sent no ${this.marker} within ${this.searched} bytes after its public key (padding is at most ${Mse.maxPadding})`
  }
}

export class PaddingTooLong extends Schema.TaggedError<PaddingTooLong>()("PaddingTooLong", {
  field: Schema.Literals(["PadC", "PadD"]),
  length: Schema.Number
}) {
  override get message() {
    return `announced a ${this.length}-byte ${this.field}; the limit is ${Mse.maxPadding}`
  }
}

export class UnknownTorrent extends Schema.TaggedError<UnknownTorrent>()("UnknownTorrent", {}) {
  override get message() {
    return "asked for a torrent we do not serve (its SKEY hash matches none)"
  }
}

export class BadVerification extends Schema.TaggedError<BadVerification>()("BadVerification", {}) {
  override get message() {
    return "sent a verification constant that does not decrypt to zeros"
  }
}

export class NoCommonMethod extends Schema.TaggedError<NoCommonMethod>()("NoCommonMethod", {
  provided: Schema.Number,
  accepted: Schema.Number
}) {
  override get message() {
    return `provides crypto methods ${methods(this.provided)}; we accept ${methods(this.accepted)}`
  }
}

export class BadSelect extends Schema.TaggedError<BadSelect>()("BadSelect", {
  selected: Schema.Number,
  provided: Schema.Number
}) {
  override get message() {
    return `selected crypto method ${methods(this.selected)}; we provided ${methods(this.provided)}`
  }
}

export class PlaintextRefused extends Schema.TaggedError<PlaintextRefused>()("PlaintextRefused", {}) {
  override get message() {
    return "sent a plain BitTorrent handshake; encryption is required"
  }
}

/** Ours: `require`, and the dial names no torrent to key the handshake with. */
export class NoInfoHash extends Schema.TaggedError<NoInfoHash>()("NoInfoHash", {}) {
  override get message() {
    return "cannot be dialled encrypted: the dial names no torrent"
  }
}

export const EncryptionErrorReason = Schema.Union([
  HandshakeTimeout,
  HungUp,
  BadPublicKey,
  MarkerNotFound,
  PaddingTooLong,
  UnknownTorrent,
  BadVerification,
  NoCommonMethod,
  BadSelect,
  PlaintextRefused,
  NoInfoHash
])
export type EncryptionErrorReason = typeof EncryptionErrorReason.Type

export class EncryptionError extends Schema.TaggedError<EncryptionError>()("EncryptionError", {
  peer: Schema.String,
  reason: EncryptionErrorReason
}) {
  override get message() {
    return `peer ${this.peer} ${this.reason.message}`
  }
}

const methods = (field: number) =>
  [
    field & Mse.rc4 ? "RC4" : undefined,
    field & Mse.plaintext ? "plaintext" : undefined,
    field & ~3 ? `0x${field.toString(16)}` : undefined
  ]
    .filter((name) => name !== undefined).join(" and ") || "none"

/** The `EncryptionError` in a socket's failure, if that is what it is. */
export const encryptionErrorOf = (error: Socket.SocketError): EncryptionError | undefined =>
  error.reason._tag === "SocketOpenError" && error.reason.cause instanceof EncryptionError
    ? error.reason.cause
    : undefined

// ---------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------

export class Encryption extends Context.Service<Encryption, {
  readonly policy: Policy
  /**
   * Incoming encrypted connections may name `infoHash` (their SKEY) while
   * the scope is open. A torrent served twice at once stays served until both
   * scopes close.
   */
  readonly serve: (infoHash: Uint8Array) => Effect.Effect<void, never, Scope.Scope>
}>()("effect-torrent/peer/Encryption") {
  /** A `Network` over the one in the environment, speaking MSE by `options.policy`; and the `Encryption` service. */
  static readonly layer = (options: Options): Layer.Layer<Network | Encryption, never, Network> =>
    Layer.effectContext(Effect.gen(function*() {
      const { network, encryption } = make(yield* Network, options)
      return Context.make(Network, network).pipe(Context.add(Encryption, encryption))
    }))
}

/** The decorated network and its service, over `inner`. */
export const make = (inner: Network["Service"], options: Options) => {
  const settings: Settings = {
    policy: options.policy,
    stageMillis: options.stageTimeoutMillis ?? defaultStageTimeoutMillis,
    torrents: new Map()
  }
  const encryption = Encryption.of({
    policy: options.policy,
    serve: (infoHash) => {
      const key = Buffer.from(Mse.req2(infoHash)).toString("hex")
      return Effect.acquireRelease(
        Effect.sync(() => {
          const entry = settings.torrents.get(key)
          settings.torrents.set(key, { infoHash: new Uint8Array(infoHash), count: (entry?.count ?? 0) + 1 })
        }),
        () =>
          Effect.sync(() => {
            const entry = settings.torrents.get(key)
            if (entry === undefined) return
            if (entry.count <= 1) settings.torrents.delete(key)
            else settings.torrents.set(key, { ...entry, count: entry.count - 1 })
          })
      ).pipe(Effect.asVoid)
    }
  })
  if (options.policy === "disable") return { network: inner, encryption }
  const network = Network.of({
    connect: (address, timeoutMillis, connectOptions) =>
      Effect.sync(() => outgoing(inner, address, timeoutMillis, connectOptions, settings)),
    listen: (listenOptions, onConnection) =>
      inner.listen(
        listenOptions,
        (connection) =>
          onConnection({
            ...connection,
            socket: incoming(connection.socket, CompactPeer.format(connection), settings)
          })
      ),
    datagram: inner.datagram
  })
  return { network, encryption }
}

interface Settings {
  readonly policy: Policy
  readonly stageMillis: number
  /** What we serve, by HASH('req2', info-hash) in hex. */
  readonly torrents: Map<string, { readonly infoHash: Uint8Array; readonly count: number }>
}

// ---------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------

/** A connection once its handshake is done. */
export interface Established {
  readonly pull: Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError>
  readonly writer: Socket.Writer
  /** Undefined: plaintext. */
  readonly encrypt: Rc4 | undefined
  readonly decrypt: Rc4 | undefined
  /** Received with the end of the handshake, decrypted. */
  readonly leftover: Uint8Array
}

/** A socket whose reader runs `open` (dial and handshake) and then decrypts what it reads; whose writes encrypt. */
const decorated = (
  open: Effect.Effect<Established, Socket.SocketError, Scope.Scope>
): Socket.Socket => {
  const ready = Deferred.makeUnsafe<Established, Socket.SocketError>()
  const writing = Semaphore.makeUnsafe(1)
  const encoder = new TextEncoder()
  const reader = Effect.gen(function*() {
    const established = yield* open.pipe(Effect.onError(() => Deferred.fail(ready, closed()).pipe(Effect.asVoid)))
    yield* Deferred.succeed(ready, established)
    const { decrypt } = established
    let first: Uint8Array | undefined = established.leftover.length > 0 ? established.leftover : undefined
    const pull = Effect.suspend((): Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError> => {
      if (first !== undefined) {
        const chunk = first
        first = undefined
        return Effect.succeed([chunk])
      }
      return decrypt === undefined ? established.pull : Effect.map(established.pull, (chunks) => {
        // Each read is a fresh buffer (NodeSocket, MemorySocket): decrypted where it lies.
        for (const chunk of chunks) decrypt.process(chunk)
        return chunks
      })
    })
    return { pull, upgrade: Socket.SocketUpgradeError.unsupported } satisfies Socket.Reader
  })
  const write = (chunk: Uint8Array | string | Socket.CloseEvent) =>
    Effect.flatMap(Deferred.await(ready), (established): Effect.Effect<void, Socket.SocketError> => {
      const { encrypt, writer } = established
      if (encrypt === undefined || Socket.isCloseEvent(chunk)) return writer.write(chunk)
      // Encrypted and written under one permit: the keystream follows the order bytes reach the socket.
      return writing.withPermits(1)(Effect.suspend(() => {
        const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk.slice()
        encrypt.process(bytes)
        return writer.write(bytes)
      }))
    })
  const writeAll = (chunks: NonEmptyReadonlyArray<Uint8Array | string>) =>
    Effect.flatMap(Deferred.await(ready), (established): Effect.Effect<void, Socket.SocketError> => {
      const { encrypt, writer } = established
      if (encrypt === undefined) return writer.writeAll(chunks)
      return writing.withPermits(1)(Effect.suspend(() => {
        const parts = chunks.map((chunk) => typeof chunk === "string" ? encoder.encode(chunk) : chunk)
        const bytes = new Uint8Array(parts.reduce((n, part) => n + part.length, 0))
        let offset = 0
        for (const part of parts) {
          bytes.set(part, offset)
          offset += part.length
        }
        encrypt.process(bytes)
        return writer.write(bytes)
      }))
    })
  return Socket.make({
    reader,
    writer: Effect.succeed({ write, writeAll })
  })
}

/** Opens `socket` in the current scope: its bytes' pull and its writer. */
const openInner = (socket: Socket.Socket) =>
  Effect.gen(function*() {
    const pull = yield* Socket.readerBytes(socket)
    const writer = yield* socket.writer
    return { pull, writer }
  })

const plain = (
  inner: { readonly pull: Established["pull"]; readonly writer: Socket.Writer },
  leftover: Uint8Array
): Established => ({ ...inner, encrypt: undefined, decrypt: undefined, leftover })

const closed = () => new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: 1006 }) })

const openError = (error: EncryptionError) =>
  new Socket.SocketError({
    reason: new Socket.SocketOpenError({
      kind: error.reason._tag === "HandshakeTimeout" ? "Timeout" : "Unknown",
      cause: error
    })
  })

/** Logged at debug level, then failed as a socket that did not open. */
const failed = (error: EncryptionError) =>
  Effect.andThen(Effect.logDebug(`encryption: ${error.message}`), Effect.fail(openError(error)))

const outgoing = (
  network: Network["Service"],
  address: Address,
  timeoutMillis: number,
  options: ConnectOptions | undefined,
  settings: Settings
): Socket.Socket => {
  const peer = CompactPeer.format(address)
  const infoHash = options?.infoHash
  const dial = network.connect(address, timeoutMillis, options)
  const dialPlain = Effect.flatMap(dial, openInner).pipe(Effect.map((inner) => plain(inner, new Uint8Array(0))))
  if (infoHash === undefined) {
    return decorated(
      settings.policy === "require" ? failed(new EncryptionError({ peer, reason: new NoInfoHash() })) : dialPlain
    )
  }
  return decorated(Effect.gen(function*() {
    // The encrypted attempt in a scope of its own: closed at once if it fails, else with the connection.
    const scope = yield* Effect.scope
    const attempt = yield* Scope.fork(scope)
    const inner = yield* Effect.flatMap(dial, openInner).pipe(Scope.provide(attempt))
    const result = yield* initiate(inner, {
      peer,
      infoHash,
      provide: settings.policy === "require" ? Mse.rc4 : Mse.rc4 | Mse.plaintext,
      stageMillis: settings.stageMillis
    }).pipe(Effect.result)
    if (Result.isSuccess(result)) return result.success
    yield* Scope.close(attempt, Exit.void)
    if (settings.policy === "require") return yield* failed(result.failure)
    yield* Effect.logDebug(`encryption: ${result.failure.message}; dialling again, plain`)
    return yield* dialPlain
  }))
}

const incoming = (socket: Socket.Socket, peer: string, settings: Settings): Socket.Socket =>
  decorated(
    Effect.gen(function*() {
      const inner = yield* openInner(socket)
      const inbox = new Inbox(inner.pull)
      // The first bytes, then (not plain) the rest of Ya: one stage.
      const kind = yield* stage(
        peer,
        "Ya",
        settings.stageMillis,
        Effect.gen(function*() {
          while (true) {
            const kind = Mse.classify(inbox.peek())
            if (kind === "encrypted") yield* inbox.atLeast(Mse.keyLength)
            if (kind !== undefined) return kind
            yield* inbox.more
          }
        })
      )
      if (kind === "plain") {
        if (settings.policy === "require") {
          return yield* failed(new EncryptionError({ peer, reason: new PlaintextRefused() }))
        }
        return plain(inner, inbox.rest())
      }
      return yield* respond(inner, inbox, {
        peer,
        accepted: settings.policy === "require" ? Mse.rc4 : Mse.rc4 | Mse.plaintext,
        lookup: (req2) => settings.torrents.get(Buffer.from(req2).toString("hex"))?.infoHash,
        stageMillis: settings.stageMillis
      })
    }).pipe(Effect.catchTag("EncryptionError", failed))
  )

// ---------------------------------------------------------------------------
// The handshake
// ---------------------------------------------------------------------------

/** Bytes read during a handshake and not used yet. */
class Inbox {
  private pending: Uint8Array = new Uint8Array(0)

  constructor(private readonly pull: Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError>) {}

  get size() {
    return this.pending.length
  }

  peek(): Uint8Array {
    return this.pending
  }

  /** One more read (a closed connection fails with the SocketError). */
  readonly more: Effect.Effect<void, Socket.SocketError> = Effect.map(
    Effect.suspend(() => this.pull),
    (chunks) => {
      // Always a copy: a connection may lend its chunks only until its next read (see `TcpSocket`).
      this.pending = copyOf([this.pending, ...chunks])
    }
  )

  atLeast(n: number): Effect.Effect<void, Socket.SocketError> {
    return Effect.whileLoop({
      while: () => this.pending.length < n,
      body: () => this.more,
      step: () => {}
    })
  }

  /** The next `n` bytes (there are that many): ours to decrypt in place. */
  take(n: number): Uint8Array {
    const out = this.pending.subarray(0, n)
    this.pending = this.pending.subarray(n)
    return out
  }

  rest(): Uint8Array {
    return this.take(this.pending.length)
  }
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const nonEmpty = parts.filter((part) => part.length > 0)
  return nonEmpty.length === 1 ? nonEmpty[0]! : copyOf(nonEmpty)
}

const copyOf = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/** Runs `effect`, a stage of a handshake, within `millis`; the peer hanging up is `HungUp`. */
const stage = <A, E>(
  peer: string,
  name: Stage,
  millis: number,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, Exclude<E, Socket.SocketError> | EncryptionError> =>
  effect.pipe(
    Effect.mapError((error) =>
      Socket.isSocketError(error)
        ? new EncryptionError({ peer, reason: new HungUp({ stage: name, cause: error }) })
        : error as Exclude<E, Socket.SocketError>
    ),
    Effect.timeoutOrElse({
      duration: millis,
      orElse: () => Effect.fail(new EncryptionError({ peer, reason: new HandshakeTimeout({ stage: name, millis }) }))
    })
  )

/**
 * PadA or PadB: its length from Effect's `Random` (a seeded run, as the
 * testing Swarm's, keeps its timing), its bytes from node:crypto.
 */
const randomPadding = (min: number, max: number) =>
  Effect.map(Random.nextIntBetween(min, max), (length) => new Uint8Array(randomBytes(length)))

/**
 * PadA's least length. A peer without MSE may read our key's first byte as
 * a handshake's pstrlen and wait for pstrlen + 48 more bytes before it looks
 * at them (bittorrent-protocol did); with at least 1 + 255 + 48 bytes sent it
 * always has them, and hangs up at once instead of at our Yb stage's deadline.
 */
const minPadA = 1 + 255 + 48 - Mse.keyLength

/** Reads up to and including `marker`, which must start within `Mse.maxPadding` bytes. */
const skipTo = (
  inbox: Inbox,
  marker: Uint8Array,
  fail: (searched: number) => EncryptionError
): Effect.Effect<void, EncryptionError | Socket.SocketError> =>
  Effect.gen(function*() {
    const reach = Mse.maxPadding + marker.length
    while (true) {
      const at = Mse.indexOf(inbox.peek().subarray(0, reach), marker)
      if (at >= 0) {
        inbox.take(at + marker.length)
        return
      }
      if (inbox.size >= reach) return yield* fail(reach)
      yield* inbox.more
    }
  })

interface Inner {
  readonly pull: Established["pull"]
  readonly writer: Socket.Writer
}

/** The initiator's side (A), on a connection just dialled. */
export const initiate = Effect.fnUntraced(function*(
  inner: Inner,
  options: {
    readonly peer: string
    readonly infoHash: Uint8Array
    /** crypto_provide. */
    readonly provide: number
    readonly stageMillis: number
    /** IA: what to send encrypted with the handshake (default: nothing). */
    readonly initialPayload?: Uint8Array | undefined
  }
) {
  const { peer, infoHash, provide, stageMillis } = options
  const fail = (reason: EncryptionErrorReason) => Effect.fail(new EncryptionError({ peer, reason }))
  /** Our message, written as part of the stage that waits for the answer. */
  const write = (name: Stage, bytes: Uint8Array) => stage(peer, name, stageMillis, inner.writer.write(bytes))
  const inbox = new Inbox(inner.pull)
  const privateKey = randomBytes(Mse.privateKeyLength)
  yield* write("Yb", concat([Mse.publicKey(privateKey), yield* randomPadding(minPadA, Mse.maxPadding)]))

  yield* stage(peer, "Yb", stageMillis, inbox.atLeast(Mse.keyLength))
  const yb = inbox.take(Mse.keyLength)
  if (!Mse.isValidPublicKey(yb)) return yield* fail(new BadPublicKey())
  const s = Mse.secret(privateKey, yb)
  const { encrypt, decrypt } = Mse.ciphers(s, infoHash, "A")
  const ia = options.initialPayload?.slice() ?? new Uint8Array(0)
  const block = Mse.verificationBlock(encrypt, provide, new Uint8Array(0), ia.length)
  encrypt.process(ia)
  yield* write("VC", concat([Mse.req1(s), Mse.xor(Mse.req2(infoHash), Mse.req3(s)), block, ia]))

  // PadB, then B's VC: the first 8 bytes of its keystream (VC is zeros), which `decrypt` moves past.
  const marker = new Uint8Array(Mse.vc.length)
  decrypt.process(marker)
  yield* stage(
    peer,
    "VC",
    stageMillis,
    skipTo(
      inbox,
      marker,
      (searched) => new EncryptionError({ peer, reason: new MarkerNotFound({ marker: "ENCRYPT(VC)", searched }) })
    )
  )

  const selected = yield* stage(
    peer,
    "crypto_select",
    stageMillis,
    Effect.gen(function*() {
      yield* inbox.atLeast(6)
      const head = inbox.take(6)
      decrypt.process(head)
      const view = new DataView(head.buffer, head.byteOffset, 6)
      const selected = view.getUint32(0)
      const padding = view.getUint16(4)
      if ((selected !== Mse.rc4 && selected !== Mse.plaintext) || (selected & provide) === 0) {
        return yield* fail(new BadSelect({ selected, provided: provide }))
      }
      if (padding > Mse.maxPadding) return yield* fail(new PaddingTooLong({ field: "PadD", length: padding }))
      yield* inbox.atLeast(padding)
      decrypt.process(inbox.take(padding))
      return selected
    })
  )
  const rest = inbox.rest()
  if (selected === Mse.rc4) {
    decrypt.process(rest)
    return { ...inner, encrypt, decrypt, leftover: rest } satisfies Established
  }
  return plain(inner, rest)
})

/** The responder's side (B), on a connection whose first bytes are not a plain handshake. */
const respond = Effect.fnUntraced(function*(
  inner: Inner,
  inbox: Inbox,
  options: {
    readonly peer: string
    /** The crypto methods we accept. */
    readonly accepted: number
    /** The info-hash whose HASH('req2', …) this is, if we serve it. */
    readonly lookup: (req2: Uint8Array) => Uint8Array | undefined
    readonly stageMillis: number
  }
) {
  const { peer, accepted, stageMillis } = options
  const fail = (reason: EncryptionErrorReason) => Effect.fail(new EncryptionError({ peer, reason }))
  /** Our message, written as part of the stage that waits for the answer. */
  const write = (name: Stage, bytes: Uint8Array) => stage(peer, name, stageMillis, inner.writer.write(bytes))

  yield* stage(peer, "Ya", stageMillis, inbox.atLeast(Mse.keyLength))
  const ya = inbox.take(Mse.keyLength)
  if (!Mse.isValidPublicKey(ya)) return yield* fail(new BadPublicKey())
  const privateKey = randomBytes(Mse.privateKeyLength)
  yield* write("req1", concat([Mse.publicKey(privateKey), yield* randomPadding(0, Mse.maxPadding)]))
  const s = Mse.secret(privateKey, ya)

  yield* stage(
    peer,
    "req1",
    stageMillis,
    skipTo(
      inbox,
      Mse.req1(s),
      (searched) => new EncryptionError({ peer, reason: new MarkerNotFound({ marker: "HASH('req1', S)", searched }) })
    )
  )

  const { encrypt, decrypt, provided, ia } = yield* stage(
    peer,
    "crypto_provide",
    stageMillis,
    Effect.gen(function*() {
      yield* inbox.atLeast(20 + 8 + 4 + 2)
      const infoHash = options.lookup(Mse.xor(inbox.take(20), Mse.req3(s)))
      if (infoHash === undefined) return yield* fail(new UnknownTorrent())
      const { encrypt, decrypt } = Mse.ciphers(s, infoHash, "B")
      const head = inbox.take(8 + 4 + 2)
      decrypt.process(head)
      if (head.subarray(0, 8).some((byte) => byte !== 0)) return yield* fail(new BadVerification())
      const view = new DataView(head.buffer, head.byteOffset, head.length)
      const provided = view.getUint32(8)
      const padding = view.getUint16(12)
      if (padding > Mse.maxPadding) return yield* fail(new PaddingTooLong({ field: "PadC", length: padding }))
      yield* inbox.atLeast(padding + 2)
      const tail = inbox.take(padding + 2)
      decrypt.process(tail)
      const iaLength = (tail[padding]! << 8) | tail[padding + 1]!
      yield* inbox.atLeast(iaLength)
      const ia = inbox.take(iaLength)
      decrypt.process(ia)
      return { encrypt, decrypt, provided, ia }
    })
  )
  const selected = Mse.select(provided, accepted)
  if (selected === 0) return yield* fail(new NoCommonMethod({ provided, accepted }))
  yield* write("crypto_provide", Mse.verificationBlock(encrypt, selected, new Uint8Array(0)))
  const rest = inbox.rest()
  if (selected === Mse.rc4) {
    decrypt.process(rest)
    return { ...inner, encrypt, decrypt, leftover: concat([ia, rest]) } satisfies Established
  }
  return plain(inner, concat([ia, rest]))
})
