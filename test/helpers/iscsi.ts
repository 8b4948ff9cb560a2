/**
 * Test helpers for the iSCSI front end: an in-process blockgate target, a tgtd to compare
 * against, iscsi-test-cu output parsing, and a minimal initiator of our own that speaks
 * just enough RFC 7143 to log in, run SCSI commands and watch ALUA unit attentions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { BlockDevice } from '../../fabric/device.js';
import { FabricSwitch } from '../../fabric/switch.js';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { IscsiServer, type IscsiServerOptions } from '../../gateway/iscsi/server.js';
import type { IscsiTargetConfig } from '../../gateway/iscsi/target-config.js';
import { crc32c } from './crc32c.js';
import { freePort } from './free-port.js';
import { setLogLevel } from '../../fabric/log.js';

// Tests read TAP, not the server's state-change log; BLOCKGATE_LOG_LEVEL=info brings it back.
setLogLevel((process.env.BLOCKGATE_LOG_LEVEL as 'info' | undefined) ?? 'warn');

export const TARGET_IQN = 'iqn.2026-11.dev.blockgate:test';
export const INITIATOR_IQN = 'iqn.2026-11.dev.blockgate:initiator';

export interface Blockgate {
  readonly server: IscsiServer;
  readonly fabric: FabricSwitch;
  readonly port: number;
  /** Every portal as { group, port }. */
  readonly portals: { group: number; port: number }[];
  url(lun?: number, auth?: string): string;
  stop(): Promise<void>;
}

export async function startBlockgate(
  options: {
    size?: number;
    target?: Partial<IscsiTargetConfig>;
    server?: Partial<IscsiServerOptions>;
    groups?: number;
    /** The LUN's device (named `disk`); default a memory device of `size`. */
    device?: BlockDevice;
    /** More exports (each with its own device) for targets with more LUNs. */
    extraExports?: { name: string; device: BlockDevice }[];
  } = {},
): Promise<Blockgate> {
  const fabric = new FabricSwitch();
  fabric.addDevice(options.device ?? new MemoryBackend({ name: 'disk', size: options.size ?? 64 * 1024 * 1024 }));
  fabric.addExport({ name: 'disk', device: 'disk' });
  for (const e of options.extraExports ?? []) {
    fabric.addDevice(e.device);
    fabric.addExport({ name: e.name, device: e.device.name });
  }
  const groups = Array.from({ length: options.groups ?? 1 }, (_, i) => ({ id: i + 1, portals: [{ host: '127.0.0.1', port: 0 }] }));
  const target: IscsiTargetConfig = {
    name: TARGET_IQN,
    luns: [{ lun: 0, export: 'disk' }],
    portalGroups: groups,
    aluaPolicy: 'active-active',
    ...options.target,
  };
  const server = new IscsiServer({ fabric, targets: [target], nopIntervalMs: 0, ...options.server });
  await server.start();
  const portals = server.addresses().map((a) => ({ group: a.portalGroup, port: a.port }));
  const port = portals[0]!.port;
  return {
    server,
    fabric,
    port,
    portals,
    url: (lun = 0, auth = '') => `iscsi://${auth}127.0.0.1:${port}/${target.name}/${lun}`,
    stop: async () => {
      await server.stop({ drainMs: 0 });
      await fabric.close();
    },
  };
}


export { freePort };

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const children = new Set<ChildProcess>();

