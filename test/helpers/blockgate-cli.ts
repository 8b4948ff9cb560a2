/**
 * Drive the real `blockgate` CLI (dist/gateway/cli.js) from tests: build it when the
 * sources are newer, run one-shot commands, and start members whose JSON log lines can be
 * awaited. Every member started here is killed in teardown.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'gateway', 'cli.js');
const SOURCE_DIRS = ['fabric', 'failover', 'member', 'gateway'];
const run = promisify(execFile);

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** test/run.sh builds first; a test file run alone builds here if dist/ is older than the sources. */
export function ensureBuilt(): void {
  const built = existsSync(CLI) ? statSync(CLI).mtimeMs : 0;
  const sources = Math.max(...SOURCE_DIRS.map((d) => newestSource(join(ROOT, d))));
  if (built >= sources) return;
  try {
    execFileSync('npx', ['tsc', '-p', '.'], { cwd: ROOT, stdio: 'pipe' });
  } catch {
    // Type errors still emit JavaScript; test/run.sh is where they fail the build.
  }
  if (!existsSync(CLI)) throw new Error(`build produced no ${CLI}`);
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runCli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, env: { ...cliEnv(), ...options.env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A CLI command that runs on while the test watches its output (runCli gives it only at the end). */
export interface RunningCli {
  stdout(): string;
  stderr(): string;
  readonly result: Promise<CliResult>;
}

export function startCli(t: { teardown(fn: () => unknown): void }, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, env: { ...cliEnv(), ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const result = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { stdout: () => stdout, stderr: () => stderr, result };
}

function cliEnv(): NodeJS.ProcessEnv {
  return { ...process.env, BLOCKGATE_LOG_FORMAT: 'json', BLOCKGATE_LOG_LEVEL: 'info' };
}

export type LogLine = Record<string, unknown> & { msg?: string };

/** A `blockgate serve` process: its log lines, its exit, and a way to stop it. */
export class MemberProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  private readonly listeners = new Set<(l: LogLine) => void>();

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text };
      }
      this.lines.push(line);
      for (const l of this.listeners) l(line);
      for (const w of [...this.waiters]) {
        if (w.match(line)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** The first log line (past or future) that matches, or a rejection if the process exits first. */
  waitFor(match: (l: LogLine) => boolean): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.waiters.push({ match, resolve });
      void this.exited.then(({ code, signal }) =>
        reject(new Error(`blockgate exited (code ${code}, signal ${signal}) before the awaited log line; stderr: ${this.stderr}`)),
      );
    });
  }

  /** Call `fn` with every log line from now on, until the returned function is called. */
  onLine(fn: (l: LogLine) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Resolves with the listen addresses once the member logs `ready`. */
  async ready(): Promise<Record<string, string[]>> {
    const line = await this.waitFor((l) => l.msg === 'ready');
    return line.listen as Record<string, string[]>;
  }

  async terminate(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Start `blockgate serve ARGS`; the test's teardown kills it if it is still running. */
export function startMember(t: { teardown(fn: () => unknown): void }, args: string[], options: { cwd?: string } = {}): MemberProcess {
  // Never the well-known iSCSI port: tests run side by side (and beside tgtd).
  if (!args.includes('--iscsi')) args = [...args, '--iscsi', '127.0.0.1:0'];
  // Nor the demo's management API port.
  if (!args.includes('--api')) args = [...args, '--api', '127.0.0.1:0'];
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { cwd: options.cwd ?? ROOT, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const member = new MemberProcess(child);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await member.exited;
    }
  });
  return member;
}

/** NBD URI for an address as the member logs it: `127.0.0.1:PORT` or `unix:/path`. */
export function nbdUri(address: string, exportName = ''): string {
  if (address.startsWith('unix:')) return `nbd+unix:///${exportName}?socket=${address.slice('unix:'.length)}`;
  return `nbd://${address}/${exportName}`;
}

export interface NbdExportInfo {
  readonly 'export-name': string;
  readonly 'export-size': number;
  readonly is_read_only: boolean;
  readonly description?: string;
}

/** `nbdinfo --list --json`: every export the server offers. */
export async function listExports(address: string): Promise<NbdExportInfo[]> {
  const { stdout } = await run('nbdinfo', ['--list', '--json', nbdUri(address)]);
  return (JSON.parse(stdout) as { exports: NbdExportInfo[] }).exports;
}
