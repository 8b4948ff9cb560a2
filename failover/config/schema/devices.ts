import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { READ_POLICIES } from '../../../fabric/layers/mirror/read-policy.js';
import { Size } from './units.js';

/**
 * Every device kind the configuration can declare, backends and layers alike: one object
 * schema per `type`, no other keys. Each field's `description` is what an editor shows.
 * Cross-field rules (names that must exist, sizes that must agree) are in ../checks/.
 */

const DeviceName = Type.String({ minLength: 1, 'x-problem': 'a device name' });
const DeviceNames = (min: number, description: string) =>
  Type.Array(DeviceName, { minItems: min, description, 'x-problem': min > 0 ? `a list of at least ${min} device names` : 'a list of device names' });
const Ms = (minimum: number, description: string) => Type.Integer({ minimum, description });

/** `{name, type: <type>, ...fields}` with nothing else allowed. */
function kind<T extends string, P extends Record<string, TSchema>>(type: T, description: string, fields: P) {
  return Type.Object(
    { name: Type.String({ minLength: 1, description: 'unique across backends and devices', 'x-problem': 'a non-empty string' }), type: Type.Literal(type), ...fields },
    { additionalProperties: false, description },
  );
}

export const MemorySpec = kind('memory', 'a sparse RAM disk: costs only what is written, lost on stop', {
  size: Size,
  readOnly: Type.Optional(Type.Boolean({ default: false })),
});

export const FileSpec = kind('file', 'a regular file or a block device', {
  path: Type.String({ minLength: 1, description: 'relative paths are taken from the config file’s directory and stored absolute', 'x-problem': 'a non-empty string' }),
  size: Type.Optional(Size),
  create: Type.Optional(Type.Boolean({ default: false, description: 'create the file (at `size`) if it does not exist; without it a missing file is an error' })),
  readOnly: Type.Optional(Type.Boolean({ default: false })),
});

export const NBD_ADDRESS_FORMAT = 'nbd-address';
const NbdAddress = Type.String({ format: NBD_ADDRESS_FORMAT, description: '"host:port" or "unix:/path"', 'x-problem': 'an address "host:port" or "unix:/path"' });

/** The failover tuning of a path set: `type: multipath`, or `type: nbd` with `paths`. */
export const MultipathTuningFields = {
  policy: Type.Optional(Type.Union([Type.Literal('active-passive'), Type.Literal('active-active')], { default: 'active-passive' })),
  failback: Type.Optional(
    Type.Union([Type.Literal('manual'), Type.Literal('immediate'), Type.Number({ minimum: 0 })], {
      default: 'immediate',
      description: 'back to the preferred path: manual, immediate, or after this many seconds of health',
      'x-problem': 'manual, immediate or a number of seconds',
    }),
  ),
  noPathRetryMs: Type.Optional(Ms(0, 'how long requests wait for a path when none is usable (0: fail at once)')),
  probeIntervalMs: Type.Optional(Ms(10, 'how often every path (active, standby and failed) is probed')),
  marginal: Type.Optional(
    Type.Object(
      { failures: Type.Integer({ minimum: 1 }), windowMs: Ms(1, 'the window failures are counted in') },
      { additionalProperties: false, description: 'this many failures inside windowMs make a recovering path marginal' },
    ),
  ),
};
export const MULTIPATH_TUNING_KEYS = Object.keys(MultipathTuningFields);

export const NbdSpec = kind('nbd', 'a disk on a remote NBD server, over one address or several paths', {
  address: Type.Optional(NbdAddress),
  paths: Type.Optional(
    Type.Array(NbdAddress, {
      minItems: 1,
      description: 'the same disk over several addresses: a path failover set',
      'x-problem': 'a non-empty list of addresses',
    }),
  ),
  export: Type.Optional(Type.String({ description: 'the export name on the server (default: "")' })),
  connections: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'NBD multi-conn: connections per address' })),
  timeoutMs: Type.Optional(Ms(1, 'a request not answered in this time fails its connection')),
  connectTimeoutMs: Type.Optional(Ms(1, 'how long a connection attempt may take')),
  fencing: Type.Optional(
    Type.Boolean({
      description:
        'with paths: present a growing generation as a fencing token so a blockgate server refuses the late writes of a path that hung (default false; only for an export this device alone writes: the server refuses any other fencing client with an older token)',
    }),
  ),
  ...MultipathTuningFields,
});

export const MultipathSpec = kind('multipath', 'a path failover set over devices declared elsewhere', {
  paths: DeviceNames(1, 'in priority order: the first is the preferred path'),
  ...MultipathTuningFields,
});

