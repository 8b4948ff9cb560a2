import type { BlockDevice } from './device.js';

/**
 * Builds the device graph from declarations. Each kind of device (backend or layer) lives
 * in its own file and registers a factory here; fabric/kinds.ts imports them all. The
 * config loader validates the file's shape, then calls `buildGraph`.
 */

/** A declared device: `name` and `type`, plus the fields its kind reads. */
export interface DeviceSpec {
  readonly name: string;
  readonly type: string;
  readonly [field: string]: unknown;
}

/** A configuration mistake, naming the field (`devices[2].replicas`) and what is wrong. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

export interface BuildContext {
  /** The member's data directory, for state a device persists (bitmaps, reservations). */
  readonly dataDir: string;
  /**
   * The device declared under `name`, built on first use. Each device may be used by one
   * parent only (validateGraph refuses a device used twice).
   */
  use(name: string, field: string): Promise<BlockDevice>;
}

export interface DeviceKind {
  /** Check the spec's fields before anything is built; throw ConfigError naming the field. */
  validate(spec: DeviceSpec, field: string): void;
  /** Names of the devices this one wraps, for ordering and the used-twice check. */
  children?(spec: DeviceSpec): string[];
  create(spec: DeviceSpec, context: BuildContext, field: string): Promise<BlockDevice>;
}

const kinds = new Map<string, DeviceKind>();

export function registerDeviceKind(type: string, kind: DeviceKind): void {
  if (kinds.has(type)) throw new Error(`device kind ${type} registered twice`);
  kinds.set(type, kind);
}

export function deviceKindNames(): string[] {
  return [...kinds.keys()].sort();
}

/**
 * Validate every spec, then build all of them (children first). On any failure, the devices
 * already built are closed: nothing half-starts.
 */
export async function buildGraph(
  specs: readonly DeviceSpec[],
  options: { dataDir: string; fieldOf?: (index: number) => string },
): Promise<Map<string, BlockDevice>> {
  const byName = validateGraph(specs, options);

  const built = new Map<string, BlockDevice>();
  const building = new Map<string, Promise<BlockDevice>>();
  const visiting = new Set<string>();
  const context: BuildContext = {
    dataDir: options.dataDir,
    use(name: string, field: string): Promise<BlockDevice> {
      const entry = byName.get(name);
      if (!entry) return Promise.reject(new ConfigError(field, `refers to unknown device ${JSON.stringify(name)}`));
      if (visiting.has(name) && !built.has(name)) {
        return Promise.reject(new ConfigError(field, `device ${JSON.stringify(name)} is part of a cycle`));
      }
      let pending = building.get(name);
      if (!pending) {
        visiting.add(name);
        pending = kinds.get(entry.spec.type)!.create(entry.spec, context, entry.field).then((device) => {
          built.set(name, device);
          return device;
        });
        building.set(name, pending);
      }
      return pending;
    },
  };

  try {
    for (const name of byName.keys()) await context.use(name, byName.get(name)!.field);
  } catch (err) {
    await Promise.allSettled([...built.values()].map((d) => d.close()));
    throw err;
  }
  return built;
}

/** A spec that passed validateGraph, with the field it came from and the devices it wraps. */
export interface ValidatedSpec {
  readonly spec: DeviceSpec;
  readonly field: string;
  readonly children: readonly string[];
}

/**
 * The checks buildGraph makes before building anything (names, kinds, each kind's fields,
 * references, single use); `blockgate check-config` runs them alone. Declaration order.
 */
