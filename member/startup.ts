import { dirname, resolve } from 'node:path';
import { logger } from '../fabric/log.js';
import { checkBackingFiles } from '../failover/config/backing-files.js';
import { demoConfig } from '../failover/config/demo.js';
import { loadConfigFile } from '../failover/config/file.js';
import type { MemberConfig } from '../failover/config/schema/member-config.js';
import type { ConfigStore } from '../failover/config/store.js';
import { validateMemberConfig } from '../failover/config/validate.js';
import { canonicalJson, configChecksum } from '../failover/config/canonical.js';
import { MemberRecord } from '../failover/cluster/member-record.js';
import type { ConfigRecord } from '../failover/config/store.js';
import { ClusterConfigControl, type MemberConfigControl } from './cluster-config.js';
import { LiveConfig } from './live-config.js';
import { Member } from './member.js';
import { withOverrides, type RunOverrides } from './overrides.js';
import type { PortProvider } from './ports.js';
import { DEFAULT_DATA_DIR, MemberStore } from './store.js';


export interface StartupOptions {
  readonly configPath?: string;
  readonly dataDir?: string;
  readonly overrides?: RunOverrides;
  /** Which member of the configuration's cluster this process is. */
  readonly memberId?: string;
  readonly ports: PortProvider;
  /** The software version a cluster member announces. */
  readonly version?: string;
  /**
   * A new configuration generation from the cluster that the member could not be restarted
   * with: it no longer serves, and the process should exit so its service manager restarts it.
   */
  readonly onReloadFailed?: (err: unknown) => void;
}

/** A start-up step that failed, with what was being done (for the message). */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface RunningMember {
  /** The member running now (replaced when its cluster makes a new configuration generation). */
  readonly member: Member;
  readonly store: MemberStore;
  readonly dataDir: string;
  /** Apply, diff and roll back configurations while it runs (a cluster member's changes go to its cluster). */
  readonly live: MemberConfigControl;
  /** The config file it was started with, if any (read again on SIGHUP). */
  readonly configPath: string | undefined;
  /** Stop the member, then close its store (releasing the data directory). */
  stop(options?: { drainMs?: number }): Promise<void>;
}

const log = logger('member');
/** On a reload the roles were handed over first: in-flight requests get little time. */
const RELOAD_DRAIN_MS = 500;

/**
 * Generations stored before backing-file paths were stored absolute may hold relative
 * ones, which were always taken from the working directory: keep reading them so.
 */
const LEGACY_RELATIVE_PATHS = { baseDir: process.cwd() };

/**
 * Start a member process's member: load the config file (if any) → open the member store
 * (locking the data directory) → the configuration to run (the file's, else the stored
 * generation, else the demo) → build, boot and serve (Member.start) → store a config file
 * as a new generation once the member has started with it: one that fails to start leaves
 * the stored configuration as it was. Nothing is left open on failure.
 */
