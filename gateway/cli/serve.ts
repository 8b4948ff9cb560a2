import { dirname, resolve } from 'node:path';
import type { RootDatabase } from 'lmdb';
import { logger } from '../../fabric/log.js';
import { demoConfig } from '../../failover/config/demo.js';
import { loadConfigFile } from '../../failover/config/file.js';
import { openMemberDatabase } from '../../failover/config/database.js';
import { checkBackingFiles } from '../../failover/config/backing-files.js';
import type { ListenAddress } from '../../failover/config/schema/listen.js';
import type { MemberConfig } from '../../failover/config/schema/member-config.js';
import { validateMemberConfig, type ValidatedConfig } from '../../failover/config/validate.js';
import { ConfigStore } from '../../failover/config/store.js';
import { Member } from '../member.js';
import { EXIT_FAILURE, EXIT_OK, reportError } from './exit.js';

/** Relative to the working directory; a packaged install passes --data-dir /var/lib/blockgate. */
export const DEFAULT_DATA_DIR = 'data';
/** How long front ends let in-flight requests finish on SIGTERM/SIGINT. */
const DRAIN_MS = 5000;

export interface ServeOptions {
  readonly configPath?: string;
  readonly dataDir?: string;
  /** Replaces the configured nbd.listen for this run only. */
  readonly nbdListen?: readonly ListenAddress[];
  /** Serves every iSCSI target on this portal instead of the configured ones, for this run only. */
  readonly iscsiPortal?: { readonly host: string; readonly port: number };
  /** Replaces the configured api.listen for this run only. */
  readonly apiListen?: ListenAddress;
  /** Which member of the configuration's cluster this process is. */
  readonly memberId?: string;
}

const log = logger('cli');

/**
 * Generations stored before backing-file paths were stored absolute may hold relative
 * ones, which were always taken from the working directory: keep reading them so.
 */
const LEGACY_RELATIVE_PATHS = { baseDir: process.cwd() };

/**
 * `blockgate serve`: run the given config (if any), else the database's current
 * generation, else the demo, until a signal stops it. A config file becomes a new
 * generation only once the member has started with it: one that fails to start leaves
 * the stored configuration as it was. Resolves with the exit status once the member has
 * stopped.
 */
export async function serve(options: ServeOptions): Promise<number> {
  let fromFile: MemberConfig | undefined;
  if (options.configPath !== undefined) {
    try {
      const validated = await loadConfigFile(options.configPath);
      await checkBackingFiles(validated);
      fromFile = validated.config;
    } catch (err) {
      return reportError(err, options.configPath);
    }
  }
  const dataDir = resolve(
    options.dataDir ??
      (fromFile?.dataDir !== undefined ? resolve(dirname(options.configPath!), fromFile.dataDir) : DEFAULT_DATA_DIR),
  );

  let database: RootDatabase;
  try {
    database = openMemberDatabase(dataDir);
  } catch (err) {
    return reportError(err, `cannot open the database in ${dataDir}`);
  }

  const store = new ConfigStore(database);
  let member: Member;
  try {
    const config = fromFile ?? (await storedConfig(store));
    const effective = {
      ...config,
      ...(options.nbdListen?.length && { nbd: { listen: options.nbdListen } }),
      // TLS and the metrics setting stay as configured: --api moves the listener only.
      ...(options.apiListen && { api: { openMetrics: true, ...config.api, listen: [options.apiListen] } }),
    };
    member = await Member.start(effective, {
      dataDir,
      database,
      ...(options.iscsiPortal && { iscsiPortal: options.iscsiPortal }),
      ...(options.memberId !== undefined && { memberId: options.memberId }),
    });
  } catch (err) {
    await database.close();
    return reportError(err, 'start-up failed');
  }
  if (fromFile) {
    try {
      await storeStarted(store, fromFile, options.configPath!);
    } catch (err) {
      await member.stop({ drainMs: 0 });
      await database.close();
      return reportError(err, 'cannot store the configuration');
    }
  }
  log.info({ member: options.memberId ?? member.config.member, dataDir, listen: member.addresses() }, 'ready');
  return waitForStopSignal(member, database);
}

/** Record a configuration the member now runs as the next generation (none if unchanged). */
async function storeStarted(store: ConfigStore, config: MemberConfig, path: string): Promise<void> {
  const { record, changed } = await store.commit(config, { writtenBy: config.member, source: `file:${resolve(path)}` });
  if (!changed) log.info({ generation: record.generation }, 'configuration unchanged');
}

/** The database's current generation, validated again by this version; or the demo. */
async function storedConfig(store: ConfigStore): Promise<MemberConfig> {
  const record = store.current();
  if (!record) {
    log.info('no configuration stored: serving the demo');
    return demoConfig();
  }
  log.info({ generation: record.generation, writtenBy: record.writtenBy, source: record.source }, 'running stored configuration');
  const validated: ValidatedConfig = validateMemberConfig(record.config, LEGACY_RELATIVE_PATHS);
  await checkBackingFiles(validated);
  return validated.config;
}

function waitForStopSignal(member: Member, database: RootDatabase): Promise<number> {
  return new Promise((resolveExit) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting without waiting');
        process.exit(EXIT_FAILURE);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      member
        .stop({ drainMs: DRAIN_MS })
        .then(() => database.close())
        .then(
          () => resolveExit(EXIT_OK),
          (err: unknown) => {
            log.error({ err }, 'stop failed');
            resolveExit(EXIT_FAILURE);
          },
        );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
