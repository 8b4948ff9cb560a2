import { logger } from '../../fabric/log.js';
import type { ListenAddress } from '../../failover/config/schema/listen.js';
import { startMember, StartupError, type RunningMember } from '../../member/startup.js';
import { gatewayPorts } from '../ports.js';
import { EXIT_FAILURE, EXIT_OK, reportError } from './exit.js';

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
    });
  } catch (err) {
    return err instanceof StartupError ? reportError(err.cause, err.step) : reportError(err);
  } finally {
    process.off('SIGTERM', keep);
    process.off('SIGINT', keep);
  }
  log.info({ member: options.memberId ?? running.member.config.member, dataDir: running.dataDir, listen: running.member.addresses() }, 'ready');
  return waitForStopSignal(running, early);
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
