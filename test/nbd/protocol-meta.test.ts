import t, { type Test } from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_WRITE,
  NBD_EINVAL,
  NBD_FLAG_SEND_DF,
  NBD_OPT_GO,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
} from '../helpers/nbd-spec.js';
import { RawNbdClient, infoRequest, metaRequest, startNbdServer } from '../helpers/nbd.js';

const nbd = await startNbdServer([
  { name: 'a', device: new MemoryBackend({ name: 'meta-a', size: 4 << 20 }) },
  { name: 'b', device: new MemoryBackend({ name: 'meta-b', size: 4 << 20 }) },
]);
t.teardown(() => nbd.stop());
const tcp = { port: nbd.port };

async function client(t: Test): Promise<RawNbdClient> {
  const c = await RawNbdClient.open(tcp);
  t.teardown(() => c.destroy());
  return c;
}

t.test('meta context options need structured replies first', async (t) => {
  const c = await client(t);
  c.sendOption(NBD_OPT_SET_META_CONTEXT, metaRequest('a', ['base:allocation']));
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_INVALID);
  c.sendOption(NBD_OPT_LIST_META_CONTEXT, metaRequest('a', []));
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_INVALID);
  // Negotiation continues, and without a context BLOCK_STATUS is refused.
  await c.go('a', { structured: true });
  c.request(NBD_CMD_BLOCK_STATUS, { cookie: 9n, length: 4096 });
  const [chunk] = await c.readStructured();
  t.equal(chunk!.type, NBD_REPLY_TYPE_ERROR);
  t.equal(chunk!.payload.readUInt32BE(0), NBD_EINVAL);
});

t.test('STRUCTURED_REPLY twice: the repeat is refused, structured replies stay on', async (t) => {
  const c = await client(t);
  c.sendOption(NBD_OPT_STRUCTURED_REPLY);
  t.equal((await c.readOptionReply()).type, NBD_REP_ACK);
  c.sendOption(NBD_OPT_STRUCTURED_REPLY);
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_INVALID);
  c.sendOption(NBD_OPT_STRUCTURED_REPLY, Buffer.from('x'));
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_INVALID);
  // Options that depend on it still work.
  c.sendOption(NBD_OPT_SET_META_CONTEXT, metaRequest('a', ['base:allocation']));
  const replies = await c.readOptionReplies(NBD_REP_META_CONTEXT);
  t.same(
    replies.map((r) => r.type),
    [NBD_REP_META_CONTEXT, NBD_REP_ACK],
  );
  const { flags } = await c.go('a');
  t.ok(flags & NBD_FLAG_SEND_DF, 'DF is advertised once structured replies are on');
});

t.test('LIST_META_CONTEXT: all, base: wildcard, unknown namespaces ignored', async (t) => {
  const c = await client(t);
  await negotiateStructured(c);
  for (const queries of [[], ['base:'], ['base:allocation', 'x-foo:bar']]) {
    c.sendOption(NBD_OPT_LIST_META_CONTEXT, metaRequest('a', queries));
    const replies = await c.readOptionReplies(NBD_REP_META_CONTEXT);
    t.same(
      replies.map((r) => r.type),
      [NBD_REP_META_CONTEXT, NBD_REP_ACK],
      `queries ${JSON.stringify(queries)}`,
    );
    t.equal(replies[0]!.data.readUInt32BE(0), 0, 'list ids are zero');
    t.equal(replies[0]!.data.toString('utf8', 4), 'base:allocation');
  }
  c.sendOption(NBD_OPT_LIST_META_CONTEXT, metaRequest('a', ['qemu:dirty-bitmap:x', 'base:nothing']));
  t.same(
    (await c.readOptionReplies(NBD_REP_META_CONTEXT)).map((r) => r.type),
    [NBD_REP_ACK],
    'no match is just an ACK',
  );
  c.sendOption(NBD_OPT_LIST_META_CONTEXT, metaRequest('zzz', []));
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_UNKNOWN);
  const truncated = metaRequest('a', ['base:allocation']).subarray(0, 12);
  c.sendOption(NBD_OPT_LIST_META_CONTEXT, truncated);
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_INVALID);
});

t.test('SET_META_CONTEXT: unknown contexts ignored, "base:" selects nothing', async (t) => {
  const c = await client(t);
  await negotiateStructured(c);
  c.sendOption(NBD_OPT_SET_META_CONTEXT, metaRequest('a', ['base:', 'x-other:thing']));
  t.same(
    (await c.readOptionReplies(NBD_REP_META_CONTEXT)).map((r) => r.type),
    [NBD_REP_ACK],
  );
  c.sendOption(NBD_OPT_SET_META_CONTEXT, metaRequest('a', ['x-other:thing', 'base:allocation']));
  const replies = await c.readOptionReplies(NBD_REP_META_CONTEXT);
  t.equal(replies.length, 2);
  t.not(replies[0]!.data.readUInt32BE(0), 0, 'selected contexts get a nonzero id');
});

