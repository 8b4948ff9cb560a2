/**
 * Seed inputs for the protocol fuzzer: whole client byte streams, each a well-formed
 * session that reaches deep into one parser (NBD options and transmission requests; iSCSI
 * login, text negotiation, SCSI CDBs, task management, data-out). Mutations start from
 * these, so every stage of each protocol is reached with input that is almost right.
 * Constants come from the specs (nbd-spec.ts, RFC 7143, SPC/SBC), not from the code under test.
 */
import {
  IHAVEOPT,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REQUEST_MAGIC,
} from '../nbd-spec.js';

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const str32 = (s: string) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);

// ---- NBD (NBD protocol spec, fixed newstyle) ----
const FLAGS = u32(0b11); // NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES

function option(type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(16);
  h.writeBigUInt64BE(IHAVEOPT, 0);
  h.writeUInt32BE(type, 8);
  h.writeUInt32BE(data.length, 12);
  return Buffer.concat([h, data]);
}

const infoRequest = (name: string, infos: number[]) => Buffer.concat([str32(name), u16(infos.length), ...infos.map(u16)]);
const metaQuery = (name: string, queries: string[]) => Buffer.concat([str32(name), u32(queries.length), ...queries.map(str32)]);

let cookie = 1;
function request(type: number, offset: number, length: number, flags = 0, payload?: Buffer): Buffer {
  const h = Buffer.alloc(28);
  h.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  h.writeUInt16BE(flags, 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(BigInt(cookie++), 8);
  h.writeBigUInt64BE(BigInt(offset), 16);
  h.writeUInt32BE(length, 24);
  return payload ? Buffer.concat([h, payload]) : h;
}

const transmission = () => [
  request(NBD_CMD_READ, 0, 4096),
  request(NBD_CMD_WRITE, 4096, 512, NBD_CMD_FLAG_FUA, Buffer.alloc(512, 0xa5)),
  request(NBD_CMD_BLOCK_STATUS, 0, 1 << 20, NBD_CMD_FLAG_REQ_ONE),
  request(NBD_CMD_WRITE_ZEROES, 8192, 4096),
  request(NBD_CMD_TRIM, 65536, 65536),
  request(NBD_CMD_CACHE, 0, 65536),
  request(NBD_CMD_FLUSH, 0, 0),
  request(NBD_CMD_READ, 4096, 512),
  request(NBD_CMD_DISC, 0, 0),
];

/** Transmission-phase streams only, for the request reader on its own. */
export function nbdRequestSeeds(): Buffer[] {
  return [
    Buffer.concat(transmission()),
    // A write larger than the reader accepts (its payload is skipped), then a read.
    Buffer.concat([request(NBD_CMD_WRITE, 0, 70000, 0, Buffer.alloc(70000, 7)), request(NBD_CMD_READ, 0, 512)]),
    Buffer.concat([request(NBD_CMD_WRITE, 0, 4096, 0, Buffer.alloc(4096, 1)), request(NBD_CMD_WRITE, 4096, 1, 0, Buffer.alloc(1)), request(NBD_CMD_DISC, 0, 0)]),
  ];
}

export function nbdSeeds(exportName: string): Buffer[] {
  return [
    Buffer.concat([
      FLAGS,
      option(NBD_OPT_STRUCTURED_REPLY),
      option(NBD_OPT_SET_META_CONTEXT, metaQuery(exportName, ['base:allocation'])),
      option(NBD_OPT_GO, infoRequest(exportName, [NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE])),
      ...transmission(),
    ]),
    Buffer.concat([
      FLAGS,
      option(NBD_OPT_LIST),
      option(NBD_OPT_INFO, infoRequest(exportName, [NBD_INFO_BLOCK_SIZE])),
      option(NBD_OPT_LIST_META_CONTEXT, metaQuery(exportName, ['base:', 'qemu:dirty-bitmap:x'])),
      option(NBD_OPT_INFO, infoRequest('', [])),
      option(NBD_OPT_ABORT),
    ]),
    Buffer.concat([FLAGS, option(NBD_OPT_EXPORT_NAME, Buffer.from(exportName)), ...transmission()]),
    Buffer.concat([FLAGS, option(NBD_OPT_STARTTLS), option(NBD_OPT_GO, infoRequest(exportName, [])), ...transmission()]),
    // An oldstyle-minded client: no fixed newstyle, straight to EXPORT_NAME.
    Buffer.concat([u32(0), option(NBD_OPT_EXPORT_NAME, Buffer.from(exportName)), request(NBD_CMD_READ, 0, 512)]),
  ];
}

// ---- iSCSI (RFC 7143) ----
const LOGIN_REQUEST = 0x03;
const SCSI_COMMAND = 0x01;
const TASK_MGMT_REQUEST = 0x02;
const TEXT_REQUEST = 0x04;
const DATA_OUT = 0x05;
const LOGOUT_REQUEST = 0x06;
const NOP_OUT = 0x00;
const IMMEDIATE = 0x40;

function pdu(bhs: Buffer, data: Buffer = Buffer.alloc(0)): Buffer {
  bhs.writeUIntBE(data.length, 5, 3);
  return Buffer.concat([bhs, data, Buffer.alloc((4 - (data.length & 3)) & 3)]);
}

const text = (pairs: Array<[string, string]>) => Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''));

