/**
 * RC4, the stream cipher of message stream encryption (MSE/PE). Node 20's
 * OpenSSL 3 offers it only through the legacy provider, so it is here, in
 * TypeScript.
 *
 * A small mutable class: one per direction of a connection, its state (256
 * bytes and two indexes) advanced by every byte it processes. `process`
 * XORs the keystream into a `Uint8Array` in place: no allocation per byte,
 * and a view (`subarray`) works as well as a whole buffer. The bulk of a
 * buffer is done four bytes at a time through a `Uint32Array` over the same
 * memory (on little-endian machines, which is every platform Node runs on
 * in practice; elsewhere byte by byte).
 */

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

export class Rc4 {
  private readonly s = new Uint8Array(256)
  private i = 0
  private j = 0

  /** The key-scheduling algorithm on `key` (1 to 256 bytes; MSE's are 20). */
  constructor(key: Uint8Array) {
    if (key.length === 0 || key.length > 256) throw new RangeError(`an RC4 key is 1 to 256 bytes, not ${key.length}`)
    const s = this.s
    for (let i = 0; i < 256; i++) s[i] = i
    let j = 0
    for (let i = 0; i < 256; i++) {
      const t = s[i]!
      j = (j + t + key[i % key.length]!) & 255
      s[i] = s[j]!
      s[j] = t
    }
  }

  /** XORs the next `bytes.length` bytes of keystream into `bytes` (encrypts or decrypts it in place). */
  process(bytes: Uint8Array): void {
    const s = this.s
    const n = bytes.length
    let i = this.i
    let j = this.j
    let k = 0
    if (littleEndian && n >= 8) {
      // Bytes up to a 4-byte boundary of the underlying buffer, then whole words.
      const head = (4 - (bytes.byteOffset & 3)) & 3
      for (; k < head; k++) {
        i = (i + 1) & 255
        const si = s[i]!
        j = (j + si) & 255
        const sj = s[j]!
        s[i] = sj
        s[j] = si
        bytes[k]! ^= s[(si + sj) & 255]!
      }
      const count = (n - k) >>> 2
      const words = new Uint32Array(bytes.buffer, bytes.byteOffset + k, count)
      for (let w = 0; w < count; w++) {
        i = (i + 1) & 255
        let si = s[i]!
        j = (j + si) & 255
        let sj = s[j]!
        s[i] = sj
        s[j] = si
        let x = s[(si + sj) & 255]!
        i = (i + 1) & 255
        si = s[i]!
        j = (j + si) & 255
        sj = s[j]!
        s[i] = sj
        s[j] = si
        x |= s[(si + sj) & 255]! << 8
        i = (i + 1) & 255
        si = s[i]!
        j = (j + si) & 255
        sj = s[j]!
        s[i] = sj
        s[j] = si
        x |= s[(si + sj) & 255]! << 16
        i = (i + 1) & 255
        si = s[i]!
        j = (j + si) & 255
        sj = s[j]!
        s[i] = sj
        s[j] = si
        x |= s[(si + sj) & 255]! << 24
        words[w]! ^= x
      }
      k += count << 2
    }
    for (; k < n; k++) {
      i = (i + 1) & 255
      const si = s[i]!
      j = (j + si) & 255
      const sj = s[j]!
      s[i] = sj
      s[j] = si
      bytes[k]! ^= s[(si + sj) & 255]!
    }
    this.i = i
    this.j = j
  }

  /** Advances the keystream by `count` bytes, using none (MSE discards the first 1024). */
  discard(count: number): void {
    const s = this.s
    let i = this.i
    let j = this.j
    for (let k = 0; k < count; k++) {
      i = (i + 1) & 255
      const si = s[i]!
      j = (j + si) & 255
      s[i] = s[j]!
      s[j] = si
    }
    this.i = i
    this.j = j
  }
}
