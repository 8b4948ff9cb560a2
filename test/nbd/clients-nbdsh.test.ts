import t from 'tap';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { FileBackend } from '../../fabric/backends/file.js';
import { nbdsh, tempDir } from '../helpers/clients.js';
import { startNbdServer } from '../helpers/nbd.js';

/**
 * libnbd's Python shell drives every command and flag. Scripts print one JSON object on
 * their last line; libnbd's own checks are relaxed (set_strict_mode(0)) wherever the point
 * is to see what the server answers.
 */

const MiB = 1024 * 1024;
const fileDir = await tempDir(t, 'blockgate-nbdsh-', '/dev/shm');
const memory = new MemoryBackend({ name: 'disk', size: 32 * MiB, chunkSize: 64 * 1024 }); // extents below are in 64 KiB chunks
const file = await FileBackend.open({ name: 'file', path: join(fileDir, 'disk.img'), size: 8 * MiB, create: true });
const server = await startNbdServer([
  { name: 'disk', device: memory },
  { name: 'ro', device: new MemoryBackend({ name: 'ro-mem', size: 4 * MiB }), readOnly: true },
  { name: 'file', device: file },
]);
t.teardown(async () => {
  await server.stop();
  await Promise.all([memory.close(), file.close()]);
});

async function py(uri: string, script: string): Promise<Record<string, unknown>> {
  const { stdout } = await nbdsh(uri, `import json, errno\n${script}`);
  const last = stdout.trim().split('\n').pop()!;
  return JSON.parse(last) as Record<string, unknown>;
}

/** Python helper, prepended to scripts: the errno name an NBD command failed with. */
const FAILS = `
def fails(f, *args):
    try:
        f(*args)
    except nbd.Error as e:
        return e.errno
    return None
`;

const EVERY_COMMAND = `${FAILS}
r = {}
size = h.get_size()
r["size"] = size
r["can"] = {k: getattr(h, "can_" + k)() for k in ["flush", "fua", "trim", "zero", "fast_zero", "cache", "df", "multi_conn"]}
r["read_only"] = h.is_read_only()
r["structured"] = h.get_structured_replies_negotiated()
r["base_allocation"] = h.can_meta_context("base:allocation")
r["block_size"] = [h.get_block_size(nbd.SIZE_MINIMUM), h.get_block_size(nbd.SIZE_PREFERRED), h.get_block_size(nbd.SIZE_MAXIMUM)]

data = bytes((i * 7 + 3) & 0xff for i in range(3 * 65536 + 100))
h.pwrite(data, 1000)
h.pwrite(data[:4096], 2**20, nbd.CMD_FLAG_FUA)
r["read_back"] = h.pread(len(data), 1000) == data
r["read_fua_write"] = h.pread(4096, 2**20) == data[:4096]
h.flush()

# pread_structured with DF: the reply arrives as one chunk covering the whole request
chunks = []
def chunk(sub, off, status, err):
    chunks.append([off, len(sub), status])
    return 0
buf = h.pread_structured(65536, 0, chunk, nbd.CMD_FLAG_DF)
r["df_chunks"] = chunks
r["df_data"] = bytes(buf[1000:2000]) == data[:1000] and bytes(buf[:1000]) == bytes(1000)

# structured read over a hole, no DF: whatever the chunking, it must reassemble to zeroes
chunks = []
buf = h.pread_structured(3 * 65536, 8 * 2**20, chunk)
r["hole_read_zero"] = bytes(buf) == bytes(3 * 65536)
r["hole_read_chunks_cover"] = sum(c[1] for c in chunks)

# write zeroes: punching (default), NO_HOLE, FAST_ZERO, with FUA
h.pwrite(b"\\xff" * 65536 * 4, 4 * 2**20)
h.zero(65536, 4 * 2**20)
h.zero(65536, 4 * 2**20 + 65536, nbd.CMD_FLAG_NO_HOLE)
h.zero(65536, 4 * 2**20 + 2 * 65536, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_FUA)
h.zero(100, 4 * 2**20 + 3 * 65536 + 10)
z = h.pread(4 * 65536, 4 * 2**20)
r["zeroed"] = z[:3 * 65536] == bytes(3 * 65536) and z[3 * 65536:3 * 65536 + 10] == b"\\xff" * 10 and z[3 * 65536 + 10:3 * 65536 + 110] == bytes(100) and z[3 * 65536 + 110:] == b"\\xff" * (65536 - 110)

# trim, then the range reads back as zeroes on this sparse device (not promised by NBD, true here)
h.pwrite(b"\\x55" * 2 * 65536, 6 * 2**20)
h.trim(65536, 6 * 2**20)
h.trim(65536, 6 * 2**20 + 65536, nbd.CMD_FLAG_FUA)
r["trimmed_zero"] = h.pread(2 * 65536, 6 * 2**20) == bytes(2 * 65536)

h.cache(2**20, 0)
h.cache(65536, 0)

# block status: full answer, then REQ_ONE
def collect(into):
    def cb(ctx, off, entries, err):
        if ctx == "base:allocation":
            into.append([off, list(entries)])
        return 0
    return cb
full = []
h.block_status(8 * 2**20, 0, collect(full))
r["bs_full"] = full
one = []
h.block_status(8 * 2**20, 0, collect(one), nbd.CMD_FLAG_REQ_ONE)
r["bs_one"] = one
zeroes = []
h.block_status(4 * 65536, 4 * 2**20, collect(zeroes))
r["bs_zeroes"] = zeroes
tail = []
h.block_status(2 * 65536, 8 * 2**20, collect(tail), nbd.CMD_FLAG_REQ_ONE)
r["bs_tail"] = tail

# many commands in flight at once, completing in any order
bufs = [nbd.Buffer.from_bytearray(bytearray([i]) * 65536) for i in range(32)]
for i, b in enumerate(bufs):
    h.aio_pwrite(b, 12 * 2**20 + i * 65536, flags=nbd.CMD_FLAG_FUA if i % 4 == 0 else 0)
r["max_in_flight"] = h.aio_in_flight()
while h.aio_in_flight() > 0:
    h.poll(-1)
rb = [nbd.Buffer(65536) for i in range(32)]
cookies = [h.aio_pread(b, 12 * 2**20 + i * 65536) for i, b in enumerate(rb)]
while h.aio_in_flight() > 0:
    h.poll(-1)
r["aio_ok"] = all(h.aio_command_completed(c) for c in cookies) and all(rb[i].to_bytearray() == bytearray([i]) * 65536 for i in range(32))

# errors the server itself returns (libnbd's own checks off)
h.set_strict_mode(0)
r["err_read_past_end"] = fails(h.pread, 512, size)
r["err_read_straddling_end"] = fails(h.pread, 1024, size - 512)
r["err_write_past_end"] = fails(h.pwrite, b"x" * 512, size)
r["err_trim_past_end"] = fails(h.trim, 512, size)
r["err_zero_past_end"] = fails(h.zero, 4096, size - 512)
r["err_cache_past_end"] = fails(h.cache, 512, size)
r["err_bs_past_end"] = fails(h.block_status, 512, size, collect([]))
r["err_too_big_read"] = fails(h.pread, 33 * 2**20, 0)
r["still_works"] = h.pread(10, 1000) == data[:10]
print(json.dumps(r))
`;