/** Run a program to completion (killed after timeoutMs). */
export function run(cmd: string, args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Kill whatever run() started and is still going (for t.teardown). */
export function killChildren(): void {
  for (const c of children) c.kill('SIGKILL');
}

export interface Tgtd {
  readonly port: number;
  readonly iqn: string;
  url(): string;
  stop(): Promise<void>;
}

/** tgtd on a /dev/shm file of `size` bytes, exported as LUN 1 of its target (LUN 0 is its controller). */
export async function startTgtd(backing: string, size: number): Promise<Tgtd> {
  await run('truncate', ['-s', String(size), backing]);
  const port = await freePort();
  const control = 1000 + Math.floor(Math.random() * 31000);
  const iqn = 'iqn.2026-11.dev.blockgate:tgtd';
  const child = spawn('tgtd', ['-f', '-C', String(control), '--iscsi', `portal=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const tgtadm = (...args: string[]) => run('tgtadm', ['-C', String(control), '--lld', 'iscsi', ...args]);
  let ok = false;
  for (let i = 0; i < 50 && !ok; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ok = (await tgtadm('--op', 'show', '--mode', 'target')).code === 0;
  }
  if (!ok) {
    child.kill('SIGKILL');
    throw new Error(`tgtd did not start: ${log}`);
  }
  for (const args of [
    ['--op', 'new', '--mode', 'target', '--tid', '1', '-T', iqn],
    ['--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '-b', backing],
    ['--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL'],
  ]) {
    const r = await tgtadm(...args);
    if (r.code !== 0) throw new Error(`tgtadm ${args.join(' ')}: ${r.stderr}`);
  }
  return {
    port,
    iqn,
    url: () => `iscsi://127.0.0.1:${port}/${iqn}/1`,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      children.delete(child);
      // Killed tgtd leaves its control socket behind.
      rmSync(`/var/run/tgtd/socket.${control}`, { force: true });
      rmSync(`/var/run/tgtd/socket.${control}.lock`, { force: true });
    },
  };
}

export type CuStatus = 'passed' | 'failed' | 'skipped';
export interface CuResult {
  readonly status: CuStatus;
  readonly detail: string;
}

/**
 * Per-test results of `iscsi-test-cu -v` output: "Suite: X", "  Test: Y ...", then the
 * test's lines, ending in "passed" or "FAILED" (skips are passes that log [SKIPPED]).
 */
export function parseCuOutput(text: string): Map<string, CuResult> {
  const results = new Map<string, CuResult>();
  let suite = '';
  let current: { name: string; lines: string[] } | undefined;
  const finish = () => {
    if (!current) return;
    const body = current.lines.join('\n');
    const failed = /(^|\n|\.\.\.)\s*FAILED\s*(\n|$)/.test(body) || /\.\.\.FAILED/.test(body);
    const skipped = !failed && /\[SKIPPED\]/.test(body);
    const reasons = body
      .split('\n')
      .map((l) => l.trim().replace(/^\.\.\.\s*/, ''))
      .filter((l) => /\[FAILED\]|CU_|\[SKIPPED\]/.test(l))
      .map((l) => l.replace(/^\d+\.\s*/, ''));
    results.set(current.name, { status: failed ? 'failed' : skipped ? 'skipped' : 'passed', detail: [...new Set(reasons)].slice(0, 3).join(' | ') });
    current = undefined;
  };
  for (const line of text.split('\n')) {
    const s = /^Suite: (\S+)/.exec(line);
    if (s) {
      finish();
      suite = s[1]!;
      continue;
    }
    const t = /^ {2}Test: (\S+) \.\.\.(.*)$/.exec(line);
    if (t) {
      finish();
      current = { name: `${suite}.${t[1]}`, lines: [`...${t[2]}`] };
      continue;
    }
    if (/^Run Summary/.test(line)) {
      finish();
      break;
    }
    current?.lines.push(line);
  }
  finish();
  return results;
}

// ---------------------------------------------------------------------------------------
// A minimal initiator, for what no packaged tool does: two portals, RTPG, ALUA transitions,
// bad PDUs, digests, mutual CHAP.
// ---------------------------------------------------------------------------------------

export interface RawPdu {
  readonly bhs: Buffer;
  readonly data: Buffer;
}

export interface ScsiReply {
  readonly status: number;
  readonly data: Buffer;
  readonly sense?: Buffer;
  readonly flags: number;
  readonly residual: number;
}

export interface LoginOptions {
  readonly initiatorName?: string;
  readonly targetName?: string;
  readonly discovery?: boolean;
  readonly isid?: Buffer;
  readonly tsih?: number;
  /** true: offer CRC32C only; a string: the offer as it goes on the wire (e.g. "None,CRC32C"). */
  readonly headerDigest?: boolean | string;
  readonly dataDigest?: boolean;
  readonly chap?: { user: string; secret: string; mutual?: { user: string; secret: string; reflect?: boolean } };
  readonly extraKeys?: Record<string, string>;
  readonly maxRecvDataSegmentLength?: number;
}

export class LoginError extends Error {
  constructor(
    readonly statusClass: number,
    readonly statusDetail: number,
    readonly keys: Map<string, string>,
  ) {
    super(`login failed: 0x${statusClass.toString(16).padStart(2, '0')}${statusDetail.toString(16).padStart(2, '0')}`);
  }
}

const md5 = (id: number, secret: string, challenge: Buffer) => createHash('md5').update(Buffer.from([id])).update(secret).update(challenge).digest();

export class TestInitiator {
  readonly socket: Socket;
  private buffer = Buffer.alloc(0);
  private waiters: ((pdu: RawPdu) => boolean)[] = [];
  private queue: RawPdu[] = [];
  private closedFlag = false;
  private closeWaiters: (() => void)[] = [];
  headerDigest = false;
  dataDigest = false;
  cmdSN = 1;
  expStatSN = 0;
  itt = 1;
  tsih = 0;
  readonly isid: Buffer;
  /** Async messages and target pings seen. */
  readonly asyncMessages: RawPdu[] = [];
  loginKeys = new Map<string, string>();

  private constructor(socket: Socket, isid?: Buffer) {
    this.socket = socket;
    this.isid = isid ?? Buffer.concat([Buffer.from([0x80]), randomBytes(3), Buffer.alloc(2)]);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closedFlag = true;
      for (const w of this.closeWaiters) w();
    });
  }

  static connect(port: number, isid?: Buffer, localAddress?: string): Promise<TestInitiator> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(new TestInitiator(s, isid)));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Resolves when the target drops the connection (or after timeoutMs with false). */
  waitClosed(timeoutMs = 5000): Promise<boolean> {
    if (this.closedFlag) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, d]);
    for (;;) {
      if (this.buffer.length < 48) return;
      const ahs = this.buffer[4]! * 4;
      const dlen = this.buffer.readUIntBE(5, 3);
      const hd = this.headerDigest ? 4 : 0;
      const padded = dlen + ((4 - (dlen & 3)) & 3);
      const dd = this.dataDigest && dlen > 0 ? 4 : 0;
      const total = 48 + ahs + hd + padded + dd;
      if (this.buffer.length < total) return;
      const bhs = Buffer.from(this.buffer.subarray(0, 48));
      if (hd && this.buffer.readUInt32LE(48 + ahs) !== crc32c(this.buffer.subarray(0, 48 + ahs))) throw new Error('bad header digest from target');
      const data = Buffer.from(this.buffer.subarray(48 + ahs + hd, 48 + ahs + hd + dlen));
      if (dd && this.buffer.readUInt32LE(48 + ahs + hd + padded) !== crc32c(this.buffer.subarray(48 + ahs + hd, 48 + ahs + hd + padded))) {
        throw new Error('bad data digest from target');
      }
      this.buffer = this.buffer.subarray(total);
      this.deliver({ bhs, data });
    }
  }

  private deliver(pdu: RawPdu): void {
    const op = pdu.bhs[0]! & 0x3f;
    if (op === 0x32) this.asyncMessages.push(pdu);
    if (op === 0x20 && pdu.bhs.readUInt32BE(16) === 0xffffffff) {
      // Target ping: answer with its TTT.
      this.asyncMessages.push(pdu);
      const b = this.bhs(0x00 | 0x40, 0x80);
      pdu.bhs.copy(b, 8, 8, 16);
      b.writeUInt32BE(0xffffffff, 16);
      b.writeUInt32BE(pdu.bhs.readUInt32BE(20), 20);
      b.writeUInt32BE(this.cmdSN, 24);
      this.send(b);
      return;
    }
    const w = this.waiters.findIndex((f) => f(pdu));
    if (w >= 0) this.waiters.splice(w, 1);
    else this.queue.push(pdu);
  }

  /** The next PDU matching `match`, from the queue or as it arrives. */
  next(match: (pdu: RawPdu) => boolean = () => true, timeoutMs = 5000): Promise<RawPdu> {
    const i = this.queue.findIndex(match);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      let fn: (pdu: RawPdu) => boolean;
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== fn);
        reject(new Error('timed out waiting for a PDU'));
      }, timeoutMs);
      fn = (pdu) => {
        if (!match(pdu)) return false;
        clearTimeout(timer);
        resolve(pdu);
        return true;
      };
      this.waiters.push(fn);
    });
  }

  bhs(opcodeByte: number, flags: number): Buffer {
    const b = Buffer.alloc(48);
    b[0] = opcodeByte;
    b[1] = flags;
    return b;
  }

  /** Send one PDU (digests as negotiated); `raw` bytes go out as they are. */
  send(bhs: Buffer, data: Buffer = Buffer.alloc(0)): void {
    bhs.writeUIntBE(data.length, 5, 3);
    const parts = [bhs];
    if (this.headerDigest) {
      const d = Buffer.alloc(4);
      d.writeUInt32LE(crc32c(bhs));
      parts.push(d);
    }
    if (data.length) {
      const padded = Buffer.concat([data, Buffer.alloc((4 - (data.length & 3)) & 3)]);
      parts.push(padded);
      if (this.dataDigest) {
        const d = Buffer.alloc(4);
        d.writeUInt32LE(crc32c(padded));
        parts.push(d);
      }
    }
    this.socket.write(Buffer.concat(parts));
  }

  raw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  private loginPdu(csg: number, nsg: number, transit: boolean, keys: [string, string][]): Buffer {
    const b = this.bhs(0x43, (transit ? 0x80 : 0) | (csg << 2) | (transit ? nsg : 0));
    this.isid.copy(b, 8);
    b.writeUInt16BE(this.tsih, 14);
    b.writeUInt32BE(this.itt, 16);
    b.writeUInt16BE(1, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    this.send(b, Buffer.from(keys.map(([k, v]) => `${k}=${v}\0`).join('')));
    return b;
  }

  private async loginExchange(csg: number, nsg: number, transit: boolean, keys: [string, string][]): Promise<{ bhs: Buffer; keys: Map<string, string> }> {
    this.loginPdu(csg, nsg, transit, keys);
    const r = await this.next((p) => (p.bhs[0]! & 0x3f) === 0x23);
    const map = new Map<string, string>();
    for (const kv of r.data.toString().split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0) map.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    for (const [k, v] of map) this.loginKeys.set(k, v);
    this.expStatSN = (r.bhs.readUInt32BE(24) + 1) >>> 0;
    if (r.bhs[36] !== 0) throw new LoginError(r.bhs[36]!, r.bhs[37]!, map);
    return { bhs: r.bhs, keys: map };
  }

  async login(o: LoginOptions = {}): Promise<void> {
    if (o.tsih) this.tsih = o.tsih;
    const first: [string, string][] = [
      ['InitiatorName', o.initiatorName ?? INITIATOR_IQN],
      ['SessionType', o.discovery ? 'Discovery' : 'Normal'],
    ];
    if (!o.discovery) first.push(['TargetName', o.targetName ?? TARGET_IQN]);
    const ops: [string, string][] = [
      ['HeaderDigest', typeof o.headerDigest === 'string' ? o.headerDigest : o.headerDigest ? 'CRC32C' : 'None'],
      ['DataDigest', o.dataDigest ? 'CRC32C' : 'None'],
      ['MaxRecvDataSegmentLength', String(o.maxRecvDataSegmentLength ?? 65536)],
      ...Object.entries(o.extraKeys ?? {}),
    ];
    if (o.chap) {
      await this.loginExchange(0, 1, false, [...first, ['AuthMethod', 'CHAP']]);
      const a = await this.loginExchange(0, 1, false, [['CHAP_A', '5']]);
      const id = Number(a.keys.get('CHAP_I'));
      const challenge = Buffer.from(a.keys.get('CHAP_C')!.slice(2), 'hex');
      const resp: [string, string][] = [
        ['CHAP_N', o.chap.user],
        ['CHAP_R', `0x${md5(id, o.chap.secret, challenge).toString('hex')}`],
      ];
      const myId = 7;
      const myChallenge = o.chap.mutual?.reflect ? challenge : randomBytes(16);
      if (o.chap.mutual) resp.push(['CHAP_I', String(myId)], ['CHAP_C', `0x${myChallenge.toString('hex')}`]);
      const r = await this.loginExchange(0, 1, true, resp);
      if (o.chap.mutual) {
        const want = md5(myId, o.chap.mutual.secret, myChallenge).toString('hex');
        if (r.keys.get('CHAP_N') !== o.chap.mutual.user || r.keys.get('CHAP_R')?.slice(2) !== want) throw new Error('target failed mutual CHAP');
      }
      const f = await this.loginExchange(1, 3, true, ops);
      this.finishLogin(f.bhs, f.keys);
    } else {
      const f = await this.loginExchange(1, 3, true, [...first, ...ops]);
      this.finishLogin(f.bhs, f.keys);
    }
  }

  private finishLogin(bhs: Buffer, keys: Map<string, string>): void {
    if ((bhs[1]! & 0x80) === 0 || (bhs[1]! & 3) !== 3) throw new Error('target did not enter full feature phase');
    this.tsih = bhs.readUInt16BE(14);
    this.headerDigest = keys.get('HeaderDigest') === 'CRC32C';
    this.dataDigest = keys.get('DataDigest') === 'CRC32C';
  }

  /** Run one SCSI command; write data goes immediate (≤ FirstBurst) and through R2Ts. */
  async scsi(cdb: Buffer, o: { lun?: number; read?: number; write?: Buffer; cmdSN?: number; timeoutMs?: number } = {}): Promise<ScsiReply> {
    const tag = this.itt++;
    const b = this.bhs(0x01, 0x80 | (o.read ? 0x40 : 0) | (o.write ? 0x20 : 0) | 1);
    b[9] = o.lun ?? 0;
    b.writeUInt32BE(tag, 16);
    b.writeUInt32BE(o.read ?? o.write?.length ?? 0, 20);
    b.writeUInt32BE(o.cmdSN ?? this.cmdSN++, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    cdb.copy(b, 32);
    this.send(b);
    const chunks: Buffer[] = [];
    for (;;) {
      const p = await this.next((x) => x.bhs.readUInt32BE(16) === tag, o.timeoutMs);
      const op = p.bhs[0]! & 0x3f;
      if (op === 0x31 && o.write) {
        const offset = p.bhs.readUInt32BE(40);
        const len = p.bhs.readUInt32BE(44);
        const d = this.bhs(0x05, 0x80);
        b.copy(d, 8, 8, 16);
        d.writeUInt32BE(tag, 16);
        d.writeUInt32BE(p.bhs.readUInt32BE(20), 20);
        d.writeUInt32BE(this.expStatSN, 28);
        d.writeUInt32BE(0, 36);
        d.writeUInt32BE(offset, 40);
        this.send(d, o.write.subarray(offset, offset + len));
        continue;
      }
      if (op === 0x25) {
        chunks.push(p.data);
        if (p.bhs[1]! & 0x01) {
          this.expStatSN = (p.bhs.readUInt32BE(24) + 1) >>> 0;
          return { status: p.bhs[3]!, data: Buffer.concat(chunks), flags: p.bhs[1]!, residual: p.bhs.readUInt32BE(44) };
        }
        continue;
      }
      if (op === 0x21) {
        this.expStatSN = (p.bhs.readUInt32BE(24) + 1) >>> 0;
        const sense = p.data.length >= 2 ? p.data.subarray(2, 2 + p.data.readUInt16BE(0)) : undefined;
        return { status: p.bhs[3]!, data: Buffer.concat(chunks), sense, flags: p.bhs[1]!, residual: p.bhs.readUInt32BE(44) };
      }
      throw new Error(`unexpected opcode 0x${op.toString(16)} for task ${tag}`);
    }
  }

  /**
   * A task management request (immediate, as initiators send them); resolves with the
   * response code of the TMF response (RFC 7143 §11.6.1: 0 function complete, 1 task does
   * not exist, …).
   */
  async taskManagement(fn: number, o: { refItt?: number; refCmdSN?: number; lun?: number } = {}): Promise<number> {
    const tag = this.itt++;
    const b = this.bhs(0x02 | 0x40, 0x80 | fn);
    b[9] = o.lun ?? 0;
    b.writeUInt32BE(tag, 16);
    b.writeUInt32BE(o.refItt ?? 0xffffffff, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    b.writeUInt32BE(o.refCmdSN ?? 0, 32);
    this.send(b);
    const r = await this.next((p) => p.bhs.readUInt32BE(16) === tag);
    if ((r.bhs[0]! & 0x3f) !== 0x22) throw new Error(`expected a TMF response, got opcode 0x${(r.bhs[0]! & 0x3f).toString(16)}`);
    return r.bhs[2]!;
  }

  /** Whether a PDU for task `tag` arrived and was not consumed yet. */
  hasPduFor(tag: number): boolean {
    return this.queue.some((p) => p.bhs.readUInt32BE(16) === tag);
  }

  /** Send a SCSI command and wait for nothing; its task tag comes back. */
  command(cdb: Buffer, o: { lun?: number; read?: number; write?: number; cmdSN?: number; immediate?: boolean } = {}): number {
    const tag = this.itt++;
    const b = this.bhs(0x01 | (o.immediate ? 0x40 : 0), 0x80 | (o.read ? 0x40 : 0) | (o.write ? 0x20 : 0) | 1);
    b[9] = o.lun ?? 0;
    b.writeUInt32BE(tag, 16);
    b.writeUInt32BE(o.read ?? o.write ?? 0, 20);
    b.writeUInt32BE(o.cmdSN ?? (o.immediate ? this.cmdSN : this.cmdSN++), 24);
    b.writeUInt32BE(this.expStatSN, 28);
    cdb.copy(b, 32);
    this.send(b);
    return tag;
  }

  /** The SCSI Response (or final Data-In with status) of a task sent with command(). */
  async response(tag: number, timeoutMs = 5000): Promise<RawPdu> {
    for (;;) {
      const p = await this.next((x) => x.bhs.readUInt32BE(16) === tag, timeoutMs);
      const op = p.bhs[0]! & 0x3f;
      if (op === 0x21 || (op === 0x25 && p.bhs[1]! & 0x01)) return p;
    }
  }

  async nop(data = Buffer.alloc(0)): Promise<RawPdu> {
    const tag = this.itt++;
    const b = this.bhs(0x00 | 0x40, 0x80);
    b.writeUInt32BE(tag, 16);
    b.writeUInt32BE(0xffffffff, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    this.send(b, data);
    return this.next((p) => p.bhs.readUInt32BE(16) === tag);
  }

  async text(keys: string): Promise<string> {
    const tag = this.itt++;
    const b = this.bhs(0x04 | 0x40, 0x80);
    b.writeUInt32BE(tag, 16);
    b.writeUInt32BE(0xffffffff, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    this.send(b, Buffer.from(keys));
    const r = await this.next((p) => p.bhs.readUInt32BE(16) === tag);
    return r.data.toString();
  }

  async logout(): Promise<RawPdu> {
    const tag = this.itt++;
    const b = this.bhs(0x06 | 0x40, 0x80);
    b.writeUInt32BE(tag, 16);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    this.send(b);
    return this.next((p) => p.bhs.readUInt32BE(16) === tag);
  }
}

/** REPORT TARGET PORT GROUPS (MAINTENANCE IN, service action 0x0a). */
export function rtpgCdb(alloc = 1024): Buffer {
  const cdb = Buffer.alloc(12);
  cdb[0] = 0xa3;
  cdb[1] = 0x0a;
  cdb.writeUInt32BE(alloc, 6);
  return cdb;
}

/** Parse RTPG data: group id → asymmetric access state code. */
export function parseRtpg(data: Buffer): Map<number, number> {
  const groups = new Map<number, number>();
  const len = data.readUInt32BE(0);
  for (let at = 4; at + 8 <= 4 + len && at + 8 <= data.length; ) {
    const state = data[at]! & 0x0f;
    const id = data.readUInt16BE(at + 2);
    const ports = data[at + 7]!;
    groups.set(id, state);
    at += 8 + 4 * ports;
  }
  return groups;
}

/** RTPG through an initiator: group id → access state code (throws on anything but GOOD). */
export async function rtpg(ini: TestInitiator): Promise<Map<number, number>> {
  const r = await ini.scsi(rtpgCdb(), { read: 1024 });
  if (r.status !== 0) throw new Error(`RTPG status ${r.status} sense ${r.sense?.toString('hex')}`);
  return parseRtpg(r.data);
}

/** Run TEST UNIT READY until no unit attention is pending; returns the UAs seen (ASC/ASCQ). */
export async function drainUnitAttentions(ini: TestInitiator): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < 8; i++) {
    const r = await ini.scsi(TEST_UNIT_READY);
    const s = senseOf(r.sense);
    if (r.status !== 2 || s?.key !== 0x6) return seen;
    seen.push(`${s.asc.toString(16)}/${s.ascq.toString(16).padStart(2, '0')}`);
  }
  return seen;
}

/** Sense key / ASC / ASCQ from fixed (0x70/0x71) or descriptor (0x72/0x73) sense data. */
export function senseOf(sense: Buffer | undefined): { key: number; asc: number; ascq: number } | undefined {
  if (!sense || sense.length < 4) return undefined;
  const code = sense[0]! & 0x7f;
  if (code === 0x72 || code === 0x73) return { key: sense[1]! & 0x0f, asc: sense[2]!, ascq: sense[3]! };
  if (sense.length < 14) return undefined;
  return { key: sense[2]! & 0x0f, asc: sense[12]!, ascq: sense[13]! };
}

export const TEST_UNIT_READY = Buffer.alloc(6);

export function read10(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x28;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}

/** A 16-byte CDB with an LBA and a TRANSFER LENGTH (READ(16) 0x88, WRITE(16) 0x8a, VERIFY(16) 0x8f). */
export function cdb16(opcode: number, lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = opcode;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb.writeUInt32BE(blocks, 10);
  return cdb;
}

export const read16 = (lba: number, blocks: number): Buffer => cdb16(0x88, lba, blocks);
export const write16 = (lba: number, blocks: number): Buffer => cdb16(0x8a, lba, blocks);

export function write10(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x2a;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}
