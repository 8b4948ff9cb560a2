/**
 * Cluster members for tests: `blockgate serve --member ID` processes (optionally inside a
 * network namespace), and the checks every failover test makes on their logs — the
 * fencing token only grows, and no two members ever served a set at the same time (their
 * `serving` / `stopped serving` lines carry CLOCK_MONOTONIC, one clock for the machine).
 */
import { spawn } from 'node:child_process';
import { CLI, MemberProcess, ROOT, type LogLine } from './blockgate-cli.js';

export interface ClusterMember {
  readonly id: string;
  process: MemberProcess;
  /** CLOCK_MONOTONIC (ns) at which the test killed it, if it did: the end of a serving interval no log can show. */
  killedAtNs?: bigint;
  /** Every process this member id ran (restarts included), for the interval check. */
  readonly history: MemberProcess[];
  readonly killedAt: Map<MemberProcess, bigint>;
}

export interface StartOptions {
  readonly netns?: string;
  readonly extraArgs?: readonly string[];
  /** More environment for the member process. */
  readonly env?: Readonly<Record<string, string>>;
}

export function spawnMember(config: string, id: string, dataDir: string, options: StartOptions = {}): MemberProcess {
  const args = [CLI, 'serve', '--config', config, '--member', id, '--data-dir', dataDir, ...(options.extraArgs ?? [])];
  const env = { ...process.env, BLOCKGATE_LOG_FORMAT: 'json', BLOCKGATE_LOG_LEVEL: 'info', ...options.env };
  const child = options.netns
    ? spawn('ip', ['netns', 'exec', options.netns, process.execPath, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new MemberProcess(child);
}

export class TestCluster {
  readonly members = new Map<string, ClusterMember>();

  constructor(
    t: { teardown(fn: () => unknown): void },
    private readonly config: string,
    private readonly dataDirOf: (id: string) => string,
    private readonly optionsOf: (id: string) => StartOptions = () => ({}),
  ) {
    t.teardown(() => this.killAll());
  }

  /** Warnings, errors and role changes of every member, for a failing test's diagnostics. */
  story(): string {
    const out: string[] = [];
    for (const m of this.members.values()) {
      for (const p of m.history) {
        for (const l of p.lines) {
          if ((l.level as number) >= 40 || /serving|elected|campaign|set ports|service address/.test(String(l.msg))) {
            out.push(`${String(l.time)} ${m.id} ${String(l.msg)} ${JSON.stringify({ ...l, msg: undefined, time: undefined, pid: undefined, hostname: undefined, level: undefined })}`);
          }
        }
        if (p.stderr) out.push(`${m.id} stderr: ${p.stderr.slice(-2000)}`);
      }
    }
    return out.sort().join('\n');
  }

  /** Start `id`; `config`: another configuration file than the cluster's (a member added by a change). */
  start(id: string, env?: Readonly<Record<string, string>>, config = this.config): ClusterMember {
    const proc = spawnMember(config, id, this.dataDirOf(id), { ...this.optionsOf(id), ...(env && { env }) });
    let m = this.members.get(id);
    if (!m) {
      m = { id, process: proc, history: [], killedAt: new Map() };
      this.members.set(id, m);
    }
    m.process = proc;
    m.history.push(proc);
    return m;
  }

  /** kill -9, noting the monotonic time first (the victim can log nothing after it). */
  async kill(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const m = this.members.get(id)!;
    m.killedAt.set(m.process, process.hrtime.bigint());
    await m.process.terminate(signal);
  }

  /** The member currently serving `set`, waiting for one (the last `serving` without a later end). */
  async primary(set: string, timeoutMs = 20_000): Promise<{ id: string; token: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const m of this.members.values()) {
        if (m.process.child.exitCode !== null || m.process.child.signalCode !== null) continue;
        const lines = m.process.lines;
        let at = -1;
        lines.forEach((l, i) => {
          if (l.set === set && (l.msg === 'serving' || l.msg === 'stopped serving')) at = i;
        });
        const last = lines[at];
        if (last?.msg === 'serving' && lines.slice(at).some((l) => l.msg === 'set ports open' && l.set === set)) {
          return { id: m.id, token: last.token as number };
        }
      }
      if (Date.now() > deadline) throw new Error(`no Primary of ${set} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Every serving interval of `set` by any process, from the logs (open ends closed by kill times). */
  intervals(set: string): Array<{ id: string; token: number; from: bigint; to: bigint | undefined }> {
    const out: Array<{ id: string; token: number; from: bigint; to: bigint | undefined }> = [];
    for (const m of this.members.values()) {
      for (const p of m.history) {
        let open: { id: string; token: number; from: bigint; to: bigint | undefined } | undefined;
        for (const l of p.lines as LogLine[]) {
          if (l.set !== set) continue;
          if (l.msg === 'serving') {
            open = { id: m.id, token: l.token as number, from: BigInt(l.monoNs as string), to: undefined };
            out.push(open);
          } else if (l.msg === 'stopped serving' && open) {
            open.to = BigInt(l.monoNs as string);
            open = undefined;
          }
        }
        if (open) open.to = m.killedAt.get(p);
      }
    }
    return out.sort((a, b) => (a.from < b.from ? -1 : 1));
  }

  /** Fails with a description when two intervals overlap or tokens do not grow with time. */
  checkIntervals(set: string): string | undefined {
    const iv = this.intervals(set);
    for (let i = 1; i < iv.length; i++) {
      const a = iv[i - 1]!;
      const b = iv[i]!;
      if (a.to === undefined || a.to > b.from) return `${a.id} (token ${a.token}) still served when ${b.id} (token ${b.token}) started`;
      if (b.token <= a.token) return `token did not grow: ${a.id} ${a.token} then ${b.id} ${b.token}`;
    }
    return undefined;
  }

  async killAll(): Promise<void> {
    await Promise.all(
      [...this.members.values()].flatMap((m) =>
        m.history.map(async (p) => {
          p.child.kill('SIGCONT');
          await p.terminate('SIGKILL');
        }),
      ),
    );
  }
}
