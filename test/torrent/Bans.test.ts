import { assert, describe, it } from "@effect/vitest"
import { Bans, cooldownMillis, hostBanAfter } from "../../src/torrent/Bans.ts"

describe("Bans", () => {
  it("a banned peer is refused by address and by id; others at its host are not", () => {
    const bans = new Bans()
    bans.ban("10.0.0.1:6881", "id-1", 0)
    assert.isTrue(bans.refuses("10.0.0.1:6881", 10 ** 9))
    assert.isTrue(bans.hasId("id-1"))
    assert.isFalse(bans.refuses("10.0.0.1:7000", 0))
  })

  it("a second id banned at a host holds the host back for the cool-down", () => {
    const bans = new Bans()
    bans.ban("10.0.0.1:1", "a", 0)
    bans.ban("10.0.0.1:1", "a", 5)
    assert.isFalse(bans.refuses("10.0.0.1:2", 5), "the same id again is not a second client")
    bans.ban("10.0.0.1:2", "b", 1000)
    assert.isTrue(bans.refuses("10.0.0.1:3", 1000 + cooldownMillis - 1))
    assert.isFalse(bans.refuses("10.0.0.1:3", 1000 + cooldownMillis))
    assert.isFalse(bans.refuses("10.0.0.2:3", 1000), "other hosts are not held back")
  })

  it(`peers with ${hostBanAfter} different ids banned at one host ban the host`, () => {
    const bans = new Bans()
    for (let i = 1; i <= hostBanAfter; i++) bans.ban(`10.0.0.1:${i}`, `id-${i}`, 0)
    assert.isTrue(bans.refuses("10.0.0.1:9999", 10 ** 12))
    assert.isFalse(bans.refuses("10.0.0.2:9999", 0), "other hosts are not")
  })
})
