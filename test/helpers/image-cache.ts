/**
 * Heavy test artifacts (Debian root file systems, disk images, the .deb) are built by the
 * scripts under packaging/ and test/helpers/images/ into a cache shared by every run on this
 * machine, each named by a hash of its inputs: a second `npm test` reuses them.
 */
import { join } from 'node:path';
import { ROOT } from './blockgate-cli.js';
import { runTool } from './clients.js';

/** $BLOCKGATE_TEST_CACHE, else /var/cache/blockgate-test. */
export const CACHE_DIR = process.env.BLOCKGATE_TEST_CACHE ?? '/var/cache/blockgate-test';

/** Run a build script that prints the artifact's path as its last line. */
export async function cachedArtifact(script: string, args: readonly string[] = [], timeoutMs = 25 * 60_000): Promise<string> {
  const { stdout } = await runTool('bash', [join(ROOT, script), CACHE_DIR, ...args], { timeoutMs });
  return stdout.trim().split('\n').pop()!;
}