export async function startMember(options: StartupOptions): Promise<RunningMember> {
  let fromFile: MemberConfig | undefined;
  if (options.configPath !== undefined) {
    try {
      const validated = await loadConfigFile(options.configPath);
      await checkBackingFiles(validated);
      fromFile = validated.config;
    } catch (err) {
      throw new StartupError(options.configPath, err);
    }
  }
  const dataDir = resolve(
    options.dataDir ?? (fromFile?.dataDir !== undefined ? resolve(dirname(options.configPath!), fromFile.dataDir) : DEFAULT_DATA_DIR),
  );

  let store: MemberStore;
  try {
    store = MemberStore.open(dataDir);
  } catch (err) {
    throw new StartupError(`cannot open the member store in ${dataDir}`, err);
  }

  // A cluster with management networks keeps one configuration for every member: its file is
  // proposed to the cluster (made a generation by the cluster set's Primary), not stored here.
  const clustered = (fromFile?.cluster?.networks.length ?? 0) > 0;
  const start = (config: MemberConfig): Promise<Member> =>
    Member.start(withOverrides(config, options.overrides ?? {}), {
      dataDir,
      store,
      ports: options.ports,
      ...(options.memberId !== undefined && { memberId: options.memberId }),
      ...(options.version !== undefined && { version: options.version }),
    });

  // How the management API and SIGHUP change the configuration of the member running now.
  const controlOf = (m: Member): MemberConfigControl => {
    const local = new LiveConfig(m, store, options.overrides ?? {});
    const control = m.boot.cluster ? new ClusterConfigControl(local, m.boot.cluster) : local;
    m.configControl = control;
    return control;
  };

  let member: Member;
  let config: MemberConfig;
  try {
    config = fromFile ?? (await storedConfig(store.config));
    if (clustered && store.config.current() && fileAlreadyProposed(store, fromFile!, options.memberId)) {
      // Changes made in the cluster since win over a file that did not change.
      log.info({ generation: store.config.current()!.generation }, 'configuration file unchanged since it was proposed: running the stored generation');
      config = await storedConfig(store.config);
    }
    member = await start(config);
  } catch (err) {
    await store.close();
    throw new StartupError('start-up failed', err);
  }
  if (fromFile && clustered) {
    void member.boot.cluster?.proposeFile(fromFile, `file:${resolve(options.configPath!)}`).catch((err: unknown) => log.error({ err }, 'could not propose the configuration file'));
  } else if (fromFile) {
    try {
      const { record, changed } = await store.config.commit(fromFile, { writtenBy: fromFile.member, source: `file:${resolve(options.configPath!)}` });
      if (!changed) log.info({ generation: record.generation }, 'configuration unchanged');
    } catch (err) {
      await member.stop({ drainMs: 0 });
      await store.close();
      throw new StartupError('cannot store the configuration', err);
    }
  }

  // A new generation made in the cluster: applied live, else (a change of the cluster section, or
  // one refused live) the roles are handed over and the member starts again with it.
  let live = controlOf(member);
  let running = configChecksum(config);
  let reloading = Promise.resolve();
  let stopped = false;
  const follow = (m: Member): void => {
    m.boot.cluster?.on('config', (record: ConfigRecord) => {
      if (record.checksum === running) return;
      reloading = reloading.then(() => reload(record));
    });
  };
  // Live when it can: the member keeps its roles and the clients of what did not change.
  const applyLive = async (next: MemberConfig, record: ConfigRecord): Promise<boolean> => {
    // The cluster section shapes the member's services and sets: a change there needs a restart.
    if (canonicalJson(next.cluster) !== canonicalJson(member.config.cluster)) return false;
    try {
      await member.reload(withOverrides(next, options.overrides ?? {}));
    } catch (err) {
      log.info({ generation: record.generation, err: err instanceof Error ? err.message : String(err) }, 'the new configuration generation cannot be applied live: restarting the member with it');
      return false;
    }
    running = record.checksum;
    log.info({ generation: record.generation }, 'new configuration generation applied live');
    return true;
  };
  const reload = async (record: ConfigRecord): Promise<void> => {
    if (stopped || record.checksum === running) return;
    try {
      const validated = validateMemberConfig(record.config);
      await checkBackingFiles(validated);
      if (await applyLive(validated.config, record)) return;
      log.info({ generation: record.generation }, 'a new configuration generation: restarting the member with it');
      await member.stop({ drainMs: RELOAD_DRAIN_MS });
      if (stopped) return;
      member = await start(validated.config);
      live = controlOf(member);
      running = record.checksum;
      follow(member);
      log.info({ generation: record.generation }, 'member runs the new configuration');
    } catch (err) {
      log.error({ err, generation: record.generation }, 'could not run the new configuration generation');
      options.onReloadFailed?.(err);
    }
  };
  follow(member);
  return {
    get member() {
      return member;
    },
    store,
    dataDir,
    get live() {
      return live;
    },
    configPath: options.configPath === undefined ? undefined : resolve(options.configPath),
    async stop(stopOptions) {
      stopped = true;
      try {
        await reloading;
        await member.stop(stopOptions);
      } finally {
        await store.close();
      }
    },
  };
}

/** Did this member already propose this very file to its cluster (then changes made since win over it)? */
function fileAlreadyProposed(store: MemberStore, config: MemberConfig, memberId: string | undefined): boolean {
  const record = new MemberRecord(store.root, memberId ?? config.member, config.cluster!.health.failureLimit);
  return record.lastFile() === configChecksum(config);
}

/** The store's current generation, validated again by this version; or the demo. */
async function storedConfig(store: ConfigStore): Promise<MemberConfig> {
  const record = store.current();
  if (!record) {
    log.info('no configuration stored: serving the demo');
    return demoConfig();
  }
  log.info({ generation: record.generation, writtenBy: record.writtenBy, source: record.source }, 'running stored configuration');
  const validated = validateMemberConfig(record.config, LEGACY_RELATIVE_PATHS);
  await checkBackingFiles(validated);
  return validated.config;
}
