import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { logger } from '../../fabric/log.js';
import type { Arbiter, GuardedWrite, Leadership } from '../arbitration/arbiter.js';
import { configChecksum } from '../config/canonical.js';
import { DEFAULT_CONFIG_HISTORY } from '../config/schema/cluster.js';
import { ConfigError } from '../config/errors.js';
import type { MemberConfig } from '../config/schema/member-config.js';
import type { ConfigRecord, ConfigStore } from '../config/store.js';
import type { DiscoveryService } from '../discovery/service.js';
import { PeerRequestError } from '../peer/messages.js';

const log = logger('config-sync');

/** Where the cluster keeps its newest generation in the arbiter's store (etcd, or the file arbiter's directory). */
export const CONFIG_KEY = 'config/current';
/** Every kept generation, under this prefix: `config/generations/000000000042`. */
export const GENERATIONS_PREFIX = 'config/generations/';

/** A generation's key: zero-padded so key order is generation order. */
export function generationKey(generation: number): string {
  return `${GENERATIONS_PREFIX}${String(generation).padStart(12, '0')}`;
}
const REQUEST_TIMEOUT_MS = 5000;

export interface ConfigSyncOptions {
  readonly memberId: string;
  readonly store: ConfigStore;
  readonly arbiter: Arbiter;
  readonly discovery: DiscoveryService;
  /** Check a document as this member's version reads it (throws ConfigError). */
  readonly validate: (doc: unknown) => MemberConfig;
  /** This member's leadership of the cluster set, while it is its Primary. */
  readonly leadership: () => Leadership | undefined;
  /** The cluster set's Primary as the members announce it (undefined: none known). */
  readonly primary: () => string | undefined;
}

export interface SubmitResult {
  readonly generation: number;
  readonly checksum: string;
  readonly changed: boolean;
  /** The member that made the change (the cluster set's Primary). */
  readonly appliedBy: string;
}

export interface ConfigSyncEvents {
  /** A newer generation is in this member's store (pulled from a peer or the arbiter, or made here). */
  updated: [ConfigRecord];
}

/**
 * The configuration database kept identical on every member. A change is made once, by the
 * Primary of the cluster set: it becomes the next generation with its checksum, is written to
 * the arbiter's store in one step with a check of the writer's fencing token (a deposed
 * Primary cannot write), then kept in the Primary's store. Every member announces the
 * generation it holds in its heartbeats; one that sees a newer one pulls it from that peer
 * (or from the arbiter's store) and keeps it. A change sent to any member is forwarded to
 * the Primary, and answered once this member holds the new generation too.
 */
export class ConfigSync extends EventEmitter<ConfigSyncEvents> {
  private pulling = false;

  constructor(private readonly options: ConfigSyncOptions) {
    super();
    options.discovery.handle('config.get', async () => {
      const current = this.options.store.current();
      if (!current) throw new PeerRequestError('ENOENT', 'no configuration stored');
      return current;
    });
    // The generations newer than `after`, oldest first: a member that was away mirrors what it missed.
    options.discovery.handle('config.since', async (body) => {
      const after = Number((body as { after?: unknown } | null)?.after ?? 0);
      return this.options.store.list().filter((r) => r.generation > after).reverse();
    });
    options.discovery.handle('config.submit', async (body, from) => {
      const b = body as { config?: unknown; source?: unknown };
      if (typeof b !== 'object' || b === null || b.config === undefined) throw new PeerRequestError('EINVAL', 'config.submit needs {config, source}');
      return this.apply(b.config, `${typeof b.source === 'string' ? b.source : 'forwarded'} via ${from.member}`);
    });
  }

  current(): ConfigRecord | undefined {
    return this.options.store.current();
  }

  /** Make `doc` the cluster's configuration: here if this member is the cluster set's Primary, else forwarded to it. */
  async submit(doc: unknown, source: string): Promise<SubmitResult> {
    // A document this member cannot read is refused here, before it reaches the Primary.
    this.options.validate(doc);
    if (this.options.leadership()?.isValid()) return this.apply(doc, source);
    const primary = this.options.primary();
    if (primary === undefined) throw new PeerRequestError('ENOPRIMARY', 'the cluster set has no Primary now: try again shortly');
    log.info({ primary, source }, 'configuration change forwarded to the Primary');
    const result = (await this.options.discovery.request(primary, 'config.submit', { config: doc, source }, { timeoutMs: REQUEST_TIMEOUT_MS })) as SubmitResult;
    // Answer once this member runs what it was asked to make: the caller reads it back here.
    await this.until(() => (this.current()?.generation ?? 0) >= result.generation, REQUEST_TIMEOUT_MS);
    return result;
  }

  /** As the cluster set's Primary: the next generation, fenced by our token in the arbiter's store, then kept here. */
  private async apply(doc: unknown, source: string): Promise<SubmitResult> {
    const leadership = this.options.leadership();
    if (!leadership?.isValid()) throw new PeerRequestError('ENOTPRIMARY', `${this.options.memberId} is not the cluster set's Primary`);
    let config: MemberConfig;
    try {
      config = this.options.validate(doc);
    } catch (err) {
      throw new PeerRequestError('EINVAL', err instanceof ConfigError ? err.message : String(err));
    }
    const next = this.options.store.next(config, { writtenBy: this.options.memberId, source });
    if (!next.changed) return { generation: next.record.generation, checksum: next.record.checksum, changed: false, appliedBy: this.options.memberId };
    // The generation, the pointer to the newest and the history's bound in one fenced step.
    await this.options.arbiter.guardedWrite(leadership, this.writeOf([next.record], next.record));
    await this.keep([next.record], 'made here');
    return { generation: next.record.generation, checksum: next.record.checksum, changed: true, appliedBy: this.options.memberId };
  }

