import type { WireMessage } from "../../src/protocol/WireMessage.ts"

/** One message of each type, with payloads worth splitting. */
export const everyMessage: ReadonlyArray<WireMessage> = [
  { _tag: "KeepAlive" },
  { _tag: "Choke" },
  { _tag: "Unchoke" },
  { _tag: "Interested" },
  { _tag: "NotInterested" },
  { _tag: "Have", index: 0xfffffffe },
  { _tag: "Bitfield", bytes: new Uint8Array([0xff, 0x01, 0x80]) },
  { _tag: "Request", index: 1, begin: 0x4000, length: 0x4000 },
  { _tag: "Piece", index: 2, begin: 0x8000, block: Uint8Array.from({ length: 37 }, (_, i) => i * 7) },
  { _tag: "Cancel", index: 1, begin: 0x4000, length: 0x4000 },
  { _tag: "Port", port: 6881 },
  { _tag: "HaveAll" },
  { _tag: "HaveNone" },
  { _tag: "Suggest", index: 3 },
  { _tag: "RejectRequest", index: 4, begin: 0, length: 0x4000 },
  { _tag: "AllowedFast", index: 5 },
  { _tag: "Extended", id: 0, payload: new TextEncoder().encode("d1:md11:ut_metadatai1eee") },
  { _tag: "HashRequest", piecesRoot: new Uint8Array(32).fill(7), baseLayer: 1, index: 0, length: 4, proofLayers: 2 },
  {
    _tag: "Hashes",
    piecesRoot: new Uint8Array(32).fill(7),
    baseLayer: 1,
    index: 0,
    length: 1,
    proofLayers: 0,
    hashes: Uint8Array.from({ length: 64 }, (_, i) => i)
  },
  { _tag: "HashReject", piecesRoot: new Uint8Array(32).fill(7), baseLayer: 1, index: 0, length: 4, proofLayers: 2 },
  { _tag: "KeepAlive" }
]
