import type { Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listExports, startMember } from './blockgate-cli.js';

/**
 * A scratch directory for tests of the member's stored configuration: memory-backed
 * configs written there, and members started on its data directory whose served exports
 * are read back with nbdinfo.
 */
export interface StoredConfigScratch {
  readonly dir: string;
  readonly dataDir: string;
  /** A config with one memory backend and export per [name, size], NBD on the scratch socket. */
  writeConfig(name: string, exports: Array<[string, string]>): string;
  /** Start a member (`--data-dir dataDir` unless args name another), list its exports, stop it. */
  servedExports(t: Test, args: string[]): Promise<Array<[string, number]>>;
}

export function storedConfigScratch(t: Test, prefix: string): StoredConfigScratch {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const socket = join(dir, 'nbd.sock');
  return {
    dir,
    dataDir,
    writeConfig(name, exports) {
      const path = join(dir, name);
      const backends = exports.map(([e, size]) => `  - {name: ${e}, type: memory, size: ${size}}`).join('\n');
      const exported = exports.map(([e]) => `  - {name: ${e}, device: ${e}}`).join('\n');
      writeFileSync(path, `member: persist-test\nbackends:\n${backends}\nexports:\n${exported}\nnbd:\n  listen:\n    - socket: ${socket}\n`);
      return path;
    },
    async servedExports(t, args) {
      const member = startMember(t, ['--data-dir', dataDir, ...args]);
      const listen = await member.ready();
      const exports = await listExports(listen.nbd![0]!);
      t.equal((await member.terminate()).code, 0, member.stderr);
      return exports.map((e) => [e['export-name'], e['export-size']]);
    },
  };
}
