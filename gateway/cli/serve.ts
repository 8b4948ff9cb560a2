import { dirname, resolve } from 'node:path';
import type { RootDatabase } from 'lmdb';
import { logger } from '../../fabric/log.js';
import { demoConfig } from '../../failover/config/demo.js';
import { loadConfigFile } from '../../failover/config/file.js';
import { openMemberDatabase } from '../../failover/config/database.js';
import { validateMemberConfig, type ListenAddress, type MemberConfig } from '../../failover/config/schema.js';
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
 * `blockgate serve`: store the given config (if any) as a new generation, then run the
 * member from the database's current generation (or the demo) until a signal stops it.
 * Resolves with the exit status once the member has stopped.
 */
export async function serve(options: ServeOptions): Promise<number> {
  let fromFile: MemberConfig | undefined;
  if (options.configPath !== undefined) {
    try {
      fromFile = (await loadConfigFile(options.configPath)).config;
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

  let member: Member;
  try {
    const config = await runningConfig(new ConfigStore(database), fromFile, options.configPath);
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
  log.info({ member: options.memberId ?? member.config.member, dataDir, listen: member.addresses() }, 'ready');
  return waitForStopSignal(member, database);
}

/** The configuration the member runs: always the database's, validated again by this version. */
async function runningConfig(store: ConfigStore, fromFile: MemberConfig | undefined, path: string | undefined): Promise<MemberConfig> {
  if (fromFile) {
    const { record, changed } = await store.commit(fromFile, { writtenBy: fromFile.member, source: `file:${resolve(path!)}` });
    if (!changed) log.info({ generation: record.generation }, 'configuration unchanged');
  }
  const record = store.current();
  if (!record) {
    log.info('no configuration stored: serving the demo');
    return demoConfig();
  }
  log.info({ generation: record.generation, writtenBy: record.writtenBy, source: record.source }, 'running stored configuration');
  return validateMemberConfig(record.config).config;
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
