import type { Database, RootDatabase } from 'lmdb';
import { ConfigError } from './errors.js';
import { logger } from '../../fabric/log.js';
import { configChecksum } from './canonical.js';
import { DEFAULT_CONFIG_HISTORY } from './schema/cluster.js';
import { CONFIG_SCHEMA_VERSION, type MemberConfig } from './schema/member-config.js';

/**
 * One version of the member configuration as the database keeps it. Records are
 * self-describing so members can exchange them: a receiver checks the checksum and keeps
 * the generations it lacks, never rewriting one it holds (the Primary writes; etcd, when
 * a cluster uses it, decides who that is).
 */
export interface ConfigRecord {
  /** 1, 2, 3…: one more on every change, never reused. */
  readonly generation: number;
  /** configChecksum(config): equal checksums mean equal configurations. */
  readonly checksum: string;
  /** The member that wrote this generation. */
  readonly writtenBy: string;
  /** ISO 8601 time of the write, for operators (generations order records, not clocks). */
  readonly writtenAt: string;
  /** Where it came from: `file:/etc/blockgate.yaml`, `sync:member-b`, `api`… */
  readonly source: string;
  /** The configuration schema version of the writer (absent in records written before it was kept: 1). */
  readonly schemaVersion?: number;
  readonly config: MemberConfig;
}

export interface CommitResult {
  readonly record: ConfigRecord;
  /** False when the configuration equals the current one: no new generation was made. */
  readonly changed: boolean;
}

export const CONFIG_DB_NAME = 'config';
export const DEFAULT_HISTORY = 20;

const log = logger('config-store');

/**
 * Generation-numbered configuration records in the member's LMDB, keyed by generation.
 * The current configuration is the highest generation; the last `history` are kept (a
 * cluster's records: the last `cluster.configHistory`, as the cluster's store keeps them).
 */
export class ConfigStore {
  private readonly db: Database<ConfigRecord, number>;
  private readonly history: number;

  constructor(root: RootDatabase, options: { history?: number } = {}) {
    this.history = Math.max(1, options.history ?? DEFAULT_HISTORY);
    // JSON, not msgpack: records travel between members that may run different versions.
    this.db = root.openDB<ConfigRecord, number>({ name: CONFIG_DB_NAME, encoding: 'json' });
  }

  current(): ConfigRecord | undefined {
    for (const { value } of this.db.getRange({ reverse: true, limit: 1 })) return verified(value);
    return undefined;
  }

  get(generation: number): ConfigRecord | undefined {
    const value = this.db.get(generation);
    return value === undefined ? undefined : verified(value);
  }

  /** Kept records, newest first. */
  list(): ConfigRecord[] {
    return [...this.db.getRange({ reverse: true })].map(({ value }) => verified(value));
  }

  /** Store a validated configuration as the next generation, unless it equals the current one. */
  async commit(config: MemberConfig, origin: { writtenBy: string; source: string }): Promise<CommitResult> {
    const result = await this.db.transaction((): CommitResult => {
      const next = this.next(config, origin);
      if (!next.changed) return next;
      this.append(next.record);
      return next;
    });
    if (result.changed) log.info({ generation: result.record.generation, source: origin.source, checksum: result.record.checksum }, 'configuration stored');
    return result;
  }

  /**
   * The record `config` would be stored as, without storing it (the current one if equal):
   * a cluster's Primary has the cluster accept a generation before it keeps it.
   */
  next(config: MemberConfig, origin: { writtenBy: string; source: string }): CommitResult {
    const checksum = configChecksum(config);
    const latest = this.latest();
    if (latest && latest.checksum === checksum) return { record: latest, changed: false };
    const record: ConfigRecord = {
      generation: (latest?.generation ?? 0) + 1,
      checksum,
      writtenBy: origin.writtenBy,
      writtenAt: new Date().toISOString(),
      source: origin.source,
      schemaVersion: CONFIG_SCHEMA_VERSION,
      config,
    };
    return { record, changed: true };
  }

  /**
   * Keep a cluster's generations this store lacks (older ones too: a member that was away
   * or is new mirrors the history the cluster holds), within the newest record's history.
   * Returns the records added, oldest first.
   */
  async mirror(records: readonly ConfigRecord[]): Promise<ConfigRecord[]> {
    const sorted = [...records].sort((a, b) => a.generation - b.generation);
    for (const r of sorted) {
      verified(r);
      if (!Number.isSafeInteger(r.generation) || r.generation < 1) throw new ConfigError('generation', `must be a positive integer (got ${r.generation})`);
    }
    const added = await this.db.transaction(() => {
      const out: ConfigRecord[] = [];
      for (const r of sorted) {
        if (this.db.doesExist(r.generation)) continue;
        void this.db.put(r.generation, r);
        out.push(r);
      }
      const newest = this.latest();
      if (newest) this.forgetBefore(newest);
      return out.filter((r) => this.db.doesExist(r.generation));
    });
    if (added.length > 0) log.info({ generations: added.map((r) => r.generation) }, 'configuration generations mirrored');
    return added;
  }

  private latest(): ConfigRecord | undefined {
    for (const { value } of this.db.getRange({ reverse: true, limit: 1 })) return value;
    return undefined;
  }

  /** Inside a write transaction: add the record and forget the ones past the history. */
  private append(record: ConfigRecord): void {
    void this.db.put(record.generation, record);
    this.forgetBefore(record);
  }

  /** Inside a write transaction: forget the generations past the history `newest` asks for. */
  private forgetBefore(newest: ConfigRecord): void {
    const history = newest.config.cluster ? (newest.config.cluster.configHistory ?? DEFAULT_CONFIG_HISTORY) : this.history;
    const oldest = newest.generation - history;
    for (const key of this.db.getKeys({ end: oldest + 1 })) void this.db.remove(key);
  }
}

function verified(record: ConfigRecord): ConfigRecord {
  if (configChecksum(record.config) !== record.checksum) {
    throw new ConfigError(`config generation ${record.generation}`, `checksum mismatch: the stored configuration is damaged`);
  }
  return record;
}
