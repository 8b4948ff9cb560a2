import { FINAL_BIT, Opcode, RESERVED_TAG, RejectReason, TextFlag, MAX_TEXT_BYTES } from './constants.js';
import type { ConnectionLink } from './connection-link.js';
import { itt, joined, newBhs, type Pdu } from './pdu.js';
import { decodeText, encodeText, TextFormatError, type TextPairs } from './text.js';

/**
 * Text requests in full feature phase (RFC 7143 §11.10–11.11), chiefly SendTargets
 * (§13.3, appendix C): requests split with the C bit are gathered, and answers longer than
 * the initiator's MaxRecvDataSegmentLength go out in pieces it pulls with its TTT.
 */
export class TextExchange {
  private request: Buffer[] = [];
  private requestBytes = 0;
  private remaining: Buffer | undefined;
  private ttt = 0;
  private nextTtt = 1;

  constructor(
    private readonly conn: ConnectionLink,
    /** The SendTargets answer for this connection (the server knows the targets and portals). */
    private readonly sendTargets: (value: string) => TextPairs,
  ) {}

  onRequest(pdu: Pdu): void {
    const b = pdu.bhs;
    const continueFlag = (b[1]! & TextFlag.CONTINUE) !== 0;
    const ttt = b.readUInt32BE(20);
    if (ttt !== RESERVED_TAG) {
      // The initiator pulls the rest of a long answer (or resets with a new request).
      if (this.remaining && ttt === this.ttt && pdu.dataLength === 0) return this.reply(b, this.remaining);
      this.remaining = undefined;
      if (ttt !== this.ttt) return this.conn.reject(b, RejectReason.INVALID_PDU_FIELD);
    }
    this.remaining = undefined;
    this.request.push(...pdu.data);
    this.requestBytes += pdu.dataLength;
    if (this.requestBytes > MAX_TEXT_BYTES) {
      this.request = [];
      this.requestBytes = 0;
      return this.conn.reject(b, RejectReason.PROTOCOL_ERROR);
    }
    // More of the request follows: acknowledge this piece with an empty response.
    if (continueFlag) return this.reply(b, Buffer.alloc(0), true);
    let pairs: TextPairs;
    try {
      pairs = decodeText(joined(this.request));
    } catch (err) {
      if (!(err instanceof TextFormatError)) throw err;
      pairs = [];
      this.request = [];
      this.requestBytes = 0;
      return this.conn.reject(b, RejectReason.PROTOCOL_ERROR);
    }
    this.request = [];
    this.requestBytes = 0;
    const answer: TextPairs = [];
    for (const [key, value] of pairs) {
      if (key === 'SendTargets') answer.push(...this.sendTargets(value));
      else answer.push([key, 'NotUnderstood']);
    }
    this.reply(b, encodeText(answer));
  }

  private reply(request: Buffer, text: Buffer, gathering = false): void {
    const max = this.conn.params.initiatorMaxRecvDataSegmentLength;
    const more = text.length > max;
    const piece = more ? text.subarray(0, max) : text;
    this.remaining = more ? text.subarray(max) : undefined;
    const bhs = newBhs(Opcode.TEXT_RESPONSE, more || gathering ? (more ? TextFlag.CONTINUE : 0) : FINAL_BIT);
    request.copy(bhs, 8, 8, 16);
    bhs.writeUInt32BE(itt(request), 16);
    if (more || gathering) {
      this.ttt = this.nextTtt++ & 0x7fffffff;
      bhs.writeUInt32BE(this.ttt, 20);
    } else bhs.writeUInt32BE(RESERVED_TAG, 20);
    this.conn.fillCounters(bhs);
    this.conn.sendPdus([{ bhs, data: [piece], length: piece.length }]);
  }
}
