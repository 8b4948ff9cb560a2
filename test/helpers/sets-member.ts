/**
 * A member with one failover set of each kind, for the operator-facing tests (dashboard,
 * CLI): `m0`, a mirror of two memory replicas with a slow resync (its progress stays
 * visible), exported as `vol`; and `mp`, active-passive multipath over two nbdkit servers
 * on TCP (paths with addresses that can be killed), exported as `remote`; both mapped to
 * LUNs 0 and 1 of one iSCSI target.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMember, type MemberProcess } from './blockgate-cli.js';
import { tempDir } from './clients.js';
import { startNbdkit, type NbdkitServer } from './nbdkit-server.js';

export interface SetsMember {
  readonly dir: string;
  readonly dataDir: string;
  readonly member: MemberProcess;
  readonly listen: Record<string, string[]>;
  readonly paths: readonly NbdkitServer[];
  readonly target: string;
}

export async function startSetsMember(
  t: { teardown(fn: () => unknown): void },
  options: { name: string; sizeMiB: number; remoteReadOnly?: boolean },
): Promise<SetsMember> {
  const dir = await tempDir(t, `blockgate-ops-${options.name}-`);
  const size = `${options.sizeMiB}MiB`;
  const paths = [
    await startNbdkit(t, { plugin: ['memory', `size=${options.sizeMiB}M`], tcp: true }),
    await startNbdkit(t, { plugin: ['memory', `size=${options.sizeMiB}M`], tcp: true }),
  ];
  const target = `iqn.2026-11.dev.blockgate:ops-${options.name}`;
  const dataDir = join(dir, 'data');
  const configPath = join(dir, 'member.json');
  await writeFile(
    configPath,
    JSON.stringify({
      member: options.name,
      backends: [
        { name: 'r0', type: 'memory', size },
        { name: 'r1', type: 'memory', size },
        { name: 'p0', type: 'nbd', address: paths[0]!.address },
        { name: 'p1', type: 'nbd', address: paths[1]!.address },
      ],
      devices: [
        // Fresh memory disks are zeroed alike: no initial sync (the tests start from an optimal mirror).
        { name: 'm0', type: 'mirror', replicas: ['r0', 'r1'], resync: { rateMiBps: 4 }, assumeClean: true },
        { name: 'mp', type: 'multipath', paths: ['p0', 'p1'], policy: 'active-passive', failback: 'manual', probeIntervalMs: 500 },
      ],
      exports: [
        { name: 'vol', device: 'm0', description: 'mirrored volume' },
        { name: 'remote', device: 'mp', readOnly: options.remoteReadOnly === true },
      ],
      nbd: { listen: ['127.0.0.1:0'] },
      iscsi: { targets: [{ name: target, luns: [{ lun: 0, export: 'vol' }, { lun: 1, export: 'remote' }] }] },
    }),
  );
  const member = startMember(t, ['--config', configPath, '--data-dir', dataDir]);
  const listen = await member.ready();
  return { dir, dataDir, member, listen, paths, target };
}
