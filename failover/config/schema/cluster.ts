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
 *     keyFile: /etc/blockgate/cluster.key   # shared secret: authenticates member-to-member messages
 *     networks:                              # two or more management networks (redundant links)
 *       - { name: a, subnet: 10.0.1.0/24 }                                        # UDP heartbeats, mDNS
 *       - { name: b, subnet: fd00:2::/64, heartbeat: { protocol: tcp }, discovery: { seeds: ["fd00:2::1", "fd00:2::2"] } }
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
/** Configuration generations the cluster keeps (in the arbiter's store and every member's copy) unless `configHistory` says otherwise. */
export const DEFAULT_CONFIG_HISTORY = 100;
/** The management port of every network unless it says otherwise (TCP always; UDP for UDP heartbeats). */
export const DEFAULT_PEER_PORT = 7400;

const Cidr = Type.String({ pattern: '^[0-9.]+/\\d{1,2}$|^[0-9a-fA-F:.]+/\\d{1,3}$', 'x-problem': 'a subnet ADDRESS/PREFIX, e.g. 10.0.1.0/24 or fd00:2::/64' });
/** A peer's address on a network: `HOST`, `HOST:PORT` or `[V6]:PORT` (the network's port by default). */
const PeerAddress = Type.String({ pattern: '^[0-9.]+(:\\d+)?$|^[0-9a-fA-F:]+$|^\\[[0-9a-fA-F:]+\\]:\\d+$', 'x-problem': 'an IP address, ADDRESS:PORT or [IPV6]:PORT' });

const Network = Type.Object(
  {
    name: Name,
    subnet: Cidr,
    heartbeat: Type.Optional(
      Type.Object(
        {
          protocol: Type.Optional(Type.Union([Type.Literal('udp'), Type.Literal('tcp')], { default: 'udp', description: 'how heartbeats travel on this network' })),
          port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: DEFAULT_PEER_PORT, 'x-problem': 'a port number from 1 to 65535' })),
        },
        { additionalProperties: false },
      ),
    ),
    discovery: Type.Optional(
      Type.Union(
        [
          Type.Literal('mdns', { description: 'DNS-SD over multicast DNS (_blockgate._tcp) on this network' }),
          Type.Object({ seeds: Type.Array(PeerAddress, { minItems: 1 }) }, { additionalProperties: false, description: 'for networks without multicast: the members\' addresses' }),
        ],
        { default: 'mdns' },
      ),
    ),
  },
  { additionalProperties: false, description: 'a management network: heartbeats, discovery, member-to-member requests' },
);

const Ms = (min: number, def: number, description: string) => Type.Optional(Type.Integer({ minimum: min, default: def, description }));

const Health = Type.Object(
  {
    heartbeatMs: Ms(10, 200, 'how often a member sends a heartbeat on each network'),
    silenceMs: Ms(50, 1000, 'a network is silent for a peer after this long without its heartbeats'),
    pingIntervalMs: Ms(50, 500, 'ICMP echo to each peer on each network (tells a host that is up from a link that is down)'),
    selfTestTimeoutMs: Ms(50, 1500, 'how long a self-test may take before it counts as failed'),
    eventLoopLimitMs: Ms(50, 2000, 'a self-test fails when the event loop was blocked longer than this'),
    permanentMs: Ms(100, 30_000, 'a fault lasting this long is permanent; shorter ones that clear are transient'),
    failureLimit: Type.Optional(
      Type.Object(
        { failures: Type.Integer({ minimum: 1 }), windowMs: Type.Integer({ minimum: 1 }) },
        { additionalProperties: false, description: 'more failures than this within the window quarantine a member until an operator clears it' },
      ),
    ),
  },
  { additionalProperties: false },
);