class Stream {
  private readonly parts: Buffer[] = [];
  private itt = 1;
  cmdSN = 1;

  login(csg: number, nsg: number, pairs: Array<[string, string]>, transit = true): this {
    const b = Buffer.alloc(48);
    b[0] = LOGIN_REQUEST | IMMEDIATE;
    b[1] = (transit ? 0x80 : 0) | (csg << 2) | (transit ? nsg : 0);
    Buffer.from('400001370000', 'hex').copy(b, 8);
    b.writeUInt32BE(0x1000, 16);
    b.writeUInt16BE(1, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    this.parts.push(pdu(b, text(pairs)));
    return this;
  }

  scsi(cdb: Buffer, o: { read?: number; write?: Buffer; lun?: number; immediate?: boolean } = {}): this {
    const b = Buffer.alloc(48);
    b[0] = SCSI_COMMAND | (o.immediate ? IMMEDIATE : 0);
    b[1] = 0x80 | (o.read ? 0x40 : 0) | (o.write ? 0x20 : 0) | 1; // F, R, W, SIMPLE
    b[9] = o.lun ?? 0;
    b.writeUInt32BE(this.itt++, 16);
    b.writeUInt32BE(o.read ?? o.write?.length ?? 0, 20);
    b.writeUInt32BE(o.immediate ? this.cmdSN : this.cmdSN++, 24);
    cdb.copy(b, 32);
    this.parts.push(pdu(b, o.write));
    return this;
  }

  /** A write whose data follows as solicited-looking Data-Out (the target may have asked for it by R2T). */
  writeWithDataOut(cdb: Buffer, data: Buffer): this {
    const tag = this.itt;
    this.scsi(cdb, { write: Buffer.alloc(0) });
    this.parts[this.parts.length - 1]!.writeUInt32BE(data.length, 20);
    const b = Buffer.alloc(48);
    b[0] = DATA_OUT;
    b[1] = 0x80;
    b.writeUInt32BE(tag, 16);
    b.writeUInt32BE(0x0000_0001, 20); // Target Transfer Tag of a first R2T
    b.writeUInt32BE(0, 40); // Buffer Offset
    this.parts.push(pdu(b, data));
    return this;
  }

  other(opcode: number, byte1: number, fields: Record<number, number> = {}, data?: Buffer): this {
    const b = Buffer.alloc(48);
    b[0] = opcode | IMMEDIATE;
    b[1] = byte1;
    b.writeUInt32BE(this.itt++, 16);
    b.writeUInt32BE(0xffffffff, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    for (const [at, v] of Object.entries(fields)) b.writeUInt32BE(v >>> 0, Number(at));
    this.parts.push(pdu(b, data));
    return this;
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const cdb = (bytes: number[], length: number) => {
  const b = Buffer.alloc(length);
  Buffer.from(bytes).copy(b);
  return b;
};
const cdb10 = (op: number, lba: number, blocks: number) => {
  const b = cdb([op], 10);
  b.writeUInt32BE(lba, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
};
const cdb16 = (op: number, lba: number, blocks: number) => {
  const b = cdb([op], 16);
  b.writeBigUInt64BE(BigInt(lba), 2);
  b.writeUInt32BE(blocks, 10);
  return b;
};

export function iscsiSeeds(targetName: string): Buffer[] {
  const normal = (extra: Array<[string, string]> = []): Array<[string, string]> => [
    ['InitiatorName', 'iqn.2026-11.dev.blockgate:fuzz'],
    ['SessionType', 'Normal'],
    ['TargetName', targetName],
    ['HeaderDigest', 'None'],
    ['DataDigest', 'None'],
    ['MaxRecvDataSegmentLength', '65536'],
    ['ImmediateData', 'Yes'],
    ['InitialR2T', 'No'],
    ['FirstBurstLength', '65536'],
    ['MaxBurstLength', '262144'],
    ...extra,
  ];
  const io = new Stream()
    .login(1, 3, normal())
    .scsi(cdb([0x00], 6)) // TEST UNIT READY
    .scsi(cdb([0x12, 0, 0, 0, 96], 6), { read: 96 }) // INQUIRY
    .scsi(cdb([0x12, 1, 0xb0, 0, 64], 6), { read: 64 }) // INQUIRY VPD Block Limits
    .scsi(cdb([0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32], 16), { read: 32 }) // READ CAPACITY(16)
    .scsi(cdb10(0x28, 0, 8), { read: 4096 }) // READ(10)
    .scsi(cdb10(0x2a, 16, 1), { write: Buffer.alloc(512, 0x5a) }) // WRITE(10), immediate data
    .scsi(cdb16(0x88, 16, 1), { read: 512 }) // READ(16)
    .scsi(cdb16(0x8f, 0, 128)) // VERIFY(16)
    .scsi(cdb([0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0], 12), { read: 256 }) // REPORT LUNS
    .scsi(cdb([0x1a, 0, 0x3f, 0, 255], 6), { read: 255 }) // MODE SENSE(6)
    .scsi(cdb([0x5e, 0, 0, 0, 0, 0, 0, 1, 0, 0], 10), { read: 256 }) // PERSISTENT RESERVE IN
    .scsi(cdb([0x35], 10)) // SYNCHRONIZE CACHE(10)
    .other(NOP_OUT, 0x80, {}, Buffer.from('ping'))
    .other(TASK_MGMT_REQUEST, 0x80 | 1, { 20: 2 }) // ABORT TASK
    .other(TEXT_REQUEST, 0x80, {}, text([['SendTargets', 'All']]))
    .other(LOGOUT_REQUEST, 0x80)
    .bytes();
  const writes = new Stream()
    .login(1, 3, normal([['InitialR2T', 'Yes'], ['ImmediateData', 'No']]))
    .writeWithDataOut(cdb10(0x2a, 0, 8), Buffer.alloc(4096, 1))
    .scsi(cdb16(0x89, 0, 1), { write: Buffer.alloc(1024, 2) }) // COMPARE AND WRITE
    .scsi(cdb([0x5f, 1, 0, 0, 0, 0, 0, 0, 24, 0], 10), { write: Buffer.alloc(24) }) // PERSISTENT RESERVE OUT REGISTER
    .scsi(cdb16(0x93, 0, 8), { write: Buffer.alloc(512) }) // WRITE SAME(16)
    .scsi(cdb([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], 10), { write: Buffer.alloc(24) }) // UNMAP
    .other(TASK_MGMT_REQUEST, 0x80 | 5) // LOGICAL UNIT RESET
    .bytes();
  const discovery = new Stream()
    .login(1, 3, [['InitiatorName', 'iqn.2026-11.dev.blockgate:fuzz'], ['SessionType', 'Discovery'], ['HeaderDigest', 'CRC32C,None']])
    .other(TEXT_REQUEST, 0x80, {}, text([['SendTargets', 'All']]))
    .other(LOGOUT_REQUEST, 0x80)
    .bytes();
  const security = new Stream()
    .login(0, 1, [['InitiatorName', 'iqn.2026-11.dev.blockgate:fuzz'], ['SessionType', 'Normal'], ['TargetName', targetName], ['AuthMethod', 'CHAP,None']])
    .login(0, 1, [['CHAP_A', '5']], false)
    .login(1, 3, [['MaxConnections', '1'], ['ErrorRecoveryLevel', '0'], ['X-com.example.key', 'value'], ['DefaultTime2Wait', '2']])
    .scsi(cdb([0x12, 0, 0, 0, 36], 6), { read: 36 })
    .bytes();
  return [io, writes, discovery, security];
}

/**
 * SCSI command sequences for the in-process CDB harness: records of CDB length (0: the
 * opcode's own), the CDB, a u16 data-out length and the data-out.
 */
export function scsiSeeds(): Buffer[] {
  const rec = (c: Buffer, out: Buffer = Buffer.alloc(0)) => Buffer.concat([Buffer.from([0]), c, u16(out.length), out]);
  const prOut = (action: number, key: number, sark: number, type = 0) => {
    const b = cdb([0x5f, action, type, 0, 0, 0, 0, 0, 24, 0], 10);
    const p = Buffer.alloc(24);
    p.writeUInt32BE(key, 4);
    p.writeUInt32BE(sark, 12);
    return rec(b, p);
  };
  const unmap = Buffer.alloc(24);
  unmap.writeUInt16BE(22, 0);
  unmap.writeUInt16BE(16, 2);
  unmap.writeUInt32BE(8, 12);
  unmap.writeUInt32BE(4, 20);
  const inquiry = [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2].map((page) => rec(cdb([0x12, page ? 1 : 0, page, 0, 255], 6)));
  return [
    Buffer.concat([rec(cdb([0x00], 6)), ...inquiry, rec(cdb([0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32], 16)), rec(cdb([0x25], 10))]),
    Buffer.concat([rec(cdb10(0x2a, 8, 1), Buffer.alloc(512, 0x5a)), rec(cdb10(0x28, 8, 1)), rec(cdb16(0x88, 0, 8)), rec(cdb16(0x8a, 16, 1), Buffer.alloc(512, 1)), rec(cdb16(0x8f, 0, 8))]),
    Buffer.concat([rec(cdb16(0x89, 8, 1), Buffer.concat([Buffer.alloc(512, 0x5a), Buffer.alloc(512, 3)])), rec(cdb16(0x93, 0, 8), Buffer.alloc(512)), rec(cdb([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], 10), unmap)]),
    Buffer.concat([rec(cdb([0x1a, 0, 0x3f, 0, 255], 6)), rec(cdb([0x5a, 0, 0x3f, 0, 0, 0, 0, 1, 0, 0], 10)), rec(cdb([0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0], 12)), rec(cdb([0x03, 0, 0, 0, 252], 6)), rec(cdb([0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0], 12)), rec(cdb([0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0], 12))]),
    Buffer.concat([prOut(0, 0, 0xabc), prOut(1, 0xabc, 0, 1), rec(cdb([0x5e, 0, 0, 0, 0, 0, 0, 1, 0, 0], 10)), rec(cdb([0x5e, 1, 0, 0, 0, 0, 0, 1, 0, 0], 10)), rec(cdb([0x16], 6)), rec(cdb([0x17], 6)), rec(cdb([0x35], 10)), rec(cdb16(0x9e, 0, 0x100))]),
  ];
}
