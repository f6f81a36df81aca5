/**
 * UtpConnection: one uTP connection's state machine (BEP 29), without I/O
 * or Effects: the endpoint (`Utp.ts`) feeds it parsed packets, the clock
 * and the application's bytes, and sends the packets it hands to `send`.
 *
 * - **Handshake**: the initiator picks `recvId` and sends SYN (seq 1) with
 *   it; it sends on `recvId + 1`. The acceptor answers with a STATE from its
 *   random seq; the initiator's ack_nr becomes that seq - 1 (STATE consumes
 *   no sequence number), as libtorrent and libutp do.
 * - **Sending**: bytes written are cut into packets of at most `mss`
 *   payload (`loopbackMss` to a peer on loopback that offered to take them,
 *   see `largePayload`), each copied once into the buffer that is sent and kept for
 *   retransmission (in a ring indexed by seq). At most the congestion
 *   window (`Ledbat`), and the peer's advertised window, is in flight; a
 *   partial packet waits while another partial one is unacked (Nagle, as
 *   Minshall's variant), so a burst of small messages shares packets and
 *   the end of a batch of blocks does not wait for the whole window's acks.
 * - **Acks**: cumulative ack_nr, and the selective ack bitmask for packets
 *   past a hole. Three duplicate acks, or three packets selectively acked
 *   past an unacked one, resend it at once (fast retransmit) and halve the
 *   window once per window. When the oldest packet waits longer than the
 *   timeout, every packet in flight is marked for resending, the window
 *   drops to one packet and the timeout doubles; after `maxTimeouts` in a
 *   row the connection is dead.
 * - **Receiving**: packets in order are delivered as views on their
 *   datagram; later ones wait in the reorder ring; duplicates are dropped
 *   and acked again. Acks are not sent per packet: `ackIfNeeded` is called
 *   once per batch of datagrams read, and a data packet sent meanwhile
 *   carries the ack.
 * - **Closing**: FIN takes the next seq after the last data; a received FIN
 *   ends the stream once everything before it arrived. RESET ends it at once.
 */
import * as Utp from "../protocol/Utp.ts"
import { Ledbat } from "./Ledbat.ts"

/** Payload bytes in a full packet: fits a 1500-byte Ethernet MTU with IPv6, UDP and uTP headers. */
export const mss = 1400
/**
 * Payload bytes in a full packet between two ends on loopback that both
 * offered them (the large-payload extension): the loopback MTU is 64 KiB,
 * and a datagram costs a send and a wake-up whatever its size, so 1400-byte
 * packets took uTP to twice TCP's CPU per GiB. 16 KiB measured best (32
 * and 63 KiB saved a little CPU and lost rate: the window is fewer packets).
 */
export const loopbackMss = 16 * 1024
/** Packets the send and reorder rings hold (a power of 2, well above window / mss). */
const ringSize = 2048
const ringMask = ringSize - 1
/** Bytes queued for sending before writes wait, and the most in flight. */
export const sendBuffer = 1024 * 1024
/** What we advertise when nothing is buffered. */
export const receiveWindow = 1024 * 1024
/** Timeouts in a row after which the peer is gone (about 30 s with the backoff). */
const maxTimeouts = 6
/** Duplicate acks (or selectively acked packets past a hole) that mean a loss. */
const duplicateAckThreshold = 3

export type State = "SynSent" | "Connected" | "Closed"

/** Why a connection ended, when it did not end cleanly. */
export type Failure = "Timeout" | "Reset" | "Refused"

export class UtpConnection {
  state: State
  failure: Failure | undefined = undefined
  /** Payload bytes in a full packet (`loopbackMss` once both ends offered it). */
  private mss = mss
  /** Made again for `loopbackMss`, before any data is sent. */
  ledbat = new Ledbat(mss + Utp.baseHeaderLength, sendBuffer)

  // Sending
  /** The next sequence number to use. */
  private seq: number
  /** The highest sequence number acked cumulatively. */
  private acked: number
  private readonly sent: Array<Uint8Array | undefined> = new Array(ringSize)
  private readonly sentAt = new Float64Array(ringSize)
  private readonly transmissions = new Uint8Array(ringSize)
  private readonly resend = new Uint8Array(ringSize)
  private inFlight = 0
  private peerWindow = receiveWindow
  private readonly pending: Array<Uint8Array> = []
  /** Bytes of `pending[0]` already packetized. */
  private pendingOffset = 0
  private pendingBytes = 0
  private duplicateAcks = 0
  /** The partial data packet in flight, if any (-1: none). */
  private partialSeq = -1
  /** Losses before this seq were counted in the last halving. */
  private lossSeq: number
  private timeouts = 0
  private finSeq = -1
  private closing = false
  private released = false