export const MirrorSpec = kind('mirror', 'an N-way mirror: a data-store failover set', {
  replicas: DeviceNames(2, 'the devices every write goes to'),
  spares: Type.Optional(DeviceNames(0, 'hot spares (Alternates), promoted and rebuilt when a replica fails')),
  readPolicy: Type.Optional(Type.Union(READ_POLICIES.map((p) => Type.Literal(p)), { default: 'least-loaded' })),
  resync: Type.Optional(
    Type.Object(
      {
        rateMiBps: Type.Optional(Type.Number({ minimum: 0, default: 100, description: 'resync throughput limit; 0: unlimited' })),
        regionSize: Type.Optional(Type.Unsafe<number | string>({ ...Size, default: '1MiB', description: 'bytes per dirty-bitmap bit: a power of two of at least 4096' })),
      },
      { additionalProperties: false },
    ),
  ),
  failureLimit: Type.Optional(
    Type.Object(
      { failures: Type.Integer({ minimum: 0 }), windowMs: Ms(1, 'the window failures are counted in') },
      { additionalProperties: false, description: 'a replica failing more than this inside the window is quarantined' },
    ),
  ),
  probeIntervalMs: Type.Optional(Ms(0, 'how often failed replicas are probed for their return; 0: never')),
  assumeClean: Type.Optional(
    Type.Boolean({ default: false, description: 'the replicas already hold the same data: no initial sync when the mirror is created (mdadm --assume-clean)' }),
  ),
  activityLog: Type.Optional(
    Type.Union(
      [
        Type.Literal(false),
        Type.Object(
          {
            extentSize: Type.Optional(Type.Unsafe<number | string>({ ...Size, default: '4MiB', description: 'bytes per logged extent (at least the region size)' })),
            extents: Type.Optional(Type.Integer({ minimum: 1, default: 1024, description: 'extents that may stay logged before idle ones are dropped' })),
          },
          { additionalProperties: false },
        ),
      ],
      {
        description: 'regions with writes in flight, recorded before the writes: after a crash exactly those are resynced; false: none (a crash then copies whole replicas)',
        'x-problem': 'false or { extentSize, extents }',
      },
    ),
  ),
});

/**
 * A shared-nothing replicated disk: every member of the failover set whose exports name it
 * keeps one replica in a local file and exports it to its peers on its replication listener
 * (`cluster.members[].replication`); the set's Primary mirrors across all of them.
 */
export const ReplicatedSpec = kind('replicated', 'a shared-nothing disk: one replica in a local file on each member of its failover set, mirrored by the Primary', {
  path: Type.String({ minLength: 1, description: "this member's replica: a file or block device (relative paths are taken from the config file's directory)", 'x-problem': 'a non-empty string' }),
  paths: Type.Optional(
    Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1, 'x-problem': 'a non-empty string' }), {
      description: 'per-member exceptions to path: { MEMBER: PATH }',
      'x-problem': 'a mapping of member ids to paths',
    }),
  ),
  size: Size,
  create: Type.Optional(Type.Boolean({ default: false, description: 'create a missing replica file at `size`' })),
  resync: MirrorSpec.properties.resync,
  activityLog: MirrorSpec.properties.activityLog,
  probeIntervalMs: Type.Optional(Ms(10, "how often the Primary probes an absent member's replica for its return")),
});

export const ConcatSpec = kind('concat', 'devices end to end', {
  devices: DeviceNames(2, 'in address order'),
});

export const StripeSpec = kind('stripe', 'devices interleaved in stripe units (RAID 0)', {
  devices: DeviceNames(2, 'in stripe order'),
  stripeUnit: Type.Unsafe<number | string>({ ...Size, description: 'a power of two' }),
});

/** Each kind by its `type`; a new kind is one more entry (the compiler finds every switch to update). */
export const DEVICE_KINDS = {
  memory: MemorySpec,
  file: FileSpec,
  nbd: NbdSpec,
  mirror: MirrorSpec,
  multipath: MultipathSpec,
  concat: ConcatSpec,
  stripe: StripeSpec,
  replicated: ReplicatedSpec,
} as const satisfies Record<string, TObject>;

export type DeviceType = keyof typeof DEVICE_KINDS;
export type SpecOf<K extends DeviceType> = Static<(typeof DEVICE_KINDS)[K]>;
/** A declared device, as written. */
export type DeviceSpec = { [K in DeviceType]: SpecOf<K> }[DeviceType];

/**
 * A device, chosen by `type`. ajv's `discriminator` validates only the kind named, so a
 * mistake is reported against that kind's fields instead of against every kind.
 */
export const Device = Type.Unsafe<DeviceSpec>({
  type: 'object',
  discriminator: { propertyName: 'type' },
  oneOf: Object.values(DEVICE_KINDS),
});

/** The devices a device wraps, in declaration order. */
export function childrenOf(spec: DeviceSpec): string[] {
  switch (spec.type) {
    case 'mirror':
      return [...spec.replicas, ...(spec.spares ?? [])];
    case 'multipath':
      return [...spec.paths];
    case 'concat':
    case 'stripe':
      return [...spec.devices];
    case 'memory':
    case 'file':
    case 'nbd':
    case 'replicated':
      return [];
  }
}

/** The field that names child `i` of `spec` (`replicas[1]`, `spares[0]`, `paths[2]`…). */
export function childField(spec: DeviceSpec, i: number): string {
  switch (spec.type) {
    case 'mirror':
      return i < spec.replicas.length ? `replicas[${i}]` : `spares[${i - spec.replicas.length}]`;
    case 'multipath':
      return `paths[${i}]`;
    case 'concat':
    case 'stripe':
      return `devices[${i}]`;
    default:
      return '';
  }
}
