import { assert, describe, it } from "@effect/vitest"
import type { PeerKey } from "../../src/peer/PeerEvent.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Metadata from "../../src/protocol/Metadata.ts"
import { MetadataAssembly, requestTimeoutMillis } from "../../src/torrent/MetadataAssembly.ts"

/** Two metadata pieces. */
const info = Bencode.encode({
  length: 1000 * 16384,
  name: "x",
  "piece length": 16384,
  pieces: Buffer.alloc(1000 * 20, 3)
})
const a = "10.0.0.1:6881" as PeerKey
const b = "10.0.0.2:6881" as PeerKey
const c = "10.0.0.3:6881" as PeerKey

const make = () => {
  const assembly = new MetadataAssembly(InfoHash.ofInfo(info))
  assembly.claim(a, info.length)
  assembly.claim(b, info.length)
  return assembly
}

const data = (assembly: MetadataAssembly, peer: PeerKey, piece: number) => {
  const answer = Metadata.answer(info, piece)
  assert(answer._tag === "Data")
  return assembly.received(peer, piece, answer.totalSize, answer.block)
}

describe("MetadataAssembly", () => {
  it("a piece answered by one peer and then, late, by another counts against neither", () => {
    const assembly = make()
    assert.deepStrictEqual(assembly.next(a, 0), [0, 1])
    assert.deepStrictEqual(assembly.next(b, 0), [0, 1], "every piece is out: the same ones")
    assert.deepStrictEqual(data(assembly, a, 0), { _tag: "Ok" })
    assert.deepStrictEqual(data(assembly, b, 0), { _tag: "Ok" })
    assert.strictEqual(assembly.expire(a, requestTimeoutMillis), 1, "piece 1 only")
    assert.strictEqual(assembly.expire(b, requestTimeoutMillis), 1, "piece 1 only")
    assert.deepStrictEqual(assembly.next(b, requestTimeoutMillis), [1])
    assert.strictEqual(data(assembly, b, 1)._tag, "Done")
  })

  it("a banned peer's pieces are thrown away and asked again; the others' are kept", () => {
    const assembly = make()
    assert.deepStrictEqual(assembly.next(a, 0), [0, 1])
    assert.deepStrictEqual(data(assembly, a, 0), { _tag: "Ok" })
    assembly.left(a, true)
    assert.deepStrictEqual(assembly.next(b, 0), [0, 1])
    assert.deepStrictEqual(data(assembly, b, 1), { _tag: "Ok" })
    assembly.claim(c, info.length)
    assert.deepStrictEqual(assembly.next(c, 0), [0], "piece 1 is in")
  })
})