  // Receiving
  /** The last sequence number received in order. */
  private ackNr = 0
  private readonly reorder: Array<Uint8Array | undefined> = new Array(ringSize)
  private reordered = 0
  private reorderedBytes = 0
  private delivered: Array<Uint8Array> = []
  private deliveredBytes = 0
  private remoteFin = -1
  private ended = false
  /** Our clock minus the peer's on its last packet (µs), echoed in our headers. */
  private reply = 0
  private ackPending = false

  /** Called when bytes can be read or the stream ended. */
  onReadable: (() => void) | undefined = undefined
  /** Called when queued bytes fell below `sendBuffer`, or the connection ended. */
  onWritable: (() => void) | undefined = undefined
  /** Called once when the handshake completed or failed. */
  onConnect: (() => void) | undefined = undefined

  constructor(
    readonly recvId: number,
    readonly sendId: number,
    firstSeq: number,
    private readonly send: (packet: Uint8Array) => void,
    private readonly now: () => number,
    /** Whether the peer is on loopback: we offer large packets then (our SYN, or our STATEs when its SYN did). */
    private readonly loopback: boolean,
    incomingSyn?: Utp.Header
  ) {
    this.seq = firstSeq
    this.acked = (firstSeq - 1) & Utp.seqMask
    this.lossSeq = this.acked
    if (incomingSyn === undefined) {
      this.state = "SynSent"
      this.queuePacket(Utp.Type.Syn, undefined)
    } else {
      this.state = "Connected"
      this.ackNr = incomingSyn.seq
      this.reply = this.micros() - incomingSyn.timestamp
      this.ackPending = true
      this.largePayload(incomingSyn)
    }
  }

  /** What we offer in the large-payload extension: `loopbackMss` on loopback, else nothing (0). */
  private get offered() {
    return this.loopback ? loopbackMss : 0
  }

  /** A SYN, or the STATE answering ours, that offered large packets: we send them too, if we offered. */
  private largePayload(h: Utp.Header) {
    if (this.offered === 0 || h.largePayload < loopbackMss) return
    this.mss = loopbackMss
    this.ledbat = new Ledbat(loopbackMss + Utp.baseHeaderLength, sendBuffer)
  }

  // ---------------------------------------------------------------------------
  // The application's side
  // ---------------------------------------------------------------------------

  /** Whether writes must wait (the send buffer is full, and the connection open). */
  get full() {
    return this.pendingBytes >= sendBuffer && this.state !== "Closed"
  }

  /** Whether `read` has bytes, or the stream ended. */
  get readable() {
    return this.delivered.length > 0 || this.ended
  }

  /** Whether nothing more will be read. */
  get isEnded() {
    return this.ended && this.deliveredBytes === 0
  }

  /** Queues bytes (kept as given: the caller must not reuse them) and sends what the window allows. */
  write(chunk: Uint8Array) {
    if (this.state === "Closed" || this.closing || chunk.length === 0) return
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    this.fill()
  }

  /**
   * What was received in order since the last call, as one buffer (empty
   * when nothing was): one copy per read rather than a chunk per packet for
   * the frame decoder, which would copy every frame straddling packets anyway.
   */
  read(): Uint8Array | undefined {
    const chunks = this.delivered
    if (chunks.length === 0) return undefined
    let bytes = chunks[0]!
    if (chunks.length > 1) {
      bytes = new Uint8Array(this.deliveredBytes)
      let at = 0
      for (const chunk of chunks) {
        bytes.set(chunk, at)
        at += chunk.length
      }
    }
    this.delivered = []
    // Much of the window reopens: tell the peer, which may be waiting on it.
    if (this.deliveredBytes + this.reorderedBytes > receiveWindow / 2 && this.state === "Connected") {
      this.ackPending = true
    }
    this.deliveredBytes = 0
    return bytes
  }

  /**
   * Sends FIN after what is queued. `released`: nothing will be read either,
   * so the connection is forgotten once the FIN is acked; else (a half close)
   * once the peer's FIN came too.
   */
  close(released: boolean) {
    if (released) this.released = true
    if (this.closing || this.state === "Closed") return
    this.closing = true
    if (this.state === "SynSent") return this.end(undefined)
    this.fill()
  }

  /** Ends the connection at once, telling the peer with RESET. */
  reset() {
    if (this.state === "Closed") return
    if (this.state === "Connected") this.send(this.control(Utp.Type.Reset))
    this.end("Reset")
  }

