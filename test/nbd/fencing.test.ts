import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { NbdClient } from '../../fabric/backends/nbd-client/client.js';
import { parseNbdAddress } from '../../fabric/backends/nbd-client/address.js';
import { lmdbFenceMemory } from '../../gateway/nbd/fence-memory.js';
import { FenceRegistry } from '../../gateway/nbd/fencing.js';
import { MemberStore } from '../../member/store.js';
import { runTool, tempDir } from '../helpers/clients.js';
import { RawNbdClient, startNbdServer } from '../helpers/nbd.js';
import { startNbdkit } from '../helpers/nbdkit-server.js';
import { NBD_CMD_READ, NBD_CMD_WRITE, NBD_EINVAL, NBD_EPERM, NBD_REP_ACK, NBD_REP_ERR_INVALID, NBD_REP_ERR_POLICY, NBD_REP_INFO} from '../helpers/nbd-spec.js';

/**
 * blockgate's NBD fencing extension at the server: a connection that presented a fencing token
 * is refused once a newer token has been seen for its export — at GO when it connects late,
 * request by request when the newer token arrives while it is connected, including a write
 * already on its way. Clients that know nothing of the extension (nbdinfo) are unaffected;
 * our client against a server that knows nothing of it (nbdkit) goes on unfenced.
 */

// The extension's numbers as designed (fabric/protocols/nbd.ts), written out here so a
// changed constant fails the test instead of agreeing with itself.
const NBD_OPT_BLOCKGATE_FENCE = 0x42470001;
const NBD_CMD_BLOCKGATE_FENCE = 0x4247;
const BLOCK = 4096;

/** u64 term, u32 generation. */
function token(term: number, generation = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64BE(BigInt(term));
  b.writeUInt32BE(generation, 8);
  return b;
}

async function fencedClient(port: number, term: number, generation = 0): Promise<RawNbdClient> {
  const c = await RawNbdClient.open({ port });
  c.sendOption(NBD_OPT_BLOCKGATE_FENCE, token(term, generation));
  const r = await c.readOptionReply();
  if (r.type !== NBD_REP_ACK) throw new Error(`fence option refused: 0x${r.type.toString(16)}`);
  return c;
}

