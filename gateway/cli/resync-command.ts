import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { MirrorSetState } from '../../failover/set.js';
import { formatBytes } from '../api/present/format.js';
import type { MemberStatus } from '../api/status.js';
import { MemberUnreachableError } from './api-client.js';
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, UsageError } from './exit.js';
import { MEMBER_PARSE_OPTIONS, memberPoolFrom } from './member-options.js';
import type { MemberPool } from './member-pool.js';
import { progressDisplay, type Progress } from './progress-display.js';
import { HELP } from './usage.js';

/**
 * `blockgate resync watch DEVICE`: follow a mirror's resync until it ends — a progress bar
 * with bytes, rate and ETA on a terminal, plain lines otherwise — then say how the mirror
 * came out. Several replicas resyncing at once show as one bar (their sum; the longest
 * ETA). Ctrl-C stops watching; the resync goes on.
 */
const MiB = 1024 * 1024;
/** Consecutive polls that reach no member before the watch gives up (the resync goes on). */
const MAX_POLL_FAILURES = 5;

export async function resyncCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    process.stdout.write(HELP.get('resync')!);
    return sub === undefined ? 2 : EXIT_OK;
  }
  if (sub !== 'watch') throw new UsageError(`unknown resync command ${JSON.stringify(sub)} (resync watch DEVICE)`);
  const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: { ...MEMBER_PARSE_OPTIONS, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP.get('resync watch')!);
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new UsageError('expected: resync watch DEVICE');
  return watch(memberPoolFrom(values), positionals[0]!);
}

async function mirrorOf(pool: MemberPool, device: string): Promise<MirrorSetState> {
  const { body } = await pool.get<MemberStatus>('/api/v1/status');
  const set = body.failoverSets.find((s) => s.device === device);
  if (!set) throw new UsageError(`device ${JSON.stringify(device)} is not a failover set (mirrors: ${body.failoverSets.filter((s) => s.kind === 'mirror').map((s) => s.device).join(', ') || 'none'})`);
  if (set.kind !== 'mirror') throw new UsageError(`device ${JSON.stringify(device)} is a ${set.kind} set: only mirrors resync`);
  return set;
}

/** The running resyncs of a mirror as one progress. */
function progressOf(set: MirrorSetState): Progress {
  const r = set.resync;
  return {
    bytesDone: r.reduce((n, x) => n + x.bytesCopied, 0),
    bytesTotal: r.reduce((n, x) => n + x.bytesTotal, 0),
    bytesPerSecond: r.reduce((n, x) => n + x.rateMiBps, 0) * MiB,
    etaSeconds: r.some((x) => x.etaSeconds === null) ? null : Math.max(0, ...r.map((x) => x.etaSeconds ?? 0)),
  };
}

async function watch(pool: MemberPool, device: string): Promise<number> {
  let set = await mirrorOf(pool, device);
  if (set.resync.length === 0) return outcome(set, 'no resync running');
  const targets = (s: MirrorSetState): string => s.resync.map((r) => r.target).join(', ');
  const display = progressDisplay(`resync ${device} -> ${targets(set)}`);
  let interrupted = false;
  const onInterrupt = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onInterrupt);
  let last = progressOf(set);
  try {
    let failures = 0;
    while (set.resync.length > 0 && !interrupted) {
      last = progressOf(set);
      display.update(last);
      await sleep(process.stderr.isTTY ? 500 : 1000);
      try {
        set = await mirrorOf(pool, device);
        failures = 0;
      } catch (err) {
        if (!(err instanceof MemberUnreachableError) || ++failures >= MAX_POLL_FAILURES) throw err;
      }
    }
  } finally {
    process.off('SIGINT', onInterrupt);
  }
  const complete = set.resync.length === 0 && set.state === 'optimal';
  display.finish(complete ? { ...last, bytesDone: last.bytesTotal, etaSeconds: 0 } : last);
  if (interrupted) {
    process.stderr.write(`stopped watching; the resync of ${device} goes on\n`);
    return EXIT_INTERRUPTED;
  }
  return outcome(set, `resync ended, ${formatBytes(set.bytesResynced)} resynced in all`);
}

/** How the mirror stands: 0 when every replica is in sync, 1 with the members that are not. */
function outcome(set: MirrorSetState, what: string): number {
  if (set.state === 'optimal') {
    process.stdout.write(`${set.device}: ${what}; optimal, every replica in sync\n`);
    return EXIT_OK;
  }
  const behind = set.members.filter((m) => m.state !== 'in-sync' && m.slot === 'member').map((m) => `${m.name} ${m.state}${m.health.lastError ? ` (${m.health.lastError})` : ''}`);
  process.stdout.write(`${set.device}: ${what}; ${set.state}${behind.length ? `: ${behind.join(', ')}` : ''}\n`);
  return EXIT_FAILURE;
}
