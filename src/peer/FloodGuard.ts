/**
 * FloodGuard: a budget for a peer's messages that cost us work and change
 * nothing (duplicate haves, requests we reject or drop, cancels of nothing,
 * repeated state messages, keep-alives, extension messages we do not speak).
 *
 * A token bucket: each such message takes a token; `refillPerSecond` come
 * back every second, up to `burst`. A peer that runs the bucket dry is
 * flooding us. The burst is twice the request queue we advertise (`reqq`),
 * so an honest peer whose whole pipeline is rejected by a choke stays well
 * inside it.
 */

export interface Options {
  readonly burst: number
  readonly refillPerSecond: number
}

export const defaults: Options = { burst: 4000, refillPerSecond: 400 }

export const make = (options: Options = defaults) => {
  let tokens = options.burst
  return {
    /** Takes a token for one useless message; false once the peer has none left. */
    spend: (): boolean => --tokens >= 0,
    /** Once per second. */
    refill: (): void => {
      tokens = Math.min(options.burst, Math.max(tokens, 0) + options.refillPerSecond)
    }
  }
}

export type FloodGuard = ReturnType<typeof make>
