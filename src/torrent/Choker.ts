/**
 * The choking algorithm (BEP 3, as mainline clients do it), pure so that
 * its rounds can be tested without a swarm.
 *
 * Every round (10 s) the `slots` interested peers that are best for us are
 * unchoked: while downloading, those that upload to us fastest; while
 * seeding, those we upload to fastest. A peer that snubs us loses its
 * regular slot. One more peer, the optimistic unchoke, is chosen at random
 * every third round (30 s) among the choked interested ones, newly connected
 * peers three times as likely, so that new peers get a chance to prove
 * themselves.
 */
import type { PeerKey } from "../peer/PeerEvent.ts"

export interface Candidate {
  readonly peer: PeerKey
  /** The peer wants our pieces. */
  readonly interested: boolean
  /** Bytes/s it sends us. */
  readonly downloadRate: number
  /** Bytes/s we send it. */
  readonly uploadRate: number
  readonly snubbing: boolean
  readonly connectedAt: number
}

export const roundMillis = 10_000
/** The optimistic unchoke rotates every this many rounds. */
export const optimisticRounds = 3
export const defaultSlots = 4
/** Connected for less than this: "new", favoured by the optimistic unchoke. */
const newPeerMillis = 60_000

export interface Round {
  /** Peers to unchoke; all others are choked. */
  readonly unchoked: ReadonlySet<PeerKey>
  readonly optimistic: PeerKey | undefined
}

/**
 * One rechoke round. `previousOptimistic` keeps its slot unless this round
 * rotates it (`rotate`) or it no longer qualifies. `random` is in [0, 1).
 */
export const rechoke = (
  candidates: ReadonlyArray<Candidate>,
  options: {
    readonly slots: number
    readonly seeding: boolean
    readonly now: number
    readonly rotate: boolean
    readonly previousOptimistic: PeerKey | undefined
    readonly random: () => number
  }
): Round => {
  const rate = (c: Candidate) => options.seeding ? c.uploadRate : c.downloadRate
  const regular = candidates
    .filter((c) => c.interested && !(c.snubbing && !options.seeding))
    .sort((a, b) => rate(b) - rate(a))
    .slice(0, options.slots)
  const unchoked = new Set(regular.map((c) => c.peer))
  const eligible = candidates.filter((c) => c.interested && !unchoked.has(c.peer))
  let optimistic = options.rotate ? undefined : eligible.find((c) => c.peer === options.previousOptimistic)?.peer
  if (optimistic === undefined && eligible.length > 0) {
    const weight = (c: Candidate) => options.now - c.connectedAt < newPeerMillis ? 3 : 1
    let pick = options.random() * eligible.reduce((sum, c) => sum + weight(c), 0)
    optimistic = eligible.find((c) => (pick -= weight(c)) < 0)?.peer ?? eligible[eligible.length - 1]!.peer
  }
  if (optimistic !== undefined) unchoked.add(optimistic)
  return { unchoked, optimistic }
}
