import { assert, describe, it } from "@effect/vitest"
import * as AllowedFast from "../../src/protocol/AllowedFast.ts"

describe("AllowedFast", () => {
  const infoHash = new Uint8Array(20).fill(0xaa)

  it("matches the BEP 6 example (80.4.4.200, 1313 pieces)", () => {
    assert.deepStrictEqual(AllowedFast.compute("80.4.4.200", infoHash, 1313, 7), [1059, 431, 808, 1217, 287, 376, 1188])
    assert.deepStrictEqual(AllowedFast.compute("80.4.4.200", infoHash, 1313, 9), [
      1059,
      431,
      808,
      1217,
      287,
      376,
      1188,
      353,
      508
    ])
  })

  it("ignores the last octet, and is empty for IPv6", () => {
    assert.deepStrictEqual(
      AllowedFast.compute("80.4.4.1", infoHash, 1313, 7),
      AllowedFast.compute("80.4.4.200", infoHash, 1313, 7)
    )
    assert.deepStrictEqual(AllowedFast.compute("::1", infoHash, 1313), [])
  })

  it("never asks for more pieces than the torrent has", () => {
    assert.deepStrictEqual(AllowedFast.compute("10.0.0.1", infoHash, 3).sort(), [0, 1, 2])
  })
})
