/**
 * Two clients that connect and then sit idle, so that session lists have something to show:
 * an nbdsh holding one NBD connection to an export, and iscsi-perf holding one iSCSI session
 * to a LUN (it reads at a low rate; `-m 1` keeps a single request in flight).
 */
import { nbdUri } from './blockgate-cli.js';
import { startBackground, type Background } from './clients.js';

export interface IdleClients {
  readonly nbd: Background;
  readonly iscsi: Background;
  /** The iSCSI portal the session logged in through. */
  readonly portal: string;
}

export function startIdleClients(
  t: { teardown(fn: () => unknown): void },
  listen: Record<string, string[]>,
  options: { exportName: string; target: string; lun: number; initiator: string },
): IdleClients {
  const nbd = startBackground('nbdsh', ['-u', nbdUri(listen.nbd![0]!, options.exportName), '-c', 'import time\ntime.sleep(600)']);
  t.teardown(() => nbd.stop());
  const portal = listen.iscsi![0]!.split(' ')[0]!;
  const iscsi = startBackground('iscsi-perf', ['-i', options.initiator, '-m', '1', `iscsi://${portal}/${options.target}/${options.lun}`]);
  t.teardown(() => iscsi.stop());
  return { nbd, iscsi, portal };
}
