/**
 * A cluster with management networks in the namespace topology: network A carries UDP
 * heartbeats over IPv4 and discovery by mDNS, network B TCP heartbeats over IPv6 and a seed
 * list (no multicast). Each member's management API listens on its host's loopback and is
 * reached through `ip netns exec … curl`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec } from './netns.js';
import type { Topology } from './topology.js';

export const API_PORT = 7480;

export interface NetClusterOptions {
  readonly name: string;
  readonly dir: string;
  readonly topology: Topology;
  readonly disk: string;
  /** The arbitration section (default: a file lock in DIR/arbiter, one machine's file system). */
  readonly arbitration?: Record<string, unknown>;
  readonly failureLimit?: { failures: number; windowMs: number };
}

/** Write the shared key and the configuration every member starts with; returns the config path. */
export function writeNetClusterConfig(o: NetClusterOptions, extra: Record<string, unknown> = {}): string {
  const keyFile = join(o.dir, 'cluster.key');
  writeFileSync(keyFile, 'k'.repeat(20) + Math.random().toString(36).slice(2).padEnd(20, 'x'), { mode: 0o600 });
  const ids = o.topology.members.map((m) => m.name);
  const path = join(o.dir, 'cluster.json');
  writeFileSync(
    path,
    JSON.stringify({
      backends: [{ name: 'disk', type: 'file', path: o.disk }],
      exports: [{ name: 'disk', device: 'disk', description: 'generation one' }],
      cluster: {
        name: o.name,
        keyFile,
        members: ids.map((id) => ({ id })),
        networks: [
          { name: 'a', subnet: '10.201.1.0/24', heartbeat: { protocol: 'udp' }, discovery: 'mdns' },
          { name: 'b', subnet: 'fd20:2::/64', heartbeat: { protocol: 'tcp' }, discovery: { seeds: o.topology.members.map((m) => m.v6b) } },
        ],
        health: { failureLimit: o.failureLimit ?? { failures: 3, windowMs: 600_000 } },
        arbitration: o.arbitration ?? { type: 'file', dir: join(o.dir, 'arbiter') },
        sets: [{ name: 'disks', members: ids, exports: ['disk'], nbd: { listen: ['0.0.0.0:10809'] } }],
        ...extra,
      },
    }),
  );
  return path;
}

/** A request to a member's management API from inside its namespace. */
export async function nsApi(ns: string, dataDir: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = readFileSync(join(dataDir, 'api', 'admin.token'), 'utf8').trim();
  const args = ['-s', '--max-time', '20', '-o', '-', '-w', '\n%{http_code}', '-X', method, '-H', `Authorization: Bearer ${token}`];
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body));
  args.push(`http://127.0.0.1:${API_PORT}${path}`);
  const { stdout } = await nsExec(ns, 'curl', args);
  const i = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(i + 1)), body: JSON.parse(stdout.slice(0, i) || '{}') as Record<string, unknown> };
}

/** Poll `probe` until it returns a value (not undefined), or fail after `timeoutMs` with the last reason. */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
