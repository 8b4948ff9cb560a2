/**
 * The client side of the fixed newstyle handshake: NO_ZEROES, STRUCTURED_REPLY,
 * SET_META_CONTEXT base:allocation, then GO with INFO_BLOCK_SIZE requested, falling back to
 * EXPORT_NAME on servers that do not know GO. Returns what the export looks like.
 *
 *   negotiate(io, exportName) → ExportInfo
 */
import { BlockError } from '../../errors.js';
import type { FenceToken } from '../../fencing.js';
import {
  BASE_ALLOCATION,
  BLOCKGATE_FENCE_OPTION_LENGTH,
  IHAVEOPT,
  NBD_OPT_BLOCKGATE_FENCE,
  NBDMAGIC,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  OPTION_REPLY_HEADER_SIZE,
  REPLY_MAGIC,
} from '../../protocols/nbd.js';

export interface ExportInfo {
  readonly size: number;
  readonly transmissionFlags: number;
  /** From NBD_INFO_BLOCK_SIZE, when the server sent it. */
  readonly blockSizes?: { minimum: number; preferred: number; maximum: number };
  readonly structuredReplies: boolean;
  /** The id the server gave base:allocation, when negotiated. */
  readonly allocationContext?: number;
  /** The server accepted our fencing token (NBD_OPT_BLOCKGATE_FENCE): NBD_CMD_BLOCKGATE_FENCE may be sent. */
  readonly fenced?: boolean;
}

/** Byte-exact reads and writes on a connection during the handshake. */
export interface HandshakeIo {
  read(length: number): Promise<Buffer>;
  write(data: Buffer): void;
}

interface OptionReply {
  readonly type: number;
  readonly data: Buffer;
}

const EXPORT_NAME_TRAILER = 124;

export async function negotiate(io: HandshakeIo, exportName: string, fenceToken?: FenceToken): Promise<ExportInfo> {
  const greeting = await io.read(18);
  if (greeting.readBigUInt64BE(0) !== NBDMAGIC || greeting.readBigUInt64BE(8) !== IHAVEOPT) {
    throw protocolError('server does not speak newstyle NBD');
  }
  const serverFlags = greeting.readUInt16BE(16);
  if (!(serverFlags & NBD_FLAG_FIXED_NEWSTYLE)) throw protocolError('server does not support fixed newstyle');
  const noZeroes = (serverFlags & NBD_FLAG_NO_ZEROES) !== 0;
  const clientFlags = Buffer.alloc(4);
  clientFlags.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | (noZeroes ? NBD_FLAG_C_NO_ZEROES : 0));
  io.write(clientFlags);

  const name = Buffer.from(exportName, 'utf8');
  const structured = (await simpleOption(io, NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0))) === NBD_REP_ACK;
  const allocationContext = structured ? await setMetaContext(io, name) : undefined;
  // A server without blockgate's fencing (nbdkit, qemu-nbd) answers ERR_UNSUP: we go on unfenced.
  const fenced = fenceToken !== undefined && (await simpleOption(io, NBD_OPT_BLOCKGATE_FENCE, tokenBytes(fenceToken))) === NBD_REP_ACK;

  const go = Buffer.alloc(4 + name.length + 2 + 2);
  go.writeUInt32BE(name.length, 0);
  name.copy(go, 4);
  go.writeUInt16BE(1, 4 + name.length);
  go.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 6 + name.length);
  sendOption(io, NBD_OPT_GO, go);

  let size: number | undefined;
  let transmissionFlags = 0;
  let blockSizes: ExportInfo['blockSizes'];
  for (;;) {
    const reply = await readOptionReply(io, NBD_OPT_GO);
    if (reply.type === NBD_REP_INFO && reply.data.length >= 2) {
      const info = reply.data.readUInt16BE(0);
      if (info === NBD_INFO_EXPORT && reply.data.length >= 12) {
        size = toSafeSize(reply.data.readBigUInt64BE(2));
        transmissionFlags = reply.data.readUInt16BE(10);
      } else if (info === NBD_INFO_BLOCK_SIZE && reply.data.length >= 14) {
        blockSizes = {
          minimum: reply.data.readUInt32BE(2),
          preferred: reply.data.readUInt32BE(6),
          maximum: reply.data.readUInt32BE(10),
        };
      }
      continue;
    }
    if (reply.type === NBD_REP_ACK) {
      if (size === undefined) throw protocolError('server finished NBD_OPT_GO without NBD_INFO_EXPORT');
      return { size, transmissionFlags, blockSizes, structuredReplies: structured, allocationContext, fenced };
    }
    if (reply.type === NBD_REP_ERR_UNSUP) break;
    throw optionError('NBD_OPT_GO', reply, exportName);
  }

  // An old server: NBD_OPT_EXPORT_NAME has no error reply, the server just hangs up (and
  // one that knew our fencing option knows GO, so none is in force here).
  sendOption(io, NBD_OPT_EXPORT_NAME, name);
  const head = await io.read(10 + (noZeroes ? 0 : EXPORT_NAME_TRAILER));
  return {
    size: toSafeSize(head.readBigUInt64BE(0)),
    transmissionFlags: head.readUInt16BE(8),
    structuredReplies: structured,
    allocationContext,
  };
}