for (const transport of ['tcp', 'unix'] as const) {
  t.test(`every command and flag over ${transport}`, async (t) => {
    const uri = transport === 'tcp' ? server.uri('disk') : server.unixUri('disk');
    const r = await py(uri, EVERY_COMMAND);
    t.equal(r.size, 32 * MiB);
    t.same(r.can, { flush: true, fua: true, trim: true, zero: true, fast_zero: true, cache: true, df: true, multi_conn: true });
    t.equal(r.read_only, false);
    t.equal(r.structured, true);
    t.equal(r.base_allocation, true);
    t.same(r.block_size, [1, 4096, 32 * MiB]);
    t.ok(r.read_back, 'pwrite/pread round trip across chunks');
    t.ok(r.read_fua_write, 'FUA write');
    t.same(r.df_chunks, [[0, 65536, 1]], 'DF: one data chunk for the whole read');
    t.ok(r.df_data, 'DF data correct');
    t.ok(r.hole_read_zero, 'hole reads as zeroes');
    t.equal(r.hole_read_chunks_cover, 3 * 65536, 'chunks cover the read exactly');
    t.ok(r.zeroed, 'write zeroes with NO_HOLE, FAST_ZERO, FUA and unaligned');
    t.ok(r.trimmed_zero, 'trim (with and without FUA)');
    const full = r.bs_full as [number, number[]][];
    t.equal(full.length, 1, 'one base:allocation callback');
    t.equal(full[0]![0], 0);
    const entries = full[0]![1];
    let covered = 0;
    for (let i = 0; i < entries.length; i += 2) covered += entries[i]!;
    t.ok(covered > 0 && covered <= 8 * MiB, 'extents stay within the request');
    t.same(entries.slice(0, 2), [4 * 65536, 0], 'first 256 KiB written: data');
    const one = r.bs_one as [number, number[]][];
    t.equal(one[0]![1].length, 2, 'REQ_ONE: a single extent');
    t.same(one[0]![1], [4 * 65536, 0], 'REQ_ONE: the same first extent');
    const tail = r.bs_tail as [number, number[]][];
    t.same(tail[0]![1], [2 * 65536, 3], 'REQ_ONE inside a large hole: one extent, no longer than asked');
    const zeroes = r.bs_zeroes as [number, number[]][];
    t.same(zeroes[0]![1], [65536, 3, 65536, 0, 65536, 3, 65536, 0], 'punched zeroes are holes, NO_HOLE and partial zeroes stay data');
    t.equal(r.max_in_flight, 32, '32 writes queued at once');
    t.ok(r.aio_ok, 'concurrent writes and reads all correct');
    t.equal(r.err_read_past_end, 'EINVAL');
    t.equal(r.err_read_straddling_end, 'EINVAL');
    t.equal(r.err_write_past_end, 'ENOSPC');
    t.ok(['EINVAL', 'ENOSPC'].includes(r.err_trim_past_end as string), `trim past the end refused (${r.err_trim_past_end}; the spec names no code)`);
    t.equal(r.err_zero_past_end, 'ENOSPC');
    t.equal(r.err_cache_past_end, 'EINVAL');
    t.equal(r.err_bs_past_end, 'EINVAL');
    t.ok(['EOVERFLOW', 'EINVAL'].includes(r.err_too_big_read as string), `oversized read refused (${r.err_too_big_read})`);
    t.ok(r.still_works, 'the connection survives its errors');
  });
}

