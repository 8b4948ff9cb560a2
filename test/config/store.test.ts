import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemberStore } from '../../member/store.js';

/** The member store's LMDB root, unlocked: these tests open two on one directory in turn. */
const openMemberDatabase = (dir: string) => MemberStore.openUnlocked(dir).root;
import { ConfigStore } from '../../failover/config/store.js';
import { configChecksum } from '../../failover/config/canonical.js';
import { validateMemberConfig } from '../../failover/config/validate.js';
import type { MemberConfig } from '../../failover/config/schema/member-config.js';

function configWith(size: string, member = 'gw-a'): MemberConfig {
  return validateMemberConfig({
    member,
    backends: [{ name: 'disk', type: 'memory', size }],
    exports: [{ name: 'disk', device: 'disk' }],
  }).config;
}

function freshDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'blockgate-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a stored configuration survives closing and reopening the database', async (t) => {
  const dir = freshDir(t);
  let db = openMemberDatabase(dir);
  const { record, changed } = await new ConfigStore(db).commit(configWith('1GiB'), { writtenBy: 'gw-a', source: 'file:/x.yaml' });
  t.ok(changed);
  t.equal(record.generation, 1);
  t.equal(record.checksum, configChecksum(record.config));
  await db.close();

  db = openMemberDatabase(dir);
  t.teardown(() => db.close());
  const again = new ConfigStore(db).current();
  t.ok(again);
  t.equal(again!.generation, 1);
  t.equal(again!.writtenBy, 'gw-a');
  t.equal(again!.source, 'file:/x.yaml');
  t.same(again!.config, configWith('1GiB'));
  t.same(validateMemberConfig(again!.config).config, configWith('1GiB'), 'the stored record validates again');
});

t.test('generation increments on each change, not on an identical commit', async (t) => {
  const db = openMemberDatabase(freshDir(t));
  t.teardown(() => db.close());
  const store = new ConfigStore(db);
  t.equal(store.current(), undefined, 'empty database has no configuration');
  const origin = { writtenBy: 'gw-a', source: 'test' };
  t.equal((await store.commit(configWith('1MiB'), origin)).record.generation, 1);
  const same = await store.commit(configWith('1MiB'), origin);
  t.equal(same.changed, false);
  t.equal(same.record.generation, 1);
  t.equal((await store.commit(configWith('2MiB'), origin)).record.generation, 2);
  t.equal((await store.commit(configWith('1MiB'), origin)).record.generation, 3, 'going back is a change too');
  t.equal(store.current()!.generation, 3);
  t.match(store.get(2)!.config.backends[0], { size: '2MiB' });
  t.same(store.list().map((r) => r.generation), [3, 2, 1]);
});

t.test('only the last N generations are kept', async (t) => {
  const db = openMemberDatabase(freshDir(t));
  t.teardown(() => db.close());
  const store = new ConfigStore(db, { history: 3 });
  for (let i = 1; i <= 6; i++) await store.commit(configWith(`${i}MiB`), { writtenBy: 'gw-a', source: 'test' });
  t.same(store.list().map((r) => r.generation), [6, 5, 4]);
  t.equal(store.get(3), undefined);
  t.match(store.current()!.config.backends[0], { size: '6MiB' });
});

t.test('records from another member (or the arbiter) are mirrored when missing and intact, older ones too, within the history', async (t) => {
  const a = openMemberDatabase(freshDir(t));
  const b = openMemberDatabase(freshDir(t));
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const storeA = new ConfigStore(a);
  const storeB = new ConfigStore(b, { history: 2 });
  await storeA.commit(configWith('1MiB'), { writtenBy: 'gw-a', source: 'test' });
  const { record } = await storeA.commit(configWith('2MiB'), { writtenBy: 'gw-a', source: 'test' });

  t.same(await storeB.mirror([record]), [record]);
  t.same(storeB.current(), record, 'the receiver holds the same record: generation, checksum, writer');
  t.same(await storeB.mirror([record]), [], 'a generation held already is not written again');
  t.same(await storeB.mirror([storeA.get(1)!]), [storeA.get(1)], 'a missing older generation joins the history');
  t.equal(storeB.current()!.generation, 2, 'the newest stays the current one');
  const damaged = { ...record, generation: 9, config: configWith('3MiB') };
  await t.rejects(storeB.mirror([damaged]), { name: 'ConfigError', message: /checksum mismatch/ });
  t.equal(storeB.current()!.generation, 2, 'nothing of a batch with a damaged record is kept');
  const { record: third } = await storeA.commit(configWith('3MiB'), { writtenBy: 'gw-a', source: 'test' });
  t.same(await storeB.mirror([third]), [third]);
  t.same(storeB.list().map((r) => r.generation), [3, 2], 'the oldest past the history is forgotten');
});

t.test('other subsystems open their own named databases in the same environment', async (t) => {
  const dir = freshDir(t);
  const db = openMemberDatabase(dir);
  const reservations = db.openDB<{ key: string }, string>({ name: 'test-reservations' });
  await reservations.put('lun0', { key: '0xabc' });
  await new ConfigStore(db).commit(configWith('1MiB'), { writtenBy: 'gw-a', source: 'test' });
  await db.close();
  const reopened = openMemberDatabase(dir);
  t.teardown(() => reopened.close());
  t.same(reopened.openDB({ name: 'test-reservations' }).get('lun0'), { key: '0xabc' });
  t.equal(new ConfigStore(reopened).current()!.generation, 1);
});
