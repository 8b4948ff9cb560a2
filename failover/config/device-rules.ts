import { MAX_BITMAP_REGIONS, regionCount, smallestRegionSize } from '../../fabric/bitmap/limits.js';
import { MIRROR_DEFAULTS } from '../../fabric/layers/mirror/mirror.js';
import type { Problems } from './errors.js';
import type { ValidatedSpec } from './device-graph.js';
import { MULTIPATH_TUNING_KEYS, type DeviceSpec, type SpecOf } from './schema/devices.js';
import { bytes, formatBytes } from './schema/units.js';

const MIN_REGION_SIZE = 4096;

/**
 * The rules of each kind that one field alone cannot state (`address` or `paths`, powers
 * of two), and the sizes that can be known before anything is opened: a device of size 0,
 * a mirror whose replicas differ in size, a bitmap too large to allocate.
 */
export function checkDeviceRules(graph: ReadonlyMap<string, ValidatedSpec>, problems: Problems, fileSizes?: ReadonlyMap<string, number>): void {
  const sizes = new KnownSizes(graph, problems, fileSizes);
  for (const { spec, field } of graph.values()) {
    switch (spec.type) {
      case 'memory':
      case 'file':
        if (spec.size !== undefined && bytes(spec.size) === 0) problems.add(`${field}.size`, 'must be more than 0');
        break;
      case 'nbd':
        checkNbd(spec, field, problems);
        break;
      case 'stripe':
        if (!isPowerOfTwo(bytes(spec.stripeUnit))) problems.add(`${field}.stripeUnit`, `must be a power of two (got ${JSON.stringify(spec.stripeUnit)})`);
        break;
      case 'mirror':
      case 'replicated':
        if (spec.type === 'replicated' && bytes(spec.size) === 0) problems.add(`${field}.size`, 'must be more than 0');
        checkMirror(spec, field, sizes, problems);
        break;
      case 'multipath':
      case 'concat':
        break;
    }
  }
}

function checkNbd(spec: SpecOf<'nbd'>, field: string, problems: Problems): void {
  if ((spec.address === undefined) === (spec.paths === undefined)) {
    problems.add(field, 'needs either address or paths (not both)');
  }
  if (spec.paths === undefined) {
    for (const key of MULTIPATH_TUNING_KEYS) {
      if (key in spec) problems.add(`${field}.${key}`, 'applies only with paths (several addresses)');
    }
  }
}

function checkMirror(spec: Pick<SpecOf<'mirror'>, 'name' | 'resync'>, field: string, sizes: KnownSizes, problems: Problems): void {
  const written = spec.resync?.regionSize;
  const regionSize = written === undefined ? MIRROR_DEFAULTS.regionSize : bytes(written);
  const regionField = written === undefined ? field : `${field}.resync.regionSize`;
  if (written !== undefined && (regionSize < MIN_REGION_SIZE || !isPowerOfTwo(regionSize))) {
    problems.add(regionField, `must be a power of two of at least ${MIN_REGION_SIZE} (got ${JSON.stringify(written)})`);
    return;
  }
  const size = sizes.of(spec.name);
  if (size === undefined) return;
  if (regionCount(size, regionSize) > MAX_BITMAP_REGIONS) {
    problems.add(
      regionField,
      `a ${formatBytes(size)} mirror with ${formatBytes(regionSize)} regions needs bitmaps of ${formatBytes(regionCount(size, regionSize) / 8)} per replica; ` +
        `the most is ${formatBytes(MAX_BITMAP_REGIONS / 8)}: set resync.regionSize to at least ${formatBytes(smallestRegionSize(size))}`,
    );
  }
}

/**
 * Device sizes the configuration states: memory, a file with `size` (or the size of the
 * existing file, once it has been looked at), and the layers over them. Undefined where the
 * size is learned only when the device opens (a remote disk).
 */
class KnownSizes {
  private readonly memo = new Map<string, number | undefined>();

  constructor(
    private readonly graph: ReadonlyMap<string, ValidatedSpec>,
    private readonly problems: Problems,
    private readonly fileSizes?: ReadonlyMap<string, number>,
  ) {}

  of(name: string): number | undefined {
    if (this.memo.has(name)) return this.memo.get(name);
    this.memo.set(name, undefined); // a cycle (reported elsewhere) ends here
    const entry = this.graph.get(name);
    const size = entry && this.compute(entry.spec, entry.field);
    this.memo.set(name, size);
    return size;
  }

  private compute(spec: DeviceSpec, field: string): number | undefined {
    switch (spec.type) {
      case 'memory':
        return bytes(spec.size);
      case 'file':
        return spec.size === undefined ? this.fileSizes?.get(spec.name) : bytes(spec.size);
      case 'replicated':
        return bytes(spec.size);
      case 'mirror':
        return this.same(spec.replicas, `${field}.replicas`, 'replicas of a mirror hold the same data: they must have the same size');
      case 'multipath':
        return this.same(spec.paths, `${field}.paths`, 'paths lead to one disk: they must have the same size');
      case 'stripe': {
        const children = spec.devices.map((d) => this.of(d));
        if (children.some((s) => s === undefined)) return undefined;
        const unit = bytes(spec.stripeUnit);
        return Math.floor(Math.min(...(children as number[])) / unit) * unit * children.length;
      }
      case 'nbd':
      case 'concat':
        return undefined;
    }
  }

  /** The size all `names` share; a problem when known sizes differ. */
  private same(names: readonly string[], field: string, why: string): number | undefined {
    const known = names.map((n) => [n, this.of(n)] as const).filter((e): e is readonly [string, number] => e[1] !== undefined);
    if (new Set(known.map(([, s]) => s)).size > 1) {
      this.problems.add(field, `${why} (${known.map(([n, s]) => `${n}: ${formatBytes(s)}`).join(', ')})`);
      return undefined;
    }
    return known.length === names.length ? known[0]?.[1] : undefined;
  }
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n));
}
