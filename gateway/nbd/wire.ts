/**
 * Encoders for every message the server sends, byte for byte as doc/proto.md lays them
 * out. Each returns one freshly allocated Buffer (small ones come from Node's slab) so a
 * reply header can be handed to the socket and forgotten.
 */
import {
  IHAVEOPT,
  NBDMAGIC,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  OPTION_REPLY_HEADER_SIZE,
  REPLY_MAGIC,
  SIMPLE_REPLY_SIZE,
  STRUCTURED_REPLY_HEADER_SIZE,
} from '../../fabric/protocols/nbd.js';

const TWO_32 = 2 ** 32;
/** The 124 reserved zero bytes after an NBD_OPT_EXPORT_NAME reply without NO_ZEROES. */
const EXPORT_NAME_PADDING = 124;
/** Error messages are strings, limited to 4096 bytes by the spec. */
const MAX_MESSAGE_BYTES = 4096;

export function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32), at);
  buf.writeUInt32BE(value % TWO_32, at + 4);
}

/** A u64 as a JS number; values past 2^53 come out inexact but stay huge (out of range). */
export function readU64(buf: Pick<Buffer, 'readUInt32BE'>, at: number): number {
  return buf.readUInt32BE(at) * TWO_32 + buf.readUInt32BE(at + 4);
}

// ---- handshake and options -------------------------------------------------------

export function greeting(handshakeFlags: number): Buffer {
  const buf = Buffer.allocUnsafe(18);
  buf.writeBigUInt64BE(NBDMAGIC, 0);
  buf.writeBigUInt64BE(IHAVEOPT, 8);
  buf.writeUInt16BE(handshakeFlags, 16);
  return buf;
}

export function optionReply(option: number, type: number, data?: Buffer): Buffer {
  const length = data?.length ?? 0;
  const buf = Buffer.allocUnsafe(OPTION_REPLY_HEADER_SIZE + length);
  buf.writeBigUInt64BE(REPLY_MAGIC, 0);
  buf.writeUInt32BE(option, 8);
  buf.writeUInt32BE(type, 12);
  buf.writeUInt32BE(length, 16);
  if (data) data.copy(buf, OPTION_REPLY_HEADER_SIZE);
  return buf;
}

/** Reply to NBD_OPT_EXPORT_NAME: size, transmission flags, maybe 124 zero bytes. */
export function exportNameReply(size: number, transmissionFlags: number, noZeroes: boolean): Buffer {
  const buf = Buffer.alloc(10 + (noZeroes ? 0 : EXPORT_NAME_PADDING));
  writeU64(buf, size, 0);
  buf.writeUInt16BE(transmissionFlags, 8);
  return buf;
}

export function infoExport(size: number, transmissionFlags: number): Buffer {
  const buf = Buffer.allocUnsafe(12);
  buf.writeUInt16BE(NBD_INFO_EXPORT, 0);
  writeU64(buf, size, 2);
  buf.writeUInt16BE(transmissionFlags, 10);
  return buf;
}

export function infoString(type: typeof NBD_INFO_NAME | typeof NBD_INFO_DESCRIPTION, text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const buf = Buffer.allocUnsafe(2 + bytes.length);
  buf.writeUInt16BE(type, 0);
  bytes.copy(buf, 2);
  return buf;
}

export function infoBlockSize(minimum: number, preferred: number, maximum: number): Buffer {
  const buf = Buffer.allocUnsafe(14);
  buf.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  buf.writeUInt32BE(minimum, 2);
  buf.writeUInt32BE(preferred, 6);
  buf.writeUInt32BE(maximum, 10);
  return buf;
}

/** NBD_REP_SERVER payload: name length, name, then the description. */
export function serverEntry(name: string, description: string): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const descBytes = Buffer.from(description, 'utf8');
  const buf = Buffer.allocUnsafe(4 + nameBytes.length + descBytes.length);
  buf.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(buf, 4);
  descBytes.copy(buf, 4 + nameBytes.length);
  return buf;
}

export function metaContextEntry(id: number, name: string): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const buf = Buffer.allocUnsafe(4 + nameBytes.length);
  buf.writeUInt32BE(id, 0);
  nameBytes.copy(buf, 4);
  return buf;
}

// ---- transmission replies -------------------------------------------------------

export function simpleReply(cookieHi: number, cookieLo: number, error: number): Buffer {
  const buf = Buffer.allocUnsafe(SIMPLE_REPLY_SIZE);
  putSimpleReply(buf, 0, cookieHi, cookieLo, error);
  return buf;
}

