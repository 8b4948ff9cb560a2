import type { Database, RootDatabase } from 'lmdb';
import { logger } from '../../fabric/log.js';
import type { FailureLimitConfig } from '../config/schema/cluster.js';

/**
 * What a cluster member keeps about itself in its store, across restarts: its id and
 * incarnation (one more at every start), whether its last life ended cleanly, its recent
 * failures and, past its failure limit, its quarantine. A member that crashes in a loop
 * counts its own crashes at each start, since nobody else sees all of them.
 */

export const MEMBER_RECORD_DB = 'cluster-member';

export type FailureKind = 'crash' | 'self-test' | 'fenced';

export interface FailureEntry {
  /** Wall clock (ms): failures are counted across restarts, which a monotonic clock does not survive. */
  readonly at: number;
  readonly kind: FailureKind;
  readonly detail: string;
}

export interface Quarantine {
  readonly since: string;
  readonly reason: string;
}

interface Identity {
  readonly id: string;
  readonly incarnation: number;
  /** True from start until a clean stop: found true at a start, the last life crashed. */
  readonly running: boolean;
  readonly startedAt: string;
}

/** How this start relates to the store's past. */
export interface StartInfo {
  readonly incarnation: number;
  /** No identity in the store: a new or replaced member (empty data directory). */
  readonly fresh: boolean;
  /** The store was last used by another member id. */
  readonly previousId?: string;
  /** The previous life ended without a clean stop. */
  readonly crashed: boolean;
}

const log = logger('member-record');

/**
 * This process's life per member id: a member restarted inside its process (to run a new
 * configuration generation) is the same incarnation, neither a new start nor a crash.
 */
const lives = new Map<string, StartInfo>();

export class MemberRecord {
  private readonly db: Database<unknown, string>;
  private touches = 0;
  private touching: Promise<void> = Promise.resolve();

  constructor(
    root: RootDatabase,
    readonly id: string,
    private readonly limit: FailureLimitConfig,
  ) {
    this.db = root.openDB<unknown, string>({ name: MEMBER_RECORD_DB, encoding: 'json' });
  }

  /** Record a start: bump the incarnation, count a crash of the last life against the failure limit. */
  async start(): Promise<StartInfo> {
    const before = this.db.get('identity') as Identity | undefined;
    const life = lives.get(this.id);
    if (life && before?.incarnation === life.incarnation) {
      await this.db.put('identity', { ...before, running: true } satisfies Identity);
      return life;
    }
    const incarnation = (before?.incarnation ?? 0) + 1;
    await this.db.put('identity', { id: this.id, incarnation, running: true, startedAt: new Date().toISOString() } satisfies Identity);
    const crashed = before?.running === true;
    if (crashed) await this.fail('crash', `incarnation ${before.incarnation} (started ${before.startedAt}) ended without a clean stop`);
    const info: StartInfo = {
      incarnation,
      fresh: before === undefined,
      crashed,
      ...(before && before.id !== this.id && { previousId: before.id }),
    };
    log.info({ member: this.id, ...info }, 'member incarnation');
    lives.set(this.id, info);
    return info;
  }

  /** A clean stop: the next start is not a crash. */
  async stopped(): Promise<void> {
    const current = this.db.get('identity') as Identity | undefined;
    if (current) await this.db.put('identity', { ...current, running: false });
  }

  /** Count a failure; past the limit the member is quarantined. Returns the quarantine, if now in one. */
  async fail(kind: FailureKind, detail: string): Promise<Quarantine | undefined> {
    const now = Date.now();
    const failures = [...this.failures(now), { at: now, kind, detail }];
    await this.db.put('failures', failures);
    log.warn({ member: this.id, kind, detail, recent: failures.length, limit: this.limit }, 'member failure counted');
    if (failures.length > this.limit.failures && !this.quarantine()) {
      const q: Quarantine = {
        since: new Date(now).toISOString(),
        reason: `${failures.length} failures within ${Math.round(this.limit.windowMs / 1000)} s (limit ${this.limit.failures}): ${failures.map((f) => f.kind).join(', ')}`,
      };
      await this.db.put('quarantine', q);
      log.error({ member: this.id, ...q }, 'failure limit exceeded: quarantined (no role) until an operator clears it');
    }
    return this.quarantine();
  }

  /** Failures inside the window, oldest first. */
  failures(now = Date.now()): FailureEntry[] {
    const all = (this.db.get('failures') as FailureEntry[] | undefined) ?? [];
    return all.filter((f) => f.at > now - this.limit.windowMs);
  }

  quarantine(): Quarantine | undefined {
    return this.db.get('quarantine') as Quarantine | undefined;
  }

  /** The operator's clearance: the quarantine and the failures that led to it are forgotten. */
  async clearQuarantine(by: string): Promise<boolean> {
    const q = this.quarantine();
    await this.db.transaction(() => {
      void this.db.remove('quarantine');
      void this.db.remove('failures');
    });
    if (q) log.warn({ member: this.id, by, was: q }, 'quarantine cleared by an operator');
    return q !== undefined;
  }

  /** The checksum of the configuration file this member last proposed to its cluster. */
  lastFile(): string | undefined {
    return this.db.get('last-file') as string | undefined;
  }

  async setLastFile(checksum: string): Promise<void> {
    await this.db.put('last-file', checksum);
  }

  /**
   * Prove the store takes a write (the self-test's store check). Several peers may ask at
   * once: the checks run one after another, each with its own value, so one never reads
   * another's write.
   */
  touch(): Promise<void> {
    const check = async (): Promise<void> => {
      const value = { at: Date.now(), nonce: ++this.touches };
      await this.db.put('self-test', value);
      if ((this.db.get('self-test') as { nonce?: number } | undefined)?.nonce !== value.nonce) throw new Error('the store did not keep a write');
    };
    const run = this.touching.then(check, check);
    this.touching = run.catch(() => undefined);
    return run;
  }
}