  /**
   * As the new Primary of the cluster set: write the generations this member holds past the
   * newest the arbiter's store has (none when this member is not ahead), in one fenced step.
   * A failure is logged, not thrown: the next change writes its generation anyway.
   */
  async publish(leadership: Leadership): Promise<void> {
    try {
      const keys = (await this.options.arbiter.list(GENERATIONS_PREFIX)).map(([key]) => Number(key.slice(GENERATIONS_PREFIX.length)));
      const current = await this.options.arbiter.get(CONFIG_KEY);
      const held = Math.max(0, ...keys, current === undefined ? 0 : (JSON.parse(current) as ConfigRecord).generation);
      const missing = this.options.store.list().filter((r) => r.generation > held).reverse();
      const newest = missing.at(-1);
      if (!newest) return;
      await this.options.arbiter.guardedWrite(leadership, this.writeOf(missing, newest));
      log.info({ generations: missing.map((r) => r.generation) }, "configuration generations written to the arbiter's store");
    } catch (err) {
      log.warn({ err }, "could not write this member's configuration generations to the arbiter's store");
    }
  }

  /** The puts of `records` (oldest first), the pointer to `newest`, and the deletion of what falls out of its history. */
  private writeOf(records: readonly ConfigRecord[], newest: ConfigRecord): GuardedWrite {
    const history = newest.config.cluster?.configHistory ?? DEFAULT_CONFIG_HISTORY;
    const oldestKept = newest.generation - history + 1;
    return {
      puts: [...records.filter((r) => r.generation >= oldestKept).map((r) => [generationKey(r.generation), JSON.stringify(r)] as const), [CONFIG_KEY, JSON.stringify(newest)]],
      ...(oldestKept > 1 && { deleteRange: { from: GENERATIONS_PREFIX, to: generationKey(oldestKept) } }),
    };
  }

  /**
   * Catch up: pull the generations a live peer holds past ours (or the arbiter's store
   * holds) when it announces a newer one. Returns the generation held afterwards.
   */
  async catchUp(newestAnnounced: { generation: number; from: string | undefined }): Promise<number> {
    const mine = this.current()?.generation ?? 0;
    if (newestAnnounced.generation <= mine || this.pulling) return mine;
    this.pulling = true;
    try {
      if (newestAnnounced.from !== undefined) {
        try {
          await this.keep(await this.fromPeer(newestAnnounced.from, mine), `pulled from ${newestAnnounced.from}`);
          return this.current()?.generation ?? 0;
        } catch (err) {
          log.warn({ err, from: newestAnnounced.from }, 'could not pull the configuration from the peer: trying the arbiter');
        }
      }
      await this.fromArbiter();
      return this.current()?.generation ?? 0;
    } finally {
      this.pulling = false;
    }
  }

  private async fromPeer(peer: string, after: number): Promise<ConfigRecord[]> {
    try {
      return (await this.options.discovery.request(peer, 'config.since', { after }, { timeoutMs: REQUEST_TIMEOUT_MS })) as ConfigRecord[];
    } catch (err) {
      // A peer of the previous version knows only its newest generation.
      if (!(err instanceof PeerRequestError && err.code === 'EUNKNOWNOP')) throw err;
      return [(await this.options.discovery.request(peer, 'config.get', {}, { timeoutMs: REQUEST_TIMEOUT_MS })) as ConfigRecord];
    }
  }

  /** The generations the arbiter's store holds, those this member lacks kept (a member starting alone, or new). */
  async fromArbiter(): Promise<void> {
    const records = (await this.options.arbiter.list(GENERATIONS_PREFIX)).map(([, text]) => JSON.parse(text) as ConfigRecord);
    if (records.length === 0) {
      // A cluster whose store was written before it kept the history: its newest only.
      const text = await this.options.arbiter.get(CONFIG_KEY);
      if (text !== undefined) records.push(JSON.parse(text) as ConfigRecord);
    }
    await this.keep(records, 'read from the arbiter');
  }

  private async keep(all: readonly ConfigRecord[], how: string): Promise<void> {
    // Generations held already are never rewritten: not read again either.
    const records = all.filter((r) => this.options.store.get(r.generation) === undefined);
    const newest = Math.max(0, ...records.map((r) => r.generation));
    const readable = records.filter((record) => {
      if (configChecksum(record.config) !== record.checksum) throw new ConfigError(`config generation ${record.generation}`, 'checksum mismatch: not kept');
      // Read as this member's version reads it: a newest one it cannot read is not kept (the
      // compatibility check refuses it a role); an older one is left out of the history.
      try {
        this.options.validate(record.config);
        return true;
      } catch (err) {
        if (record.generation === newest) throw err;
        log.warn({ generation: record.generation, err }, 'an old configuration generation this version cannot read is not mirrored');
        return false;
      }
    });
    const before = this.current()?.generation ?? 0;
    await this.options.store.mirror(readable);
    const now = this.current();
    if (now && now.generation > before) {
      log.info({ generation: now.generation, checksum: now.checksum, writtenBy: now.writtenBy, how }, 'configuration generation kept');
      this.emit('updated', now);
    }
  }

  private async until(condition: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
}
