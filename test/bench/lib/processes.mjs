// Start and stop the servers a benchmark measures; every process started here is killed on exit.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { createInterface } from 'node:readline';

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(130));
}

/**
 * Where servers and clients run. On a machine with at least two CPUs every server of a
 * comparison is pinned to one CPU and every client to another, the same way for both
 * sides, so neither side gets more of the machine than the other.
 */
export const placement = { server: undefined, client: undefined };

/** Pin servers to `server` and clients to `client` (CPU numbers; undefined: no pinning). */
export function setPlacement(server, client) {
  placement.server = server;
  placement.client = client;
}

/** [command, args] run through taskset on `cpu` when one is given (taskset execs, so the pid stays). */
export function pinned(cpu, command, args) {
  return cpu === undefined ? [command, args] : ['taskset', ['-c', String(cpu), command, ...args]];
}

/**
 * glibc's malloc for every server: blocks up to 64 MiB come from the heap and the heap is not
 * trimmed below 256 MiB. By default a 1 MiB request buffer is mmapped and unmapped each time:
 * qemu-nbd 7.2 allocates one per request and then spends most of its time in page faults and
 * TLB flushes (perf: _copy_to_iter faulting, unmap_page_range, flush_tlb_mm_range), writing
 * 1 MiB blocks at ~30 MiB/s instead of ~600 on the same loaded machine.
 */
export const SERVER_MALLOC = 'glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456';

/** Spawn a long-running server, pinned to the server CPU; `stop(signal)` sends SIGTERM (or `signal`) and waits (SIGKILL after 10 s). */
export function startProcess(command, args, options = {}) {
  const [cmd, argv] = pinned(placement.server, command, args);
  const env = { ...(options.env ?? process.env), GLIBC_TUNABLES: SERVER_MALLOC };
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options, env });
  running.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => (running.delete(child), resolve({ code, signal }))));
  return {
    child,
    pid: child.pid,
    exited,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system, all threads, exited ones included) a process has used so far. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  if (!Number.isFinite(kib)) throw new Error(`no VmRSS for pid ${pid}`);
  return kib * 1024;
}

/** The first stdout line (parsed as JSON where possible) that `match` accepts. */
export function waitForLine(proc, match, what) {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.child.stdout });
    lines.on('line', (text) => {
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        line = text;
      }
      if (match(line)) resolve(line);
    });
    proc.exited.then(({ code, signal }) => reject(new Error(`${what} exited (${code ?? signal}) before it was ready: ${proc.stderr()}`)));
  });
}

/** A TCP port nothing listens on right now (for servers that cannot take port 0). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolve once something accepts connections on host:port. */
export async function waitForPort(port, proc, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${what} exited: ${proc.stderr()}`);
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
