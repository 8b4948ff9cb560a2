import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { MirrorDevice, type MirrorOptions } from '../../fabric/layers/mirror/mirror.js';
import { runAction } from '../../failover/action.js';
import type { MirrorPolicy, MirrorSet } from '../../failover/mirror-set.js';
import { FailoverSets } from '../../failover/sets.js';
import type { MirrorSetState } from '../../failover/set.js';
import { FaultyDevice } from './faulty.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;

interface Tap {
  teardown(fn: () => unknown): void;
}

export async function tempDir(t: Tap, prefix = 'blockgate-mirror-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

/** Memory devices under fault injectors; kept across mirror restarts like real disks. */
export function faultyMemory(names: string[], size: number): FaultyDevice[] {
  return names.map((name) => {
    const memory = new MemoryBackend({ name: `${name}-mem`, size });
    const faulty = new FaultyDevice(memory, name);
    // Closing the mirror must not wipe the "disk": the memory backend clears on close.
    faulty.close = async () => {};
    return faulty;
  });
}

const setOfMirror = new WeakMap<MirrorDevice, MirrorSet>();
const registryOfMirror = new WeakMap<MirrorDevice, FailoverSets>();

/**
 * A mirror under its failover set, as a member runs it (probing off unless asked for, so
 * tests decide when replicas return; `assumeClean` unless said otherwise). The set is
 * stopped and the mirror closed at teardown.
 */
export async function openMirror(
  t: Tap,
  options: Partial<MirrorOptions> & Pick<MirrorOptions, 'replicas' | 'dataDir'> & Partial<MirrorPolicy>,
): Promise<MirrorDevice> {
  const { failureLimit, probeIntervalMs, ...mirrorOptions } = options;
  // Fresh memory disks are identical (all zeroes): tests that do not test the initial sync skip it.
  const mirror = await MirrorDevice.open({ name: 'm0', resync: { rateMiBps: 0, regionSize: 64 * KiB }, assumeClean: true, ...mirrorOptions });
  const sets = new FailoverSets();
  const set = sets.addMirror(mirror, { probeIntervalMs: probeIntervalMs ?? 0, ...(failureLimit && { failureLimit }) });
  sets.start();
  setOfMirror.set(mirror, set);
  registryOfMirror.set(mirror, sets);
  t.teardown(async () => {
    sets.stop();
    await set.settled();
    await mirror.close();
  });
  return mirror;
}

export function setOf(mirror: MirrorDevice): MirrorSet {
  const set = setOfMirror.get(mirror);
  if (!set) throw new Error(`mirror ${mirror.name} was not opened with openMirror`);
  return set;
}

/** The registry holding the mirror's set (for the API and metrics). */
export function setsOf(mirror: MirrorDevice): FailoverSets {
  return registryOfMirror.get(mirror)!;
}

/** Run an operator action on the mirror's set, as the API does. */
export function act(mirror: MirrorDevice, action: string, body: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return runAction(setOf(mirror).actions, mirror.name, action, body);
}

export function setState(mirror: MirrorDevice): MirrorSetState {
  return setOf(mirror).state();
}

/** `name:role/state` of every member, in order. */
export function roles(mirror: MirrorDevice): string[] {
  return setState(mirror).members.map((r) => `${r.name}:${r.role}/${r.state}`);
}

/** Background work of the mirror and its set (repairs, state saves, quarantines, promotions). */
export async function settled(mirror: MirrorDevice): Promise<void> {
  await setOf(mirror).settled();
}

export async function readAll(device: { read(o: number, b: Buffer): Promise<void>; size: number }, length = device.size): Promise<Buffer> {
  const b = Buffer.alloc(length);
  await device.read(0, b);
  return b;
}

export function replicaState(mirror: MirrorDevice, name: string): string | undefined {
  return mirror.info().replicas.find((r) => r.name === name)?.state;
}