  /** Whether the endpoint can forget the connection: closed, or closing with everything acked. */
  get finished() {
    return this.state === "Closed" ||
      (this.closing && this.finSeq !== -1 && this.acked === this.finSeq && (this.released || this.ended))
  }

  // ---------------------------------------------------------------------------
  // The network's side
  // ---------------------------------------------------------------------------

  /** A packet for this connection (`datagram` parsed into `h`). */
  receive(datagram: Uint8Array, h: Utp.Header) {
    if (this.state === "Closed") return
    if (h.type === Utp.Type.Reset) return this.end(this.state === "SynSent" ? "Refused" : "Reset")
    const now = this.now()
    this.reply = this.micros() - h.timestamp
    this.peerWindow = h.windowSize
    if (h.type === Utp.Type.Syn) {
      // Our STATE was lost: the initiator asks again.
      this.ackPending = true
      return
    }
    if (this.state === "SynSent") {
      if (h.type !== Utp.Type.State) return
      this.state = "Connected"
      this.ackNr = (h.seq - 1) & Utp.seqMask
      this.largePayload(h)
      this.onConnect?.()
    }
    this.acknowledge(datagram, h, now)
    if (h.type === Utp.Type.Data || h.type === Utp.Type.Fin) this.accept(datagram, h)
    this.fill()
  }

  /** Sends an ack if packets came since the last one and no data packet carried it. */
  ackIfNeeded() {
    if (!this.ackPending || this.state !== "Connected") return
    this.ackPending = false
    this.send(this.control(Utp.Type.State))
  }

  /** Called every few tens of ms: resends on timeout, fails a dead connection. */
  tick() {
    if (this.state === "Closed") return
    const now = this.now()
    const first = (this.acked + 1) & Utp.seqMask
    const oldest = this.sent[first & ringMask]
    if (oldest === undefined) return
    if (now - this.sentAt[first & ringMask]! < this.ledbat.timeout) return
    if (++this.timeouts > maxTimeouts) return this.end("Timeout")
    this.ledbat.onTimeout()
    if (this.state === "SynSent") {
      this.inFlight -= oldest.length
      return this.transmit(first & ringMask, oldest)
    }
    // Everything in flight is presumed lost; resent as the (one-packet) window allows.
    for (let s = first; s !== this.seq; s = (s + 1) & Utp.seqMask) {
      if (this.sent[s & ringMask] !== undefined) this.resend[s & ringMask] = 1
    }
    this.inFlight = 0
    this.fill()
  }

  // ---------------------------------------------------------------------------
  // Internals
  // ---------------------------------------------------------------------------

  private micros() {
    return (this.now() * 1000) % 4294967296
  }

  private advertised() {
    return Math.max(0, receiveWindow - this.deliveredBytes - this.reorderedBytes)
  }

  /**
   * A STATE or RESET, with the selective ack when packets wait past a hole;
   * else a STATE carries our large-payload offer once both made it (the one
   * answering a SYN must: the initiator learns from it), a few bytes per ack.
   */
  private control(type: Utp.Type): Uint8Array {
    const sackBytes = this.reordered > 0 && type === Utp.Type.State ? this.sackBytes() : 0
    const large = sackBytes === 0 && type === Utp.Type.State && this.mss === loopbackMss ? loopbackMss : 0
    const packet = new Uint8Array(Utp.headerLength(sackBytes) + (large === 0 ? 0 : Utp.largeExtensionLength))
    Utp.write(
      packet,
      type,
      this.sendId,
      this.micros(),
      this.reply,
      this.advertised(),
      this.seq,
      this.ackNr,
      sackBytes,
      large
    )
    if (sackBytes > 0) {
      const bits = Utp.baseHeaderLength + 2
      for (let i = 0; i < sackBytes * 8; i++) {
        if (this.reorder[(this.ackNr + 2 + i) & ringMask] !== undefined) packet[bits + (i >> 3)]! |= 1 << (i & 7)
      }
    }
    return packet
  }

  /** Bitmask bytes covering the reorder ring's span past the hole (a multiple of 4, at most 32). */
  private sackBytes() {
    let last = 0
    for (let i = 0; i < 256; i++) if (this.reorder[(this.ackNr + 2 + i) & ringMask] !== undefined) last = i
    return Math.min(32, (Math.floor(last / 32) + 1) * 4)
  }

