import { Type, type Static } from '@sinclair/typebox';
import { HOST_PORT_FORMAT, NonEmpty, Port } from './listen.js';

/**
 * The `cluster:` section: which members form the cluster, how they arbitrate, and the
 * failover sets whose Primary serves a group of exports. Without it a member runs alone.
 * One document for every member: a member learns which one it is from `serve --member ID`.
 *
 *   cluster:
 *     name: c1
 *     members: [{ id: m1 }, { id: m2 }, { id: m3 }]
 *     arbitration: { type: file, dir: /run/blockgate/c1 }      # one host
 *     # arbitration: { type: etcd, endpoints: [http://10.0.1.1:2379, …], ttlSeconds: 2 }
 *     sets:
 *       - name: disks
 *         members: [m1, m2, m3]       # the order is the preference at a cold start
 *         exports: [disk]
 *         nbd: { listen: ["127.0.0.1:10809"] }   # where the set's Primary serves
 *         serviceAddress: { address: 10.3.0.100/24, interface: eth-f }   # optional, moved on failover
 */

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const Name = Type.String({ pattern: NAME.source, 'x-problem': "a name of letters, digits, '.', '_' and '-'" });

export const DEFAULT_TTL_SECONDS = 2;

const FileArbitration = Type.Object(
  { type: Type.Literal('file'), dir: Type.String({ minLength: 1, description: 'a directory every member on this host can lock files in' }) },
  { additionalProperties: false, description: 'members on one host: flock(2) on files in dir' },
);
const EtcdArbitration = Type.Object(
  {
    type: Type.Literal('etcd'),
    endpoints: Type.Array(Type.String({ pattern: '^https?://', 'x-problem': 'an http:// or https:// URL' }), { minItems: 1 }),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 60, default: DEFAULT_TTL_SECONDS, description: 'lease time to live' })),
    fenceMarginMs: Type.Optional(Type.Integer({ minimum: 1, description: 'a Primary stops serving this long before its lease could expire (default: min(600, ttl × 300))' })),
  },
  { additionalProperties: false, description: 'members on several hosts: elections in an etcd cluster' },
);

const SetListen = Type.Union([Type.String({ format: HOST_PORT_FORMAT, 'x-problem': 'HOST:PORT or [IPV6]:PORT' }), Type.Object({ host: NonEmpty, port: Port }, { additionalProperties: false })]);

const FailoverSet = Type.Object(
  {
    name: Name,
    composition: Type.Optional(Type.Union([Type.Literal('single'), Type.Literal('n-way')], { description: 'default: single with one member, else n-way' })),
    members: Type.Array(Name, { minItems: 1, description: 'the order is the preference at a cold start' }),
    exports: Type.Array(NonEmpty, { minItems: 1 }),
    nbd: Type.Optional(Type.Object({ listen: Type.Optional(Type.Array(SetListen)) }, { additionalProperties: false, description: "where the set's Primary serves" })),
    serviceAddress: Type.Optional(
      Type.Object(
        {
          address: Type.String({ pattern: '^[0-9.]+/\\d{1,2}$|^[0-9a-fA-F:]+/\\d{1,3}$', 'x-problem': 'ADDRESS/PREFIX, e.g. 10.0.3.100/24' }),
          interface: NonEmpty,
        },
        { additionalProperties: false, description: 'added to interface on the Primary, moved on failover' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const Cluster = Type.Object(
  {
    name: Name,
    members: Type.Array(Type.Object({ id: Name }, { additionalProperties: false }), { minItems: 1 }),
    arbitration: Type.Unsafe<Static<typeof FileArbitration> | Static<typeof EtcdArbitration>>({
      type: 'object',
      discriminator: { propertyName: 'type' },
      oneOf: [FileArbitration, EtcdArbitration],
    }),
    sets: Type.Array(FailoverSet, { minItems: 1 }),
  },
  { additionalProperties: false, description: 'members that take over from each other; absent: a lone member' },
);

export interface ClusterMemberConfig {
  readonly id: string;
}

export type ArbitrationConfig =
  | { readonly type: 'file'; readonly dir: string }
  | { readonly type: 'etcd'; readonly endpoints: readonly string[]; readonly ttlSeconds: number; readonly fenceMarginMs: number };

export type ServiceAddressConfig = Readonly<NonNullable<Static<typeof FailoverSet>['serviceAddress']>>;

export interface SetListen {
  readonly host: string;
  readonly port: number;
}

export type Composition = 'single' | 'n-way';

/** A failover set as the running configuration holds it: defaults filled, listeners as mappings. */
export interface FailoverSetConfig {
  readonly name: string;
  readonly composition: Composition;
  readonly members: readonly string[];
  readonly exports: readonly string[];
  readonly nbd: { readonly listen: readonly SetListen[] };
  readonly serviceAddress?: ServiceAddressConfig;
}

export interface ClusterConfig {
  readonly name: string;
  readonly members: readonly ClusterMemberConfig[];
  readonly arbitration: ArbitrationConfig;
  readonly sets: readonly FailoverSetConfig[];
}
