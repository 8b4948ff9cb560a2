import { parseNbdAddress } from '../../fabric/backends/nbd-client/address.js';
import { NbdClient, type NbdClientOptions } from '../../fabric/backends/nbd-client/client.js';
import type { BlockDevice } from '../../fabric/device.js';
import { MirrorDevice } from '../../fabric/layers/mirror/mirror.js';
import { loadMirrorState, mirrorDirectory, type PersistedMirror } from '../../fabric/layers/mirror/mirror-state.js';
import { ReplicatedVolume } from '../../fabric/layers/replicated-volume.js';
import { logger } from '../../fabric/log.js';
import type { FabricSwitch } from '../../fabric/switch.js';
import type { Arbiter, Leadership } from '../arbitration/arbiter.js';
import type { ValidatedSpec } from '../config/device-graph.js';
import type { FailoverSetConfig } from '../config/schema/cluster.js';
import type { SpecOf } from '../config/schema/devices.js';
import type { MemberConfig } from '../config/schema/member-config.js';
import { bytes } from '../config/schema/units.js';
import { FailoverSets } from '../sets.js';
import { ArbiterMetadataStore } from './arbiter-metadata.js';
import type { SetActions } from './set-runner.js';

const log = logger('shared-nothing');

/** How long the Primary waits for a peer's replication port at activation; a peer that is down is mirrored degraded. */
const CONNECT_TIMEOUT_MS = 1000;
/** A replica that does not answer a request in this time is taken out (its member is hung or cut off). */
const REQUEST_TIMEOUT_MS = 5000;
const DEFAULT_PROBE_MS = 500;

/** Thrown by an activation this member must not complete: the runner gives the role up and campaigns again later. */
export class RoleRefused extends Error {
  override readonly name = 'RoleRefused';
}

interface Running {
  readonly volume: ReplicatedVolume;
  readonly mirror: MirrorDevice;
  readonly policy: FailoverSets;
}

/** The name a member's replica of `device` has in the Primary's mirror. */
export function replicaName(device: string, member: string): string {
  return `${device}@${member}`;
}

/**
 * The shared-nothing part of a failover set's activation: for each `replicated` device the
 * set exports, the new Primary builds a mirror over every member's replica — its own too,
 * through its own replication port rather than its file directly, so every write to every
 * replica passes the same fencing check at the replica's server — and attaches it to the
 * volume its exports serve. Each replica client presents this Primary's arbitration token
 * as the term of its fencing token: from the first request on, every replica refuses what an
 * earlier Primary still sends. The mirror's metadata is in the arbiter (arbiter-metadata.ts),
 * so this mirror starts from what the last Primary recorded: replicas it took out stay stale
 * (their bitmaps say what they lack), and the activity log's extents — where the last
 * Primary's writes may have been in flight when it died — are copied from an in-sync replica
 * to the others before anything is served.
 *
 * A member whose own replica is stale is not given the role on it: with an in-sync peer
 * reachable its replica is resynced (by delta) before it serves; with none, the activation is
 * refused, so no stale data is ever served and no stale replica becomes a resync source.
 */
export function sharedNothing(
  actions: SetActions,
  set: FailoverSetConfig,
  config: MemberConfig,
  graph: ReadonlyMap<string, ValidatedSpec>,
  fabric: FabricSwitch,
  member: string,
  arbiter: Arbiter,
): SetActions {
  const specs = [
    ...new Map(
      set.exports
        .map((name) => graph.get(config.exports.find((e) => e.name === name)?.device ?? '')?.spec)
        .filter((s): s is SpecOf<'replicated'> => s?.type === 'replicated')
        .map((s) => [s.name, s]),
    ).values(),
  ];
  if (specs.length === 0) return actions;
  let running: Running[] = [];

  const closeAll = async (): Promise<void> => {
    const all = running;
    running = [];
    for (const r of all) {
      r.volume.detach();
      r.policy.stop();
    }
    await Promise.allSettled(all.map((r) => r.mirror.close()));
  };

  const open = async (spec: SpecOf<'replicated'>, leadership: Leadership): Promise<Running> => {
    const volume = fabric.device(spec.name);
    if (!(volume instanceof ReplicatedVolume)) throw new Error(`device ${spec.name} is not a replicated volume on this member`);
    const prefix = `shared-nothing/${set.name}`;
    const metadata = new ArbiterMetadataStore(arbiter, leadership);
    const replicas = await connectReplicas(spec, set, config, leadership.token);
    const own = replicaName(spec.name, member);
    let mirror: MirrorDevice;
    try {
      // Decided before the mirror opens, which records the replicas it cannot reach as out of
      // date: a candidate that may not serve must leave the record as it found it.
      await mayServe(spec.name, await loadMirrorState(mirrorDirectory(prefix, spec.name), metadata), replicas);
      mirror = await MirrorDevice.open({
        name: spec.name,
        replicas,
        dataDir: prefix,
        metadata,
        rangeLock: volume.rangeLock,
        resync: {
          ...(spec.resync?.rateMiBps !== undefined && { rateMiBps: spec.resync.rateMiBps }),
          ...(spec.resync?.regionSize !== undefined && { regionSize: bytes(spec.resync.regionSize) }),
        },
        activityLog:
          spec.activityLog === false
            ? false
            : {
                ...(spec.activityLog?.extentSize !== undefined && { extentSize: bytes(spec.activityLog.extentSize) }),
                ...(spec.activityLog?.extents !== undefined && { extents: spec.activityLog.extents }),
              },
      });
    } catch (err) {
      await Promise.allSettled(replicas.map((r) => r.close()));
      throw err;
    }
    try {
      await catchUp(mirror, own, set.name);
    } catch (err) {
      await mirror.close();
      throw err;
    }
    const policy = new FailoverSets({ devices: new Map([[spec.name, mirror]]) });
    policy.addMirror(mirror, { probeIntervalMs: spec.probeIntervalMs ?? DEFAULT_PROBE_MS });
    policy.start();
    volume.attach(mirror);
    const states = Object.fromEntries(mirror.info().replicas.map((r) => [r.name, r.state]));
    log.info({ set: set.name, device: spec.name, term: leadership.token, replicas: states }, 'mirror across the members attached');
    return { volume, mirror, policy };
  };

  return {
    activate: async (leadership) => {
      try {
        for (const spec of specs) running.push(await open(spec, leadership));
      } catch (err) {
        await closeAll();
        if (err instanceof RoleRefused) log.warn({ set: set.name, member, reason: err.message }, 'Primary role refused');
        throw err;
      }
      return actions.activate(leadership);
    },
    deactivate: async (why) => {
      await actions.deactivate(why);
      await closeAll();
    },
  };
}

