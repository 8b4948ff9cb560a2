import { MAX_RECV_DATA_SEGMENT, MIN_RECV_DATA_SEGMENT } from './constants.js';
import { decodeNumber, type TextPairs } from './text.js';

/**
 * Operational parameter negotiation (RFC 7143 §6.2, §13): list keys (digests), numeric
 * min/max keys, boolean AND/OR keys and declarative keys, each answered per the RFC —
 * the negotiated value, `NotUnderstood` for keys we do not know, `Irrelevant` for keys that
 * do not apply to this session type, `Reject` for malformed values.
 */

/** What the target offers; the session gets the negotiated result. */
export interface TargetLimits {
  readonly maxRecvDataSegmentLength: number;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly maxOutstandingR2T: number;
  readonly initialR2T: boolean;
  readonly immediateData: boolean;
  readonly dataDigest: readonly Digest[];
  readonly headerDigest: readonly Digest[];
}

export type Digest = 'None' | 'CRC32C';

export const DEFAULT_TARGET_LIMITS: TargetLimits = {
  maxRecvDataSegmentLength: 256 * 1024,
  maxBurstLength: 16776192,
  firstBurstLength: 256 * 1024,
  maxOutstandingR2T: 16,
  initialR2T: false,
  immediateData: true,
  dataDigest: ['None', 'CRC32C'],
  headerDigest: ['None', 'CRC32C'],
};

/** Parameters in force for a connection once login completes (RFC defaults until then). */
export interface OperationalParams {
  headerDigest: boolean;
  dataDigest: boolean;
  /** Initiator's declared MaxRecvDataSegmentLength: the most we may send in one PDU. */
  initiatorMaxRecvDataSegmentLength: number;
  /** Ours: the most the initiator may send us in one PDU. */
  targetMaxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  initialR2T: boolean;
  immediateData: boolean;
  maxOutstandingR2T: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  errorRecoveryLevel: number;
  maxConnections: number;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
}

export function defaultParams(limits: TargetLimits): OperationalParams {
  return {
    headerDigest: false,
    dataDigest: false,
    initiatorMaxRecvDataSegmentLength: 8192,
    targetMaxRecvDataSegmentLength: limits.maxRecvDataSegmentLength,
    maxBurstLength: 262144,
    firstBurstLength: 65536,
    initialR2T: true,
    immediateData: true,
    maxOutstandingR2T: 1,
    dataPDUInOrder: true,
    dataSequenceInOrder: true,
    errorRecoveryLevel: 0,
    maxConnections: 1,
    defaultTime2Wait: 2,
    defaultTime2Retain: 20,
  };
}

type Rule =
  | { kind: 'digest'; param: 'headerDigest' | 'dataDigest'; offer: (l: TargetLimits) => readonly Digest[] }
  | { kind: 'min' | 'max'; param: NumericParam; lo: number; hi: number; ours: (l: TargetLimits) => number; normalOnly: boolean }
  | { kind: 'and' | 'or'; param: BooleanParam; ours: (l: TargetLimits) => boolean; normalOnly: boolean };

type NumericParam = 'maxBurstLength' | 'firstBurstLength' | 'maxOutstandingR2T' | 'errorRecoveryLevel' | 'maxConnections' | 'defaultTime2Wait' | 'defaultTime2Retain';
type BooleanParam = 'initialR2T' | 'immediateData' | 'dataPDUInOrder' | 'dataSequenceInOrder';

const RULES: Record<string, Rule> = {
  HeaderDigest: { kind: 'digest', param: 'headerDigest', offer: (l) => l.headerDigest },
  DataDigest: { kind: 'digest', param: 'dataDigest', offer: (l) => l.dataDigest },
  MaxConnections: { kind: 'min', param: 'maxConnections', lo: 1, hi: 65535, ours: () => 1, normalOnly: true },
  InitialR2T: { kind: 'or', param: 'initialR2T', ours: (l) => l.initialR2T, normalOnly: true },
  ImmediateData: { kind: 'and', param: 'immediateData', ours: (l) => l.immediateData, normalOnly: true },
  MaxBurstLength: { kind: 'min', param: 'maxBurstLength', lo: 512, hi: 16777215, ours: (l) => l.maxBurstLength, normalOnly: true },
  FirstBurstLength: { kind: 'min', param: 'firstBurstLength', lo: 512, hi: 16777215, ours: (l) => l.firstBurstLength, normalOnly: true },
  DefaultTime2Wait: { kind: 'max', param: 'defaultTime2Wait', lo: 0, hi: 3600, ours: () => 2, normalOnly: false },
  DefaultTime2Retain: { kind: 'min', param: 'defaultTime2Retain', lo: 0, hi: 3600, ours: () => 0, normalOnly: false },
  MaxOutstandingR2T: { kind: 'min', param: 'maxOutstandingR2T', lo: 1, hi: 65535, ours: (l) => l.maxOutstandingR2T, normalOnly: true },
  DataPDUInOrder: { kind: 'or', param: 'dataPDUInOrder', ours: () => true, normalOnly: true },
  DataSequenceInOrder: { kind: 'or', param: 'dataSequenceInOrder', ours: () => true, normalOnly: true },
  ErrorRecoveryLevel: { kind: 'min', param: 'errorRecoveryLevel', lo: 0, hi: 2, ours: () => 0, normalOnly: false },
};

