/**
 * A TCP relay in its own process, to stand for a path that hangs rather than dies: SIGSTOP it
 * and what a client sends through it waits in its socket; SIGCONT it and the relay delivers
 * it late, as a congested link or a paused host would. It prints `listening PORT` once up and
 * `closed N` when the Nth connection (from 1) has closed on both sides. With `maxConnections`,
 * later connections are dropped as they arrive (a path only the first client can use).
 */
import { runTool, startBackground, waitFor, type Background } from './clients.js';

const SCRIPT = `
const net = require('node:net');
const [target, max] = process.argv.slice(1).map(Number);
let n = 0;
const server = net.createServer({ allowHalfOpen: true }, (down) => {
  if (max > 0 && n >= max) return down.destroy();
  const id = ++n;
  const up = net.connect({ host: '127.0.0.1', port: Number(target), allowHalfOpen: true });
  let open = 2;
  const done = () => { if (--open === 0) console.log('closed ' + id); };
  down.on('error', () => undefined);
  up.on('error', () => undefined);
  down.pipe(up);
  up.pipe(down);
  // pipe() ends the other side only on a clean end. A side that dies instead (writing to a
  // client that has gone resets the connection: EPIPE) must still end the other one, as a real
  // relay would, or that side stays open for ever and the connection never counts as closed.
  down.on('close', () => { done(); if (!up.destroyed) up.end(); });
  up.on('close', () => { done(); if (!down.destroyed) down.end(); });
});
server.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
`;

export interface Relay {
  readonly port: number;
  readonly process: Background;
  pause(): void;
  resume(): void;
  /** Resolves once the Nth connection through the relay has closed on both sides. */
  closed(n: number): Promise<unknown>;
  /** Resolves once at least `bytes` wait unread in the relay's accepted sockets (it is paused). */
  holding(bytes: number): Promise<unknown>;
}

export async function startRelay(t: { teardown(fn: () => unknown): void }, targetPort: number, maxConnections = 0): Promise<Relay> {
  const relay = startBackground(process.execPath, ['-e', SCRIPT, String(targetPort), String(maxConnections)]);
  t.teardown(async () => {
    relay.child.kill('SIGCONT');
    await relay.stop(1000);
  });
  const port = Number(await waitFor(() => /listening (\d+)/.exec(relay.output())?.[1], 'the relay to listen'));
  return {
    port,
    process: relay,
    pause: () => relay.child.kill('SIGSTOP'),
    resume: () => relay.child.kill('SIGCONT'),
    closed: (n) => waitFor(() => relay.output().includes(`closed ${n}\n`), `relay connection ${n} to close`),
    holding: (bytes) =>
      waitFor(async () => {
        // Recv-Q of the relay's accepted sockets: what the client sent and the relay has not read.
        const { stdout } = await runTool('ss', ['-tnH', 'state', 'established', `( sport = :${port} )`]);
        return stdout.split('\n').some((line) => Number(line.trim().split(/\s+/)[0]) >= bytes);
      }, `${bytes} bytes to wait in the relay`),
  };
}
