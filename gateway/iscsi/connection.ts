import type { Socket } from 'node:net';
import { readBufferPool } from '../../fabric/buffers.js';
import { logger } from '../../fabric/log.js';
import { SocketReceiver, type ReceivePath } from '../../fabric/socket-receiver.js';
import { BHS_LENGTH, FINAL_BIT, ISCSI_VERSION, LoginStatus, Opcode, RESERVED_TAG, RejectReason } from './constants.js';
import { Login, type LoginContext, type LoginResult, type LoginStep } from './login.js';
import { defaultParams, type OperationalParams, type TargetLimits } from './negotiation.js';
import { detachPdu, encodeLun, frame, frameInto, FramingError, isImmediate, itt, newBhs, opcodeOf, PduReader, releasePdu, sliceData, type Pdu } from './pdu.js';
import type { Session } from './session.js';
import { MAX_UNSENT_BYTES } from './budget.js';
import type { RefusalReason, Refusals } from '../access/refusals.js';
import { encodeText, type TextPairs } from './text.js';
import { CommandPath } from './command.js';
import { handleTaskManagement } from './tmf.js';
import { TextExchange } from './text-exchange.js';

const log = logger('iscsi');
const NO_DATA: readonly Buffer[] = [];

/** What a connection needs from the server it belongs to. */
export interface ConnectionHost {
  readonly limits: TargetLimits;
  loginContext(conn: Connection): LoginContext;
  /** Create (or join, or reinstate) the session; a number is a login failure status. */
  establish(conn: Connection, result: LoginResult): Session | number;
  /** The connection is gone: end its session if it was the last one. */
  detach(conn: Connection): void;
  sendTargets(conn: Connection, value: string): TextPairs;
  readonly nopIntervalMs: number;
  /** Where full-feature connections read: pooled receive arenas, or 'data' events (forced by tests). */
  readonly receive: ReceivePath;
  /** Commands a session may have outstanding (its CmdSN window). */
  readonly queueDepth: number;
  /** A connection still logging in after this long is dropped; 0 never. */
  readonly loginTimeoutMs: number;
  readonly refusals: Refusals;
}

type Phase = 'login' | 'full' | 'logout' | 'closed';

/** Login failures that are the target turning a client away (counted), rather than a broken login. */
const REFUSAL_OF_STATUS: Partial<Record<number, RefusalReason>> = {
  [LoginStatus.AUTHENTICATION_FAILURE]: 'authentication',
  [LoginStatus.AUTHORIZATION_FAILURE]: 'not-allowed',
};

let nextConnectionId = 1;

/** The longest a login is held while its cluster fails over, before Service Unavailable. */
export const LOGIN_HOLD_MS = 10_000;

/**
 * One TCP connection: frames PDUs, runs login, then dispatches full-feature PDUs to the
 * command path, task management, text and logout. Everything that goes out passes through
 * `send`, which writes one PDU train in one corked write.
 */
export class Connection {
  readonly id = nextConnectionId++;
  params: OperationalParams;
  session: Session | undefined;
  cid = 0;
  private statSN = 0;
  private phase: Phase = 'login';
  private login: Login | undefined;
  private readonly receiver: SocketReceiver;
  private readonly reader: PduReader;
  private readonly framing = { headerDigest: false, dataDigest: false, maxDataSegment: 8192 };
  readonly commands: CommandPath;
  private readonly text: TextExchange;
  private nopTimer: NodeJS.Timeout | undefined;
  private nopOutstanding = false;
  private nextNopTag = 1;
  private paused = false;
  /** A login waits for its cluster to say where the session goes: read nothing meanwhile. */
  private held = false;
  private loginHeldSince: number | undefined;
  private loginTimer: NodeJS.Timeout | undefined;
  private stopWatchingBudget: (() => void) | undefined;
  readonly log;

