/**
 * Runs real nbdkit servers for tests: on a Unix socket (default) or a 127.0.0.1 TCP port
 * picked by the kernel, ready once nbdkit has written its pid file. `kill()` is kill -9 by
 * default (a crashed server); `start()` again brings it back on the same address.
 *
 *   const s = await startNbdkit(t, { plugin: ['file', `file=${path}`], filters: ['error'], args: ['error-rate=1'] });
 *   s.address  // "unix:/tmp/…/nbdkit-1.sock" or "127.0.0.1:PORT", as the nbd kind takes it
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

interface Tap {
  teardown(fn: () => unknown): void;
}

export interface NbdkitOptions {
  /** Plugin name then its parameters, e.g. ['memory', 'size=64M']. */
  readonly plugin: readonly string[];
  readonly filters?: readonly string[];
  /** Filter parameters and other key=value arguments. */
  readonly args?: readonly string[];
  readonly tcp?: boolean;
  /** Extra nbdkit flags before the plugin (e.g. ['-r']). */
  readonly flags?: readonly string[];
}

export interface NbdkitServer {
  readonly address: string;
  readonly uri: string;
  readonly running: boolean;
  /** The tail of nbdkit's stderr, for failure messages. */
  readonly stderr: string;
  start(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP / SIGCONT: a hung server that keeps its connections open. */
  pause(): void;
  resume(): void;
}

let counter = 0;

export { freePort };

export async function startNbdkit(t: Tap, options: NbdkitOptions): Promise<NbdkitServer> {
  const dir = await mkdtemp(join(tmpdir(), 'nbdkit-'));
  const id = ++counter;
  const socket = join(dir, `nbdkit-${id}.sock`);
  const pidFile = join(dir, `nbdkit-${id}.pid`);
  const port = options.tcp ? await freePort() : 0;
  const listen = options.tcp ? ['-i', '127.0.0.1', '-p', String(port)] : ['-U', socket];
  const argv = [
    '-f',
    '--exit-with-parent',
    ...listen,
    '-P',
    pidFile,
    ...(options.flags ?? []),
    ...(options.filters ?? []).map((f) => `--filter=${f}`),
    ...options.plugin,
    ...(options.args ?? []),
  ];
  let child: ChildProcess | undefined;
  let stderr = '';

  const server: NbdkitServer = {
    address: options.tcp ? `127.0.0.1:${port}` : `unix:${socket}`,
    uri: options.tcp ? `nbd://127.0.0.1:${port}` : `nbd+unix:///?socket=${socket}`,
    get stderr() {
      return stderr;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      await rm(pidFile, { force: true });
      await rm(socket, { force: true });
      const proc = spawn('nbdkit', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
      child = proc;
      proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      proc.on('exit', (code, signal) => (stderr += `\n[nbdkit exited: ${code ?? signal}]`));
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      for (let i = 0; i < 500 && !existsSync(pidFile); i++) {
        if (proc.exitCode !== null) break;
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10))]);
      }
      if (!existsSync(pidFile)) throw new Error(`nbdkit ${argv.join(' ')} did not start: ${stderr}`);
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill(signal);
      if (signal !== 'SIGKILL') proc.kill('SIGCONT'); // a paused server must wake to die
      await exited;
    },
  };
  t.teardown(async () => {
    await server.kill();
    await rm(dir, { recursive: true, force: true });
  });
  await server.start();
  return server;
}
