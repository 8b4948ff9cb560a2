import { performance } from 'node:perf_hooks';
import type { BlockDevice } from '../../fabric/device.js';

/**
 * The self-test a member runs when a peer asks (over another network, when one went silent)
 * or when it doubts itself: its devices answer a read, its store takes a write, its event
 * loop is responsive. Only a failed self-test, or silence on every network, makes a member
 * failure; a network that is silent while the self-test passes is a link failure.
 */

export interface SelfTestCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly detail?: string;
}

export interface SelfTestReport {
  readonly member: string;
  readonly ok: boolean;
  readonly checks: readonly SelfTestCheck[];
}

export interface SelfTestSubject {
  readonly member: string;
  /** The devices this member exports (each read once, 4 KiB at offset 0). */
  devices(): readonly BlockDevice[];
  /** Write and read back a record in the member store. */
  touchStore(): Promise<void>;
  /** Worst recent event-loop delay (ms). */
  eventLoopMs(): number;
}

const PROBE_BYTES = 4096;

export async function runSelfTest(subject: SelfTestSubject, options: { timeoutMs: number; eventLoopLimitMs: number }): Promise<SelfTestReport> {
  const checks = await Promise.all([
    ...subject.devices().map((d) => timed(`device ${d.name}`, options.timeoutMs, () => d.read(0, Buffer.alloc(Math.min(PROBE_BYTES, d.size))))),
    timed('store', options.timeoutMs, () => subject.touchStore()),
  ]);
  const loop = subject.eventLoopMs();
  checks.push({
    name: 'event loop',
    ok: loop <= options.eventLoopLimitMs,
    ms: Math.round(loop),
    ...(loop > options.eventLoopLimitMs && { detail: `blocked ${Math.round(loop)} ms (limit ${options.eventLoopLimitMs} ms)` }),
  });
  return { member: subject.member, ok: checks.every((c) => c.ok), checks };
}

async function timed(name: string, timeoutMs: number, work: () => Promise<unknown>): Promise<SelfTestCheck> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      work(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { name, ok: true, ms: Math.round(performance.now() - start) };
  } catch (err) {
    return { name, ok: false, ms: Math.round(performance.now() - start), detail: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}