  /** The ack_nr and selective ack of an incoming packet: frees what they acknowledge. */
  private acknowledge(datagram: Uint8Array, h: Utp.Header, now: number) {
    let ackedBytes = 0
    const inWindow = (s: number) => Utp.seqLess(this.acked, s) && Utp.seqLess(s, this.seq)
    const free = (s: number) => {
      const slot = s & ringMask
      const packet = this.sent[slot]
      if (packet === undefined) return
      if (this.transmissions[slot] === 1) this.ledbat.onRtt(now - this.sentAt[slot]!)
      if (this.resend[slot] === 0) this.inFlight -= packet.length
      ackedBytes += packet.length
      if (s === this.partialSeq) this.partialSeq = -1
      this.sent[slot] = undefined
      this.resend[slot] = 0
    }
    const cumulative = inWindow(h.ack) || h.ack === this.acked
    if (cumulative && h.ack !== this.acked) {
      for (let s = (this.acked + 1) & Utp.seqMask; s !== ((h.ack + 1) & Utp.seqMask); s = (s + 1) & Utp.seqMask) {
        free(s)
      }
      this.acked = h.ack
      this.duplicateAcks = 0
      this.timeouts = 0
    } else if (cumulative && h.type === Utp.Type.State && h.sackLength === 0 && this.inFlight > 0) {
      if (++this.duplicateAcks === duplicateAckThreshold) this.lost((h.ack + 1) & Utp.seqMask)
    }
    if (h.sackLength > 0 && cumulative) {
      let sackedPast = 0
      let highest = -1
      Utp.forEachSacked(datagram, h, (s) => {
        if (!inWindow(s)) return
        free(s)
        sackedPast++
        highest = s
      })
      // Packets before the highest selectively acked one, past enough acked ones, are lost.
      if (sackedPast >= duplicateAckThreshold) {
        for (let s = (this.acked + 1) & Utp.seqMask; s !== highest; s = (s + 1) & Utp.seqMask) {
          if (this.sent[s & ringMask] !== undefined && this.transmissions[s & ringMask] === 1) this.lost(s)
        }
      }
    }
    // Slide past packets freed by the selective ack.
    while (this.acked !== ((this.seq - 1) & Utp.seqMask) && this.sent[(this.acked + 1) & ringMask] === undefined) {
      this.acked = (this.acked + 1) & Utp.seqMask
    }
    if (ackedBytes > 0) this.ledbat.onAck(ackedBytes, h.timestampDifference, now)
    if (this.finished) this.end(undefined)
  }

  /**
   * `s` was lost: resent at once, whatever the window (it is what the peer
   * waits for, and what it replaces is no longer in flight); the window
   * halves once per window of data.
   */
  private lost(s: number) {
    const slot = s & ringMask
    const packet = this.sent[slot]
    if (packet === undefined || this.resend[slot] === 1) return
    if (!Utp.seqLess(s, this.lossSeq)) {
      this.ledbat.onLoss()
      this.lossSeq = this.seq
    }
    this.inFlight -= packet.length
    this.transmit(slot, packet)
  }

  /** A DATA or FIN packet: delivered in order, kept when early, dropped when old. */
  private accept(datagram: Uint8Array, h: Utp.Header) {
    this.ackPending = true
    if (h.type === Utp.Type.Fin && this.remoteFin === -1) this.remoteFin = h.seq
    const next = (this.ackNr + 1) & Utp.seqMask
    if (h.seq === next) {
      this.deliver(h.type === Utp.Type.Data ? datagram.subarray(h.payloadOffset) : undefined)
      while (this.reordered > 0) {
        const slot = (this.ackNr + 1) & ringMask
        const waiting = this.reorder[slot]
        if (waiting === undefined) {
          // A FIN that came early was not kept: it ends the stream here.
          if (((this.ackNr + 1) & Utp.seqMask) === this.remoteFin) this.deliver(undefined)
          break
        }
        this.reorder[slot] = undefined
        this.reordered--
        this.reorderedBytes -= waiting.length
        this.deliver(waiting)
      }
    } else if (Utp.seqLess(next, h.seq) && ((h.seq - next) & Utp.seqMask) < ringSize - 1) {
      const slot = h.seq & ringMask
      if (this.reorder[slot] === undefined && h.type === Utp.Type.Data) {
        this.reorder[slot] = datagram.subarray(h.payloadOffset)
        this.reordered++
        this.reorderedBytes += datagram.length - h.payloadOffset
      }
    } // else: a duplicate of something delivered; the ack tells the peer again
    if (this.remoteFin !== -1 && this.ackNr === this.remoteFin && !this.ended) {
      this.ended = true
      this.onReadable?.()
    }
  }