  constructor(
    readonly socket: Socket,
    readonly host: ConnectionHost,
    /** Listener this connection arrived on (for portal group lookups). */
    readonly listenerId: string,
  ) {
    this.params = defaultParams(host.limits);
    this.receiver = new SocketReceiver(socket, () => this.pump());
    this.reader = new PduReader(this.receiver.queue, this.framing);
    this.commands = new CommandPath(this);
    this.text = new TextExchange(this, (value) => host.sendTargets(this, value));
    this.log = log.child({ conn: this.id, peer: `${socket.remoteAddress}:${socket.remotePort}` });
    socket.setNoDelay(true);
    socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('peer closed'));
    socket.on('drain', () => this.resume());
    if (host.loginTimeoutMs > 0) {
      // A client that connects and never finishes logging in holds a socket and a login state.
      this.loginTimer = setTimeout(() => {
        host.refusals.refuse('iscsi', 'timeout', this.log, { afterMs: host.loginTimeoutMs });
        this.close(`login not complete after ${host.loginTimeoutMs} ms`);
      }, host.loginTimeoutMs);
      this.loginTimer.unref();
    }
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  get fullFeature(): boolean {
    return this.phase === 'full';
  }

  private pump(): void {
    try {
      let pdu: Pdu | undefined;
      while (this.phase !== 'closed' && !this.paused && !this.held && (pdu = this.reader.next())) {
        this.dispatch(pdu);
        if (this.overloaded()) this.pause();
      }
    } catch (err) {
      if (err instanceof FramingError) {
        if (err.kind === 'data-digest' && err.bhs) this.reject(err.bhs, RejectReason.DATA_DIGEST_ERROR);
        if (err.kind === 'too-long' && err.bhs) this.reject(err.bhs, RejectReason.PROTOCOL_ERROR);
        this.close(err.message);
      } else {
        this.log.error({ err }, 'unexpected error handling a PDU');
        this.close('internal error');
      }
    }
  }

  /**
   * SCSI Command and Data-Out PDUs stay views of the receive arenas: the command path keeps
   * them (and their holds) until the command is answered. Every other PDU is detached from
   * the arenas first. A data-path PDU dropped here is released here.
   */
  private dispatch(received: Pdu): void {
    const op = opcodeOf(received.bhs);
    const dataPath = op === Opcode.SCSI_COMMAND || op === Opcode.SCSI_DATA_OUT;
    const pdu = dataPath ? received : detachPdu(received);
    if (dataPath && this.phase !== 'full') releasePdu(pdu);
    if (this.phase === 'login') {
      if (op !== Opcode.LOGIN_REQUEST) return this.close(`opcode 0x${op.toString(16)} before login completed`);
      return this.onLogin(pdu);
    }
    if (this.phase !== 'full') return;
    const session = this.session!;
    if (op === Opcode.SCSI_DATA_OUT) return this.commands.onDataOut(pdu);
    if (op === Opcode.SNACK_REQUEST) return this.reject(pdu.bhs, RejectReason.COMMAND_NOT_SUPPORTED); // ERL 0
    const numbered = op === Opcode.NOP_OUT || op === Opcode.SCSI_COMMAND || op === Opcode.TASK_MGMT_REQUEST || op === Opcode.TEXT_REQUEST || op === Opcode.LOGOUT_REQUEST;
    if (!numbered) {
      if (op === Opcode.LOGIN_REQUEST) return this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
      return this.reject(pdu.bhs, RejectReason.COMMAND_NOT_SUPPORTED);
    }
    if (isImmediate(pdu.bhs)) return this.run(op, pdu);
    const cmdSN = pdu.bhs.readUInt32BE(24);
    const verdict = session.verdict(cmdSN);
    if (verdict === 'drop') {
      this.log.debug({ cmdSN, expCmdSN: session.expCmdSN }, 'command outside the CmdSN window ignored');
      return releasePdu(pdu);
    }
    // A deferred command that never runs (session gone) leaves its arena to the GC.
    if (verdict === 'queue') return session.defer(cmdSN, () => this.run(op, pdu));
    session.advance();
    this.run(op, pdu);
  }

  private run(op: number, pdu: Pdu): void {
    if (this.phase !== 'full') return releasePdu(pdu);
    if (this.session!.type === 'Discovery' && op !== Opcode.TEXT_REQUEST && op !== Opcode.LOGOUT_REQUEST && op !== Opcode.NOP_OUT) {
      this.reject(pdu.bhs, RejectReason.PROTOCOL_ERROR);
      return releasePdu(pdu);
    }
    switch (op) {
      case Opcode.SCSI_COMMAND:
        return this.commands.onCommand(pdu);
      case Opcode.NOP_OUT:
        return this.onNopOut(pdu);
      case Opcode.TASK_MGMT_REQUEST:
        return void handleTaskManagement(this, pdu).catch((err: unknown) => this.fail(err));
      case Opcode.TEXT_REQUEST:
        return this.text.onRequest(pdu);
      case Opcode.LOGOUT_REQUEST:
        return void this.onLogout(pdu).catch((err: unknown) => this.fail(err));
    }
  }

