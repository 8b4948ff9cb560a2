import { logger } from '../../fabric/log.js';
import type { ListenAddress } from '../../failover/config/schema/listen.js';
import { ConfigError } from '../../failover/config/errors.js';
import { ReloadRefused } from '../../member/reload-check.js';
import { startMember, StartupError, type RunningMember } from '../../member/startup.js';
import { gatewayPorts } from '../ports.js';
import { EXIT_FAILURE, EXIT_OK, reportError } from './exit.js';
import { version } from './version.js';

/** How long ports let in-flight requests finish on SIGTERM/SIGINT. */
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
 * `blockgate serve`: start the member (member/startup.ts: store, config, graph, boot,
 * ports) with the gateway's ports, and run it until a signal stops it. Resolves with the
 * exit status once the member has stopped.
 */
export async function serve(options: ServeOptions): Promise<number> {
  // A stop signal during start-up (ports may already serve) is kept and acted on once started.
  let early: NodeJS.Signals | undefined;
  const keep = (signal: NodeJS.Signals): void => void (early ??= signal);
  process.on('SIGTERM', keep);
  process.on('SIGINT', keep);
  // A reload asked for during start-up (Node's default for SIGHUP is to exit) is done once started.
  let reloadAsked = false;
  const keepReload = (): void => void (reloadAsked = true);
  process.on('SIGHUP', keepReload);
  let running: RunningMember;
  try {
    running = await startMember({
      ...(options.configPath !== undefined && { configPath: options.configPath }),
      ...(options.dataDir !== undefined && { dataDir: options.dataDir }),
      overrides: {
        ...(options.nbdListen && { nbdListen: options.nbdListen }),
        ...(options.iscsiPortal && { iscsiPortal: options.iscsiPortal }),
        ...(options.apiListen && { apiListen: options.apiListen }),
      },
      ...(options.memberId !== undefined && { memberId: options.memberId }),
      ports: gatewayPorts,
      version: version(),
      // The member no longer serves: exit, so the service manager starts it again.
      onReloadFailed: () => process.exit(EXIT_FAILURE),
    });
  } catch (err) {
    return err instanceof StartupError ? reportError(err.cause, err.step) : reportError(err);
  } finally {
    process.off('SIGTERM', keep);
    process.off('SIGINT', keep);
    process.off('SIGHUP', keepReload);
  }
  const reload = (): void => reloadConfigFile(running);
  process.on('SIGHUP', reload);
  log.info({ member: options.memberId ?? running.member.config.member, dataDir: running.dataDir, listen: running.member.addresses() }, 'ready');
  if (reloadAsked) reload();
  try {
    return await waitForStopSignal(running, early);
  } finally {
    process.off('SIGHUP', reload);
  }
}

/**
 * SIGHUP (`systemctl reload`): read the config file again and apply it live (what did not
 * change keeps serving). A file that is invalid, or a change the member cannot make live,
 * is logged with every problem and changes nothing.
 */
function reloadConfigFile(running: RunningMember): void {
  const path = running.configPath;
  if (path === undefined) {
    log.warn('SIGHUP: this member was started without --config, so there is no file to read again (apply one with the API: POST /api/v1/config/apply)');
    return;
  }
  log.info({ config: path }, 'SIGHUP: reading the configuration file again');
  running.live.applyFile(path).then(
    (r) => log.info({ generation: r.generation, changes: r.changes }, r.applied ? 'configuration reloaded' : 'configuration reloaded: nothing changed'),
    (err: unknown) =>
      log.error(
        { err, config: path, ...(err instanceof ConfigError && { problems: err.problems }) },
        `configuration reload ${err instanceof ReloadRefused ? 'refused' : 'failed'}: the member runs on with its configuration unchanged`,
      ),
  );
}

function waitForStopSignal(running: RunningMember, early: NodeJS.Signals | undefined): Promise<number> {
  return new Promise((resolveExit) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting without waiting');
        process.exit(EXIT_FAILURE);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      running.stop({ drainMs: DRAIN_MS }).then(
        () => resolveExit(EXIT_OK),
        (err: unknown) => {
          log.error({ err }, 'stop failed');
          resolveExit(EXIT_FAILURE);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    if (early) onSignal(early);
  });
}
