import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import {
  IHAVEOPT,
  NBDMAGIC,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_NO_ZEROES,
  NBD_FLAG_READ_ONLY,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_STARTTLS,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_SERVER,
  REPLY_MAGIC,
} from '../helpers/nbd-spec.js';
// Not a wire constant: the server's own limit on option length, which the test probes.
import { MAX_OPTION_LENGTH } from '../../fabric/protocols/nbd.js';
import { NbdServer } from '../../gateway/nbd/server.js';
import { RawNbdClient, infoRequest, nbdServerDefaults, startNbdServer, stillServes } from '../helpers/nbd.js';

const nbd = await startNbdServer([
  { name: 'disk', device: new MemoryBackend({ name: 'hs-disk', size: 8 << 20 }), description: 'the disk' },
  { name: 'ro', device: new MemoryBackend({ name: 'hs-ro', size: 1 << 20 }), readOnly: true },
]);
t.teardown(() => nbd.stop());
const tcp = { port: nbd.port };

t.test('greeting is fixed newstyle with NO_ZEROES', async (t) => {
  const c = await RawNbdClient.connect(tcp);
  t.teardown(() => c.destroy());
  const g = await c.read(18);
  t.equal(g.readBigUInt64BE(0), NBDMAGIC);
  t.equal(g.readBigUInt64BE(8), IHAVEOPT);
  t.equal(g.readUInt16BE(16), NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
});

t.test('unknown client flags close the connection', async (t) => {
  const c = await RawNbdClient.open(tcp, NBD_FLAG_C_FIXED_NEWSTYLE | 0x80);
  await c.closed;
  t.equal(c.pending, 0, 'nothing sent after the greeting');
  t.ok(await stillServes(tcp));
});

t.test('truncated handshakes and garbage leave the server serving', async (t) => {
  const half = await RawNbdClient.connect(tcp);
  await half.read(18);
  half.write(Buffer.from([0, 0]));
  half.destroy();
  const garbage = await RawNbdClient.open(tcp);
  garbage.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await garbage.closed;
  const partialOption = await RawNbdClient.open(tcp);
  partialOption.write(Buffer.from(IHAVEOPT.toString(16), 'hex').subarray(0, 5));
  partialOption.destroy();
  t.ok(await stillServes(tcp));
});

t.test('bad option magic closes the connection', async (t) => {
  const c = await RawNbdClient.open(tcp);
  const h = Buffer.alloc(16);
  h.write('NOTMAGIC', 0);
  h.writeUInt32BE(NBD_OPT_LIST, 8);
  c.write(h);
  await c.closed;
  t.equal(c.pending, 0);
  t.ok(await stillServes(tcp));
});

t.test('unknown option gets ERR_UNSUP and negotiation continues', async (t) => {
  const c = await RawNbdClient.open(tcp);
  t.teardown(() => c.destroy());
  c.sendOption(0x4242, Buffer.from('whatever'));
  const r = await c.readOptionReply();
  t.equal(r.option, 0x4242);
  t.equal(r.type, NBD_REP_ERR_UNSUP);
  const { size } = await c.go('disk');
  t.equal(size, BigInt(8 << 20));
});

t.test('option replies carry the reply magic and echo the option', async (t) => {
  const c = await RawNbdClient.open(tcp);
  t.teardown(() => c.destroy());
  c.sendOption(NBD_OPT_LIST);
  const raw = await c.read(20);
  t.equal(raw.readBigUInt64BE(0), REPLY_MAGIC);
  t.equal(raw.readUInt32BE(8), NBD_OPT_LIST);
  t.equal(raw.readUInt32BE(12), NBD_REP_SERVER);
  const entry = await c.read(raw.readUInt32BE(16));
  t.equal(entry.readUInt32BE(0), 4);
  t.equal(entry.toString('utf8', 4, 8), 'disk');
  t.equal(entry.toString('utf8', 8), 'the disk', 'description follows the name');
  const rest = await c.readOptionReplies(NBD_REP_SERVER);
  t.same(
    rest.map((r) => r.type),
    [NBD_REP_SERVER, NBD_REP_ACK],
  );
  t.equal(rest[0]!.data.toString('utf8', 4), 'ro');
});

t.test('LIST with data is ERR_INVALID', async (t) => {
  const c = await RawNbdClient.open(tcp);
  t.teardown(() => c.destroy());
  c.sendOption(NBD_OPT_LIST, Buffer.from('x'));
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_INVALID);
  await c.go('disk');
});

