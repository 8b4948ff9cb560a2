import { join } from 'node:path';
import { FILES, type MetadataStore } from '../../bitmap/metadata-store.js';
import type { BlockDevice } from '../../device.js';
import { Replica, type ReplicaSlot, type ReplicaState } from './replica.js';

/**
 * What a mirror must remember across a restart: which devices are in the replica set (a
 * promoted spare changes it), which of them are not in sync (their bitmaps say what to copy)
 * and which are quarantined. Written atomically before any write that depends on it is
 * acknowledged.
 */
export interface PersistedReplica {
  readonly name: string;
  readonly slot: ReplicaSlot;
  /** 'stale' stands for every member state but in-sync: its bitmap holds the rest. */
  readonly state: 'in-sync' | 'stale' | 'standby' | 'failed' | 'quarantined' | 'offline';
}

export interface PersistedMirror {
  readonly version: 1;
  readonly replicas: PersistedReplica[];
  /**
   * The mirror was stopped cleanly (replicas flushed, activity log emptied). Written false
   * while it runs, so a crash leaves false. Absent in states written before it existed:
   * taken as clean, since those versions kept no activity log to go by.
   */
  readonly clean?: boolean;
}

export function mirrorFile(dir: string, name: 'activity.log'): string {
  return join(dir, name);
}

export function mirrorDirectory(dataDir: string, mirrorName: string): string {
  return join(dataDir, 'mirror', encodeURIComponent(mirrorName));
}

export function bitmapPath(dir: string, replicaName: string): string {
  return join(dir, `${encodeURIComponent(replicaName)}.bitmap`);
}

export async function loadMirrorState(dir: string, store: MetadataStore = FILES): Promise<PersistedMirror | undefined> {
  const text = (await store.read(join(dir, 'state.json')))?.toString('utf8');
  if (text === undefined) return undefined;
  const parsed = JSON.parse(text) as PersistedMirror;
  if (parsed.version !== 1 || !Array.isArray(parsed.replicas)) throw new Error(`${join(dir, 'state.json')}: unknown format`);
  return parsed;
}

export function saveMirrorState(dir: string, state: PersistedMirror, store: MetadataStore = FILES): Promise<void> {
  return store.write(join(dir, 'state.json'), JSON.stringify(state, null, 2) + '\n');
}

export function persistedState(slot: ReplicaSlot, state: ReplicaState): PersistedReplica['state'] {
  if (state === 'quarantined' || state === 'offline') return state;
  if (slot === 'alternate') return state === 'standby' ? 'standby' : 'failed';
  return state === 'in-sync' ? 'in-sync' : 'stale';
}

/** A replica as the saved state left it; devices the state does not know are new. */
export function restoredReplica(device: BlockDevice, configured: 'member' | 'alternate', saved: PersistedReplica | undefined, hasState: boolean): Replica {
  if (!saved) {
    // On a fresh mirror every replica is taken as in sync; one added later must be copied.
    if (configured === 'alternate') return new Replica(device, 'alternate', 'standby');
    return new Replica(device, 'member', hasState ? 'stale' : 'in-sync');
  }
  const held = saved.state === 'quarantined' || saved.state === 'offline' ? saved.state : undefined;
  if (saved.slot === 'alternate') return new Replica(device, 'alternate', held ?? 'standby');
  return new Replica(device, 'member', held ?? (saved.state === 'in-sync' ? 'in-sync' : 'stale'));
}
