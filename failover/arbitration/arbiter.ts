/**
 * The Arbitration Service's contract: for each failover set, at most one member holds the
 * Primary role at any instant, and each new holder carries a larger fencing token than every
 * holder before it. Two back ends implement it: an OS file lock in a directory every member
 * of one host sees (`file-arbiter.ts`) and an etcd election for several hosts
 * (`etcd-arbiter.ts`).
 */

/** Why a leadership ended. Only `resigned` and `closed` are asked for; the rest are fences. */
export type LeadershipEnd =
  | 'resigned' // handed over on purpose (planned stop, rolling restart)
  | 'closed' // the arbiter was closed
  | 'lease-expired' // our own clock says the lease may have run out: fenced before anyone else can win
  | 'lease-lost' // the back end told us the lease (or our campaign key) is gone
  | 'superseded'; // a guarded write found another holder

export interface Leadership {
  readonly set: string;
  readonly member: string;
  /** Grows with every new Primary of the set, never reused: stale holders are refused by it. */
  readonly token: number;
  /**
   * May this member act as Primary right now? Synchronous and cheap (a monotonic clock
   * comparison), so the I/O path asks it per request: a process paused past its lease wakes
   * up to callbacks that run before any timer, and they must already see `false`.
   */
  isValid(): boolean;
  /** Settles once, with why, when the leadership ends. Never rejects. */
  readonly ended: Promise<LeadershipEnd>;
  /** Give the role up now: the next campaigner is elected without waiting for a lease to expire. */
  resign(): Promise<void>;
}

/** A holder seen from outside: who is Primary of a set, with which token. */
export interface LeaderInfo {
  readonly member: string;
  readonly token: number;
  /** Whatever the holder published for others (its management and portal addresses). */
  readonly meta: Record<string, unknown>;
}

export interface CampaignOptions {
  /** Published with the leadership (readable through `leader()`). */
  readonly meta?: Record<string, unknown>;
  /** Stop campaigning: the promise rejects with an AbortError. */
  readonly signal?: AbortSignal;
}

export interface Arbiter {
  readonly kind: 'file' | 'etcd';
  /** Wait until this member is Primary of `set`. */
  campaign(set: string, member: string, options?: CampaignOptions): Promise<Leadership>;
  /** The current Primary of `set`, if any. */
  leader(set: string): Promise<LeaderInfo | undefined>;
  /** The highest fencing token ever handed out for `set` (0 when none). */
  lastToken(set: string): Promise<number>;
  /** Read a value of the cluster's authoritative store (the config generations live there). */
  get(key: string): Promise<string | undefined>;
  /**
   * Write a value only if `leadership` is still the set's current one: a compare on the
   * fencing token and the write in one step. Throws `NotPrimaryError` otherwise.
   */
  guardedPut(leadership: Leadership, key: string, value: string): Promise<void>;
  /**
   * Several writes in one step under the same fencing check: every `puts` entry, and the
   * keys in [deleteRange.from, deleteRange.to) removed (a bounded history's oldest entries).
   */
  guardedWrite(leadership: Leadership, write: GuardedWrite): Promise<void>;
  /** The keys under `prefix` with their values, in key order. */
  list(prefix: string): Promise<Array<[key: string, value: string]>>;
  /** End every leadership (as `closed`) and release the back end. */
  close(): Promise<void>;
}

export interface GuardedWrite {
  readonly puts: ReadonlyArray<readonly [key: string, value: string]>;
  /** Keys from `from` (included) to `to` (excluded), byte order. */
  readonly deleteRange?: { readonly from: string; readonly to: string };
}

export class NotPrimaryError extends Error {
  override readonly name = 'NotPrimaryError';
  readonly code = 'ENOTPRIMARY';
  constructor(
    readonly set: string,
    message: string,
  ) {
    super(`not Primary of ${set}: ${message}`);
  }
}

/** Set names become file names and etcd key segments. */
export function checkSetName(set: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(set)) {
    throw new RangeError(`failover set name ${JSON.stringify(set)}: letters, digits, '.', '_' and '-' only`);
  }
  return set;
}

export function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : Object.assign(new Error('campaign aborted'), { name: 'AbortError' });
}