export function validateGraph(
  specs: readonly DeviceSpec[],
  options: { fieldOf?: (index: number) => string } = {},
): Map<string, ValidatedSpec> {
  const fieldOf = options.fieldOf ?? ((i: number) => `devices[${i}]`);
  const byName = new Map<string, ValidatedSpec>();
  specs.forEach((spec, i) => {
    const field = fieldOf(i);
    if (typeof spec.name !== 'string' || spec.name === '') throw new ConfigError(`${field}.name`, 'must be a non-empty string');
    if (byName.has(spec.name)) throw new ConfigError(`${field}.name`, `device name ${JSON.stringify(spec.name)} is declared twice`);
    const kind = kinds.get(spec.type);
    if (!kind) {
      throw new ConfigError(`${field}.type`, `unknown device type ${JSON.stringify(spec.type)} (known: ${deviceKindNames().join(', ')})`);
    }
    const { watched, readKeys } = watchReads(spec);
    kind.validate(watched, field);
    const children = kind.children?.(watched) ?? [];
    const unknown = Object.keys(spec).filter((key) => key !== 'name' && key !== 'type' && !readKeys.has(key));
    if (unknown.length > 0) {
      throw new ConfigError(`${field}.${unknown[0]}`, `unknown field for a device of type ${spec.type} (misspelt?)`);
    }
    byName.set(spec.name, { spec, field, children });
  });

  const usedBy = new Map<string, string>();
  for (const { spec, field, children } of byName.values()) {
    for (const child of children) {
      if (!byName.has(child)) throw new ConfigError(field, `refers to unknown device ${JSON.stringify(child)}`);
      const previous = usedBy.get(child);
      if (previous) throw new ConfigError(field, `device ${JSON.stringify(child)} is already used by ${previous}`);
      usedBy.set(child, spec.name);
    }
  }
  return byName;
}

/**
 * The spec seen through a proxy that notes which fields a kind's validate() reads: a field
 * it never looks at is one the kind does not know, most often a misspelling that would
 * otherwise silently fall back to a default.
 */
function watchReads(spec: DeviceSpec): { watched: DeviceSpec; readKeys: Set<string> } {
  const readKeys = new Set<string>();
  const watched = new Proxy(spec, {
    get(target, key, receiver) {
      if (typeof key === 'string') readKeys.add(key);
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      if (typeof key === 'string') readKeys.add(key);
      return Reflect.has(target, key);
    },
  });
  return { watched, readKeys };
}

/** Field readers for kinds' validate(): each throws a ConfigError naming the field. */
export const fields = {
  string(spec: DeviceSpec, key: string, field: string, required = true): string | undefined {
    const v = spec[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v === '') throw new ConfigError(`${field}.${key}`, 'must be a non-empty string');
    return v;
  },
  number(spec: DeviceSpec, key: string, field: string, opts: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
    const v = spec[key];
    if (v === undefined && opts.required === false) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${field}.${key}`, 'must be a number');
    if (opts.min !== undefined && v < opts.min) throw new ConfigError(`${field}.${key}`, `must be at least ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) throw new ConfigError(`${field}.${key}`, `must be at most ${opts.max}`);
    return v;
  },
  boolean(spec: DeviceSpec, key: string, field: string): boolean | undefined {
    const v = spec[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw new ConfigError(`${field}.${key}`, 'must be true or false');
    return v;
  },
  /** Sizes as numbers of bytes or strings with a binary suffix: "512", "4k", "1GiB", "2T". */
  size(spec: DeviceSpec, key: string, field: string, required = true): number | undefined {
    const v = spec[key];
    if (v === undefined && !required) return undefined;
    const bytes = parseSize(v);
    if (bytes === undefined) throw new ConfigError(`${field}.${key}`, `must be a size in bytes such as 1048576, "512MiB" or "1G" (got ${JSON.stringify(v)})`);
    return bytes;
  },
  names(spec: DeviceSpec, key: string, field: string, opts: { min?: number; required?: boolean } = {}): string[] {
    const v = spec[key];
    if (v === undefined && opts.required === false) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) {
      throw new ConfigError(`${field}.${key}`, 'must be a list of device names');
    }
    if (opts.min !== undefined && v.length < opts.min) throw new ConfigError(`${field}.${key}`, `needs at least ${opts.min} entries (got ${v.length})`);
    return v as string[];
  },
  oneOf<T extends string>(spec: DeviceSpec, key: string, field: string, allowed: readonly T[], fallback?: T): T {
    const v = spec[key];
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string' || !allowed.includes(v as T)) {
      throw new ConfigError(`${field}.${key}`, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
    }
    return v as T;
  },
};

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(v) ?? /^\s*(\d+)\s*(b)\s*$/i.exec(v);
  if (!m) return undefined;
  const bytes = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