async function setMetaContext(io: HandshakeIo, name: Buffer): Promise<number | undefined> {
  const query = Buffer.from(BASE_ALLOCATION, 'utf8');
  const data = Buffer.alloc(4 + name.length + 4 + 4 + query.length);
  let at = data.writeUInt32BE(name.length, 0);
  at += name.copy(data, at);
  at = data.writeUInt32BE(1, at);
  at = data.writeUInt32BE(query.length, at);
  query.copy(data, at);
  sendOption(io, NBD_OPT_SET_META_CONTEXT, data);
  let id: number | undefined;
  for (;;) {
    const reply = await readOptionReply(io, NBD_OPT_SET_META_CONTEXT);
    if (reply.type === NBD_REP_META_CONTEXT && reply.data.length >= 4) {
      if (reply.data.toString('utf8', 4) === BASE_ALLOCATION) id = reply.data.readUInt32BE(0);
      continue;
    }
    // ACK ends the list; an error (unsupported, unknown export) just means no block status.
    return reply.type === NBD_REP_ACK ? id : undefined;
  }
}

/** Send an option whose answer is a single reply; returns its type. */
async function simpleOption(io: HandshakeIo, option: number, data: Buffer): Promise<number> {
  sendOption(io, option, data);
  return (await readOptionReply(io, option)).type;
}

function sendOption(io: HandshakeIo, option: number, data: Buffer): void {
  const header = Buffer.alloc(16);
  header.writeBigUInt64BE(IHAVEOPT, 0);
  header.writeUInt32BE(option, 8);
  header.writeUInt32BE(data.length, 12);
  io.write(data.length > 0 ? Buffer.concat([header, data]) : header);
}

async function readOptionReply(io: HandshakeIo, option: number): Promise<OptionReply> {
  const header = await io.read(OPTION_REPLY_HEADER_SIZE);
  if (header.readBigUInt64BE(0) !== REPLY_MAGIC) throw protocolError('bad option reply magic');
  if (header.readUInt32BE(8) !== option) throw protocolError(`reply for option ${header.readUInt32BE(8)}, expected ${option}`);
  const length = header.readUInt32BE(16);
  if (length > 1 << 20) throw protocolError(`option reply of ${length} bytes`);
  return { type: header.readUInt32BE(12), data: length > 0 ? await io.read(length) : Buffer.alloc(0) };
}

function tokenBytes(token: FenceToken): Buffer {
  const data = Buffer.alloc(BLOCKGATE_FENCE_OPTION_LENGTH);
  data.writeBigUInt64BE(BigInt(token.term), 0);
  data.writeUInt32BE(token.generation, 8);
  return data;
}

function toSafeSize(size: bigint): number {
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw protocolError(`export size ${size} too large`);
  return Number(size);
}

function optionError(option: string, reply: OptionReply, exportName: string): BlockError {
  const message = reply.data.length > 0 ? `: ${reply.data.toString('utf8')}` : '';
  return new BlockError('EIO', `${option} for export ${JSON.stringify(exportName)} refused (reply ${reply.type >>> 0})${message}`);
}

function protocolError(message: string): BlockError {
  return new BlockError('EIO', `NBD handshake: ${message}`);
}