t.test('a stale token is refused at GO and on every request, queued ones included', async (t) => {
  const server = await startNbdServer([{ name: 'disk', device: new MemoryBackend({ name: 'fence-disk', size: 1 << 20 }) }], { fences: new FenceRegistry() });
  t.teardown(() => server.stop());

  const old = await fencedClient(server.port, 5);
  await old.go('disk');
  // A write on its way: the header and half its data are in the server's socket...
  const header = Buffer.alloc(28);
  header.writeUInt32BE(0x25609513, 0);
  header.writeUInt16BE(NBD_CMD_WRITE, 6);
  header.writeBigUInt64BE(1n, 8);
  header.writeUInt32BE(BLOCK, 24);
  old.write(Buffer.concat([header, Buffer.alloc(BLOCK / 2, 0xaa)]));
  await new Promise((r) => setTimeout(r, 100));

  // ...when a newer client takes over.
  const newer = await fencedClient(server.port, 7);
  await newer.go('disk');
  newer.request(NBD_CMD_WRITE, { cookie: 2n, payload: Buffer.alloc(BLOCK, 0xbb) });
  t.equal((await newer.readSimple()).error, 0, 'the newer client writes');

  // The rest of the stale write arrives: refused, the block keeps the newer data.
  old.write(Buffer.alloc(BLOCK / 2, 0xaa));
  const refused = await old.readSimple();
  t.equal(refused.error, NBD_EPERM, 'the stale write already queued is refused with EPERM');
  old.request(NBD_CMD_READ, { cookie: 3n, length: BLOCK });
  t.equal((await old.readSimple()).error, NBD_EPERM, 'so is any later request of the stale connection');
  newer.request(NBD_CMD_READ, { cookie: 4n, length: BLOCK });
  const read = await newer.readSimple(BLOCK);
  t.same(read.payload, Buffer.alloc(BLOCK, 0xbb), 'the block holds the newer data');

  // A client connecting with an older token is refused at GO, with the reason.
  const late = await fencedClient(server.port, 6);
  late.sendOption(7 /* NBD_OPT_GO */, Buffer.concat([Buffer.from([0, 0, 0, 4]), Buffer.from('disk'), Buffer.from([0, 0])]));
  const replies = await late.readOptionReplies(NBD_REP_INFO);
  const last = replies[replies.length - 1]!;
  t.equal(last.type >>> 0, NBD_REP_ERR_POLICY, 'GO with an older token is refused (NBD_REP_ERR_POLICY)');
  t.match(last.data.toString(), /fencing token 6\.0 is older than 7\.0/);
  late.destroy();

  // An equal token is a peer (another connection of the same client).
  const peer = await fencedClient(server.port, 7);
  await peer.go('disk');
  // A newer token without reconnecting: the write sent right behind it is judged by it.
  newer.request(NBD_CMD_BLOCKGATE_FENCE, { cookie: 5n, offset: 7, length: 1 });
  newer.request(NBD_CMD_WRITE, { cookie: 6n, payload: Buffer.alloc(BLOCK, 0xcc) });
  t.equal((await newer.readSimple()).error, 0, 'NBD_CMD_BLOCKGATE_FENCE raises the token');
  t.equal((await newer.readSimple()).error, 0, 'and the write behind it is served');
  peer.request(NBD_CMD_WRITE, { cookie: 7n, payload: Buffer.alloc(BLOCK, 0xdd) });
  t.equal((await peer.readSimple()).error, NBD_EPERM, 'the connection left at the older token is now refused');
  newer.request(NBD_CMD_BLOCKGATE_FENCE, { cookie: 8n, offset: 7, length: 0 });
  t.equal((await newer.readSimple()).error, NBD_EPERM, 'a token never goes back (the generation orders tokens of one term)');
  newer.request(NBD_CMD_BLOCKGATE_FENCE, { cookie: 11n, offset: 8, length: 0 });
  t.equal((await newer.readSimple()).error, 0, 'a newer term wins over any generation of an older one');
  old.destroy();
  peer.destroy();
  newer.destroy();

  // Without the option: the command is unknown, and the option checks its length.
  const plain = await RawNbdClient.open({ port: server.port });
  plain.sendOption(NBD_OPT_BLOCKGATE_FENCE, Buffer.alloc(4));
  t.equal((await plain.readOptionReply()).type >>> 0, NBD_REP_ERR_INVALID, 'a token of the wrong length is refused');
  await plain.go('disk');
  plain.request(NBD_CMD_BLOCKGATE_FENCE, { cookie: 9n, offset: 100 });
  t.equal((await plain.readSimple()).error, NBD_EINVAL, 'NBD_CMD_BLOCKGATE_FENCE on an unfenced connection is an unknown command');
  plain.request(NBD_CMD_READ, { cookie: 10n, length: BLOCK });
  t.same((await plain.readSimple(BLOCK)).payload, Buffer.alloc(BLOCK, 0xcc), 'an unfenced client is served whatever tokens were seen');
  plain.destroy();

  // A term-0 token (a path generation; a cluster member with no role yet) is let in, and
  // judged request by request.
  const unclaimed = await fencedClient(server.port, 0, 99);
  await unclaimed.go('disk');
  unclaimed.request(NBD_CMD_WRITE, { cookie: 12n, payload: Buffer.alloc(BLOCK, 0xee) });
  t.equal((await unclaimed.readSimple()).error, NBD_EPERM, 'a term-0 client connects but may not write an export a term has claimed');
  unclaimed.destroy();

  // A client that knows nothing of the extension works unchanged.
  const info = await runTool('nbdinfo', ['--size', server.uri('disk')]);
  t.equal(info.stdout.trim(), String(1 << 20), 'nbdinfo is served');
});

