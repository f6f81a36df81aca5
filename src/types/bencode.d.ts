// bencode@4 ships no types; we use only its encoder (see src/protocol/Bencode.ts).
declare module "bencode" {
  const bencode: {
    encode(data: unknown): Uint8Array
    decode(data: Uint8Array, start?: number, end?: number, encoding?: string): unknown
  }
  export default bencode
}