  // ---- login ----

  private onLogin(pdu: Pdu): void {
    if (!this.login) {
      this.login = new Login(this.host.loginContext(this));
      // StatSN starts where the initiator expects it (its ExpStatSN in the first login PDU).
      this.statSN = pdu.bhs.readUInt32BE(28);
    }
    const step = this.login.handle(pdu);
    if (step.deferred) return this.holdLogin(pdu, step.deferred);
    this.loginHeldSince = undefined;
    this.answerLogin(pdu, step);
  }

  private answerLogin(pdu: Pdu, step: LoginStep): void {
    const b = pdu.bhs;
    const bhs = newBhs(Opcode.LOGIN_RESPONSE, 0);
    b.copy(bhs, 8, 8, 16); // ISID + TSIH
    bhs.writeUInt32BE(itt(b), 16);
    bhs[2] = ISCSI_VERSION;
    bhs[3] = ISCSI_VERSION;
    const cmdSN = b.readUInt32BE(24);
    bhs.writeUInt32BE(this.nextStatSN(), 24);
    bhs.writeUInt32BE(cmdSN, 28);
    bhs.writeUInt32BE((cmdSN + this.host.queueDepth - 1) >>> 0, 32);
    let status = step.status;
    let session: Session | undefined;
    if (status === LoginStatus.SUCCESS && step.result) {
      const established = this.host.establish(this, step.result);
      if (typeof established === 'number') status = established;
      else session = established;
    }
    if (status !== LoginStatus.SUCCESS) {
      bhs[1] = (step.csg << 2) & 0x0c;
      bhs.writeUInt16BE(status, 36); // Status-Class, Status-Detail
      const redirect = status >> 8 === LoginStatus.TARGET_MOVED_TEMPORARILY >> 8;
      const status16 = `0x${status.toString(16).padStart(4, '0')}`;
      const why = this.login?.failureReason || 'rejected by session rules';
      const refusal = REFUSAL_OF_STATUS[status];
      // A refusal's log line has the refusal as its reason, and the login's failure as why.
      if (this.login?.internalError !== undefined) this.log.error({ status: status16, err: this.login.internalError }, 'login failed: internal error');
      else if (refusal) this.host.refusals.refuse('iscsi', refusal, this.log, { status: status16, why });
      else this.log.info({ status: status16, reason: why }, redirect ? 'login redirected' : 'login failed');
      // A redirect carries where to go (TargetAddress); other failures carry nothing.
      const text = encodeText(status === step.status ? step.pairs : []);
      this.send(frame(bhs, [text], text.length, false, false));
      this.phase = 'logout';
      this.socket.end();
      return;
    }
    bhs[1] = (step.transit ? 0x80 : 0) | ((step.csg << 2) & 0x0c) | (step.transit ? step.nsg : 0);
    if (session) {
      bhs.writeUInt16BE(session.tsih, 14);
      bhs.writeUInt32BE(session.expCmdSN, 28);
      bhs.writeUInt32BE(session.maxCmdSN, 32);
    }
    const text = encodeText(step.pairs);
    this.send(frame(bhs, [text], text.length, false, false));
    if (session && step.result) this.enterFullFeature(session, step.result);
  }

  /**
   * The target cannot place this login yet (its cluster is failing over): keep the
   * initiator waiting — it sends nothing until it gets an answer — and handle the same PDU
   * again when asked to. After LOGIN_HOLD_MS it is told to come back later instead.
   */
  private holdLogin(pdu: Pdu, until: Promise<void>): void {
    this.loginHeldSince ??= Date.now();
    this.held = true;
    void until.then(() => {
      this.held = false;
      if (this.phase !== 'login') return;
      if (Date.now() - this.loginHeldSince! > LOGIN_HOLD_MS) {
        this.login!.failureReason = `nobody could take the session within ${LOGIN_HOLD_MS} ms`;
        const csg = (pdu.bhs[1]! >> 2) & 3;
        return this.answerLogin(pdu, { status: LoginStatus.SERVICE_UNAVAILABLE, transit: false, csg, nsg: 0, pairs: [] });
      }
      this.onLogin(pdu);
      this.pump();
    });
  }

