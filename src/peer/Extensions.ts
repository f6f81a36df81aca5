/**
 * Extensions: one connection's view of the extension protocol (BEP 10).
 *
 * It builds our extended handshake, remembers what the peer's handshakes
 * said (its message ids, port, `reqq`, `metadata_size`), reads the peer's
 * extension messages and answers its ut_metadata requests from our metadata
 * (`reject` while we have none). Used by the download sessions and by the
 * metadata fetcher's sessions alike.
 */
import { Result } from "effect"
import * as Extension from "../protocol/Extension.ts"
import * as Metadata from "../protocol/Metadata.ts"
import * as Pex from "../protocol/Pex.ts"
import type { WireMessage } from "../protocol/WireMessage.ts"

/** An extension message from the peer, read. */
export type Received =
  | { readonly _tag: "Handshake"; readonly handshake: Extension.PeerHandshake }
  | { readonly _tag: "Metadata"; readonly message: Metadata.MetadataMessage }
  | { readonly _tag: "Pex"; readonly message: Pex.PexMessage }
  /** An extension we did not offer this peer. */
  | { readonly _tag: "Ignored" }

export interface Options {
  /** The extensions we offer this peer. */
  readonly offer: ReadonlyArray<Extension.Name>
  /** The info dictionary we serve; undefined while we have none (we reject requests). */
  readonly metadata: Uint8Array | undefined
  readonly port: number
  /** Most requests we queue from the peer. */
  readonly reqq: number
  readonly peerHost: string
  /** Our IPv6 address, told to the peer, if we have one. */
  readonly ipv6?: string | undefined
}

export class Extensions {
  /** What the peer's handshakes said so far. */
  peer: Extension.PeerHandshake | undefined = undefined

  constructor(readonly options: Options) {}

  /** Our extended handshake; `uploadOnly` (BEP 21) once we download nothing more, and in a later handshake that says so. */
  handshake(uploadOnly?: boolean): WireMessage {
    return {
      _tag: "Extended",
      id: 0,
      payload: Extension.encodeHandshake({
        extensions: this.options.offer,
        port: this.options.port,
        reqq: this.options.reqq,
        peerHost: this.options.peerHost,
        ipv6: this.options.ipv6,
        metadataSize: this.options.metadata?.length,
        uploadOnly
      })
    }
  }

  /** The id the peer receives `name` on, if it speaks it. */
  idOf(name: Extension.Name): number | undefined {
    return this.peer?.ids[name]
  }

  /** Reads one `Extended` message from the peer. */
  receive(id: number, payload: Uint8Array): Result.Result<Received, Extension.ExtensionError> {
    if (id === 0) {
      return Result.map(Extension.decodeHandshake(payload), (handshake) => {
        this.peer = Extension.update(this.peer, handshake)
        return { _tag: "Handshake", handshake: this.peer }
      })
    }
    if (id === Extension.ours.ut_metadata && this.options.offer.includes("ut_metadata")) {
      return Result.map(Metadata.parse(payload), (message) => ({ _tag: "Metadata", message }))
    }
    if (id === Extension.ours.ut_pex && this.options.offer.includes("ut_pex")) {
      return Result.map(Pex.parse(payload), (message) => ({ _tag: "Pex", message }))
    }
    return Result.succeed({ _tag: "Ignored" })
  }

  /** A ut_metadata message to the peer, if it speaks ut_metadata. */
  metadataMessage(message: Metadata.MetadataMessage): WireMessage | undefined {
    const id = this.idOf("ut_metadata")
    return id === undefined ? undefined : { _tag: "Extended", id, payload: Metadata.encode(message) }
  }

  /** Our answer to the peer's ut_metadata request for `piece`: the data, or `reject` while we have none (or `busy`). */
  answer(piece: number, busy = false): ReadonlyArray<WireMessage> {
    const reply = this.metadataMessage(Metadata.answer(busy ? undefined : this.options.metadata, piece))
    return reply === undefined ? [] : [reply]
  }
}
