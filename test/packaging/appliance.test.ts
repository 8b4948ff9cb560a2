/**
 * The appliance image (Debian from its packages, the blockgate .deb, the service enabled)
 * boots under qemu-system-x86_64 by its own boot loader; from the host, through user-mode
 * networking's forwarded ports, nbdinfo and iscsi-inq see its export and fio writes and
 * verifies data (crc32c); the service is restarted inside the guest (through the QEMU guest
 * agent) and fio verifies the same data again: it persisted in the file backend under
 * /var/lib/blockgate. The .deb and the image are cached by their inputs.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBuilt } from '../helpers/blockgate-cli.js';
import { runTool } from '../helpers/clients.js';
import { cachedArtifact } from '../helpers/image-cache.js';
import { freePort } from '../helpers/nbdkit-server.js';
import { GuestAgent } from '../helpers/qga.js';
import { startVm } from '../helpers/vm.js';

// A cold cache builds the .deb and a Debian system; the appliance boots with systemd in TCG.
t.setTimeout(45 * 60_000);
ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'blockgate-appliance-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const TARGET = 'iqn.2026-11.dev.blockgate:disk0';
const BOOT_TIMEOUT_MS = 15 * 60_000;

/** Poll until the NBD export answers through the forwarded port (the service is up). */
async function waitForExport(uri: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // Until the guest listens, user-mode networking accepts the connection and then drops or
    // stalls it: each try is bounded, and a failed or stalled one is tried again.
    const r = await runTool('nbdinfo', ['--json', uri], { allowFailure: true, timeoutMs: 20_000 }).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
    if (r.code === 0) return r.stdout;
    if (Date.now() > deadline) throw new Error(`${uri} did not answer within ${timeoutMs} ms: ${r.stderr}`);
    await sleep(3000);
  }
}

function fio(uri: string, extra: string[]) {
  // The same seed and layout in both runs: the second one checks what the first one wrote.
  return runTool(
    'fio',
    ['--name=appliance', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--size=8M', '--iodepth=4', '--randseed=20261129', '--verify=crc32c', '--verify_fatal=1', ...extra],
    // fio keeps its verify state file in its working directory: the test's, not the checkout.
    { timeoutMs: 10 * 60_000, allowFailure: true, cwd: dir },
  );
}

t.test('the appliance boots, serves NBD and iSCSI through forwarded ports, and keeps data across a service restart', async (t) => {
  const deb = await cachedArtifact('packaging/build-deb.sh');
  const image = await cachedArtifact('packaging/appliance/build-image.sh', [deb]);
  // The cached image stays pristine: the VM writes into an overlay.
  const disk = join(dir, 'appliance.qcow2');
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'qcow2', disk]);

  const [nbdPort, iscsiPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const qga = join(dir, 'qga.sock');
  const vm = startVm(t, {
    drives: [`file=${disk},format=qcow2,if=virtio`],
    memoryMiB: 1024,
    args: [
      '-netdev',
      `user,id=n0,hostfwd=tcp:127.0.0.1:${nbdPort}-:10809,hostfwd=tcp:127.0.0.1:${iscsiPort}-:3260,hostfwd=tcp:127.0.0.1:${apiPort}-:9810`,
      '-device',
      'virtio-net-pci,netdev=n0',
      '-chardev',
      `socket,id=qga0,path=${qga},server=on,wait=off`,
      '-device',
      'virtio-serial',
      '-device',
      'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
    ],
  });
  await vm.waitForSerial(/SYSLINUX/, BOOT_TIMEOUT_MS);
  const uri = `nbd://127.0.0.1:${nbdPort}/disk0`;
  const info = JSON.parse(await waitForExport(uri, BOOT_TIMEOUT_MS)) as { exports: Array<{ 'export-name': string; 'export-size': number }> };
  t.match(info.exports[0], { 'export-name': 'disk0', 'export-size': 1024 ** 3 }, 'nbdinfo sees the appliance export');

  const inq = await runTool('iscsi-inq', [`iscsi://127.0.0.1:${iscsiPort}/${TARGET}/0`]);
  t.match(inq.stdout, /Peripheral Device Type:DIRECT_ACCESS/, 'iscsi-inq: the appliance LUN is a disk');

  const written = await fio(uri, ['--do_verify=1']);
  t.equal(written.code, 0, `fio wrote and verified 8 MiB with crc32c: ${written.stderr.slice(-2000)}`);

  const agent = await GuestAgent.connect(qga, BOOT_TIMEOUT_MS);
  t.teardown(() => agent.close());
  const owner = await agent.exec('/usr/bin/stat', ['-c', '%U %s', '/var/lib/blockgate/disk0.img']);
  t.equal(owner.stdout.trim(), `blockgate ${1024 ** 3}`, 'the data lives in a file under /var/lib/blockgate owned by the service user');
  const user = await agent.exec('/bin/systemctl', ['show', '-p', 'User', '-p', 'NoNewPrivileges', '-p', 'ProtectSystem', 'blockgate']);
  t.match(user.stdout, /User=blockgate/);
  t.match(user.stdout, /NoNewPrivileges=yes/);
  t.match(user.stdout, /ProtectSystem=strict/);

  const restart = await agent.exec('/bin/systemctl', ['restart', 'blockgate']);
  t.equal(restart.exitcode, 0, `systemctl restart blockgate: ${restart.stderr}`);
  const active = await agent.exec('/bin/systemctl', ['is-active', 'blockgate']);
  t.equal(active.stdout.trim(), 'active');
  const restarts = await agent.exec('/bin/systemctl', ['show', '-p', 'ActiveEnterTimestampMonotonic', 'blockgate']);
  t.match(restarts.stdout, /ActiveEnterTimestampMonotonic=\d+/);

  await waitForExport(uri, BOOT_TIMEOUT_MS);
  const verified = await fio(uri, ['--verify_only']);
  t.equal(verified.code, 0, `after the restart fio verified the same 8 MiB: ${verified.stderr.slice(-2000)}`);

  // And the check fails where that data is not: the same job over a range never written.
  const elsewhere = await fio(uri, ['--verify_only', '--offset=64M']);
  t.not(elsewhere.code, 0, 'verifying a range that was never written fails: the check reads real data');
  t.match(elsewhere.stderr + elsewhere.stdout, /bad magic header/);

  // The agent goes down with the guest, so the answer may never come: the VM's exit tells.
  void agent.exec('/bin/systemctl', ['poweroff']).catch(() => undefined);
  // Unref'd: once the VM has exited, this bound must not keep the test process alive for 5 minutes.
  const stopped = await Promise.race([vm.exited, sleep(5 * 60_000, undefined, { ref: false }).then(() => undefined)]);
  t.ok(stopped, 'the appliance powered off');
});