t.test('STARTTLS is refused by policy (no TLS configured)', async (t) => {
  const c = await RawNbdClient.open(tcp);
  t.teardown(() => c.destroy());
  c.sendOption(NBD_OPT_STARTTLS);
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_POLICY);
  c.sendOption(NBD_OPT_STARTTLS, Buffer.from('x'));
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_INVALID);
  await c.go('disk');
});

t.test('ABORT is acknowledged, then the server closes', async (t) => {
  const c = await RawNbdClient.open(tcp);
  c.sendOption(NBD_OPT_ABORT);
  const r = await c.readOptionReply();
  t.equal(r.type, NBD_REP_ACK);
  t.equal(r.option, NBD_OPT_ABORT);
  await c.closed;
});

t.test('an oversized option length drops the connection without reading it', async (t) => {
  const c = await RawNbdClient.open(tcp);
  c.sendOption(NBD_OPT_LIST, Buffer.alloc(0), MAX_OPTION_LENGTH + 1);
  await c.closed;
  t.equal(c.pending, 0, 'no reply at all');
  t.ok(await stillServes(tcp));
});

t.test('INFO and GO: malformed lengths are ERR_INVALID', async (t) => {
  const c = await RawNbdClient.open(tcp);
  t.teardown(() => c.destroy());
  // Too short to hold the fixed fields.
  c.sendOption(NBD_OPT_INFO, Buffer.from([0, 0, 0]));
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_INVALID);
  // Name length pointing past the data.
  const bad = infoRequest('disk', []);
  bad.writeUInt32BE(100, 0);
  c.sendOption(NBD_OPT_GO, bad);
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_INVALID);
  // Request count that does not match the data length.
  const extra = Buffer.concat([infoRequest('disk', [NBD_INFO_NAME]), Buffer.from([0])]);
  c.sendOption(NBD_OPT_INFO, extra);
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_INVALID);
  await c.go('disk');
});

t.test('INFO and GO on an unknown export are ERR_UNKNOWN, negotiation continues', async (t) => {
  const c = await RawNbdClient.open(tcp);
  t.teardown(() => c.destroy());
  c.sendOption(NBD_OPT_INFO, infoRequest('nope', []));
  const r = await c.readOptionReply();
  t.equal(r.type, NBD_REP_ERR_UNKNOWN);
  t.match(r.data.toString(), /nope/);
  c.sendOption(NBD_OPT_GO, infoRequest('nope', []));
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_UNKNOWN);
  await c.go('disk');
});

t.test('INFO answers the requested items and always INFO_EXPORT and BLOCK_SIZE', async (t) => {
  const c = await RawNbdClient.open(tcp);
  t.teardown(() => c.destroy());
  c.sendOption(NBD_OPT_INFO, infoRequest('', [NBD_INFO_NAME, NBD_INFO_DESCRIPTION, 999]));
  const replies = await c.readOptionReplies(NBD_REP_INFO);
  t.equal(replies[replies.length - 1]!.type, NBD_REP_ACK);
  const byType = new Map(replies.filter((r) => r.type === NBD_REP_INFO).map((r) => [r.data.readUInt16BE(0), r.data]));
  const exp = byType.get(NBD_INFO_EXPORT)!;
  t.equal(exp.length, 12);
  t.equal(exp.readBigUInt64BE(2), BigInt(8 << 20));
  t.ok(exp.readUInt16BE(10) & NBD_FLAG_HAS_FLAGS);
  t.equal(byType.get(NBD_INFO_NAME)?.toString('utf8', 2), 'disk', 'empty name is the default (first) export');
  t.equal(byType.get(NBD_INFO_DESCRIPTION)?.toString('utf8', 2), 'the disk');
  const bs = byType.get(NBD_INFO_BLOCK_SIZE)!;
  t.equal(bs.length, 14);
  t.same([bs.readUInt32BE(2), bs.readUInt32BE(6), bs.readUInt32BE(10)], [1, 4096, 32 << 20]);
  t.notOk(byType.has(999), 'unknown info requests are ignored');
  // INFO does not end negotiation.
  const go = await c.go('ro');
  t.ok(go.flags & NBD_FLAG_READ_ONLY);
});

