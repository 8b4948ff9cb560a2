import type { ConfigDiff } from '../failover/config/diff.js';
import type { ConfigProblem } from '../failover/config/errors.js';
import type { ConfigRecord } from '../failover/config/store.js';

/** What an apply did, or (dry run) would do. */
export interface ApplyResult {
  /** True once the member runs the configuration and it is stored; false for a dry run or no change. */
  readonly applied: boolean;
  readonly dryRun: boolean;
  /** The stored generation the member runs now (for a dry run: still the running one). */
  readonly generation: number | undefined;
  /** One line per change: `+ export e3`, `~ device tree m (rebuilt)`, `- iscsi target iqn…`. */
  readonly changes: readonly string[];
  /** The changes by kind: devices, exports, iSCSI targets, sections, and the exports whose clients are disconnected. */
  readonly diff: ConfigDiff;
  /** Changes the member cannot make live now (a dry run lists them; an apply is refused with them). */
  readonly refused: readonly ConfigProblem[];
}

/** The changes between two kept generations. */
export interface GenerationDiff {
  readonly from: number;
  readonly to: number;
  readonly changes: readonly string[];
  readonly diff: ConfigDiff;
}

export interface ApplyOrigin {
  /** Where the configuration came from, stored with the generation: `api`, `file:/etc/…`, `rollback:3`. */
  readonly source: string;
  /** Relative backing-file paths are taken from here (the config file's directory). */
  readonly baseDir?: string;
  /** Only report what would change (and what would be refused); change nothing. */
  readonly dryRun?: boolean;
}

/** The live configuration of a running member, as the management API and SIGHUP drive it. */
export interface ConfigControl {
  /** The stored generation the member runs, if any (a member serving the demo has none). */
  current(): ConfigRecord | undefined;
  /** Kept generations, newest first. */
  generations(): ConfigRecord[];
  generation(n: number): ConfigRecord | undefined;
  /**
   * Validate a document, apply it to the running member without dropping the clients of
   * what did not change, then store it as the next generation. Throws ConfigError for an
   * invalid document (nothing stored), ReloadRefused for a change the member cannot make
   * live (nothing changed, nothing stored).
   */
  apply(doc: unknown, origin: ApplyOrigin): Promise<ApplyResult>;
  /** Apply a kept generation again (stored as a new generation whose source is `rollback:N`). */
  rollback(generation: number, options?: { readonly dryRun?: boolean }): Promise<ApplyResult>;
  /** The changes from one kept generation to another. */
  diff(from: number, to: number): GenerationDiff;
}