t.test('our client: fenced against blockgate (token raised without reconnecting), unfenced against nbdkit', async (t) => {
  const server = await startNbdServer([{ name: 'disk', device: new MemoryBackend({ name: 'fence-disk2', size: 1 << 20 }) }], { fences: new FenceRegistry() });
  t.teardown(() => server.stop());
  const address = { host: '127.0.0.1', port: server.port };
  const a = await NbdClient.open({ name: 'a', address, exportName: 'disk', fenceToken: { term: 0, generation: 10 } });
  const b = await NbdClient.open({ name: 'b', address, exportName: 'disk', fenceToken: { term: 0, generation: 10 } });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await a.write(0, [Buffer.alloc(BLOCK, 1)]);
  b.fence({ term: 0, generation: 11 });
  await b.write(0, [Buffer.alloc(BLOCK, 2)]);
  await t.rejects(a.write(0, [Buffer.alloc(BLOCK, 3)]), { code: 'EPERM' }, 'the client left behind is refused');
  const target = Buffer.alloc(BLOCK);
  await b.read(0, target);
  t.same(target, Buffer.alloc(BLOCK, 2));
  const c = await NbdClient.open({ name: 'c', address, exportName: 'disk', fenceToken: { term: 0, generation: 10 } });
  await t.rejects(c.write(0, [Buffer.alloc(BLOCK, 3)]), { code: 'EPERM' }, 'a path connecting with an older generation is let in, its writes refused');
  await c.close();
  // A new Primary's term (its arbitration token) wins over any path generation.
  a.fenceTerm(2);
  await a.write(0, [Buffer.alloc(BLOCK, 5)]);
  await t.rejects(b.write(0, [Buffer.alloc(BLOCK, 6)]), { code: 'EPERM' }, 'the client of the older term is refused');
  await t.rejects(
    NbdClient.open({ name: 'd', address, exportName: 'disk', fenceToken: { term: 1, generation: 99 } }),
    /fencing token 1\.99 is older than 2\.10/,
    'a deposed Primary (an older term) connecting again is refused at GO',
  );

  const nbdkit = await startNbdkit(t, { plugin: ['memory', 'size=1M'] });
  const unaware = await NbdClient.open({ name: 'k', address: parseNbdAddress(nbdkit.address)!, fenceToken: { term: 0, generation: 10 } });
  t.teardown(() => unaware.close());
  unaware.fenceTerm(12);
  await unaware.write(0, [Buffer.alloc(BLOCK, 4)]);
  await unaware.read(0, target);
  t.same(target, Buffer.alloc(BLOCK, 4), 'a server without the extension (nbdkit) is used unfenced');
});

t.test('a registry with a memory still refuses a deposed client after the server restarts', async (t) => {
  const dir = await tempDir(t, 'fence-memory-');
  const disk = new MemoryBackend({ name: 'fence-disk3', size: 1 << 20 });
  /** One life of the server: its registry loads what the store kept. */
  const serve = async (store: MemberStore) => {
    const server = await startNbdServer([{ name: 'disk', device: disk }], { fences: new FenceRegistry(true, lmdbFenceMemory(store.root, 'replication')) });
    return { server, address: { host: '127.0.0.1', port: server.port } };
  };
  let store = MemberStore.open(dir);
  const first = await serve(store);
  const primary = await NbdClient.open({ name: 'p7', address: first.address, exportName: 'disk', fenceToken: { term: 7, generation: 0 } });
  await primary.write(0, [Buffer.alloc(BLOCK, 7)]);
  await primary.close();
  await first.server.stop();
  await store.close();

  store = MemberStore.open(dir);
  t.teardown(() => store.close());
  const second = await serve(store);
  t.teardown(() => second.server.stop());
  await t.rejects(
    NbdClient.open({ name: 'p5', address: second.address, exportName: 'disk', fenceToken: { term: 5, generation: 0 } }),
    /fencing token 5\.0 is older than 7\.0/,
    'the deposed Primary (term 5) is refused by the restarted server',
  );
  const current = await NbdClient.open({ name: 'p7b', address: second.address, exportName: 'disk', fenceToken: { term: 7, generation: 0 } });
  await current.write(0, [Buffer.alloc(BLOCK, 8)]);
  await current.close();
  // The control: a registry without a memory has forgotten term 7 and lets term 5 in.
  const forgetful = await startNbdServer([{ name: 'disk', device: disk }], { fences: new FenceRegistry(true) });
  t.teardown(() => forgetful.stop());
  const stale = await NbdClient.open({ name: 'p5b', address: { host: '127.0.0.1', port: forgetful.port }, exportName: 'disk', fenceToken: { term: 5, generation: 0 } });
  await stale.close();
  const info = await runTool('nbdinfo', ['--size', second.server.uri('disk')]).catch((err: Error) => err);
  t.ok(info instanceof Error, 'a client with no token is still refused');
});
