import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { runTool } from '../helpers/clients.js';
import { startNbdServer } from '../helpers/nbd.js';

/**
 * fio's nbd engine (libnbd): one connection per job, each job writing random blocks with
 * crc32c checksums into its own region, then reading every block back and verifying it.
 */

const MiB = 1024 * 1024;
const JOBS = 4;
const REGION = 8 * MiB;

interface FioJob {
  jobname: string;
  error: number;
  write: { io_bytes: number; total_ios: number };
  read: { io_bytes: number; total_ios: number };
}

const device = new MemoryBackend({ name: 'disk', size: JOBS * REGION });
const server = await startNbdServer([{ name: 'disk', device }]);
t.teardown(async () => {
  await server.stop();
  await device.close();
});

function fioArgs(uri: string, seed: number, extra: string[] = []): string[] {
  return [
    '--name=verify',
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--rw=randwrite',
    '--bsrange=4k-64k',
    '--iodepth=16',
    `--numjobs=${JOBS}`,
    `--size=${REGION}`,
    `--offset_increment=${REGION}`,
    '--verify=crc32c',
    '--verify_state_save=0',
    '--do_verify=1',
    '--verify_fatal=1',
    '--verify_dump=0',
    `--randseed=${seed}`,
    '--group_reporting=0',
    '--output-format=json',
    ...extra,
  ];
}

function parse(stdout: string): { jobs: FioJob[] } {
  return JSON.parse(stdout.slice(stdout.indexOf('{'))) as { jobs: FioJob[] };
}

for (const transport of ['tcp', 'unix'] as const) {
  t.test(`fio randwrite + verify=crc32c, ${JOBS} jobs over ${transport}`, async (t) => {
    const uri = transport === 'tcp' ? server.uri('disk') : server.unixUri('disk');
    const seed = transport === 'tcp' ? 1 : 2;
    const { stdout, stderr } = await runTool('fio', fioArgs(uri, seed), { timeoutMs: 120_000 });
    const report = parse(stdout);
    t.equal(report.jobs.length, JOBS, 'one report per job');
    for (const job of report.jobs) {
      t.equal(job.error, 0, `${job.jobname}: no error`);
      t.equal(job.write.io_bytes, REGION, 'wrote its whole region');
      t.equal(job.read.io_bytes, REGION, 'read it all back to verify');
    }
    t.notMatch(stderr, /verify: bad|crc32c: verify failed|bad magic/i, 'no verify errors');
    t.equal(device.allocatedBytes, JOBS * REGION, 'the whole device was written');
  });
}

t.test('control: the same verification catches a corrupted block', async (t) => {
  const uri = server.uri('disk');
  const again = await runTool('fio', fioArgs(uri, 2, ['--verify_only=1']), { timeoutMs: 120_000 });
  t.ok(parse(again.stdout).jobs.every((j) => j.error === 0), 'verify_only passes on intact data');

  await device.write(REGION + 4096, [Buffer.alloc(4096, 0x5a)]);
  const bad = await runTool('fio', fioArgs(uri, 2, ['--verify_only=1']), { timeoutMs: 120_000, allowFailure: true });
  t.not(bad.code, 0, 'fio fails');
  t.match(bad.stderr, /verify|crc32c/i, 'and says why');
});
