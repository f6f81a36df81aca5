import { assert, describe, it } from "@effect/vitest"
import * as Coordinator from "../../src/peer/Coordinator.ts"
import { type BlockRequest, blockSize } from "../../src/protocol/Block.ts"

const request = (index: number, block: number, length = blockSize): BlockRequest => ({
  index,
  begin: block * blockSize,
  length
})

/** `count` full blocks of piece `index`, starting at block `from`. */
const requests = (index: number, count: number, from = 0) =>
  Array.from({ length: count }, (_, i) => request(index, from + i))

/** Sends `count` requests at `now` and receives them all at `now`. */
const transfer = (c: Coordinator.State, index: number, count: number, now: number) => {
  const rs = requests(index, count)
  c.sent(rs, now)
  for (const r of rs) assert.isTrue(c.received(r.index, r.begin, r.length, now))
}

describe("Coordinator", () => {
  describe("pipeline depth", () => {
    /** The floor: the depth before any data, whatever minDepth is set to. */
    const floor = Coordinator.make({ requestTimeoutMillis: 30_000 }).depth
    /** Two seconds' worth of blocks at `blocksPerSecond`, between the floor and `max`. */
    const expected = (blocksPerSecond: number, max = 250) =>
      Math.min(max, Math.max(floor, Math.ceil(2 * blocksPerSecond)))

    it("starts at a small floor and stays there with no data", () => {
      assert.isTrue(floor >= 1 && floor < 100, `floor ${floor}`)
      const c = Coordinator.make({ requestTimeoutMillis: 30_000 })
      c.tick(1000)
      assert.strictEqual(c.rate, 0)
      assert.strictEqual(c.depth, floor)
    })

    it("grows with the peer's rate: two seconds' worth of blocks", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000 })
      // 80 blocks in one second: 1.25 MiB/s, 2 s of it is 160 blocks.
      transfer(c, 0, 80, 0)
      c.tick(1000)
      assert.strictEqual(c.rate, 80 * blockSize)
      assert.strictEqual(c.depth, 160)
      // 120 blocks next second: the rate is smoothed 0.6/0.4, to 96 blocks/s.
      transfer(c, 1, 120, 1000)
      c.tick(1000)
      assert.strictEqual(c.rate, 96 * blockSize)
      assert.strictEqual(c.depth, 192)
    })

    it("measures the rate over the elapsed time, not per tick", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000 })
      transfer(c, 0, 160, 0)
      c.tick(2000) // 160 blocks in 2 s is 80 blocks/s
      assert.strictEqual(c.depth, 160)
    })

    it("shrinks as the rate falls, down to the floor", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000 })
      transfer(c, 0, 100, 0)
      c.tick(1000)
      assert.strictEqual(c.depth, 200)
      let blocksPerSecond = 100
      for (let k = 0; k < 12; k++) {
        c.tick(1000) // nothing arrived: the rate decays by 0.6 a tick
        blocksPerSecond *= 0.6
        assert.strictEqual(c.depth, expected(blocksPerSecond), `after ${k + 1} idle ticks`)
      }
      assert.strictEqual(c.depth, floor)
    })

    it("is capped at maxDepth (250 by default, the peer's reqq otherwise)", () => {
      const byDefault = Coordinator.make({ requestTimeoutMillis: 30_000 })
      transfer(byDefault, 0, 1000, 0) // 2000 blocks of appetite
      byDefault.tick(1000)
      assert.strictEqual(byDefault.depth, 250)

      const limited = Coordinator.make({ requestTimeoutMillis: 30_000, maxDepth: 150 })
      transfer(limited, 0, 100, 0) // 200 blocks of appetite
      limited.tick(1000)
      assert.strictEqual(limited.depth, 150)

      limited.setMaxDepth(180)
      transfer(limited, 1, 500, 1000) // rate 0.6 · 100 + 0.4 · 500 = 260 blocks/s
      limited.tick(1000)
      assert.strictEqual(limited.depth, 180)
      limited.setMaxDepth(0) // at least one request
      limited.tick(1000)
      assert.strictEqual(limited.depth, Math.min(1, expected(260 * 0.6)))
    })
  })

  describe("received", () => {
    it("accepts only requested blocks of the requested length, once", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000 })
      const short = request(3, 1, 1000)
      c.sent([request(3, 0), short], 0)
      assert.strictEqual(c.outstanding, 2)

      assert.isFalse(c.received(3, 2 * blockSize, blockSize, 10), "never requested")
      assert.isFalse(c.received(4, 0, blockSize, 10), "another piece")
      assert.isFalse(c.received(3, 0, blockSize - 1, 10), "too short")
      assert.isFalse(c.received(3, blockSize, blockSize, 10), "longer than requested")
      assert.strictEqual(c.outstanding, 2, "rejected blocks leave the requests outstanding")
      assert.isTrue(c.has(3, 0))

      assert.isTrue(c.received(3, 0, blockSize, 10))
      assert.isTrue(c.received(3, blockSize, 1000, 10))
      assert.strictEqual(c.outstanding, 0)
      assert.isFalse(c.received(3, 0, blockSize, 11), "a duplicate")
    })

    it("rejects a block whose request was cancelled or rejected", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000 })
      c.sent([request(0, 0), request(0, 1)], 0)
      c.cancel(0, 0)
      assert.isFalse(c.received(0, 0, blockSize, 5))
      assert.deepStrictEqual(c.rejected(0, blockSize), request(0, 1))
      assert.isUndefined(c.rejected(0, blockSize), "only once")
      assert.isFalse(c.received(0, blockSize, blockSize, 5))
    })

    it("only received blocks count towards the rate", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000 })
      c.sent(requests(0, 10), 0)
      c.received(0, 0, 1, 0) // wrong length
      c.received(1, 0, blockSize, 0) // not asked
      assert.isTrue(c.received(0, 0, blockSize, 0))
      c.tick(1000)
      assert.strictEqual(c.rate, blockSize)
    })
  })

  describe("expire", () => {
    it("returns exactly the requests older than the timeout, once", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000 })
      const early = requests(0, 2)
      const late = requests(1, 1)
      c.sent(early, 1_000)
      c.sent(late, 5_000)

      assert.deepStrictEqual(c.expire(1_000), [])
      assert.deepStrictEqual(c.expire(30_999), [], "1 ms before the first deadline")
      assert.deepStrictEqual(c.expire(31_000), early, "at the first deadline")
      assert.strictEqual(c.outstanding, 1)
      assert.isFalse(c.has(0, 0))
      assert.isFalse(c.received(0, 0, blockSize, 31_000), "an expired request is forgotten")

      assert.deepStrictEqual(c.expire(34_999), [], "1 ms before the second deadline")
      assert.deepStrictEqual(c.expire(35_000), late, "at the second deadline")
      assert.deepStrictEqual(c.expire(100_000), [], "nothing left")
      assert.strictEqual(c.outstanding, 0)
    })

    it("a re-sent request gets a new deadline", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 10_000 })
      c.sent([request(0, 0)], 0)
      c.sent([request(0, 0)], 4_000)
      assert.deepStrictEqual(c.expire(10_000), [])
      assert.deepStrictEqual(c.expire(14_000), [request(0, 0)])
    })
  })

  it("clear (a choke) returns and forgets every outstanding request", () => {
    const c = Coordinator.make({ requestTimeoutMillis: 30_000 })
    const sent = [...requests(0, 2), request(7, 0, 500)]
    c.sent(sent, 0)
    assert.deepStrictEqual(c.clear(), sent)
    assert.strictEqual(c.outstanding, 0)
    assert.isFalse(c.received(0, 0, blockSize, 1))
    assert.deepStrictEqual(c.expire(1_000_000), [], "cleared requests do not expire later")
    assert.deepStrictEqual(c.clear(), [])
  })

  describe("isSnubbing", () => {
    it("only with requests outstanding", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000, snubMillis: 10_000 })
      assert.isFalse(c.isSnubbing(1_000_000))
    })

    it("after snubMillis with no block, counted from the first request", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000, snubMillis: 10_000 })
      c.sent(requests(0, 2), 0)
      c.sent(requests(1, 2), 5_000) // more requests do not restart the clock
      assert.isFalse(c.isSnubbing(9_999))
      assert.isTrue(c.isSnubbing(10_000))
    })

    it("a block restarts the clock; the default is 60 s", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000 })
      c.sent(requests(0, 2), 0)
      assert.isTrue(c.received(0, 0, blockSize, 50_000))
      assert.isFalse(c.isSnubbing(109_999))
      assert.isTrue(c.isSnubbing(110_000))
      assert.isTrue(c.received(0, blockSize, blockSize, 110_000))
      assert.isFalse(c.isSnubbing(1_000_000), "nothing outstanding")
      c.sent([request(1, 0)], 200_000) // the first request after a quiet spell starts the clock
      assert.isFalse(c.isSnubbing(259_999))
      assert.isTrue(c.isSnubbing(260_000))
    })

    it("a choke (clear) ends the snub", () => {
      const c = Coordinator.make({ requestTimeoutMillis: 30_000, snubMillis: 10_000 })
      c.sent(requests(0, 1), 0)
      assert.isTrue(c.isSnubbing(10_000))
      c.clear()
      assert.isFalse(c.isSnubbing(10_000))
    })
  })
})
