import t from 'tap';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { FileBackend } from '../../fabric/backends/file.js';
import { nbdsh, runTool, tempDir } from '../helpers/clients.js';
import { startNbdServer } from '../helpers/nbd.js';

const MiB = 1024 * 1024;

interface InfoExport {
  'export-name': string;
  description?: string;
  'export-size': number;
  is_read_only: boolean;
  is_rotational: boolean;
  can_multi_conn: boolean;
  can_flush: boolean;
  can_fua: boolean;
  can_trim: boolean;
  can_zero: boolean;
  can_fast_zero: boolean;
  can_cache: boolean;
  can_df: boolean;
  block_size_minimum: number;
  block_size_preferred: number;
  block_size_maximum: number;
  contexts?: string[];
}

interface MapEntry {
  offset: number;
  length: number;
  type: number;
  description: string;
}

const fileDir = await tempDir(t, 'blockgate-nbdinfo-', '/dev/shm');

const file = await FileBackend.open({ name: 'file', path: join(fileDir, 'disk.img'), size: 16 * MiB, create: true });
const server = await startNbdServer([
  { name: 'disk', device: new MemoryBackend({ name: 'disk', size: 64 * MiB, chunkSize: 64 * 1024 }), description: 'scratch disk in RAM' },
  { name: 'ro', device: new MemoryBackend({ name: 'ro-mem', size: 8 * MiB }), readOnly: true },
  { name: 'file', device: file },
]);
t.teardown(async () => {
  await server.stop();
  await file.close();
});

async function info(uri: string): Promise<InfoExport> {
  const { stdout } = await runTool('nbdinfo', ['--json', uri]);
  const parsed = JSON.parse(stdout) as { protocol: string; structured: boolean; exports: InfoExport[] };
  t.equal(parsed.protocol, 'newstyle-fixed', 'fixed newstyle handshake');
  t.equal(parsed.structured, true, 'structured replies negotiated');
  t.equal(parsed.exports.length, 1);
  return parsed.exports[0]!;
}

async function map(uri: string): Promise<MapEntry[]> {
  const { stdout } = await runTool('nbdinfo', ['--map', '--json', uri]);
  return JSON.parse(stdout) as MapEntry[];
}

t.test('nbdinfo --list shows every export with its description', async (t) => {
  const { stdout } = await runTool('nbdinfo', ['--list', '--json', server.uri()]);
  const parsed = JSON.parse(stdout) as { exports: InfoExport[] };
  const byName = new Map(parsed.exports.map((e) => [e['export-name'], e]));
  t.same([...byName.keys()].sort(), ['disk', 'file', 'ro']);
  t.equal(byName.get('disk')!.description, 'scratch disk in RAM');
  t.equal(byName.get('disk')!['export-size'], 64 * MiB);
  t.equal(byName.get('ro')!.is_read_only, true);
  t.equal(byName.get('file')!['export-size'], 16 * MiB);

  const text = await runTool('nbdinfo', ['--list', server.uri()]);
  t.match(text.stdout, /export="disk":/);
  t.match(text.stdout, /description: scratch disk in RAM/);
  t.match(text.stdout, /export="ro":/);
});

t.test('nbdinfo --json: size, flags, block sizes of a memory export (TCP and Unix socket)', async (t) => {
  for (const uri of [server.uri('disk'), server.unixUri('disk')]) {
    const e = await info(uri);
    t.match(e, {
      'export-name': 'disk',
      description: 'scratch disk in RAM',
      'export-size': 64 * MiB,
      is_read_only: false,
      is_rotational: false,
      can_multi_conn: true,
      can_flush: true,
      can_fua: true,
      can_trim: true,
      can_zero: true,
      can_fast_zero: true,
      can_cache: true,
      can_df: true,
      block_size_minimum: 1,
      block_size_preferred: 4096,
      block_size_maximum: 32 * MiB,
    }, uri);
    t.ok(e.contexts?.includes('base:allocation'), 'base:allocation offered');
  }
});

t.test('nbdinfo --json: a read-only export says so and offers no writes', async (t) => {
  const e = await info(server.uri('ro'));
  t.match(e, { 'export-size': 8 * MiB, is_read_only: true, can_trim: false, can_zero: false, can_fast_zero: false, can_flush: true });
});

t.test('nbdinfo --json: the file backend in /dev/shm punches and reports holes', async (t) => {
  const e = await info(server.uri('file'));
  t.match(e, { 'export-size': 16 * MiB, is_read_only: false, can_trim: true, can_zero: true, can_fast_zero: true, can_fua: true, can_flush: true, can_multi_conn: true });
  const m = await map(server.uri('file'));
  t.same(m.map((x) => [x.offset, x.length, x.type]), [[0, 16 * MiB, 3]], 'a fresh sparse file is one hole');
});

t.test('nbdinfo --map follows writes, trims and zeroes on a sparse device', async (t) => {
  const uri = server.uri('disk');
  t.same((await map(uri)).map((x) => [x.offset, x.length, x.type, x.description]), [[0, 64 * MiB, 3, 'hole,zero']], 'fresh device: one hole');

  await nbdsh(uri, [
    'h.pwrite(b"\\x01" * 65536, 1 * 2**20)',
    'h.pwrite(b"\\x02" * 4096, 4 * 2**20)',
    'h.pwrite(b"\\x03" * (2 * 2**20), 10 * 2**20)',
    'h.zero(65536, 20 * 2**20, nbd.CMD_FLAG_NO_HOLE)',
  ].join('\n'));
  const after = (await map(uri)).map((x) => [x.offset, x.length, x.type]);
  t.same(after, [
    [0, 1 * MiB, 3],
    [1 * MiB, 65536, 0],
    [1 * MiB + 65536, 3 * MiB - 65536, 3],
    [4 * MiB, 65536, 0],
    [4 * MiB + 65536, 6 * MiB - 65536, 3],
    [10 * MiB, 2 * MiB, 0],
    [12 * MiB, 8 * MiB, 3],
    [20 * MiB, 65536, 0],
    [20 * MiB + 65536, 44 * MiB - 65536, 3],
  ], 'data where written (64 KiB chunks), NO_HOLE zeroes stay allocated');

  await nbdsh(uri, ['h.trim(65536, 1 * 2**20)', 'h.zero(2 * 2**20, 10 * 2**20)', 'h.trim(65536, 20 * 2**20)'].join('\n'));
  t.same((await map(uri)).map((x) => [x.offset, x.length, x.type]), [
    [0, 4 * MiB, 3],
    [4 * MiB, 65536, 0],
    [4 * MiB + 65536, 60 * MiB - 65536, 3],
  ], 'trimmed and zeroed ranges are holes again');

  const totals = JSON.parse((await runTool('nbdinfo', ['--map', '--totals', '--json', uri])).stdout) as { size: number; type: number }[];
  t.same(totals.map((x) => [x.size, x.type]), [[65536, 0], [64 * MiB - 65536, 3]], 'totals: 64 KiB of data, the rest hole');
});
