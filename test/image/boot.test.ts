/**
 * Deploy a bootable Debian disk image onto an export with `blockgate image import`, then boot
 * a VM from the export — once over nbd://, once over iscsi:// — from the disk's own boot
 * loader: SeaBIOS runs EXTLINUX from the export, which loads the distribution's kernel and
 * initramfs from it; the initramfs mounts the root file system from it, and the root's init
 * prints on the serial console the token stored in that file system and a token this run
 * wrote into the disk just before the boot (so the guest read blockgate's live data, not a
 * copy). The disk is built from Debian packages and cached (see build-boot-disk.sh).
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, nbdUri, runCli, startMember } from '../helpers/blockgate-cli.js';
import { runTool } from '../helpers/clients.js';
import { cachedArtifact } from '../helpers/image-cache.js';
import { startVm } from '../helpers/vm.js';

// A cold cache builds a Debian system first; a TCG boot takes a minute or two on a busy machine.
t.setTimeout(40 * 60_000);
ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'blockgate-boot-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const TARGET = 'iqn.2026-11.dev.blockgate:boot';
/** Where boot-init.sh reads the live token: sector 64, in the gap before the first partition. */
const LIVE_TOKEN_OFFSET = 64 * 512;
const BOOT_TIMEOUT_MS = 15 * 60_000;

t.test('a Debian image imported onto an export boots over NBD and over iSCSI', async (t) => {
  const disk = await cachedArtifact('test/helpers/images/build-boot-disk.sh');
  const rootToken = readFileSync(`${disk}.token`, 'utf8').trim();

  const config = join(dir, 'member.yaml');
  writeFileSync(
    config,
    `backends:
  - {name: boot, type: file, path: ${join(dir, 'boot.img')}, create: true, size: 256MiB}
exports:
  - {name: boot, device: boot}
iscsi:
  targets:
    - name: ${TARGET}
      luns: [{lun: 0, export: boot}]
      portalGroups: [{id: 1, portals: ["127.0.0.1:3260"]}]
`,
  );
  const member = startMember(t, ['--config', config, '--data-dir', join(dir, 'data'), '--nbd', '127.0.0.1:0']);
  const listen = await member.ready();
  const nbd = listen.nbd![0]!;
  const iscsi = /^(\S+) /.exec(listen.iscsi![0]!)![1]!;

  const token = ['--token-file', join(dir, 'data', 'api', 'admin.token')];
  const imported = await runCli(['image', 'import', disk, 'boot', '--member', `http://${listen.api![0]}`, ...token]);
  t.equal(imported.code, 0, imported.stderr);
  t.match(imported.stdout, /^imported .* \(qcow2\) onto export boot: 128 MiB, /m);

  const drives: Array<[string, string]> = [
    ['nbd', `file=${nbdUri(nbd, 'boot')},format=raw,if=virtio`],
    ['iscsi', `file=iscsi://${iscsi}/${TARGET}/0,format=raw,if=virtio`],
  ];
  for (const [transport, drive] of drives) {
    await t.test(`boots over ${transport}`, async (t) => {
      const live = `live-${transport}-${randomBytes(6).toString('hex')}`;
      const tokenFile = join(dir, `${transport}.token`);
      writeFileSync(tokenFile, Buffer.concat([Buffer.from(live), Buffer.alloc(512 - live.length)]));
      await runTool('qemu-io', ['-f', 'raw', '-c', `write -s ${tokenFile} ${LIVE_TOKEN_OFFSET} 512`, nbdUri(nbd, 'boot')]);

      const vm = startVm(t, { drives: [drive] });
      const m = await vm.waitForSerial(/BLOCKGATE-BOOT-OK root=(\S+) token=(\S*) live=(\S*)/, BOOT_TIMEOUT_MS);
      t.match(vm.serial(), /SYSLINUX/, 'the boot loader ran from the export');
      t.equal(m[1], '/dev/vda1', 'the root file system is the partition on the exported disk');
      t.equal(m[2], rootToken, 'init read the token of the deployed root file system');
      t.equal(m[3], live, 'and the token written into the export just before this boot');
      const { code } = await vm.exited;
      t.equal(code, 0, 'the guest powered off');
    });
  }
});
