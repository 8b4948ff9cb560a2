import { ChapAuthenticator, ChapFailure, type ChapCredentials } from './chap.js';
import type { LoginRoute } from './cluster-placement.js';
import type { InitiatorAccess } from './acl.js';
import { ISCSI_VERSION, LoginFlag, LoginStatus, MAX_TEXT_BYTES, Stage } from './constants.js';
import { INITIATOR_DECLARATIVE, NegotiationError, OperationalNegotiation, SECURITY_KEYS, type OperationalParams, type TargetLimits } from './negotiation.js';
import { joined, type Pdu } from './pdu.js';
import { decodeText, TextFormatError, type TextPairs } from './text.js';

/**
 * The target side of the login phase (RFC 7143 §6.3, §11.12–13): stages and transit bits,
 * security negotiation (CHAP or None), operational negotiation, and the status class of
 * every failure. It decides; the connection frames and sends.
 */

/** What a login needs to know about a target. */
/** SessionType (RFC 7143 §13.21): a discovery session only asks for targets. */
export type SessionType = 'Discovery' | 'Normal';

export interface LoginTarget {
  readonly name: string;
  readonly alias?: string;
  /** This initiator's credentials and rights here; undefined: it may not log in (0x0202). */
  accessOf(initiatorName: string): InitiatorAccess | undefined;
}

export interface LoginContext {
  readonly limits: TargetLimits;
  findTarget(name: string): LoginTarget | undefined;
  /** Portal group tag of the receiving portal for this target; undefined: not reachable here. */
  portalGroupTag(target: LoginTarget): number | undefined;
  /** Credentials discovery sessions must present; undefined lets them in with AuthMethod=None. */
  readonly discoveryChap?: ChapCredentials;
  /** Where a normal session to `target` is served (cluster members redirect to the Primary); default here. */
  route?(target: LoginTarget): LoginRoute;
}

export interface LoginResult {
  readonly initiatorName: string;
  readonly initiatorAlias?: string;
  readonly isid: string;
  readonly tsih: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly type: SessionType;
  readonly target?: LoginTarget;
  readonly portalGroupTag?: number;
  readonly params: OperationalParams;
}

export interface LoginStep {
  readonly status: number;
  readonly transit: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly pairs: TextPairs;
  /** Set when this response moves the connection to full feature phase. */
  readonly result?: LoginResult;
  /**
   * No answer yet: the target cannot say where the session goes (its cluster is failing
   * over). Hand the same PDU to `handle` again once this settles.
   */
  readonly deferred?: Promise<void>;
}

class LoginFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Keys the failure response carries (TargetAddress of a redirect). */
    readonly pairs: TextPairs = [],
  ) {
    super(message);
  }
}

class LoginDeferred extends Error {
  constructor(readonly until: Promise<void>) {
    super('login deferred');
  }
}

export class Login {
  private first = true;
  private initiatorName = '';
  private initiatorAlias: string | undefined;
  private isid = '';
  private tsih = 0;
  private cid = 0;
  private cmdSN = 0;
  private type: SessionType = 'Normal';
  private target: LoginTarget | undefined;
  private access: InitiatorAccess | undefined;
  private tpgt: number | undefined;
  private authMethod: 'None' | 'CHAP' | undefined;
  private chap: ChapAuthenticator | undefined;
  private authenticated = false;
  private stage: number = Stage.SECURITY_NEGOTIATION;
  private readonly negotiation: OperationalNegotiation;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private declaredOurs = false;
  /** Why the last failure happened, for the connection's log line. */
  failureReason = '';
  /** The fault of ours behind a failed step (not the initiator's error), for the connection to log as one. */
  internalError: unknown;

  constructor(private readonly ctx: LoginContext) {
    this.negotiation = new OperationalNegotiation(ctx.limits, () => this.type === 'Discovery');
  }

  handle(pdu: Pdu): LoginStep {
    const csg = (pdu.bhs[1]! >> 2) & 3;
    // What a deferred step must leave as it found it, so the same PDU can be handled again.
    const before = { first: this.first, stage: this.stage, pending: [...this.pending], pendingBytes: this.pendingBytes };
    try {
      return this.step(pdu);
    } catch (err) {
      if (err instanceof LoginDeferred) {
        Object.assign(this, before);
        return { status: LoginStatus.SUCCESS, transit: false, csg, nsg: 0, pairs: [], deferred: err.until };
      }
      // Anything but a LoginFailure is a fault of ours that the initiator's input provoked.
      this.internalError = err instanceof LoginFailure ? undefined : err;
      const status = err instanceof LoginFailure ? err.status : LoginStatus.TARGET_ERROR;
      this.failureReason = err instanceof LoginFailure ? err.message : `internal error: ${String(err)}`;
      return { status, transit: false, csg, nsg: 0, pairs: err instanceof LoginFailure ? err.pairs : [] };
    }
  }

