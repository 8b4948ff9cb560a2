// The servers a benchmark compares. Each start function resolves with { proc, uri, stop }.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startProcess, waitForLine, waitForPort } from './processes.mjs';

/**
 * One blockgate member serving every export the comparisons need, started through the
 * built CLI with a generated config, on ports the kernel picks. `iscsiTargets`: iSCSI
 * targets ({ name, luns }) on one portal, omitted when empty.
 */
export async function startBlockgate({ root, workDir, backends, devices = [], exports, iscsiTargets = [] }) {
  const config = {
    member: 'bench',
    backends,
    devices,
    exports: exports.map((e) => ({ name: e.name, device: e.device })),
    nbd: { listen: [{ host: '127.0.0.1', port: 0 }] },
    ...(iscsiTargets.length > 0 && {
      iscsi: { targets: iscsiTargets.map((t) => ({ ...t, portalGroups: [{ id: 1, portals: [{ host: '127.0.0.1', port: 0 }] }] })) },
    }),
  };
  const configPath = join(workDir, 'blockgate.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const proc = startProcess(process.execPath, [join(root, 'dist/gateway/cli.js'), 'serve', '--config', configPath, '--data-dir', join(workDir, 'data')], {
    env: { ...process.env, BLOCKGATE_LOG_FORMAT: 'json', BLOCKGATE_LOG_LEVEL: 'info' },
  });
  const ready = await waitForLine(proc, (l) => l?.msg === 'ready', 'blockgate');
  const address = ready.listen.nbd[0];
  // iSCSI portals are listed as "127.0.0.1:3260 iqn.… tpg 1".
  const portals = (ready.listen.iscsi ?? []).map((text) => text.split(' '));
  return {
    proc,
    uri: (exportName) => `nbd://${address}/${exportName}`,
    iscsiUri(target, lun) {
      const portal = portals.find(([, name]) => name === target)?.[0];
      if (!portal) throw new Error(`blockgate serves no iSCSI target ${target} (listening: ${JSON.stringify(ready.listen)})`);
      return `iscsi://${portal}/${target}/${lun}`;
    },
    stop: () => proc.stop(),
  };
}

export async function startNbdkitMemory({ size }) {
  const port = await freePort();
  const proc = startProcess('nbdkit', ['--foreground', '--exit-with-parent', '-i', '127.0.0.1', '-p', String(port), 'memory', String(size)]);
  await waitForPort(port, proc, 'nbdkit');
  return { proc, port, uri: () => `nbd://127.0.0.1:${port}/`, stop: () => proc.stop() };
}

export async function startQemuNbd({ file }) {
  const port = await freePort();
  // -t: keep serving after a client leaves; -e: clients at once; writeback cache as on tmpfs
  // O_DIRECT is not available.
  const proc = startProcess('qemu-nbd', ['-f', 'raw', '-t', '-e', '8', '-b', '127.0.0.1', '-p', String(port), '--cache=writeback', '--aio=threads', file]);
  await waitForPort(port, proc, 'qemu-nbd');
  return { proc, uri: () => `nbd://127.0.0.1:${port}/`, stop: () => proc.stop() };
}