  private enterFullFeature(session: Session, result: LoginResult): void {
    this.session = session;
    this.cid = result.cid;
    this.params = result.params;
    this.framing.headerDigest = this.params.headerDigest;
    this.framing.dataDigest = this.params.dataDigest;
    this.framing.maxDataSegment = this.params.targetMaxRecvDataSegmentLength;
    this.phase = 'full';
    this.login = undefined;
    clearTimeout(this.loginTimer);
    this.stopWatchingBudget = session.budget.onRelease(() => {
      this.commands.resumeWrites();
      this.resume();
    });
    // Discovery sessions exchange a few text PDUs: not worth an arena.
    if (session.type === 'Normal') this.receiver.established(this.host.receive === 'arenas' ? readBufferPool : null);
    this.log.info(
      { initiator: result.initiatorName, isid: result.isid, target: result.target?.name, type: result.type, tsih: session.tsih, tpgt: result.portalGroupTag, hd: this.params.headerDigest, dd: this.params.dataDigest, receive: this.receiver.path },
      'login complete',
    );
    if (this.host.nopIntervalMs > 0) {
      this.nopTimer = setInterval(() => this.ping(), this.host.nopIntervalMs);
      this.nopTimer.unref();
    }
  }

  // ---- full feature phase helpers ----

  nextStatSN(): number {
    const s = this.statSN;
    this.statSN = (s + 1) >>> 0;
    return s;
  }

  /** StatSN / ExpCmdSN / MaxCmdSN at bytes 24..35, common to most target PDUs. */
  fillCounters(bhs: Buffer, advanceStatSN = true): void {
    bhs.writeUInt32BE(advanceStatSN ? this.nextStatSN() : this.statSN, 24);
    const s = this.session;
    if (s) {
      bhs.writeUInt32BE(s.expCmdSN, 28);
      bhs.writeUInt32BE(s.maxCmdSN, 32);
    }
  }

  /**
   * Frame and write one or more PDUs in one corked write; `onSent` runs once the socket is
   * done with their buffers (written, or dropped with the connection).
   */
  sendPdus(pdus: readonly { bhs: Buffer; data?: readonly Buffer[]; length?: number }[], onSent?: () => void): void {
    const parts: Buffer[] = [];
    const hd = this.params.headerDigest && this.phase !== 'login';
    const dd = this.params.dataDigest && this.phase !== 'login';
    for (let i = 0; i < pdus.length; i++) {
      const p = pdus[i]!;
      frameInto(parts, p.bhs, p.data ?? NO_DATA, p.length ?? 0, hd, dd);
    }
    this.send(parts, onSent);
  }

