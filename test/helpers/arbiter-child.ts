/**
 * A campaigner in its own process, for arbitration tests: the child runs the built arbiter
 * from dist/, campaigns for one set, prints `{"event":"elected","token":N}` when it wins
 * and `{"event":"ended","why":…}` when it loses the role, and answers `valid` on stdin with
 * `{"event":"valid","valid":bool}` — a stdin callback is I/O, which a process waking from
 * SIGSTOP may run before any timer, so it is the honest probe of self-fencing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './blockgate-cli.js';

export type ArbiterSpec = { kind: 'file'; dir: string } | { kind: 'etcd'; endpoints: string[]; cluster: string; ttlSeconds: number; fenceMarginMs: number };

const CHILD_SOURCE = `
const [spec, set, member] = JSON.parse(process.argv[1]);
const dist = ${JSON.stringify(join(ROOT, 'dist', 'failover', 'arbitration'))};
const arbiter = spec.kind === 'file'
  ? new (await import(dist + '/file-arbiter.js')).FileArbiter({ dir: spec.dir })
  : new (await import(dist + '/etcd-arbiter.js')).EtcdArbiter(spec);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
let leadership;
process.stdin.setEncoding('utf8').on('data', async (d) => {
  for (const cmd of d.split('\\n').filter(Boolean)) {
    if (cmd === 'valid') say({ event: 'valid', valid: leadership ? leadership.isValid() : false });
    if (cmd === 'resign') await leadership?.resign();
  }
});
say({ event: 'campaigning' });
leadership = await arbiter.campaign(set, member);
say({ event: 'elected', token: leadership.token });
leadership.ended.then((why) => say({ event: 'ended', why }));
`;

export interface Campaigner {
  readonly child: ChildProcess;
  readonly events: Array<Record<string, unknown>>;
  next(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  send(cmd: string): void;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function startCampaigner(t: { teardown(fn: () => unknown): void }, spec: ArbiterSpec, set: string, member: string): Campaigner {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_SOURCE, JSON.stringify([spec, set, member])], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, BLOCKGATE_LOG_LEVEL: 'warn', BLOCKGATE_LOG_FORMAT: 'json' },
  });
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<{ event: string; resolve: (e: Record<string, unknown>) => void }> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof e.event !== 'string') return; // a log line
    events.push(e);
    const w = waiters.findIndex((x) => x.event === e.event);
    if (w >= 0) waiters.splice(w, 1)[0]!.resolve(e);
  });
  // Each event is handed out once, in order: `next('valid')` twice gets two answers.
  const taken = new Set<Record<string, unknown>>();
  const c: Campaigner = {
    child,
    events,
    next: (event, timeoutMs = 20_000) => {
      const seen = events.find((e) => e.event === event && !taken.has(e));
      if (seen) {
        taken.add(seen);
        return Promise.resolve(seen);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${member}: no '${event}' within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        waiters.push({
          event,
          resolve: (e) => {
            clearTimeout(timer);
            taken.add(e);
            resolve(e);
          },
        });
      });
    },
    send: (cmd) => child.stdin!.write(cmd + '\n'),
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      if (signal === 'SIGKILL') await exited;
    },
  };
  t.teardown(async () => {
    child.kill('SIGCONT');
    await c.kill();
  });
  return c;
}