  private deliver(payload: Uint8Array | undefined) {
    this.ackNr = (this.ackNr + 1) & Utp.seqMask
    if (payload === undefined || payload.length === 0) return
    this.delivered.push(payload)
    this.deliveredBytes += payload.length
    if (this.delivered.length === 1) this.onReadable?.()
  }

  /** Sends what the windows allow: packets marked for resending first, then new data, then FIN. */
  private fill() {
    if (this.state !== "Connected") return
    const window = Math.max(this.ledbat.packetSize, Math.min(this.ledbat.window, this.peerWindow))
    for (let s = (this.acked + 1) & Utp.seqMask; s !== this.seq; s = (s + 1) & Utp.seqMask) {
      const slot = s & ringMask
      if (this.resend[slot] === 0) continue
      const packet = this.sent[slot]!
      if (this.inFlight > 0 && this.inFlight + packet.length > window) return
      this.resend[slot] = 0
      this.transmit(slot, packet)
    }
    while (this.pendingBytes > 0) {
      const size = Math.min(this.mss, this.pendingBytes)
      // Nagle, as Minshall's variant: a partial packet waits while another partial one is unacked.
      if (size < this.mss && this.partialSeq !== -1) break
      if (this.inFlight > 0 && this.inFlight + size + Utp.baseHeaderLength > window) break
      if (this.ringFull()) break
      if (size < this.mss) this.partialSeq = this.seq
      this.queuePacket(Utp.Type.Data, size)
      if (this.pendingBytes < sendBuffer && this.pendingBytes + size >= sendBuffer) this.onWritable?.()
    }
    if (this.closing && this.pendingBytes === 0 && this.finSeq === -1 && !this.ringFull()) {
      this.finSeq = this.seq
      this.queuePacket(Utp.Type.Fin, undefined)
    }
  }

  private ringFull() {
    return ((this.seq - this.acked) & Utp.seqMask) >= ringSize - 1
  }

  /** A new packet with the next seq (`size` bytes of pending data for DATA), kept and sent. */
  private queuePacket(type: Utp.Type, size: number | undefined) {
    // A SYN has room for our large-payload offer.
    const header = type === Utp.Type.Syn && this.offered !== 0
      ? Utp.baseHeaderLength + Utp.largeExtensionLength
      : Utp.baseHeaderLength
    const packet = new Uint8Array(header + (size ?? 0))
    let at = header
    let left = size ?? 0
    while (left > 0) {
      const chunk = this.pending[0]!
      const n = Math.min(left, chunk.length - this.pendingOffset)
      packet.set(n === chunk.length ? chunk : chunk.subarray(this.pendingOffset, this.pendingOffset + n), at)
      at += n
      left -= n
      this.pendingOffset += n
      if (this.pendingOffset === chunk.length) {
        this.pending.shift()
        this.pendingOffset = 0
      }
    }
    this.pendingBytes -= size ?? 0
    packet[0] = (type << 4) | Utp.version
    const slot = this.seq & ringMask
    this.sent[slot] = packet
    this.transmissions[slot] = 0
    this.resend[slot] = 0
    this.seq = (this.seq + 1) & Utp.seqMask
    this.transmit(slot, packet)
  }

  /** (Re)sends a kept packet with a fresh header: time, the peer's delay, our window and ack. */
  private transmit(slot: number, packet: Uint8Array) {
    const type = (packet[0]! >> 4) as Utp.Type
    const seq = this.seqOfSlot(slot)
    Utp.write(
      packet,
      type,
      type === Utp.Type.Syn ? this.recvId : this.sendId,
      this.micros(),
      this.reply,
      this.advertised(),
      seq,
      this.ackNr,
      0,
      type === Utp.Type.Syn ? this.offered : 0
    )
    this.sentAt[slot] = this.now()
    if (this.transmissions[slot]! < 255) this.transmissions[slot]!++
    this.inFlight += packet.length
    // This packet carries the ack, unless a selective ack is due.
    if (this.reordered === 0) this.ackPending = false
    this.send(packet)
  }

  /** The seq of a ring slot among those in flight (the ring is larger than what is in flight). */
  private seqOfSlot(slot: number) {
    return (this.seq - 1 - ((this.seq - 1 - slot) & ringMask)) & Utp.seqMask
  }

  private end(failure: Failure | undefined) {
    if (this.state === "Closed") return
    const wasConnecting = this.state === "SynSent"
    this.state = "Closed"
    this.failure = failure
    this.ended = true
    this.pending.length = 0
    this.pendingBytes = 0
    if (wasConnecting) this.onConnect?.()
    this.onReadable?.()
    this.onWritable?.()
  }
}