  private step(pdu: Pdu): LoginStep {
    const b = pdu.bhs;
    const transit = (b[1]! & LoginFlag.TRANSIT) !== 0;
    const cont = (b[1]! & LoginFlag.CONTINUE) !== 0;
    const csg = (b[1]! >> 2) & 3;
    const nsg = b[1]! & 3;
    if (transit && cont) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'T and C bits both set');
    if (csg === 2 || csg === Stage.FULL_FEATURE_PHASE) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `invalid current stage ${csg}`);
    if (transit && (nsg === 2 || nsg <= csg)) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `invalid transit ${csg}→${nsg}`);
    const isid = b.subarray(8, 14).toString('hex');
    const tsih = b.readUInt16BE(14);
    if (this.first) {
      if (b[3]! > ISCSI_VERSION) throw new LoginFailure(LoginStatus.UNSUPPORTED_VERSION, `version-min ${b[3]} unsupported`);
      this.isid = isid;
      this.tsih = tsih;
      this.cid = b.readUInt16BE(20);
      this.cmdSN = b.readUInt32BE(24);
    } else if (isid !== this.isid || tsih !== this.tsih) {
      throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'ISID or TSIH changed during login');
    }
    if (csg < this.stage) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `stage went back to ${csg}`);
    this.stage = csg;

    // A request split over several PDUs (C bit): gather, answer each with an empty response.
    this.pending.push(...pdu.data);
    this.pendingBytes += pdu.dataLength;
    if (this.pendingBytes > MAX_TEXT_BYTES) throw new LoginFailure(LoginStatus.OUT_OF_RESOURCES, 'login text too long');
    if (cont) return { status: LoginStatus.SUCCESS, transit: false, csg, nsg: 0, pairs: [] };
    let keys: TextPairs;
    try {
      keys = decodeText(joined(this.pending));
    } catch (err) {
      if (err instanceof TextFormatError) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, err.message);
      throw err;
    }
    this.pending = [];
    this.pendingBytes = 0;

    const map = new Map<string, string>();
    for (const [k, v] of keys) {
      if (map.has(k)) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `key ${k} sent twice`);
      map.set(k, v);
    }
    const reply: TextPairs = [];
    if (this.first) this.identify(map, reply);
    this.first = false;

    if (csg === Stage.SECURITY_NEGOTIATION) this.security(map, reply);
    else {
      for (const k of map.keys()) if (SECURITY_KEYS.test(k)) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `security key ${k} outside the security stage`);
      if (!this.authenticated) {
        if (this.authRequired()) throw new LoginFailure(LoginStatus.AUTHENTICATION_FAILURE, 'authentication required, security stage skipped');
        this.authenticated = true;
      }
    }
    for (const [k, v] of keys) {
      if (SECURITY_KEYS.test(k) || (INITIATOR_DECLARATIVE.has(k) && k !== 'MaxRecvDataSegmentLength')) continue;
      try {
        this.negotiation.answer(k, v, reply);
      } catch (err) {
        if (err instanceof NegotiationError) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, err.message);
        throw err;
      }
    }
    if (csg === Stage.LOGIN_OPERATIONAL_NEGOTIATION || (transit && nsg === Stage.FULL_FEATURE_PHASE)) this.declareOurs(reply);

    const canTransit = transit && this.authenticated;
    const result: LoginResult | undefined =
      canTransit && nsg === Stage.FULL_FEATURE_PHASE
        ? {
            initiatorName: this.initiatorName,
            initiatorAlias: this.initiatorAlias,
            isid: this.isid,
            tsih: this.tsih,
            cid: this.cid,
            cmdSN: this.cmdSN,
            type: this.type,
            target: this.target,
            portalGroupTag: this.tpgt,
            params: this.negotiation.finish(),
          }
        : undefined;
    if (canTransit) this.stage = nsg;
    return { status: LoginStatus.SUCCESS, transit: canTransit, csg, nsg: canTransit ? nsg : 0, pairs: reply, result };
  }

  /** First PDU: who is logging in, to what (§6.3: InitiatorName, SessionType, TargetName). */
  private identify(map: Map<string, string>, reply: TextPairs): void {
    const name = map.get('InitiatorName');
    if (!name) throw new LoginFailure(LoginStatus.MISSING_PARAMETER, 'InitiatorName missing');
    this.initiatorName = name;
    this.initiatorAlias = map.get('InitiatorAlias');
    const type = map.get('SessionType') ?? 'Normal';
    if (type !== 'Normal' && type !== 'Discovery') throw new LoginFailure(LoginStatus.SESSION_TYPE_NOT_SUPPORTED, `SessionType ${type}`);
    this.type = type;
    if (type === 'Discovery') return;
    const targetName = map.get('TargetName');
    if (!targetName) throw new LoginFailure(LoginStatus.MISSING_PARAMETER, 'TargetName missing');
    const target = this.ctx.findTarget(targetName);
    if (!target) throw new LoginFailure(LoginStatus.NOT_FOUND, `no target ${targetName}`);
    const tpgt = this.ctx.portalGroupTag(target);
    if (tpgt === undefined) throw new LoginFailure(LoginStatus.NOT_FOUND, `target ${targetName} is not reachable through this portal`);
    // The access list first: an initiator not let in learns nothing, not even where the target is served.
    const access = target.accessOf(name);
    if (!access) throw new LoginFailure(LoginStatus.AUTHORIZATION_FAILURE, `initiator ${name} is not in the access list of ${targetName}`);
    this.access = access;
    const route = this.ctx.route?.(target);
    if (route?.kind === 'wait') throw new LoginDeferred(route.until);
    if (route?.kind === 'redirect') {
      // RFC 7143 §11.13.5: Target moved temporarily, with where to (address:port,tpgt).
      throw new LoginFailure(LoginStatus.TARGET_MOVED_TEMPORARILY, `target ${targetName} is served by ${route.address}: redirected`, [['TargetAddress', route.address]]);
    }
    this.target = target;
    this.tpgt = tpgt;
    reply.push(['TargetPortalGroupTag', String(tpgt)]);
    if (target.alias) reply.push(['TargetAlias', target.alias]);
  }

  private credentials(): ChapCredentials | undefined {
    return this.type === 'Discovery' ? this.ctx.discoveryChap : this.access?.chap;
  }

  private authRequired(): boolean {
    if (this.type === 'Discovery') return this.ctx.discoveryChap !== undefined;
    return !this.access!.allowNoAuth;
  }

  private security(map: Map<string, string>, reply: TextPairs): void {
    const offered = map.get('AuthMethod');
    if (this.authMethod === undefined) {
      if (offered === undefined) {
        if (this.authRequired()) throw new LoginFailure(LoginStatus.AUTHENTICATION_FAILURE, 'AuthMethod not offered');
        this.authenticated = true;
        return;
      }
      const methods = offered.split(',');
      const creds = this.credentials();
      if (creds && methods.includes('CHAP') && (this.authRequired() || !methods.includes('None') || methods.indexOf('CHAP') < methods.indexOf('None'))) {
        this.authMethod = 'CHAP';
        this.chap = new ChapAuthenticator(creds);
      } else if (methods.includes('None') && !this.authRequired()) {
        this.authMethod = 'None';
        this.authenticated = true;
      } else {
        reply.push(['AuthMethod', 'Reject']);
        throw new LoginFailure(LoginStatus.AUTHENTICATION_FAILURE, `no acceptable AuthMethod in ${offered}`);
      }
      reply.push(['AuthMethod', this.authMethod]);
    } else if (offered !== undefined) {
      throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'AuthMethod negotiated twice');
    }
    if (this.chap && !this.chap.done) {
      try {
        reply.push(...this.chap.step(map));
      } catch (err) {
        if (err instanceof ChapFailure) throw new LoginFailure(LoginStatus.AUTHENTICATION_FAILURE, err.message);
        throw err;
      }
      if (this.chap.done) this.authenticated = true;
    } else if (this.authMethod === 'None') {
      for (const k of map.keys()) if (k.startsWith('CHAP_')) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `${k} without AuthMethod=CHAP`);
    }
  }

  /** Our declarative keys, once: the initiator must know how much it may send us. */
  private declareOurs(reply: TextPairs): void {
    if (this.declaredOurs) return;
    this.declaredOurs = true;
    reply.push(['MaxRecvDataSegmentLength', String(this.ctx.limits.maxRecvDataSegmentLength)]);
  }
}