t.test('contexts set for another export do not carry over to GO', async (t) => {
  const c = await client(t);
  await negotiateStructured(c);
  c.sendOption(NBD_OPT_SET_META_CONTEXT, metaRequest('a', ['base:allocation']));
  await c.readOptionReplies(NBD_REP_META_CONTEXT);
  await c.go('b');
  c.request(NBD_CMD_BLOCK_STATUS, { cookie: 3n, length: 4096 });
  const [chunk] = await c.readStructured();
  t.equal(chunk!.type, NBD_REPLY_TYPE_ERROR);
  t.equal(chunk!.payload.readUInt32BE(0), NBD_EINVAL);
});

t.test('a failed SET_META_CONTEXT clears the earlier selection', async (t) => {
  const c = await client(t);
  await negotiateStructured(c);
  c.sendOption(NBD_OPT_SET_META_CONTEXT, metaRequest('a', ['base:allocation']));
  await c.readOptionReplies(NBD_REP_META_CONTEXT);
  c.sendOption(NBD_OPT_SET_META_CONTEXT, metaRequest('nope', ['base:allocation']));
  t.equal((await c.readOptionReply()).type, NBD_REP_ERR_UNKNOWN);
  await c.go('a');
  c.request(NBD_CMD_BLOCK_STATUS, { cookie: 3n, length: 4096 });
  const [chunk] = await c.readStructured();
  t.equal(chunk!.type, NBD_REPLY_TYPE_ERROR);
});

t.test('BLOCK_STATUS chunk layout, REQ_ONE and range checks', async (t) => {
  const c = await client(t);
  await negotiateStructured(c);
  c.sendOption(NBD_OPT_SET_META_CONTEXT, metaRequest('a', ['base:allocation']));
  const [ctx] = await c.readOptionReplies(NBD_REP_META_CONTEXT);
  const id = ctx!.data.readUInt32BE(0);
  c.sendOption(NBD_OPT_GO, infoRequest('a', []));
  await c.readOptionReplies(NBD_REP_INFO);
  // Allocate [64 KiB, 128 KiB) so the map reads hole / data / hole.
  c.request(NBD_CMD_WRITE, { cookie: 1n, offset: 65536, payload: Buffer.alloc(65536, 7) });
  t.equal((await c.readReply()).error, 0);

  c.request(NBD_CMD_BLOCK_STATUS, { cookie: 0xfeedn, offset: 0, length: 4 << 20 });
  const chunks = await c.readStructured();
  t.equal(chunks.length, 1);
  const bs = chunks[0]!;
  t.equal(bs.type, NBD_REPLY_TYPE_BLOCK_STATUS);
  t.equal(bs.flags, NBD_REPLY_FLAG_DONE);
  t.equal(bs.cookie, 0xfeedn);
  t.equal(bs.payload.length, 4 + 3 * 8);
  t.equal(bs.payload.readUInt32BE(0), id);
  const descriptors = [0, 1, 2].map((i) => [bs.payload.readUInt32BE(4 + 8 * i), bs.payload.readUInt32BE(8 + 8 * i)]);
  t.same(descriptors, [
    [65536, NBD_STATE_HOLE | NBD_STATE_ZERO],
    [65536, 0],
    [(4 << 20) - 131072, NBD_STATE_HOLE | NBD_STATE_ZERO],
  ]);

  c.request(NBD_CMD_BLOCK_STATUS, { cookie: 2n, flags: NBD_CMD_FLAG_REQ_ONE, offset: 0, length: 1 << 20 });
  const [one] = await c.readStructured();
  t.equal(one!.payload.length, 12, 'REQ_ONE: exactly one descriptor');
  t.equal(one!.payload.readUInt32BE(4), 65536);

  c.request(NBD_CMD_BLOCK_STATUS, { cookie: 3n, offset: 4 << 20, length: 512 });
  const [err] = await c.readStructured();
  t.equal(err!.type, NBD_REPLY_TYPE_ERROR);
  t.equal(err!.payload.readUInt32BE(0), NBD_EINVAL, 'beyond the end is EINVAL');
});

async function negotiateStructured(c: RawNbdClient): Promise<void> {
  c.sendOption(NBD_OPT_STRUCTURED_REPLY);
  const r = await c.readOptionReply();
  if (r.type !== NBD_REP_ACK) throw new Error('no structured replies');
}