/** A simple reply encoded into `buf` at `at` (SIMPLE_REPLY_SIZE bytes). */
export function putSimpleReply(buf: Buffer, at: number, cookieHi: number, cookieLo: number, error: number): void {
  buf.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, at);
  buf.writeUInt32BE(error, at + 4);
  buf.writeUInt32BE(cookieHi, at + 8);
  buf.writeUInt32BE(cookieLo, at + 12);
}

function writeChunkHeader(
  buf: Buffer,
  flags: number,
  type: number,
  cookieHi: number,
  cookieLo: number,
  payloadLength: number,
  at = 0,
): void {
  buf.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, at);
  buf.writeUInt16BE(flags, at + 4);
  buf.writeUInt16BE(type, at + 6);
  buf.writeUInt32BE(cookieHi, at + 8);
  buf.writeUInt32BE(cookieLo, at + 12);
  buf.writeUInt32BE(payloadLength, at + 16);
}

const doneFlag = (done: boolean): number => (done ? NBD_REPLY_FLAG_DONE : 0);

/** Header of an OFFSET_DATA chunk, up to and including the offset; the data follows. */
export function offsetDataHeader(cookieHi: number, cookieLo: number, offset: number, dataLength: number, done: boolean): Buffer {
  const buf = Buffer.allocUnsafe(OFFSET_DATA_HEADER_SIZE);
  putOffsetDataHeader(buf, 0, cookieHi, cookieLo, offset, dataLength, done);
  return buf;
}

/** Bytes of an OFFSET_DATA chunk before its data. */
export const OFFSET_DATA_HEADER_SIZE = STRUCTURED_REPLY_HEADER_SIZE + 8;

/** offsetDataHeader() encoded into `buf` at `at` (OFFSET_DATA_HEADER_SIZE bytes). */
export function putOffsetDataHeader(
  buf: Buffer,
  at: number,
  cookieHi: number,
  cookieLo: number,
  offset: number,
  dataLength: number,
  done: boolean,
): void {
  writeChunkHeader(buf, doneFlag(done), NBD_REPLY_TYPE_OFFSET_DATA, cookieHi, cookieLo, 8 + dataLength, at);
  writeU64(buf, offset, at + STRUCTURED_REPLY_HEADER_SIZE);
}

export function offsetHoleChunk(cookieHi: number, cookieLo: number, offset: number, holeSize: number, done: boolean): Buffer {
  const buf = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE + 12);
  writeChunkHeader(buf, doneFlag(done), NBD_REPLY_TYPE_OFFSET_HOLE, cookieHi, cookieLo, 12);
  writeU64(buf, offset, STRUCTURED_REPLY_HEADER_SIZE);
  buf.writeUInt32BE(holeSize, STRUCTURED_REPLY_HEADER_SIZE + 8);
  return buf;
}

export function noneChunk(cookieHi: number, cookieLo: number): Buffer {
  const buf = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE);
  writeChunkHeader(buf, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, cookieHi, cookieLo, 0);
  return buf;
}

/** A final NBD_REPLY_TYPE_ERROR chunk carrying a message for the human at the client. */
export function errorChunk(cookieHi: number, cookieLo: number, error: number, message: string): Buffer {
  let text = Buffer.from(message, 'utf8');
  if (text.length > MAX_MESSAGE_BYTES) text = text.subarray(0, MAX_MESSAGE_BYTES);
  const buf = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE + 6 + text.length);
  writeChunkHeader(buf, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookieHi, cookieLo, 6 + text.length);
  buf.writeUInt32BE(error, STRUCTURED_REPLY_HEADER_SIZE);
  buf.writeUInt16BE(text.length, STRUCTURED_REPLY_HEADER_SIZE + 4);
  text.copy(buf, STRUCTURED_REPLY_HEADER_SIZE + 6);
  return buf;
}

/** A BLOCK_STATUS chunk; `descriptors` holds (length, flags) pairs. */
export function blockStatusChunk(
  cookieHi: number,
  cookieLo: number,
  contextId: number,
  descriptors: readonly number[],
  done: boolean,
): Buffer {
  const payload = 4 + descriptors.length * 4;
  const buf = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_SIZE + payload);
  writeChunkHeader(buf, doneFlag(done), NBD_REPLY_TYPE_BLOCK_STATUS, cookieHi, cookieLo, payload);
  buf.writeUInt32BE(contextId, STRUCTURED_REPLY_HEADER_SIZE);
  for (let i = 0; i < descriptors.length; i++) buf.writeUInt32BE(descriptors[i]!, STRUCTURED_REPLY_HEADER_SIZE + 4 + i * 4);
  return buf;
}
