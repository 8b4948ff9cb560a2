/**
 * Running real client tools (nbdinfo, nbdsh, qemu-img, fio, nbdfuse…) from tests.
 *
 * Always asynchronous: the server under test runs in the test's own process, so a
 * synchronous child would deadlock it. Every child has a timeout and is killed at teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunOptions {
  /** Kill the tool (SIGKILL) after this long; default 60 s. */
  readonly timeoutMs?: number;
  /** Resolve with a non-zero exit instead of rejecting. */
  readonly allowFailure?: boolean;
  readonly input?: string | Buffer;
  readonly cwd?: string;
  readonly env?: Record<string, string>;
}

/**
 * The system's tools first in PATH: a developer's pyenv/venv python3 lacks the libnbd
 * bindings that nbdsh (`python3 -m nbd`) needs.
 */
export function toolEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}`,
    LIBNBD_DEBUG: '0',
    ...extra,
  };
}

export class ToolError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    super(
      `${command} exited with ${result.code ?? result.signal}\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`,
    );
  }
}

/** Run a tool to completion, capturing its output; rejects on a non-zero exit unless told. */
export function runTool(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: toolEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined); // the tool may exit before reading its input
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code, signal };
      const line = [command, ...args].join(' ');
      if (timedOut) reject(new ToolError(`${line} (timed out after ${timeoutMs} ms)`, result));
      else if (code !== 0 && !options.allowFailure) reject(new ToolError(line, result));
      else resolve(result);
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface Background {
  readonly child: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr interleaved). */
  output(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

/** Start a long-running tool (nbdfuse, a server) in the background. */
export function startBackground(command: string, args: readonly string[], options: { env?: Record<string, string> } = {}): Background {
  const child = spawn(command, args, { env: toolEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (e) => {
      output += `\nspawn error: ${e.message}`;
      resolve({ code: null, signal: null });
    });
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  let gone = false;
  void exited.then(() => (gone = true));
  return {
    child,
    output: () => output,
    exited,
    async stop(graceMs = 5000) {
      if (gone) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Poll until `check` returns true (or a truthy value); rejects after `timeoutMs`. */
/** Polls `check` until it returns something truthy, and returns that. */
export async function waitFor<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fresh temporary directory (under `base`, e.g. /dev/shm), removed at teardown. */
export async function tempDir(t: { teardown(fn: () => unknown): void }, prefix = 'blockgate-', base = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(base, prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Run a Python script in nbdsh against `uri` (connected as `h`, with base:allocation
 * negotiated, before the script starts).
 * The script reports by printing; a Python exception fails the run with its traceback.
 */
export function nbdsh(uri: string, script: string, options: RunOptions = {}): Promise<RunResult> {
  return runTool('nbdsh', ['--base-allocation', '-u', uri, '-c', script], options);
}

/** Deterministic pseudo-random bytes (xorshift32), so failures are reproducible. */
export function randomBytes(length: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
