import { Type, type Static } from '@sinclair/typebox';
import { Cluster, type ClusterConfig } from './cluster.js';
import { Device, type DeviceSpec } from './devices.js';
import { Iscsi, type IscsiConfig } from './iscsi.js';
import { ListenList, type ListenAddress } from './listen.js';
import { ConnectionLimitFields, Milliseconds } from './limits.js';
import { ExportAllow, NbdTls, type NbdTlsConfig } from './access.js';

/**
 * The member configuration document: the one declaration its TypeScript types, its
 * validation (validate.ts) and the JSON Schema shipped for editors (config.schema.json)
 * all come from.
 */

/**
 * The version of this schema. It changes when a document valid for one version would be
 * read differently (or refused) by another; members of a cluster compare it before they
 * exchange configurations. A document may state the version it was written for.
 */
export const CONFIG_SCHEMA_VERSION = 1;

const MEMBER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const PemPath = Type.String({ minLength: 1, 'x-problem': 'a path to a PEM file' });

export const Export = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'the NBD export name (at most 4096 bytes); unique', 'x-problem': 'a non-empty string' }),
    device: Type.String({ minLength: 1, description: 'a backend or device declared above, not one wrapped by a layer', 'x-problem': 'a non-empty string' }),
    readOnly: Type.Optional(Type.Boolean({ default: false, description: 'writes fail with EPERM' })),
    description: Type.Optional(Type.String({ default: '', description: 'shown to NBD clients (nbdinfo)' })),
    requireTls: Type.Optional(Type.Boolean({ default: false, description: 'offered to NBD clients only over TLS (not even listed before STARTTLS)' })),
    allow: Type.Optional(ExportAllow),
  },
  { additionalProperties: false },
);

export const MemberConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'where editors find this schema' })),
    schemaVersion: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: CONFIG_SCHEMA_VERSION,
        description: 'the schema version the document was written for',
        'x-problem': `a schema version this blockgate reads (1 to ${CONFIG_SCHEMA_VERSION})`,
      }),
    ),
    member: Type.Optional(
      Type.String({
        pattern: MEMBER_NAME.source,
        description: "the member's name: logs, config records (default: the host name)",
        'x-problem': 'a name of letters, digits, ".", "_" and "-", starting with a letter or digit',
      }),
    ),
    dataDir: Type.Optional(Type.String({ minLength: 1, description: 'member state; relative to the config file; --data-dir wins', 'x-problem': 'a non-empty string' })),
    backends: Type.Optional(Type.Array(Device, { default: [], description: 'leaf devices: memory, file, nbd' })),
    devices: Type.Optional(Type.Array(Device, { default: [], description: 'layers over backends or other layers: mirror, multipath, concat, stripe' })),
    exports: Type.Optional(Type.Array(Export, { default: [], description: 'what hosts see' })),
    nbd: Type.Optional(
      Type.Object(
        {
          listen: Type.Optional(ListenList),
          handshakeTimeoutMs: Type.Optional(Milliseconds('a client still negotiating after this long is dropped; default 10000 (as qemu-nbd)')),
          tls: Type.Optional(NbdTls),
          ...ConnectionLimitFields,
        },
        { additionalProperties: false, description: 'NBD front end; default listen: 127.0.0.1:10809; listen: [] disables it' },
      ),
    ),
    iscsi: Type.Optional(Iscsi),
    api: Type.Optional(
      Type.Object(
        {
          listen: Type.Optional(ListenList),
          tls: Type.Optional(
            Type.Object(
              { cert: PemPath, key: PemPath },
              { additionalProperties: false, description: 'HTTPS instead of HTTP: PEM files; relative paths are taken from the config file' },
            ),
          ),
          openMetrics: Type.Optional(Type.Boolean({ default: true, description: '/metrics answers without a token; false: it needs one like every endpoint' })),
        },
        { additionalProperties: false, description: 'the management HTTP API; off unless listed' },
      ),
    ),
    cluster: Type.Optional(Cluster),
  },
  { additionalProperties: false, title: 'blockgate member configuration' },
);

/** A document as written (every optional key may be absent). */
export type ConfigDocument = Static<typeof MemberConfigSchema>;

export type ExportConfig = Required<Omit<Static<typeof Export>, 'allow' | 'requireTls'>> & Pick<Static<typeof Export>, 'allow' | 'requireTls'>;

/** The NBD front end as the running configuration holds it. */
export interface NbdConfig {
  readonly listen: readonly ListenAddress[];
  /** A client still negotiating after this long is dropped (default 10000, 0 never). */
  readonly handshakeTimeoutMs?: number;
  readonly maxConnections?: number;
  readonly maxConnectionsPerClient?: number;
  /** STARTTLS credentials, paths absolute. */
  readonly tls?: NbdTlsConfig;
}

/** A validated configuration with its defaults filled in: what a member runs. */
/** The management API as the running configuration holds it. */
export interface ApiConfig {
  readonly listen: readonly ListenAddress[];
  /** HTTPS instead of HTTP: PEM files, absolute paths. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** /metrics answers without a token (default true); false: it needs one like every endpoint. */
  readonly openMetrics: boolean;
}

export type MemberConfig = Readonly<Omit<ConfigDocument, 'member' | 'backends' | 'devices' | 'exports' | 'nbd' | 'iscsi' | 'api' | 'cluster'>> & {
  readonly member: string;
  readonly backends: readonly DeviceSpec[];
  readonly devices: readonly DeviceSpec[];
  readonly exports: readonly ExportConfig[];
  readonly nbd: NbdConfig;
  readonly iscsi?: IscsiConfig;
  readonly api?: ApiConfig;
  /** Members that take over from each other; absent: a lone member. */
  readonly cluster?: ClusterConfig;
};
