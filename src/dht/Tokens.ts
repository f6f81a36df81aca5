/**
 * announce_peer tokens (BEP 5): a get_peers reply carries a token that the
 * querier must return when it announces, proving it owns its IP address. A
 * token is the SHA-1 of the querier's IP and a secret (first 8 bytes, plenty
 * against guessing); the secret changes every 5 minutes and tokens from the
 * current and the previous one are accepted, so a token lives 5 to 10 minutes.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { Duration, Effect } from "effect"
import type { Scope } from "effect"

export const ROTATION = Duration.minutes(5)
const TOKEN_LENGTH = 8

export interface Tokens {
  /** The token to give `host` now. */
  readonly issue: (host: string) => Uint8Array
  /** Whether `token` is one we gave `host` within the last two rotations. */
  readonly check: (host: string, token: Uint8Array) => boolean
}

export const tokenFor = (secret: Uint8Array, host: string): Uint8Array =>
  createHash("sha1").update(host).update(secret).digest().subarray(0, TOKEN_LENGTH)

/**
 * Tokens whose secret rotates every 5 minutes for as long as the scope is open.
 *
 * The secret comes from node:crypto, not Effect's `Random`: its whole job is to
 * be unguessable (whoever can predict it can forge tokens and announce any
 * address), and `Random` is `Math.random` by default and fixed by a seed.
 */
export const make: Effect.Effect<Tokens, never, Scope.Scope> = Effect.gen(function*() {
  let current: Uint8Array = randomBytes(20)
  let previous = current
  yield* Effect.sync(() => {
    previous = current
    current = randomBytes(20)
  }).pipe(Effect.delay(ROTATION), Effect.forever, Effect.forkScoped)
  const matches = (secret: Uint8Array, host: string, token: Uint8Array) =>
    token.length === TOKEN_LENGTH && timingSafeEqual(tokenFor(secret, host), token)
  return {
    issue: (host) => tokenFor(current, host),
    check: (host, token) => matches(current, host, token) || matches(previous, host, token)
  }
})