/** Keys the initiator declares; we take note and answer nothing. */
export const INITIATOR_DECLARATIVE = new Set(['InitiatorName', 'InitiatorAlias', 'TargetName', 'SessionType', 'MaxRecvDataSegmentLength']);
/** Keys only a target may send: an initiator offering them gets Irrelevant. */
const TARGET_DECLARATIVE = new Set(['TargetAlias', 'TargetAddress', 'TargetPortalGroupTag']);
/** Keys of RFC 3720 that RFC 7143 made obsolete (markers): answered so old initiators move on. */
const OBSOLETE_BOOLEAN = new Set(['IFMarker', 'OFMarker']);
const OBSOLETE_RANGE = new Set(['IFMarkInt', 'OFMarkInt']);
export const SECURITY_KEYS = /^(AuthMethod|CHAP_[A-Z]+|SRP_.*|KRB_.*|SPKM_.*)$/;

export class NegotiationError extends Error {
  override readonly name = 'NegotiationError';
}

/**
 * One connection's login negotiation of operational keys. `answer` is called for every
 * non-security key of every login PDU; a key negotiated twice is an initiator error.
 */
export class OperationalNegotiation {
  readonly params: OperationalParams;
  private readonly seen = new Set<string>();

  constructor(
    private readonly limits: TargetLimits,
    private readonly discovery: () => boolean,
  ) {
    this.params = defaultParams(limits);
  }

  /** Fold one offered key in; push the reply (if any) on `reply`. */
  answer(key: string, value: string, reply: TextPairs): void {
    if (this.seen.has(key)) throw new NegotiationError(`key ${key} negotiated twice`);
    this.seen.add(key);
    if (key === 'MaxRecvDataSegmentLength') {
      const n = decodeNumber(value);
      if (n === undefined || n < MIN_RECV_DATA_SEGMENT || n > MAX_RECV_DATA_SEGMENT) reply.push([key, 'Reject']);
      else this.params.initiatorMaxRecvDataSegmentLength = n;
      return;
    }
    if (INITIATOR_DECLARATIVE.has(key)) return;
    if (TARGET_DECLARATIVE.has(key)) return void reply.push([key, 'Irrelevant']);
    if (OBSOLETE_BOOLEAN.has(key)) return void reply.push([key, value === 'Yes' || value === 'No' ? 'No' : 'Reject']);
    if (OBSOLETE_RANGE.has(key)) return void reply.push([key, 'Irrelevant']);
    if (key === 'TaskReporting') return void reply.push([key, 'RFC3720']);
    if (key === 'iSCSIProtocolLevel') {
      const n = decodeNumber(value);
      return void reply.push([key, n === undefined || n > 31 ? 'Reject' : String(Math.min(n, 1))]);
    }
    const rule = RULES[key];
    if (!rule) return void reply.push([key, 'NotUnderstood']);
    if (rule.kind !== 'digest' && rule.normalOnly && this.discovery()) return void reply.push([key, 'Irrelevant']);
    switch (rule.kind) {
      case 'digest': {
        const offered = value.split(',');
        const ours = rule.offer(this.limits);
        const pick = offered.find((v) => (ours as readonly string[]).includes(v));
        if (!pick) return void reply.push([key, 'Reject']);
        this.params[rule.param] = pick === 'CRC32C';
        return void reply.push([key, pick]);
      }
      case 'min':
      case 'max': {
        const n = decodeNumber(value);
        if (n === undefined || n < rule.lo || n > rule.hi) return void reply.push([key, 'Reject']);
        const ours = rule.ours(this.limits);
        const result = rule.kind === 'min' ? Math.min(n, ours) : Math.max(n, ours);
        this.params[rule.param] = result;
        return void reply.push([key, String(result)]);
      }
      case 'and':
      case 'or': {
        if (value !== 'Yes' && value !== 'No') return void reply.push([key, 'Reject']);
        const theirs = value === 'Yes';
        const ours = rule.ours(this.limits);
        const result = rule.kind === 'and' ? theirs && ours : theirs || ours;
        this.params[rule.param] = result;
        return void reply.push([key, result ? 'Yes' : 'No']);
      }
    }
  }

  /** Constraints between keys, applied when login completes. */
  finish(): OperationalParams {
    const p = this.params;
    if (p.firstBurstLength > p.maxBurstLength) p.firstBurstLength = p.maxBurstLength;
    return p;
  }
}
