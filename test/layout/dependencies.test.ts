/**
 * DESIGN.md's layering, checked with dependency-cruiser (.dependency-cruiser.cjs):
 * gateway → member → failover → fabric, and no import cycles, type-only imports included.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/blockgate-cli.js';

const run = promisify(execFile);
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');

async function cruise(cwd: string, dirs: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(DEPCRUISE, [...dirs, '--config', CONFIG, '--output-type', 'err'], { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

t.test('the source tree follows the layering and has no import cycles', async (t) => {
  const { code, output } = await cruise(ROOT, ['fabric', 'failover', 'member', 'gateway']);
  t.equal(code, 0, output);
  t.match(output, /no dependency violations found/);
});

t.test('the rules catch what they forbid (a tree that breaks each of them)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'blockgate-layout-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['fabric', 'failover', 'member', 'gateway']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
  // fabric → failover (value), failover → member (type only), member → gateway, and a
  // type-only cycle inside gateway.
  writeFileSync(join(dir, 'fabric', 'device.ts'), "import { policy } from '../failover/policy.js';\nexport const device = policy;\n");
  writeFileSync(join(dir, 'failover', 'policy.ts'), "import type { Root } from '../member/root.js';\nexport const policy = 1;\nexport type P = Root;\n");
  writeFileSync(join(dir, 'member', 'root.ts'), "import { port } from '../gateway/port.js';\nexport interface Root { p: typeof port }\n");
  writeFileSync(join(dir, 'gateway', 'port.ts'), "import type { Peer } from './peer.js';\nexport const port = 1;\nexport type X = Peer;\n");
  writeFileSync(join(dir, 'gateway', 'peer.ts'), "import type { X } from './port.js';\nexport type Peer = X | number;\n");
  const { code, output } = await cruise(dir, ['fabric', 'failover', 'member', 'gateway']);
  t.not(code, 0, 'violations fail the check');
  for (const rule of ['fabric-imports-nothing-above-it', 'failover-imports-only-fabric', 'member-does-not-import-ports', 'no-cycles']) {
    t.match(output, new RegExp(`error ${rule}:`), rule);
  }
});
