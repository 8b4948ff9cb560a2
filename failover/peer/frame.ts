import { createHmac, timingSafeEqual } from 'node:crypto';
import { ByteQueue } from '../../fabric/byte-queue.js';

/**
 * The wire form of a member-to-member message: JSON, then an HMAC-SHA256 of it under the
 * cluster's shared key, so nobody on a management network can speak for a member (as
 * corosync's authkey does). A UDP datagram is one sealed message; on TCP each sealed
 * message is preceded by its length (32-bit big-endian).
 */

export const MAC_BYTES = 32;
/** Far above any real message (a configuration record is the largest): a bigger one is a bad peer. */
export const MAX_MESSAGE_BYTES = 4 << 20;
const LENGTH_BYTES = 4;

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

export function seal(message: unknown, key: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(message), 'utf8');
  if (json.length > MAX_MESSAGE_BYTES) throw new FrameError(`message of ${json.length} bytes is larger than ${MAX_MESSAGE_BYTES}`);
  return Buffer.concat([json, mac(json, key)]);
}

/** The message of a sealed buffer; FrameError when it is too short, forged or not JSON. */
export function open(sealed: Buffer, key: Buffer): unknown {
  if (sealed.length <= MAC_BYTES) throw new FrameError(`message of ${sealed.length} bytes is too short`);
  const json = sealed.subarray(0, sealed.length - MAC_BYTES);
  if (!timingSafeEqual(mac(json, key), sealed.subarray(sealed.length - MAC_BYTES))) throw new FrameError('message authentication failed (another cluster key?)');
  try {
    return JSON.parse(json.toString('utf8')) as unknown;
  } catch {
    throw new FrameError('message is not JSON');
  }
}

function mac(data: Buffer, key: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** A sealed message with its length in front, for a stream. */
export function frame(message: unknown, key: Buffer): Buffer {
  const sealed = seal(message, key);
  const length = Buffer.allocUnsafe(LENGTH_BYTES);
  length.writeUInt32BE(sealed.length);
  return Buffer.concat([length, sealed]);
}

/** Splits a stream into messages; a bad length or a failed check throws FrameError (drop the connection). */
export class FrameReader {
  private readonly queue = new ByteQueue();

  constructor(private readonly key: Buffer) {}

  /** Length of the message being received, once its length field is in; 0 before. */
  private pending = 0;

  /** Feed a chunk; returns the messages it completed. */
  push(chunk: Buffer): unknown[] {
    this.queue.push(chunk);
    const out: unknown[] = [];
    for (;;) {
      if (this.pending === 0) {
        if (this.queue.length < LENGTH_BYTES) return out;
        const length = this.queue.readContiguous(LENGTH_BYTES, false).readUInt32BE(0);
        if (length <= MAC_BYTES || length > MAX_MESSAGE_BYTES + MAC_BYTES) throw new FrameError(`frame length ${length} out of range`);
        this.pending = length;
      }
      if (this.queue.length < this.pending) return out;
      // A copy: the message outlives the socket's chunk, and control messages are small.
      const sealed = Buffer.from(this.queue.readContiguous(this.pending, false));
      this.pending = 0;
      out.push(open(sealed, this.key));
    }
  }
}
