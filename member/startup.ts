import { dirname, resolve } from 'node:path';
import { logger } from '../fabric/log.js';
import { checkBackingFiles } from '../failover/config/backing-files.js';
import { demoConfig } from '../failover/config/demo.js';
import { loadConfigFile } from '../failover/config/file.js';
import type { MemberConfig } from '../failover/config/schema/member-config.js';
import type { ConfigStore } from '../failover/config/store.js';
import { validateMemberConfig } from '../failover/config/validate.js';
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
  readonly member: Member;
  readonly store: MemberStore;
  readonly dataDir: string;
  /** Apply, diff and roll back configurations while it runs. */
  readonly live: LiveConfig;
  /** The config file it was started with, if any (read again on SIGHUP). */
  readonly configPath: string | undefined;
  /** Stop the member, then close its store (releasing the data directory). */
  stop(options?: { drainMs?: number }): Promise<void>;
}

const log = logger('member');

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

  let member: Member;
  try {
    const config = fromFile ?? (await storedConfig(store.config));
    member = await Member.start(withOverrides(config, options.overrides ?? {}), {
      dataDir,
      store,
      ports: options.ports,
      ...(options.memberId !== undefined && { memberId: options.memberId }),
    });
  } catch (err) {
    await store.close();
    throw new StartupError('start-up failed', err);
  }
  if (fromFile) {
    try {
      const { record, changed } = await store.config.commit(fromFile, { writtenBy: fromFile.member, source: `file:${resolve(options.configPath!)}` });
      if (!changed) log.info({ generation: record.generation }, 'configuration unchanged');
    } catch (err) {
      await member.stop({ drainMs: 0 });
      await store.close();
      throw new StartupError('cannot store the configuration', err);
    }
  }
  const live = new LiveConfig(member, store, options.overrides ?? {});
  member.configControl = live;
  return {
    member,
    store,
    dataDir,
    live,
    configPath: options.configPath === undefined ? undefined : resolve(options.configPath),
    async stop(stopOptions) {
      try {
        await member.stop(stopOptions);
      } finally {
        await store.close();
      }
    },
  };
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
