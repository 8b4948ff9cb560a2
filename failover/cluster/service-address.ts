import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { logger } from '../../fabric/log.js';
import type { ServiceAddressConfig } from '../config/schema/cluster.js';

const run = promisify(execFile);
const log = logger('service-address');

/**
 * A failover set's service address: added to the Primary's interface when it takes over,
 * announced with gratuitous ARP (`arping -U` from iputils-arping; without it clients keep
 * sending to the old MAC until their ARP entry ages, ~40 s), removed when it stops serving.
 */
export async function takeAddress(sa: ServiceAddressConfig): Promise<void> {
  try {
    await run('ip', ['addr', 'add', sa.address, 'dev', sa.interface]);
  } catch (err) {
    // Still there from an earlier term (e.g. a crash before removal): fine.
    if (!/File exists/.test(String((err as { stderr?: string }).stderr))) throw new Error(`ip addr add ${sa.address} dev ${sa.interface}: ${String((err as { stderr?: string }).stderr ?? err)}`);
  }
  const ip = sa.address.split('/')[0]!;
  if (ip.includes(':')) {
    log.info({ address: sa.address, interface: sa.interface }, 'service address taken');
    return; // IPv6 neighbours learn through unsolicited NA, which the kernel sends on add
  }
  // Three unsolicited ARPs 0.2 s apart; not awaited past the first so takeover is not delayed.
  const announce = run('arping', ['-U', '-c', '3', '-w', '1', '-I', sa.interface, ip]).catch((err: unknown) =>
    log.warn({ err: String((err as { stderr?: string }).stderr ?? err), address: ip }, 'gratuitous ARP failed: clients may take ~40 s to find the new Primary'),
  );
  void announce;
  log.info({ address: sa.address, interface: sa.interface }, 'service address taken');
}

export async function releaseAddress(sa: ServiceAddressConfig): Promise<void> {
  try {
    await run('ip', ['addr', 'del', sa.address, 'dev', sa.interface]);
    log.info({ address: sa.address, interface: sa.interface }, 'service address released');
  } catch (err) {
    if (!/Cannot assign|not found|No such/i.test(String((err as { stderr?: string }).stderr))) log.warn({ err, address: sa.address }, 'could not release the service address');
  }
}
