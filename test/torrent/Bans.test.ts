import { assert, describe, it } from "@effect/vitest"
import { Bans, hostBanAfter } from "../../src/torrent/Bans.ts"

describe("Bans", () => {
  it("a banned peer is refused by address and by id; its host only for a cool-down", () => {
    const bans = new Bans()
    bans.ban("10.0.0.1:6881", "id-1", 0)
    assert.isTrue(bans.refuses("10.0.0.1:6881", 10 ** 9))
    assert.isTrue(bans.hasId("id-1"))
    assert.isTrue(bans.refuses("10.0.0.1:7000", 29_999), "the host is held back")
    assert.isFalse(bans.refuses("10.0.0.1:7000", 30_000), "then another client there may connect")
    assert.isFalse(bans.refuses("10.0.0.2:6881", 0))
  })

  it("each further ban at a host makes its cool-down 4 times longer", () => {
    const bans = new Bans()
    bans.ban("10.0.0.1:1", "a", 0)
    bans.ban("10.0.0.1:2", "a", 30_000)
    assert.isTrue(bans.refuses("10.0.0.1:3", 30_000 + 119_999))
    assert.isFalse(bans.refuses("10.0.0.1:3", 30_000 + 120_000))
  })

  it(`peers with ${hostBanAfter} different ids banned at one host ban the host`, () => {
    const bans = new Bans()
    for (let i = 1; i < hostBanAfter; i++) bans.ban(`10.0.0.1:${i}`, `id-${i}`, 0)
    assert.isFalse(bans.refuses("10.0.0.1:9999", 10 ** 9))
    bans.ban(`10.0.0.1:${hostBanAfter}`, `id-${hostBanAfter}`, 0)
    assert.isTrue(bans.refuses("10.0.0.1:9999", 10 ** 12))
    assert.isFalse(bans.refuses("10.0.0.2:9999", 0), "other hosts are not")
  })
})
