/**
 * Real initiators against the iSCSI front end: qemu-img convert/compare of an image through
 * iscsi://, qemu-io patterns, iscsi-inq and iscsi-ls output, CHAP with libiscsi.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INITIATOR_IQN, killChildren, run, startBlockgate, TARGET_IQN } from '../helpers/iscsi.js';

t.teardown(killChildren);

t.test('qemu-img and qemu-io through iscsi://', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bg-iscsi-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bg = await startBlockgate({ size: 64 * 1024 * 1024 });
  t.teardown(() => bg.stop());

  // An image with data, a hole and an odd-sized tail, converted in and compared back.
  const image = join(dir, 'image.raw');
  const content = Buffer.concat([randomBytes(5 * 1024 * 1024), Buffer.alloc(3 * 1024 * 1024), randomBytes(1024 * 1024 + 4096)]);
  writeFileSync(image, content);
  const convert = await run('qemu-img', ['convert', '-n', '-p', '-f', 'raw', '-O', 'raw', image, bg.url()]);
  t.equal(convert.code, 0, `qemu-img convert: ${convert.stderr}`);
  // The LUN is larger than the image: compare the image's length only.
  const back = join(dir, 'back.raw');
  const fetch = await run('qemu-img', ['dd', '-f', 'raw', '-O', 'raw', `if=${bg.url()}`, `of=${back}`, 'bs=1M', `count=${Math.ceil(content.length / (1024 * 1024))}`]);
  t.equal(fetch.code, 0, `qemu-img dd: ${fetch.stderr}`);
  const compare = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, back]);
  t.match(compare.stdout, /Images are identical/, 'what went in comes back out');

  const io = await run('qemu-io', [
    '-f', 'raw',
    '-c', 'write -P 0x5a 1M 3M',
    '-c', 'write -P 0xa5 7340032 512',
    '-c', 'read -P 0x5a 1M 3M',
    '-c', 'read -P 0xa5 7340032 512',
    '-c', 'aio_write -P 0x11 16M 256k',
    '-c', 'aio_write -P 0x22 17M 256k',
    '-c', 'aio_flush',
    '-c', 'read -P 0x11 16M 256k',
    '-c', 'read -P 0x22 17M 256k',
    bg.url(),
  ]);
  t.equal(io.code, 0, `qemu-io exit: ${io.stderr}`);
  t.notMatch(io.stdout, /Pattern verification failed|failed/i, 'every pattern reads back');
  t.equal(io.stdout.match(/^read \d+\/\d+ bytes/gm)?.length, 4, 'four reads completed');
});

t.test('iscsi-inq and iscsi-ls', async (t) => {
  const bg = await startBlockgate({ size: 64 * 1024 * 1024, target: { alias: 'test-alias' } });
  t.teardown(() => bg.stop());
  const inq = await run('iscsi-inq', ['-i', INITIATOR_IQN, bg.url()]);
  t.equal(inq.code, 0, inq.stderr);
  t.match(inq.stdout, /Peripheral Device Type:DIRECT_ACCESS/);
  t.match(inq.stdout, /TPGS:\d/, 'standard INQUIRY reports ALUA support');
  t.match(inq.stdout, /Version Descriptor:0960 iSCSI/);

  const ls = await run('iscsi-ls', ['-s', '-i', INITIATOR_IQN, `iscsi://127.0.0.1:${bg.port}`]);
  t.equal(ls.code, 0, ls.stderr);
  t.match(ls.stdout, new RegExp(`Target:${TARGET_IQN.replace(/\./g, '\\.')} Portal:127\\.0\\.0\\.1:${bg.port},1`));
  t.match(ls.stdout, /Lun:0\s+Type:DIRECT_ACCESS \(Size:6\dM\)/);
});

t.test('CHAP with libiscsi: right secret in, wrong secret out', async (t) => {
  const chap = { user: 'alice', secret: 'correct-horse-battery' };
  const bg = await startBlockgate({ target: { chap } });
  t.teardown(() => bg.stop());
  const url = (secret: string) => bg.url(0, `${chap.user}%${secret}@`);

  const good = await run('iscsi-inq', ['-i', INITIATOR_IQN, url(chap.secret)]);
  t.equal(good.code, 0, `right secret logs in: ${good.stderr}`);
  t.match(good.stdout, /DIRECT_ACCESS/);

  const bad = await run('iscsi-inq', ['-i', INITIATOR_IQN, url('wrong-secret-entirely')]);
  t.not(bad.code, 0, 'wrong secret is refused');
  t.match(bad.stderr + bad.stdout, /[Aa]uthentication|0x0201|Login/, `libiscsi reports the login failure: ${bad.stderr.trim()}`);

  const none = await run('iscsi-inq', ['-i', INITIATOR_IQN, bg.url()]);
  t.not(none.code, 0, 'no credentials: refused (the target requires CHAP)');

  const ls = await run('iscsi-ls', ['-s', '-i', INITIATOR_IQN, `iscsi://${chap.user}%${chap.secret}@127.0.0.1:${bg.port}`]);
  t.equal(ls.code, 0, ls.stderr);
  t.match(ls.stdout, /Lun:0\s+Type:DIRECT_ACCESS/, 'iscsi-ls with CHAP lists the LUN');
  const lsBad = await run('iscsi-ls', ['-s', '-i', INITIATOR_IQN, `iscsi://${chap.user}%nope-nope-nope@127.0.0.1:${bg.port}`]);
  t.notMatch(lsBad.stdout, /Lun:0/, 'iscsi-ls with a wrong secret sees no LUN');
});