t.test('EXPORT_NAME: 124 zero bytes unless NO_ZEROES', async (t) => {
  const withZeroes = await RawNbdClient.open(tcp, NBD_FLAG_C_FIXED_NEWSTYLE);
  t.teardown(() => withZeroes.destroy());
  withZeroes.sendOption(NBD_OPT_EXPORT_NAME, Buffer.from('disk'));
  const a = await withZeroes.read(134);
  t.equal(a.readBigUInt64BE(0), BigInt(8 << 20));
  t.ok(a.subarray(10).every((b) => b === 0));
  const noZeroes = await RawNbdClient.open(tcp, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  t.teardown(() => noZeroes.destroy());
  noZeroes.sendOption(NBD_OPT_EXPORT_NAME, Buffer.from('disk'));
  await noZeroes.read(10);
  // Transmission works right away: a 512-byte read.
  noZeroes.request(0, { cookie: 5n, length: 512 });
  const r = await noZeroes.readSimple(512);
  t.equal(r.cookie, 5n);
  t.equal(r.error, 0);
});

t.test('EXPORT_NAME of an unknown export ends the session', async (t) => {
  const c = await RawNbdClient.open(tcp);
  c.sendOption(NBD_OPT_EXPORT_NAME, Buffer.from('missing'));
  await c.closed;
  t.equal(c.pending, 0);
  t.ok(await stillServes(tcp));
});

t.test('a client without fixed newstyle may only send EXPORT_NAME', async (t) => {
  const c = await RawNbdClient.open(tcp, 0);
  c.sendOption(NBD_OPT_LIST);
  await c.closed;
  t.equal(c.pending, 0);
  const d = await RawNbdClient.open(tcp, 0);
  t.teardown(() => d.destroy());
  d.sendOption(NBD_OPT_EXPORT_NAME, Buffer.from(''));
  const reply = await d.read(134);
  t.equal(reply.readBigUInt64BE(0), BigInt(8 << 20));
});

t.test('the Unix socket speaks the same protocol', async (t) => {
  t.ok(await stillServes({ socketPath: nbd.socketPath }, 'disk'));
});

t.test('defaultExport chooses what the empty name means', async (t) => {
  const server = new NbdServer({ ...nbdServerDefaults, fabric: nbd.fabric, listen: [{ host: '127.0.0.1', port: 0 }], id: 'nbd-default', defaultExport: 'ro' });
  await server.start();
  t.teardown(() => server.stop());
  const [address] = server.addresses();
  const c = await RawNbdClient.open(address as { port: number });
  t.teardown(() => c.destroy());
  c.sendOption(NBD_OPT_INFO, infoRequest('', [NBD_INFO_NAME]));
  const replies = await c.readOptionReplies(NBD_REP_INFO);
  const name = replies.find((r) => r.type === NBD_REP_INFO && r.data.readUInt16BE(0) === NBD_INFO_NAME);
  t.equal(name?.data.toString('utf8', 2), 'ro');
  const { flags } = await c.go('');
  t.ok(flags & NBD_FLAG_READ_ONLY);
  c.request(0, { cookie: 1n, length: 512 });
  t.equal((await c.readSimple(512)).error, 0);
  t.equal(nbd.fabric.portStats.get('nbd-default')?.byOp.get('read')?.ops, 1, 'I/O counted under the port id');
});
