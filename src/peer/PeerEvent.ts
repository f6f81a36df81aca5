/**
 * What PeerSessions tell their host (a torrent's Orchestrator), and what it tells them back.
 * Sessions share no state: these messages are the only link.
 */
import type { Queue } from "effect"
import * as CompactPeer from "../protocol/CompactPeer.ts"
import type * as Extension from "../protocol/Extension.ts"
import type * as Handshake from "../protocol/Handshake.ts"
import type * as Metadata from "../protocol/Metadata.ts"
import type { WireMessage } from "../protocol/WireMessage.ts"
import type { Outcome, PeerErrorReason } from "./PeerSession.ts"
import type { BlockRequest } from "../protocol/Block.ts"

/** `host:port` of the remote peer (IPv6 hosts in brackets). */
export type PeerKey = string

export const keyOf: (address: { readonly host: string; readonly port: number }) => PeerKey = CompactPeer.format

/** The host of a peer key, without brackets. */
export const hostOf = (peer: PeerKey): string => peer.slice(0, peer.lastIndexOf(":")).replace(/^\[|\]$/g, "")

/** The address a peer key names. */
export const addressOf = (peer: PeerKey): { readonly host: string; readonly port: number } => ({
  host: hostOf(peer),
  port: Number(peer.slice(peer.lastIndexOf(":") + 1))
})

/** Commands for one session: wire messages to send, a metadata piece to ask for, or an order to hang up. */
export type PeerCommand =
  | WireMessage
  /** Asks the peer for a piece of the info dictionary (BEP 9), if it speaks ut_metadata. */
  | { readonly _tag: "RequestMetadata"; readonly piece: number }
  | { readonly _tag: "Disconnect"; readonly reason: PeerErrorReason; readonly detail: string }
  /** Tells the peer (BEP 21) whether we download nothing more, and lets the session flag itself so (PEX). */
  | { readonly _tag: "UploadOnly"; readonly on: boolean }

export type PeerEvent =
  | {
    readonly _tag: "Connected"
    readonly peer: PeerKey
    readonly handshake: Handshake.Handshake
    readonly outbox: Queue.Queue<PeerCommand>
    /** We dialled the peer (else it dialled us). */
    readonly outgoing: boolean
  }
  | {
    /** One socket read's worth of messages, plus requests the peer will not answer. */
    readonly _tag: "Messages"
    readonly peer: PeerKey
    readonly messages: ReadonlyArray<WireMessage>
    readonly released: ReadonlyArray<BlockRequest>
    /** How many requests the peer's pipeline should hold. */
    readonly depth: number
  }
  | {
    /** The periodic check of a session: timed-out requests and the pipeline's appetite. */
    readonly _tag: "Tick"
    readonly peer: PeerKey
    readonly released: ReadonlyArray<BlockRequest>
    readonly depth: number
    /** Download rate from the peer (bytes/s). */
    readonly rate: number
    /** Bytes uploaded to the peer since the last tick. */
    readonly uploaded: number
    readonly snubbing: boolean
  }
  /**
   * While the host has no metadata (a magnet link's first phase), the peer's
   * extended handshakes and its ut_metadata data and rejects; requests are
   * answered by the session.
   */
  | { readonly _tag: "ExtensionHandshake"; readonly peer: PeerKey; readonly handshake: Extension.PeerHandshake }
  | { readonly _tag: "MetadataMessage"; readonly peer: PeerKey; readonly message: Metadata.MetadataMessage }
  /** The peer says (BEP 21) whether it downloads nothing more. */
  | { readonly _tag: "PeerUploadOnly"; readonly peer: PeerKey; readonly on: boolean }
  | {
    readonly _tag: "Disconnected"
    readonly peer: PeerKey
    /** Why the session ended, and as a sentence. */
    readonly reason: Outcome["reason"]
    readonly detail: string
    readonly released: ReadonlyArray<BlockRequest>
    /** Bytes uploaded to the peer since the session's last tick. */
    readonly uploaded: number
  }