const Boot = Type.Object(
  {
    quorum: Type.Optional(Type.Integer({ minimum: 1, description: 'members that must be seen before a cold start elects (default: a majority)' })),
    coldStartWaitMs: Ms(0, 60_000, 'at a cold start, how long to wait for a quorum before giving up the wait'),
  },
  { additionalProperties: false },
);

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
    composition: Type.Optional(
      Type.Union([Type.Literal('single'), Type.Literal('n-way'), Type.Literal('hierarchical')], {
        description: 'default: single with one member, else n-way; hierarchical: members names other sets (e.g. one per chassis)',
      }),
    ),
    members: Type.Array(Name, { minItems: 1, description: 'members (a hierarchical set: sets) in preference order' }),
    children: Type.Optional(
      Type.Array(Type.Object({ set: Name, members: Type.Array(Name) }, { additionalProperties: false }), {
        description: 'written by blockgate in the stored form of a hierarchical set: its sets, resolved (members then lists their members)',
      }),
    ),
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
    members: Type.Array(
      Type.Object(
        {
          id: Name,
          addresses: Type.Optional(Type.Record(Type.String(), PeerAddress, { description: "the member's address on each network (default: this host's address in the network's subnet)" })),
          replication: Type.Optional(
            Type.String({
              format: HOST_PORT_FORMAT,
              description: 'HOST:PORT where this member exports its replicas of `replicated` devices to the Primary (NBD, fencing required)',
              'x-problem': 'HOST:PORT or [IPV6]:PORT',
            }),
          ),
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
    keyFile: Type.Optional(Type.String({ minLength: 1, description: 'a file of at least 32 bytes every member has: authenticates member-to-member messages' })),
    networks: Type.Optional(Type.Array(Network, { description: 'the management networks (two or more); without them members only arbitrate' })),
    health: Type.Optional(Health),
    boot: Type.Optional(Boot),
    arbitration: Type.Unsafe<Static<typeof FileArbitration> | Static<typeof EtcdArbitration>>({
      type: 'object',
      discriminator: { propertyName: 'type' },
      oneOf: [FileArbitration, EtcdArbitration],
    }),
    sets: Type.Array(FailoverSet, { minItems: 1 }),
    configHistory: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 10_000, default: DEFAULT_CONFIG_HISTORY, description: 'configuration generations kept (in etcd or the arbiter directory, and in every member); older ones are deleted' }),
    ),
  },
  { additionalProperties: false, description: 'members that take over from each other; absent: a lone member' },
);

export interface ClusterMemberConfig {
  readonly id: string;
  /** Its address on each network, where configured (`HOST` or `HOST:PORT`). */
  readonly addresses?: Readonly<Record<string, string>>;
  /** Where it exports its replicas of `replicated` devices to the set's Primary (`HOST:PORT`). */
  readonly replication?: string;
}

export interface NetworkConfig {
  readonly name: string;
  /** `10.0.1.0/24`, `fd00:2::/64`. */
  readonly subnet: string;
  readonly heartbeat: { readonly protocol: 'udp' | 'tcp'; readonly port: number };
  /** DNS-SD over mDNS, or the members' addresses where the network has no multicast. */
  readonly discovery: 'mdns' | { readonly seeds: readonly string[] };
}

export interface FailureLimitConfig {
  readonly failures: number;
  readonly windowMs: number;
}

export interface HealthConfig {
  readonly heartbeatMs: number;
  readonly silenceMs: number;
  readonly pingIntervalMs: number;
  readonly selfTestTimeoutMs: number;
  readonly eventLoopLimitMs: number;
  readonly permanentMs: number;
  readonly failureLimit: FailureLimitConfig;
}

export interface BootConfig {
  /** Members that must be seen before a cold start elects. */
  readonly quorum: number;
  readonly coldStartWaitMs: number;
}

export type ArbitrationConfig =
  | { readonly type: 'file'; readonly dir: string }
  | { readonly type: 'etcd'; readonly endpoints: readonly string[]; readonly ttlSeconds: number; readonly fenceMarginMs: number };

export type ServiceAddressConfig = Readonly<NonNullable<Static<typeof FailoverSet>['serviceAddress']>>;

export interface SetListen {
  readonly host: string;
  readonly port: number;
}

export type Composition = 'single' | 'n-way' | 'hierarchical';

/** A failover set as the running configuration holds it: defaults filled, listeners as mappings. */
export interface FailoverSetConfig {
  readonly name: string;
  readonly composition: Composition;
  /** Member ids in preference order (a hierarchical set: its sets' members, set by set). */
  readonly members: readonly string[];
  /** A hierarchical set: the sets it is made of, in preference order, and each one's members. */
  readonly children?: readonly { readonly set: string; readonly members: readonly string[] }[];
  readonly exports: readonly string[];
  readonly nbd: { readonly listen: readonly SetListen[] };
  readonly serviceAddress?: ServiceAddressConfig;
}

export interface ClusterConfig {
  readonly name: string;
  readonly members: readonly ClusterMemberConfig[];
  readonly arbitration: ArbitrationConfig;
  readonly sets: readonly FailoverSetConfig[];
  /** The management networks; empty: the members only arbitrate (no discovery, health monitoring or config sync). */
  readonly networks: readonly NetworkConfig[];
  /** Absolute path of the shared key (required with networks). */
  readonly keyFile?: string;
  readonly health: HealthConfig;
  readonly boot: BootConfig;
  /** Generations kept (absent: DEFAULT_CONFIG_HISTORY; left out so a configuration that does not set it reads the same to older members). */
  readonly configHistory?: number;
}
