// Minimal clients that get a connection to the point where it would carry I/O, then stay
// idle: an NBD client through the fixed-newstyle handshake and NBD_OPT_GO, an iSCSI
// initiator through login to the full feature phase. Wire constants are written out here
// from the specifications (the NBD protocol document, RFC 7143), not imported from the
// code under test.
import { connect } from 'node:net';

// NBD (doc/proto.md)
const NBDMAGIC = Buffer.from('NBDMAGIC');
const IHAVEOPT = Buffer.from('IHAVEOPT');
const NBD_REP_MAGIC = 0x3e889045565a9n;
const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
const NBD_FLAG_C_NO_ZEROES = 1 << 1;
const NBD_OPT_GO = 7;
const NBD_REP_ACK = 1;
const NBD_REP_FLAG_ERROR = 0x80000000;

// iSCSI (RFC 7143)
const LOGIN_REQUEST = 0x03;
const LOGIN_RESPONSE = 0x23;
const NOP_OUT = 0x00;
const NOP_IN = 0x20;
const IMMEDIATE = 0x40;
const TRANSIT = 0x80;
const OPERATIONAL_NEGOTIATION = 1;
const FULL_FEATURE_PHASE = 3;
const BHS_LENGTH = 48;
const RESERVED_TAG = 0xffffffff;

/** Bytes arriving on a socket, read in exact amounts. */
class Reader {
  constructor(socket) {
    this.socket = socket;
    this.chunks = [];
    this.length = 0;
    this.waiting = null;
    this.failure = null;
    socket.on('data', (d) => {
      this.chunks.push(d);
      this.length += d.length;
      this.wake();
    });
    const fail = (err) => {
      this.failure ??= err ?? new Error('connection closed');
      this.wake();
    };
    socket.on('error', fail);
    socket.on('close', () => fail());
  }

  wake() {
    const w = this.waiting;
    if (w && (this.length >= w.n || this.failure)) {
      this.waiting = null;
      w.resolve();
    }
  }

  async read(n) {
    if (this.length < n) {
      if (this.failure) throw this.failure;
      await new Promise((resolve) => (this.waiting = { n, resolve }));
      if (this.length < n) throw this.failure;
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = [all.subarray(n)];
    this.length -= n;
    return all.subarray(0, n);
  }
}

function open(host, port) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** An NBD connection in the transmission phase of `exportName`, doing nothing. */
export async function idleNbdConnection(host, port, exportName) {
  const socket = await open(host, port);
  const reader = new Reader(socket);
  const greeting = await reader.read(18);
  if (!greeting.subarray(0, 8).equals(NBDMAGIC) || !greeting.subarray(8, 16).equals(IHAVEOPT)) throw new Error('not a newstyle NBD server');
  const flags = Buffer.alloc(4);
  flags.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  const name = Buffer.from(exportName);
  const data = Buffer.alloc(4 + name.length + 2);
  data.writeUInt32BE(name.length, 0);
  name.copy(data, 4);
  const option = Buffer.alloc(16);
  IHAVEOPT.copy(option, 0);
  option.writeUInt32BE(NBD_OPT_GO, 8);
  option.writeUInt32BE(data.length, 12);
  socket.write(Buffer.concat([flags, option, data]));
  for (;;) {
    const head = await reader.read(20);
    if (head.readBigUInt64BE(0) !== NBD_REP_MAGIC) throw new Error('bad option reply magic');
    const type = head.readUInt32BE(12);
    await reader.read(head.readUInt32BE(16));
    if (type === NBD_REP_ACK) return { close: () => socket.destroy() };
    if (type & NBD_REP_FLAG_ERROR) throw new Error(`NBD_OPT_GO refused (reply type 0x${type.toString(16)})`);
  }
}

function textData(keys) {
  const text = Buffer.from(Object.entries(keys).map(([k, v]) => `${k}=${v}\0`).join(''));
  const padded = Buffer.alloc((text.length + 3) & ~3);
  text.copy(padded);
  return { padded, length: text.length };
}

async function readPdu(reader) {
  const bhs = await reader.read(BHS_LENGTH);
  const ahs = bhs[4] * 4;
  const dataLength = bhs.readUIntBE(5, 3);
  const rest = await reader.read(ahs + ((dataLength + 3) & ~3));
  return { bhs, data: rest.subarray(ahs, ahs + dataLength) };
}

/**
 * An iSCSI session (one connection) logged in to `target` at the operational stage (no
 * authentication) and moved to the full feature phase; it answers the target's NOP-In
 * pings so the session stays up while idle. `isid` must differ between sessions.
 */
export async function idleIscsiSession(host, port, target, initiator, isid) {
  const socket = await open(host, port);
  const reader = new Reader(socket);
  let statSn = 0;
  for (let step = 0; ; step++) {
    const { padded, length } = textData(
      step === 0
        ? {
            InitiatorName: initiator,
            SessionType: 'Normal',
            TargetName: target,
            HeaderDigest: 'None',
            DataDigest: 'None',
            MaxRecvDataSegmentLength: 262144,
          }
        : {},
    );
    const bhs = Buffer.alloc(BHS_LENGTH);
    bhs[0] = IMMEDIATE | LOGIN_REQUEST;
    bhs[1] = TRANSIT | (OPERATIONAL_NEGOTIATION << 2) | FULL_FEATURE_PHASE;
    bhs.writeUIntBE(length, 5, 3);
    bhs[8] = 0x80; // ISID type: random
    bhs.writeUIntBE(isid & 0xffffffffff, 9, 5);
    bhs.writeUInt32BE(step + 1, 16); // ITT
    bhs.writeUInt32BE(1, 24); // CmdSN
    bhs.writeUInt32BE(statSn, 28); // ExpStatSN
    socket.write(Buffer.concat([bhs, padded]));
    const reply = await readPdu(reader);
    if ((reply.bhs[0] & 0x3f) !== LOGIN_RESPONSE) throw new Error(`expected a login response, got opcode 0x${reply.bhs[0].toString(16)}`);
    if (reply.bhs[36] !== 0) throw new Error(`login refused: status class ${reply.bhs[36]} detail ${reply.bhs[37]}`);
    statSn = (reply.bhs.readUInt32BE(24) + 1) >>> 0;
    if (reply.bhs[1] & TRANSIT && (reply.bhs[1] & 3) === FULL_FEATURE_PHASE) break;
    if (step > 4) throw new Error('the target did not move to the full feature phase');
  }
  const pings = (async () => {
    for (;;) {
      const pdu = await readPdu(reader);
      if ((pdu.bhs[0] & 0x3f) !== NOP_IN || pdu.bhs.readUInt32BE(20) === RESERVED_TAG) continue;
      const out = Buffer.alloc(BHS_LENGTH);
      out[0] = IMMEDIATE | NOP_OUT;
      out[1] = 0x80;
      pdu.bhs.copy(out, 8, 8, 16); // LUN
      out.writeUInt32BE(RESERVED_TAG, 16); // ITT
      pdu.bhs.copy(out, 20, 20, 24); // TTT
      pdu.bhs.copy(out, 24, 28, 32); // CmdSN: the target's ExpCmdSN (an immediate PDU does not advance it)
      pdu.bhs.copy(out, 28, 24, 28); // ExpStatSN: a ping carries the next StatSN

      socket.write(out);
    }
  })().catch(() => undefined);
  void pings;
  return { close: () => socket.destroy() };
}
