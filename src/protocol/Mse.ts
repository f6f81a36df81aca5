/**
 * Message stream encryption (MSE, also called PE; Vuze's specification, as
 * libtorrent, Transmission, aria2 and µTorrent speak it): the pure parts.
 * The handshake over a connection is `peer/Encryption.ts`.
 *
 * ```
 * 1 A→B: Ya, PadA
 * 2 B→A: Yb, PadB
 * 3 A→B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
 *        ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
 * 4 B→A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
 * 5 A→B: ENCRYPT2(payload)
 * ```
 *
 * Y is a 768-bit Diffie-Hellman public key (96 bytes, big-endian), S the
 * shared secret, SKEY the torrent's info-hash, VC eight zero bytes, every Pad
 * 0 to 512 random bytes. ENCRYPT is RC4 keyed by HASH('keyA', S, SKEY) from A
 * and HASH('keyB', S, SKEY) from B, the first 1024 bytes of each keystream
 * discarded; ENCRYPT2 is the same stream continued when RC4 was selected, or
 * nothing (plaintext) when plaintext was.
 */
import { createDiffieHellman, createHash, type DiffieHellman } from "node:crypto"
import { Rc4 } from "./Rc4.ts"

/** The 768-bit prime P of the specification. */
export const prime: Uint8Array = Buffer.from(
  "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
  "hex"
)
export const generator = 2
/** Bytes of a public key (Ya, Yb) and of S. */
export const keyLength = 96
/** Bytes of a private key: 160 bits, as the specification recommends. */
export const privateKeyLength = 20
/** Longest PadA, PadB, PadC and PadD. */
export const maxPadding = 512
/** The verification constant. */
export const vc: Uint8Array = new Uint8Array(8)
/** Keystream bytes thrown away before the first use. */
export const discarded = 1024

/** crypto_provide / crypto_select bits. */
export const plaintext = 0x01
export const rc4 = 0x02

const primeNumber = BigInt(`0x${Buffer.from(prime).toString("hex")}`)

/**
 * One Diffie-Hellman object over P for the whole process, its private key set
 * before each use. Making one checks that P is a safe prime, ~20 ms of CPU:
 * once, not per connection.
 */
let group: DiffieHellman | undefined
const dh = () => (group ??= createDiffieHellman(Buffer.from(prime), generator))

/** `bytes` as `length` bytes, left-padded with zeros. */
const padded = (bytes: Uint8Array, length: number) => {
  if (bytes.length === length) return new Uint8Array(bytes)
  const out = new Uint8Array(length)
  out.set(bytes.subarray(Math.max(0, bytes.length - length)), Math.max(0, length - bytes.length))
  return out
}

/** Our public key Y = 2^X mod P for the private key X (96 bytes). */
export const publicKey = (privateKey: Uint8Array): Uint8Array => {
  const group = dh()
  group.setPrivateKey(privateKey)
  return padded(group.generateKeys(), keyLength)
}

/** Whether `key` can be a peer's public key: 96 bytes, 1 < Y < P - 1. */
export const isValidPublicKey = (key: Uint8Array): boolean => {
  if (key.length !== keyLength) return false
  const y = BigInt(`0x${Buffer.from(key).toString("hex")}`)
  return y > 1n && y < primeNumber - 1n
}

/** The shared secret S from our private key and the peer's public key (checked with `isValidPublicKey` first). */
export const secret = (privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array => {
  const group = dh()
  group.setPrivateKey(privateKey)
  return padded(group.computeSecret(peerPublicKey), keyLength)
}

/** SHA-1 of the concatenation of `parts` (strings as latin1). */
const hash = (...parts: ReadonlyArray<string | Uint8Array>): Uint8Array => {
  const sha1 = createHash("sha1")
  for (const part of parts) sha1.update(typeof part === "string" ? Buffer.from(part, "latin1") : part)
  return new Uint8Array(sha1.digest())
}

/** HASH('req1', S): where A's PadA ends. */
export const req1 = (s: Uint8Array) => hash("req1", s)

/** HASH('req2', SKEY): how B recognises the torrent, once it has taken HASH('req3', S) off. */
export const req2 = (infoHash: Uint8Array) => hash("req2", infoHash)

export const req3 = (s: Uint8Array) => hash("req3", s)

/** `a` xor `b`, both 20 bytes. */
export const xor = (a: Uint8Array, b: Uint8Array): Uint8Array => a.map((byte, i) => byte ^ b[i]!)

/** The two ciphers of a connection, 1024 bytes of each keystream discarded. */
export interface Ciphers {
  /** What we send. */
  readonly encrypt: Rc4
  /** What we receive. */
  readonly decrypt: Rc4
}

/** A (the side that dialled) encrypts with keyA and decrypts with keyB; B the other way round. */
export const ciphers = (s: Uint8Array, infoHash: Uint8Array, role: "A" | "B"): Ciphers => {
  const keyA = new Rc4(hash("keyA", s, infoHash))
  const keyB = new Rc4(hash("keyB", s, infoHash))
  keyA.discard(discarded)
  keyB.discard(discarded)
  return role === "A" ? { encrypt: keyA, decrypt: keyB } : { encrypt: keyB, decrypt: keyA }
}

/**
 * The method B picks among those A provides, of those `accepted`:
 * plaintext before RC4 when both are accepted (RC4 costs CPU, and a peer
 * that wants it offers nothing else); 0: none.
 */
export const select = (provided: number, accepted: number): number => {
  const common = provided & accepted
  return (common & plaintext) !== 0 ? plaintext : (common & rc4) !== 0 ? rc4 : 0
}

/**
 * ENCRYPT(VC, crypto_field, len(Pad), Pad[, len(IA)]): message 3's encrypted
 * part (with `iaLength`, IA itself following) or message 4's (without).
 */
export const verificationBlock = (
  cipher: Rc4,
  cryptoField: number,
  padding: Uint8Array,
  iaLength?: number
): Uint8Array => {
  const out = new Uint8Array(8 + 4 + 2 + padding.length + (iaLength === undefined ? 0 : 2))
  const view = new DataView(out.buffer)
  view.setUint32(8, cryptoField)
  view.setUint16(12, padding.length)
  out.set(padding, 14)
  if (iaLength !== undefined) view.setUint16(14 + padding.length, iaLength)
  cipher.process(out)
  return out
}

/** Where `needle` first occurs in `haystack`, or -1. */
export const indexOf = (haystack: Uint8Array, needle: Uint8Array): number =>
  Buffer.from(haystack.buffer, haystack.byteOffset, haystack.length).indexOf(
    Buffer.from(needle.buffer, needle.byteOffset, needle.length)
  )

/** "\x13BitTorrent protocol": how a plain (unencrypted) connection starts. */
export const plainPrefix: Uint8Array = Buffer.concat([Buffer.from([19]), Buffer.from("BitTorrent protocol", "latin1")])

/**
 * What the first bytes of an incoming connection say: "plain" (a BitTorrent
 * handshake), "encrypted" (anything else: a DH key), or undefined while the
 * bytes so far could still be either.
 */
export const classify = (first: Uint8Array): "plain" | "encrypted" | undefined => {
  const n = Math.min(first.length, plainPrefix.length)
  for (let i = 0; i < n; i++) if (first[i] !== plainPrefix[i]) return "encrypted"
  return n === plainPrefix.length ? "plain" : undefined
}
