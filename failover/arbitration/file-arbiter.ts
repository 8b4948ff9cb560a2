import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { logger } from '../../fabric/log.js';
import {
  abortError,
  checkSetName,
  NotPrimaryError,
  type Arbiter,
  type GuardedWrite,
  type CampaignOptions,
  type LeaderInfo,
  type Leadership,
  type LeadershipEnd,
} from './arbiter.js';
import { tryLockExclusive, tryLockShared, unlock } from './flock.js';

const log = logger('arbiter-file');

export interface FileArbiterOptions {
  /** A directory every member of the host sees (e.g. /run/blockgate/arbiter). */
  readonly dir: string;
  /** How often a waiting campaigner retries the lock. The kernel frees it at once on death. */
  readonly pollMs?: number;
}

/**
 * The embedded single-host arbiter: the Primary of set S holds an exclusive flock on
 * `DIR/S.lock`. Nothing runs besides the members; the kernel releases the lock the instant
 * its holder dies, so a kill -9 is a takeover within one poll. The fencing token is a counter
 * in `DIR/S.token` that only the lock holder increments. A hung (SIGSTOPped) holder keeps the
 * lock: on one host that stalls the set, it never splits it.
 */
export class FileArbiter implements Arbiter {
  readonly kind = 'file';
  private readonly pollMs: number;
  private readonly held = new Set<FileLeadership>();
  private closed = false;

  constructor(private readonly options: FileArbiterOptions) {
    this.pollMs = options.pollMs ?? 20;
    mkdirSync(join(options.dir, 'kv'), { recursive: true });
  }

  async campaign(set: string, member: string, options: CampaignOptions = {}): Promise<Leadership> {
    checkSetName(set);
    const fd = openSync(this.path(set, 'lock'), 'a');
    try {
      await this.lockWait(fd, options.signal);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    let token: number;
    try {
      token = this.readToken(set) + 1;
      this.writeAtomic(this.path(set, 'token'), String(token));
      const info: LeaderInfo & { pid: number } = { member, token, meta: options.meta ?? {}, pid: process.pid };
      this.writeAtomic(this.path(set, 'leader'), JSON.stringify(info));
    } catch (err) {
      // Never keep the lock without the role (a directory removed under us): the set would stall.
      unlock(fd);
      closeSync(fd);
      throw err;
    }
    const leadership = new FileLeadership(set, member, token, fd, (l) => this.release(l));
    this.held.add(leadership);
    log.info({ set, member, token }, 'lock acquired: Primary');
    return leadership;
  }

  /**
   * Poll the lock every pollMs until it is ours. A standby spends its whole life here, so a
   * poll is one flock(2) and one timer: no promise or abort listener per poll (a waiting
   * member's wake-ups and allocations are CPU taken from the Primary when they share a host).
   */
  private lockWait(fd: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (err?: Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = (): void => done(abortError(signal!));
      const poll = (): void => {
        try {
          if (tryLockExclusive(fd)) return done();
          if (this.closed) return done(new Error('arbiter closed'));
        } catch (err) {
          return done(err as Error);
        }
        timer = setTimeout(poll, this.pollMs);
      };
      if (signal?.aborted) return done(abortError(signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      poll();
    });
  }

  async leader(set: string): Promise<LeaderInfo | undefined> {
    checkSetName(set);
    const fd = openSync(this.path(set, 'lock'), 'a');
    try {
      if (tryLockShared(fd)) return undefined; // nobody holds it exclusively
      const raw = JSON.parse(readFileSync(this.path(set, 'leader'), 'utf8')) as LeaderInfo;
      return { member: raw.member, token: raw.token, meta: raw.meta };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    } finally {
      closeSync(fd); // drops the probe's shared lock too
    }
  }

  async lastToken(set: string): Promise<number> {
    return this.readToken(checkSetName(set));
  }

  async get(key: string): Promise<string | undefined> {
    try {
      return readFileSync(this.kvPath(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async guardedPut(leadership: Leadership, key: string, value: string): Promise<void> {
    return this.guardedWrite(leadership, { puts: [[key, value]] });
  }

  /**
   * Each put is an atomic rename, in order, under the lock (nobody else writes): a writer
   * that dies between two leaves the earlier ones, so callers put the history before the
   * pointer to it.
   */
  async guardedWrite(leadership: Leadership, write: GuardedWrite): Promise<void> {
    if (!(leadership instanceof FileLeadership) || !this.held.has(leadership) || !leadership.isValid()) {
      throw new NotPrimaryError(leadership.set, 'this leadership has ended');
    }
    // The lock is ours, so nobody else can have moved the token; a mismatch is a damaged directory.
    if (this.readToken(leadership.set) !== leadership.token) {
      leadership.end('superseded');
      throw new NotPrimaryError(leadership.set, `fencing token moved past ${leadership.token}`);
    }
    for (const [key, value] of write.puts) this.writeAtomic(this.kvPath(key), value);
    const range = write.deleteRange;
    if (range) for (const key of this.keys()) if (key >= range.from && key < range.to) rmSync(this.kvPath(key), { force: true });
  }

  async list(prefix: string): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for (const key of this.keys().sort()) {
      if (!key.startsWith(prefix)) continue;
      const value = await this.get(key);
      if (value !== undefined) out.push([key, value]);
    }
    return out;
  }

  /** The stored keys (temporary files of a write in progress left out). */
  private keys(): string[] {
    try {
      return readdirSync(join(this.options.dir, 'kv'))
        .filter((f) => !f.endsWith('.tmp'))
        .map((f) => decodeURIComponent(f));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const l of [...this.held]) l.end('closed');
  }

  private release(l: FileLeadership): void {
    this.held.delete(l);
  }

  private readToken(set: string): number {
    try {
      const n = Number(readFileSync(this.path(set, 'token'), 'utf8').trim());
      return Number.isSafeInteger(n) && n >= 0 ? n : 0;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
  }

  private path(set: string, what: 'lock' | 'token' | 'leader'): string {
    return join(this.options.dir, `${set}.${what}`);
  }

  private kvPath(key: string): string {
    return join(this.options.dir, 'kv', encodeURIComponent(key));
  }

  /** Write-then-rename with fsync: a reader sees the old value or the new one, never half. */
  private writeAtomic(path: string, value: string): void {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, value);
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  }
}

class FileLeadership implements Leadership {
  readonly ended: Promise<LeadershipEnd>;
  private settle!: (why: LeadershipEnd) => void;
  private over = false;

  constructor(
    readonly set: string,
    readonly member: string,
    readonly token: number,
    private readonly fd: number,
    private readonly onEnd: (l: FileLeadership) => void,
  ) {
    this.ended = new Promise((resolve) => (this.settle = resolve));
  }

  isValid(): boolean {
    return !this.over;
  }

  async resign(): Promise<void> {
    this.end('resigned');
  }

  end(why: LeadershipEnd): void {
    if (this.over) return;
    this.over = true;
    unlock(this.fd);
    closeSync(this.fd);
    this.onEnd(this);
    log.info({ set: this.set, member: this.member, token: this.token, why }, 'lock released: no longer Primary');
    this.settle(why);
  }
}

