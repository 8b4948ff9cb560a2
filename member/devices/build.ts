import type { BlockDevice } from '../../fabric/device.js';
import { isBlockError, isTransportError } from '../../fabric/errors.js';
import { logger } from '../../fabric/log.js';
import { topDevices, type ValidatedSpec } from '../../failover/config/device-graph.js';
import type { DeviceSpec, DeviceType } from '../../failover/config/schema/devices.js';
import { validateDevices } from '../../failover/config/validate.js';
import type { BuildContext, DeviceFactory } from './context.js';
import { createConcat, createMirror, createStripe } from './layers.js';
import { createFile, createMemory } from './leaves.js';
import { createMultipath, createNbd, detachedNbd } from './paths.js';
import { createReplicated } from './replicated.js';

const log = logger('devices');

/** One factory per kind the schema declares; the compiler checks none is missing. */
const FACTORIES: { readonly [K in DeviceType]: DeviceFactory<K> } = {
  memory: createMemory,
  file: createFile,
  nbd: createNbd,
  mirror: createMirror,
  multipath: createMultipath,
  concat: createConcat,
  stripe: createStripe,
  replicated: createReplicated,
};

function create(spec: DeviceSpec, context: BuildContext, field: string): Promise<BlockDevice> {
  return (FACTORIES[spec.type] as DeviceFactory<DeviceType>)(spec as never, context, field);
}

/**
 * Build every device of a validated graph, children first. On any failure the devices
 * already built are closed: nothing half-starts.
 */
export async function buildDevices(graph: ReadonlyMap<string, ValidatedSpec>, options: { dataDir: string; memberId?: string }): Promise<Map<string, BlockDevice>> {
  const built = new Map<string, BlockDevice>();
  const building = new Map<string, Promise<BlockDevice>>();
  const context: BuildContext = {
    dataDir: options.dataDir,
    ...(options.memberId !== undefined && { memberId: options.memberId }),
    use(name: string): Promise<BlockDevice> {
      let pending = building.get(name);
      if (!pending) {
        // The graph was validated: every name exists, and there are no cycles.
        const { spec, field } = graph.get(name)!;
        pending = create(spec, context, field).then((device) => {
          built.set(name, device);
          return device;
        });
        building.set(name, pending);
      }
      return pending;
    },
    async useMembers(names: readonly string[], fieldOf: (index: number) => string): Promise<BlockDevice[]> {
      const settled = await Promise.allSettled(names.map((n, i) => context.use(n, fieldOf(i))));
      const reachable = settled.find((r): r is PromiseFulfilledResult<BlockDevice> => r.status === 'fulfilled')?.value;
      return settled.map((result, i) => {
        if (result.status === 'fulfilled') return result.value;
        const name = names[i]!;
        const { spec } = graph.get(name)!;
        // Only a remote disk can be unreachable now and answer later; anything else stops start-up.
        const unreachable = spec.type === 'nbd' && isBlockError(result.reason) && isTransportError(result.reason);
        if (!reachable || !unreachable) throw result.reason;
        const device = detachedNbd(spec, reachable);
        built.set(name, device);
        building.set(name, Promise.resolve(device));
        log.warn({ device: name, err: (result.reason as Error).message }, `device ${name} cannot be reached: it starts detached and joins once it answers`);
        return device;
      });
    },
  };
  try {
    // From the top down: a parent decides how a child that cannot be reached is built.
    for (const name of topDevices(graph)) await context.use(name, graph.get(name)!.field);
  } catch (err) {
    // Siblings may still be opening: wait for them so they are closed too.
    await Promise.allSettled(building.values());
    await Promise.allSettled([...built.values()].map((d) => d.close()));
    throw err;
  }
  return built;
}

/** Validate device declarations (fields named `devices[i]`) and build them: for tests and tools. */
export async function buildGraph(specs: readonly unknown[], options: { dataDir: string }): Promise<Map<string, BlockDevice>> {
  return buildDevices(validateDevices(specs), options);
}
