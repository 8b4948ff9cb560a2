// Start and stop the servers a benchmark measures; every process started here is killed on exit.
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { createInterface } from 'node:readline';

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(130));
}

/** Spawn a long-running server; `stop(signal)` sends SIGTERM (or `signal`) and waits (SIGKILL after 10 s). */
export function startProcess(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  running.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => (running.delete(child), resolve({ code, signal }))));
  return {
    child,
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
