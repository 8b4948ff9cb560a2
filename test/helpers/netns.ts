/**
 * Network namespaces for cluster tests: run a command inside one, list and kill what runs
 * there, and sweep namespaces a crashed earlier run left behind. Every namespace a test makes
 * is named `bgc<PID>-…` after the test process, so a sweep can tell a live owner from a dead one.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NS_PREFIX = 'bgc';

/** Run `ip ARGS` and return stdout; a failure names the command. */
export async function ip(...args: string[]): Promise<string> {
  try {
    return (await run('ip', args)).stdout;
  } catch (err) {
    const e = err as { stderr?: string };
    throw new Error(`ip ${args.join(' ')}: ${e.stderr?.trim() ?? String(err)}`);
  }
}

/** Run a command inside namespace `ns` to completion. */
export async function nsExec(ns: string, cmd: string, args: string[], options: { timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; code?: unknown };
    throw Object.assign(new Error(`[${ns}] ${cmd} ${args.join(' ')} failed (${String(e.code)}): ${e.stderr?.trim() ?? ''}`), { stdout: e.stdout, stderr: e.stderr });
  }
}

/** Start a long-running command inside `ns` (`ip netns exec` execs it, so the pid is the command's). */
export function nsSpawn(ns: string, cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

export async function listNamespaces(): Promise<string[]> {
  const out = await ip('netns', 'list');
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** Kill every process inside `ns`, then delete it. Never throws: cleanup must go on. */
export async function destroyNamespace(ns: string): Promise<void> {
  try {
    const pids = (await ip('netns', 'pids', ns)).split(/\s+/).filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Give the kernel a moment to reap them before deleting the namespace.
    for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 20));
  } catch {
    // namespace already gone
  }
  await ip('netns', 'del', ns).catch(() => {});
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Remove namespaces named for a test process that no longer exists (a run killed mid-test). */
export async function sweepStaleNamespaces(): Promise<void> {
  for (const ns of await listNamespaces()) {
    const m = new RegExp(`^${NS_PREFIX}(\\d+)-`).exec(ns);
    if (m && !alive(Number(m[1]))) await destroyNamespace(ns);
  }
}
