/**
 * A TCP relay in its own process, to stand for a path that hangs rather than dies: SIGSTOP it
 * and what a client sends through it waits in its socket; SIGCONT it and the relay delivers
 * it late, as a congested link or a paused host would. It prints `listening PORT` once up and
 * `closed N` when the Nth connection (from 1) has closed on both sides.
 */
import { startBackground, waitFor, type Background } from './clients.js';

const SCRIPT = `
const net = require('node:net');
const [target] = process.argv.slice(1);
let n = 0;
const server = net.createServer({ allowHalfOpen: true }, (down) => {
  const id = ++n;
  const up = net.connect({ host: '127.0.0.1', port: Number(target), allowHalfOpen: true });
  let open = 2;
  const done = () => { if (--open === 0) console.log('closed ' + id); };
  down.on('error', () => undefined);
  up.on('error', () => undefined);
  down.pipe(up);
  up.pipe(down);
  down.on('close', done);
  up.on('close', done);
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
}

export async function startRelay(t: { teardown(fn: () => unknown): void }, targetPort: number): Promise<Relay> {
  const relay = startBackground(process.execPath, ['-e', SCRIPT, String(targetPort)]);
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
  };
}
