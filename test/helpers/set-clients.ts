import type { Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMember } from './blockgate-cli.js';
import { startBackground } from './clients.js';

/** What stands in front of a cluster set in tests: a gateway whose nbd backend follows the Primary, and fio verifying through it. */

/** A standalone blockgate in front of the set: its nbd backend reconnects when the Primary changes. */
export async function clientGateway(t: Test, dir: string, port: number, exportName = 'disk') {
  const socket = join(dir, 'client.sock');
  const config = join(dir, 'client.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      member: 'client',
      backends: [
        {
          name: 'remote',
          type: 'nbd',
          paths: [`127.0.0.1:${port}`],
          export: exportName,
          // A path that drops and returns on every failover must not be kept out as marginal.
          marginal: { failures: 1000, windowMs: 1000 },
          failback: 'immediate',
          probeIntervalMs: 100,
          noPathRetryMs: 30_000,
          timeoutMs: 5000,
          connectTimeoutMs: 1000,
        },
      ],
      exports: [{ name: 'c', device: 'remote' }],
      nbd: { listen: [{ socket }] },
    }),
  );
  const gw = startMember(t, ['--config', config, '--data-dir', join(dir, 'data-client')]);
  await gw.ready();
  return `nbd+unix:///c?socket=${socket}`;
}

export function fioVerify(uri: string, sizeMiB: number, seed: number, extra: readonly string[] = []) {
  return startBackground('fio', [
    '--name=verify',
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--rw=randwrite',
    '--bs=4k',
    '--iodepth=8',
    `--size=${sizeMiB}M`,
    '--verify=crc32c',
    '--verify_state_save=0',
    '--do_verify=1',
    '--verify_fatal=1',
    `--randseed=${seed}`,
    '--output-format=json',
    ...extra,
  ]);
}

