import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { ConfigStore } from '../failover/config/store.js';
import { DataDirLock } from './data-dir-lock.js';

/**
 * The member store: the LMDB environment in a member's data directory, holding its
 * configuration generations, persistent reservations and the metadata other subsystems keep
 * in named sub-databases of it (`root.openDB({ name })`), so one transaction can span them.
 * A running member holds the directory's lock for as long as the store is open.
 */
export const MEMBER_STORE_DIR = 'member.lmdb';
/** Relative to the working directory; a packaged install passes --data-dir /var/lib/blockgate. */
export const DEFAULT_DATA_DIR = 'data';

export class MemberStore {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly dataDir: string,
    readonly root: RootDatabase,
    readonly config: ConfigStore,
    private readonly lock: DataDirLock | undefined,
  ) {}

  /**
   * Open for a member that will serve from this directory: takes the directory's lock
   * first (DataDirLockedError names the PID holding it).
   */
  static open(dataDir: string): MemberStore {
    const lock = DataDirLock.acquire(dataDir);
    try {
      return MemberStore.openEnvironment(dataDir, lock);
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  /** Open to read or inspect what is stored, beside a member that may be running (show-config). */
  static openUnlocked(dataDir: string): MemberStore {
    return MemberStore.openEnvironment(dataDir, undefined);
  }

  private static openEnvironment(dataDir: string, lock: DataDirLock | undefined): MemberStore {
    mkdirSync(dataDir, { recursive: true });
    const root = open({
      path: join(dataDir, MEMBER_STORE_DIR),
      // A directory holding data.mdb and lock.mdb, as the LMDB tools (mdb_stat) expect.
      noSubdir: false,
      maxDbs: 64,
    });
    return new MemberStore(dataDir, root, new ConfigStore(root), lock);
  }

  /** Close the environment, then release the directory. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.root.close().finally(() => this.lock?.release());
    return this.closing;
  }
}