  /**
   * Write a PDU train. The socket stays corked until this turn of the event loop is done
   * (setImmediate), so every response completed meanwhile — a burst of pipelined commands,
   * whose device calls may settle in later microtasks — leaves in one writev: one syscall
   * instead of one per response.
   */
  private send(parts: readonly Buffer[], onSent?: () => void): void {
    if (this.phase === 'closed' || this.socket.destroyed || parts.length === 0) return onSent?.();
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
    const last = parts.length - 1;
    for (let i = 0; i < last; i++) this.socket.write(parts[i]!);
    if (onSent) this.socket.write(parts[last]!, onSent);
    else this.socket.write(parts[last]!);
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /**
   * Backpressure: reading stops while the session has too much read data in flight or
   * this socket holds too many unsent replies (an initiator that does not read them).
   */
  private overloaded(): boolean {
    return this.socket.writableLength >= MAX_UNSENT_BYTES || this.session?.budget.readsFull === true;
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  private resume(): void {
    if (!this.paused || this.phase === 'closed' || this.overloaded()) return;
    this.paused = false;
    this.socket.resume();
    this.pump();
  }

  reject(rejected: Buffer, reason: number): void {
    const bhs = newBhs(Opcode.REJECT, FINAL_BIT);
    bhs[2] = reason;
    bhs.writeUInt32BE(RESERVED_TAG, 16);
    this.fillCounters(bhs);
    // A copy: the rejected PDU's arena may be reused before the socket sends this.
    const header = Buffer.from(rejected.subarray(0, BHS_LENGTH));
    this.sendPdus([{ bhs, data: [header], length: header.length }]);
  }

  private onNopOut(pdu: Pdu): void {
    const b = pdu.bhs;
    const tag = itt(b);
    if (tag === RESERVED_TAG) {
      // The answer to our ping (TTT echoed), or a one-way ping: nothing goes back.
      if (b.readUInt32BE(20) !== RESERVED_TAG) this.nopOutstanding = false;
      return;
    }
    const bhs = newBhs(Opcode.NOP_IN, FINAL_BIT);
    b.copy(bhs, 8, 8, 16);
    bhs.writeUInt32BE(tag, 16);
    bhs.writeUInt32BE(RESERVED_TAG, 20);
    this.fillCounters(bhs);
    const n = Math.min(pdu.dataLength, this.params.initiatorMaxRecvDataSegmentLength);
    this.sendPdus([{ bhs, data: n === pdu.dataLength ? pdu.data : sliceData(pdu.data, n), length: n }]);
  }

  /** Target-initiated NOP-In: a missed answer from the previous ping drops the connection. */
  ping(): void {
    if (this.phase !== 'full') return;
    if (this.nopOutstanding) return this.close('no answer to NOP-In ping');
    this.nopOutstanding = true;
    const bhs = newBhs(Opcode.NOP_IN, FINAL_BIT);
    encodeLun(0, bhs);
    bhs.writeUInt32BE(RESERVED_TAG, 16);
    bhs.writeUInt32BE(this.nextNopTag++ & 0x7fffffff, 20);
    this.fillCounters(bhs, false);
    this.sendPdus([{ bhs }]);
  }

  /** Async message (§11.9): e.g. "please log out within N seconds" before a shutdown. */
  sendAsync(event: number, parameter3 = 0, lun = 0, sense?: Buffer): void {
    if (this.phase !== 'full') return;
    const bhs = newBhs(Opcode.ASYNC_MESSAGE, FINAL_BIT);
    encodeLun(lun, bhs);
    bhs.writeUInt32BE(RESERVED_TAG, 16);
    this.fillCounters(bhs);
    bhs[36] = event;
    bhs.writeUInt16BE(parameter3, 42);
    const data = sense ? [Buffer.from([sense.length >> 8, sense.length & 0xff]), sense] : [];
    this.sendPdus([{ bhs, data, length: sense ? sense.length + 2 : 0 }]);
  }

  private async onLogout(pdu: Pdu): Promise<void> {
    const b = pdu.bhs;
    const reason = b[1]! & 0x7f;
    this.phase = 'logout';
    await this.commands.settle();
    const bhs = newBhs(Opcode.LOGOUT_RESPONSE, FINAL_BIT);
    bhs.writeUInt32BE(itt(b), 16);
    // ERL 0: only closing the session or this connection is possible.
    bhs[2] = reason === 2 ? 2 : b.readUInt16BE(20) === this.cid || reason === 0 ? 0 : 1;
    this.fillCounters(bhs);
    this.sendPdus([{ bhs }]);
    this.log.info({ reason }, 'logout');
    if (reason === 0) for (const c of this.session?.connections ?? []) if (c !== this) c.close('session logout');
    this.socket.end();
  }

  private fail(err: unknown): void {
    this.log.error({ err }, 'request handling failed');
    this.close('internal error');
  }

  /** Drop the connection (ERL 0 answer to digest and sequence errors, and the end of every connection). */
  close(reason: string): void {
    if (this.phase === 'closed') return;
    const wasFull = this.phase === 'full' || this.phase === 'logout';
    this.phase = 'closed';
    if (this.nopTimer) clearInterval(this.nopTimer);
    clearTimeout(this.loginTimer);
    this.stopWatchingBudget?.();
    if (wasFull && reason !== 'peer closed') this.log.info({ reason }, 'connection closed');
    else this.log.debug({ reason }, 'connection closed');
    this.socket.destroySoon();
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.commands.abortAll();
    this.receiver.close();
    this.host.detach(this);
  }
}