t.test('read-only export: EPERM for every write command', async (t) => {
  const r = await py(server.uri('ro'), `${FAILS}
h.set_strict_mode(0)
r = {"read_only": h.is_read_only(), "can_trim": h.can_trim(), "can_zero": h.can_zero(), "can_flush": h.can_flush()}
r["write"] = fails(h.pwrite, b"x" * 512, 0)
r["write_fua"] = fails(h.pwrite, b"x" * 512, 0, nbd.CMD_FLAG_FUA)
r["trim"] = fails(h.trim, 512, 0)
r["zero"] = fails(h.zero, 512, 0)
r["read"] = h.pread(512, 0) == bytes(512)
h.flush()
print(json.dumps(r))
`);
  t.same(r, { read_only: true, can_trim: false, can_zero: false, can_flush: true, write: 'EPERM', write_fua: 'EPERM', trim: 'EPERM', zero: 'EPERM', read: true });
});

t.test('file export in /dev/shm: FUA and flush reach fdatasync; trim and fast zero punch holes', async (t) => {
  const syncs = () => (file.status().detail as { datasyncs: number }).datasyncs;
  const before = syncs();
  const r = await py(server.uri('file'), `${FAILS}
r = {"can_trim": h.can_trim(), "can_fast_zero": h.can_fast_zero(), "can_zero": h.can_zero()}
h.pwrite(b"abc" * 1000, 16384, nbd.CMD_FLAG_FUA)
h.flush()
h.pwrite(b"\\xff" * 8192, 0)
h.zero(8192, 0, nbd.CMD_FLAG_NO_HOLE)
h.set_strict_mode(0)
r["zeroed"] = h.pread(8192, 0) == bytes(8192)
h.pwrite(b"\\xee" * 8192, 65536)
r["fast_zero"] = fails(h.zero, 8192, 65536, nbd.CMD_FLAG_FAST_ZERO)
r["fast_zeroed"] = h.pread(8192, 65536) == bytes(8192)
h.pwrite(b"\\xdd" * 65536, 131072)
r["trim"] = fails(h.trim, 65536, 131072)
r["trimmed_hole"] = []
h.block_status(65536, 131072, lambda meta, off, ents, err: r["trimmed_hole"].extend(ents))
r["data"] = h.pread(3000, 16384) == b"abc" * 1000
print(json.dumps(r))
`);
  t.match(r, { can_trim: true, can_fast_zero: true, can_zero: true, zeroed: true, fast_zero: null, fast_zeroed: true, trim: null, data: true });
  t.equal((r.trimmed_hole as number[])[1]! & 1, 1, `the trimmed range is reported as a hole (${JSON.stringify(r.trimmed_hole)})`);
  t.equal(syncs() - before, 2, 'one fdatasync for the FUA write, one for the flush');
});

t.test('multi-conn: a write on one connection is visible on another after flush', async (t) => {
  const r = await py(server.uri('disk'), `
h2 = nbd.NBD()
h2.connect_uri(${JSON.stringify(server.unixUri('disk'))})
h.pwrite(b"multi" * 100, 30 * 2**20)
h.flush()
ok = h2.pread(500, 30 * 2**20) == b"multi" * 100
h2.shutdown()
print(json.dumps({"ok": ok, "multi_conn": h.can_multi_conn()}))
`);
  t.same(r, { ok: true, multi_conn: true });
});
