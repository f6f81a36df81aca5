/**
 * Blocks: the 16 KiB units in which pieces are requested and sent (BEP 3),
 * and a number naming each, for sets of outstanding requests.
 */

export const blockSize = 16 * 1024

export interface BlockRequest {
  readonly index: number
  readonly begin: number
  readonly length: number
}

/** A number naming one block (pieces have at most 64 Ki blocks: 1 GiB). */
export const blockKey = (index: number, begin: number): number => index * 0x10000 + begin / blockSize
