import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { MirrorDevice, type MirrorOptions } from '../../fabric/layers/mirror/mirror.js';
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

export async function openMirror(t: Tap, options: Partial<MirrorOptions> & Pick<MirrorOptions, 'replicas' | 'dataDir'>): Promise<MirrorDevice> {
  const mirror = await MirrorDevice.open({
    name: 'm0',
    probeIntervalMs: 0,
    resync: { rateMiBps: 0, regionSize: 64 * KiB },
    ...options,
  });
  t.teardown(() => mirror.close());
  return mirror;
}

export async function readAll(device: { read(o: number, b: Buffer): Promise<void>; size: number }, length = device.size): Promise<Buffer> {
  const b = Buffer.alloc(length);
  await device.read(0, b);
  return b;
}

export function replicaState(mirror: MirrorDevice, name: string): string | undefined {
  return mirror.replicaStates().find((r) => r.name === name)?.state;
}
