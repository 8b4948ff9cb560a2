// The servers a benchmark compares. Each start function resolves with
// { proc, pids, uri, stop }: `pids` are the processes whose CPU time counts as the server's.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, startProcess, waitForLine, waitForPort } from './processes.mjs';

/**
 * One blockgate member serving every export the comparisons need, started through the
 * built CLI with a generated config, on ports the kernel picks. `iscsiTargets`: iSCSI
 * targets ({ name, luns }) on one portal, omitted when empty.
 */
export async function startBlockgate({ root, workDir, backends, devices = [], exports, iscsiTargets = [], env = {}, nodeArgs = [], nbd = {} }) {
  const config = {
    member: 'bench',
    backends,
    devices,
    exports: exports.map((e) => ({ name: e.name, device: e.device })),
    nbd: { listen: [{ host: '127.0.0.1', port: 0 }], ...nbd },
    ...(iscsiTargets.length > 0 && {
      iscsi: { targets: iscsiTargets.map((t) => ({ ...t, portalGroups: [{ id: 1, portals: [{ host: '127.0.0.1', port: 0 }] }] })) },
    }),
  };
  const configPath = join(workDir, 'blockgate.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const args = [...nodeArgs, join(root, 'dist/gateway/cli.js'), 'serve', '--config', configPath, '--data-dir', join(workDir, 'data')];
  const proc = startProcess(process.execPath, args, {
    env: { ...process.env, BLOCKGATE_LOG_FORMAT: 'json', BLOCKGATE_LOG_LEVEL: 'info', ...env },
  });
  // iSCSI logins as the member logged them ({ target, type, hd, dd }): the digest comparison
  // checks what was negotiated, not what the initiator was asked to request.
  const logins = [];
  createInterface({ input: proc.child.stdout }).on('line', (text) => {
    if (!text.includes('"login complete"')) return;
    try {
      logins.push(JSON.parse(text));
    } catch {
      // not a JSON log line
    }
  });
  const ready = await waitForLine(proc, (l) => l?.msg === 'ready', 'blockgate');
  const address = ready.listen.nbd[0];
  // iSCSI portals are listed as "127.0.0.1:3260 iqn.… tpg 1".
  const portals = (ready.listen.iscsi ?? []).map((text) => text.split(' '));
  return {
    proc,
    pids: [proc.pid],
    address,
    logins,
    uri: (exportName) => `nbd://${address}/${exportName}`,
    iscsiUri(target, lun) {
      const portal = portals.find(([, name]) => name === target)?.[0];
      if (!portal) throw new Error(`blockgate serves no iSCSI target ${target} (listening: ${JSON.stringify(ready.listen)})`);
      return `iscsi://${portal}/${target}/${lun}`;
    },
    stop: () => proc.stop(),
  };
}

/** nbdkit with a plugin and its parameters, e.g. ('memory', ['1G']) or ('file', ['/dev/shm/x.img']). */
export async function startNbdkit(plugin, params, { filters = [] } = {}) {
  const port = await freePort();
  const args = ['--foreground', '--exit-with-parent', '-i', '127.0.0.1', '-p', String(port), ...filters.flatMap((f) => ['--filter', f]), plugin, ...params];
  const proc = startProcess('nbdkit', args);
  await waitForPort(port, proc, 'nbdkit');
  return { proc, pids: [proc.pid], port, uri: () => `nbd://127.0.0.1:${port}/`, stop: () => proc.stop() };
}

export const startNbdkitMemory = ({ size }) => startNbdkit('memory', [String(size)]);
export const startNbdkitFile = ({ file }) => startNbdkit('file', [`file=${file}`]);

/**
 * qemu-nbd on a raw file. cache 'writeback' goes through the page cache like the others;
 * 'none' opens the file O_DIRECT (where the file system allows it: not on tmpfs).
 */
export async function startQemuNbd({ file, cache = 'writeback' }) {
  const port = await freePort();
  // -t: keep serving after a client leaves; -e: clients at once (fio's multi-connection jobs).
  const proc = startProcess('qemu-nbd', ['-f', 'raw', '-t', '-e', '16', '-b', '127.0.0.1', '-p', String(port), `--cache=${cache}`, '--aio=threads', file]);
  await waitForPort(port, proc, 'qemu-nbd');
  return { proc, pids: [proc.pid], uri: () => `nbd://127.0.0.1:${port}/`, stop: () => proc.stop() };
}