/** A client per member of the set to its replication port, fenced with this Primary's term; members that do not answer now start detached. */
async function connectReplicas(spec: SpecOf<'replicated'>, set: FailoverSetConfig, config: MemberConfig, term: number): Promise<BlockDevice[]> {
  const options: NbdClientOptions[] = set.members.map((m) => ({
    name: replicaName(spec.name, m),
    address: parseNbdAddress(config.cluster!.members.find((c) => c.id === m)!.replication!)!,
    exportName: spec.name,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    timeoutMs: REQUEST_TIMEOUT_MS,
    fenceToken: { term, generation: 1 },
  }));
  const opened = await Promise.allSettled(options.map((o) => NbdClient.open(o)));
  const up = opened.find((r): r is PromiseFulfilledResult<NbdClient> => r.status === 'fulfilled');
  if (!up) {
    const why = opened.map((r, i) => `${set.members[i]}: ${r.status === 'rejected' ? String((r.reason as Error).message ?? r.reason) : 'ok'}`).join('; ');
    throw new RoleRefused(`no replica of ${spec.name} can be reached (${why})`);
  }
  return opened.map((r, i) => {
    if (r.status === 'fulfilled') return r.value;
    log.warn({ replica: options[i]!.name, err: String((r.reason as Error).message ?? r.reason) }, 'replica cannot be reached: the mirror starts without it');
    return NbdClient.detached(options[i]!, up.value.geometry);
  });
}

/**
 * The record the last Primary left names the replicas in sync: at least one of them must
 * answer now, or whatever this member served would be stale.
 */
async function mayServe(device: string, saved: PersistedMirror | undefined, replicas: readonly BlockDevice[]): Promise<void> {
  if (!saved) return; // a new set: every replica is as new as the others
  const inSync = saved.replicas.filter((r) => r.state === 'in-sync').map((r) => r.name);
  const reachable = new Set(replicas.filter((d) => d.status().state !== 'failed').map((d) => d.name));
  if (inSync.some((n) => reachable.has(n))) return;
  await Promise.allSettled(replicas.map((r) => r.close()));
  throw new RoleRefused(
    `the replicas of ${device} in sync (${inSync.join(', ') || 'none'}, by the last Primary's record) cannot be reached; ` +
      `the reachable ones (${[...reachable].join(', ')}) missed writes: serving them would serve stale data. Start a member whose replica is in sync`,
  );
}

/**
 * This member's own replica must be in sync before it serves: resynced by delta from an
 * in-sync peer when one is reachable, else the role is refused.
 */
async function catchUp(mirror: MirrorDevice, own: string, set: string): Promise<void> {
  const replicas = mirror.info().replicas;
  const inSync = replicas.filter((r) => r.state === 'in-sync').map((r) => r.name);
  const mine = replicas.find((r) => r.name === own);
  if (inSync.length === 0) {
    throw new RoleRefused(
      `no in-sync replica of ${mirror.name} can be reached (${replicas.map((r) => `${r.name}: ${r.state}`).join(', ')}): serving now would serve stale data; start a member whose replica is in sync`,
    );
  }
  if (!mine || mine.state === 'in-sync') return;
  log.warn({ set, replica: own, state: mine.state, dirtyBytes: mine.dirtyBytes, from: inSync }, 'this member\'s replica is out of date: resyncing it from an in-sync peer before serving');
  if (mine.state === 'failed') await mirror.readmit(own, 'the new Primary\'s own replica');
  mirror.startResync(own);
  await mirror.resyncIdle();
  const after = mirror.info().replicas.find((r) => r.name === own);
  if (after?.state !== 'in-sync') throw new RoleRefused(`this member's replica of ${mirror.name} could not be resynced (${after?.state ?? 'missing'}): not taking the Primary role`);
}
