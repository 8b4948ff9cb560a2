import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { memberApi } from '../helpers/api.js';
import { ensureBuilt, nbdUri } from '../helpers/blockgate-cli.js';
import { openBrowser } from '../helpers/browser.js';
import { startBackground } from '../helpers/clients.js';
import { startSetsMember } from '../helpers/sets-member.js';

ensureBuilt();

/** Generous: two cores shared by a browser, a member, fio, nbdkit and other tests. */
const WAIT = { timeout: 60_000 };

t.test('the dashboard in a real browser: live charts under fio, one state everywhere, action buttons, paths with their last error', async (t) => {
  const { dir, member, listen, paths, target: TARGET } = await startSetsMember(t, { name: 'dashboard', sizeMiB: 64 });
  const admin = await memberApi(member, 'admin');
  const read = await memberApi(member, 'read');
  const browser = await openBrowser(t, 'dashboard');
  const { page } = browser;

  await page.goto(`${admin.base}/`);
  await page.waitForSelector('#token-form:not([hidden])', WAIT);
  t.match(await page.textContent('#token-message'), /API token/, 'without a token the page asks for one');
  t.equal(await page.locator('[data-set]').count(), 0, 'and shows no data');

  await page.fill('#token-form input[name=token]', read.token);
  await page.click('#token-form button[type=submit]');
  await page.waitForSelector('#who [data-role=read]', WAIT);
  await page.waitForSelector('[data-set=m0][data-state=optimal]', WAIT);
  t.equal(await page.locator('button.action:visible').count(), 0, 'the read-only token shows no action buttons');
  t.equal(await page.textContent('#link'), 'live', 'following the live stream');

  // Charts move under fio load.
  const fio = startBackground('fio', [
    '--name=dash', '--ioengine=nbd', `--uri=${nbdUri(listen.nbd![0]!, 'vol')}`, '--rw=randrw', '--bs=16k', '--iodepth=4',
    '--size=64m', '--time_based', '--runtime=300', '--rate=2m,2m',
  ]);
  t.teardown(() => fio.stop());
  const volCard = page.locator('[data-subject="export:vol"]');
  await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('[data-subject="export:vol"]')?.dataset.iops) > 20, undefined, WAIT);
  const before = await volCard.locator('canvas').first().screenshot();
  await page.waitForFunction((n) => document.querySelectorAll('[data-subject="export:vol"] .chart')[0] !== undefined && Date.now() > n, Date.now() + 2500, WAIT);
  const after = await volCard.locator('canvas').first().screenshot();
  t.not(Buffer.compare(before, after), 0, 'the IOPS chart of export vol redraws as samples arrive');
  t.match(await volCard.locator('.headline').textContent(), /IOPS · .*\/s · p99 /, 'its headline shows IOPS, throughput and p99');
  await page.waitForSelector('[data-session] >> text=vol', WAIT);
  t.pass('fio’s connection is in the session list');
  t.match(await page.textContent('[data-export=vol]'), new RegExp(`64\\.0 MiB[\\s\\S]*${TARGET} LUN 0`), 'the export shows its size and its LUN');
  await browser.screenshot('read-only-under-load');

  // The admin token shows the buttons; one of them degrades the mirror.
  await page.click('#forget-token');
  await page.waitForSelector('#token-form:not([hidden])', WAIT);
  await page.fill('#token-form input[name=token]', admin.token);
  await page.click('#token-form button[type=submit]');
  await page.waitForSelector('#who [data-role=admin]', WAIT);
  const offline = page.locator('[data-set=m0] button[data-action=offline][data-value=r1]');
  await offline.waitFor(WAIT);
  await offline.click();
  await page.waitForSelector('#toast[data-outcome=ok]', WAIT);
  await page.waitForSelector('[data-set=m0][data-state=degraded]', WAIT);
  const states = await page.evaluate(() => ({
    summary: document.querySelector('#summary [data-key=health] [data-state]')?.getAttribute('data-state'),
    set: document.querySelector('[data-set=m0]')?.getAttribute('data-state'),
    setBadge: document.querySelector('[data-set=m0] h3 [data-state]')?.getAttribute('data-state'),
    exportRow: document.querySelector('[data-export=vol]')?.getAttribute('data-state'),
    exportBadge: document.querySelector('[data-export=vol] [data-state]')?.getAttribute('data-state'),
    deviceRow: document.querySelector('#devices [data-device=m0]')?.getAttribute('data-state'),
    replica: document.querySelector('[data-set=m0] [data-member=r1]')?.getAttribute('data-state'),
  }));
  t.same(
    states,
    { summary: 'degraded', set: 'degraded', setBadge: 'degraded', exportRow: 'degraded', exportBadge: 'degraded', deviceRow: 'degraded', replica: 'offline' },
    'the degraded mirror is degraded in the summary, its set, the exports and the devices; r1 offline',
  );
  const status = await admin.json<{ failoverSets: Array<{ name: string; state: string }> }>('/api/v1/status');
  t.equal(status.body.failoverSets.find((s) => s.name === 'm0')?.state, 'degraded', 'as the API says');
  await browser.screenshot('degraded');

  // A refused action says why.
  await page.click('[data-set=m0] button[data-action=clearQuarantine][data-value=r0]');
  await page.waitForSelector('#toast[data-outcome=error]', WAIT);
  t.match(await page.textContent('#toast'), /refused: .+/, 'a refusal shows the member’s reason');

  // Reintegrate: the resync bar shows progress, rate and ETA, then the mirror is optimal again.
  await page.click('[data-set=m0] button[data-action=reintegrate][data-value=r1]');
  const bar = page.locator('[data-resync=r1]');
  await bar.waitFor(WAIT);
  t.match(await bar.textContent(), /resync r1.*% · .* of .* · .*\/s · ETA /, 'the resync bar: percent, bytes, rate, ETA');
  await browser.screenshot('resync');
  await page.waitForSelector('[data-set=m0][data-state=optimal]', { timeout: 180_000 });
  t.equal(await page.locator('[data-resync=r1]').count(), 0, 'the bar goes when the resync is done');
  t.equal(await page.getAttribute('#summary [data-key=health] [data-state]', 'data-state'), 'optimal');

  // An image import job appears in the jobs table.
  const image = join(dir, 'image.raw');
  await writeFile(image, Buffer.alloc(4 * 1024 * 1024, 0x5a));
  const job = await admin.json<{ id: string }>('/api/v1/jobs', { method: 'POST', body: { kind: 'image-import', export: 'remote', file: image, format: 'raw' } });
  t.equal(job.status, 202, 'an image import job starts');
  await page.waitForSelector(`[data-job="${job.body.id}"][data-state=succeeded]`, WAIT);
  t.match(await page.textContent(`[data-job="${job.body.id}"]`), /import.*remote.*image\.raw \(raw\)/, 'the jobs table shows the import, its export and file');

  // A path that dies shows as failed with the reason.
  t.equal(await page.getAttribute('[data-path=p1]', 'data-state'), 'standby');
  t.match(await page.textContent('[data-path=p1]'), paths[1]!.address, 'the path row shows its address');
  await paths[1]!.kill();
  await page.waitForSelector('[data-path=p1][data-state=failed]', WAIT);
  t.notSame((await page.textContent('[data-path=p1] .error-text'))?.trim(), '', `the last error is shown: ${await page.textContent('[data-path=p1] .error-text')}`);
  await browser.screenshot('path-failed');

  const errors = browser.pageErrors.filter((e) => !/Failed to load resource/.test(e));
  t.same(errors, [], 'no script errors on the page');
  await fio.stop();
  t.equal((await member.terminate()).code, 0);
});
