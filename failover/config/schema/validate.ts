import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { parseNbdAddress } from '../../../fabric/backends/nbd-client/address.js';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { NBD_ADDRESS_FORMAT } from './devices.js';
import { PORTAL_FORMAT, parsePortal } from './iscsi.js';
import { CIDR_FORMAT, isAddressOrBlock } from './access.js';
import { HOST_PORT_FORMAT, isHostPort } from './listen.js';
import { SIZE_FORMAT, parseSize } from './units.js';

/**
 * Schema validation with ajv: every problem at once, each as a field path
 * (`devices[0].resync.rate`) and a sentence. `x-problem` on a schema says, in words, what
 * a value must be; it replaces ajv's keyword-by-keyword messages for that value.
 */

export const PROBLEM_KEYWORD = 'x-problem';

const ajv = new Ajv({ allErrors: true, verbose: true, discriminator: true, strict: true, allowUnionTypes: true });
ajv.addKeyword({ keyword: PROBLEM_KEYWORD, schemaType: 'string' });
ajv.addFormat(SIZE_FORMAT, { type: 'string', validate: (v: string) => parseSize(v) !== undefined });
ajv.addFormat(HOST_PORT_FORMAT, { type: 'string', validate: isHostPort });
ajv.addFormat(NBD_ADDRESS_FORMAT, { type: 'string', validate: (v: string) => parseNbdAddress(v) !== undefined });
ajv.addFormat(PORTAL_FORMAT, { type: 'string', validate: (v: string) => parsePortal(v) !== undefined });
ajv.addFormat(CIDR_FORMAT, { type: 'string', validate: isAddressOrBlock });

export interface Validator<T> {
  /** `doc` if it matches, else a ConfigError listing every problem. */
  (doc: unknown): T;
}

export function compile<T>(schema: TSchema): Validator<T> {
  const check: ValidateFunction = ajv.compile(schema);
  return (doc: unknown): T => {
    if (check(doc)) return doc as T;
    throw new ConfigError(problemsOf(check.errors ?? [], doc));
  };
}

type Err = ErrorObject<string, Record<string, unknown>, unknown>;

function problemsOf(errors: readonly Err[], doc: unknown): ConfigProblem[] {
  // In the order the document has them, as a person reads it.
  const order = documentOrder(doc);
  const resolved = resolveAlternatives([...errors]).sort((a, b) => (order.get(a.instancePath) ?? 0) - (order.get(b.instancePath) ?? 0));
  const unknownKeys = new Map<string, string>();
  for (const e of resolved) {
    if (e.keyword !== 'additionalProperties') continue;
    const suggestion = closest(String(e.params.additionalProperty), allowedKeys(e));
    if (suggestion) unknownKeys.set(`${e.instancePath}/${suggestion}`, String(e.params.additionalProperty));
  }
  const seen = new Set<string>();
  const out: ConfigProblem[] = [];
  for (const e of resolved) {
    // `sise: 1` without `size`: the unknown key's "did you mean size?" says it all.
    if (e.keyword === 'required' && unknownKeys.has(`${e.instancePath}/${String(e.params.missingProperty)}`)) continue;
    const p = problemOf(e);
    const key = `${p.field}\n${p.problem}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

/**
 * ajv reports a value that matches no alternative of an `anyOf` with the errors of every
 * alternative. Keep those of the alternative the value was most likely meant for: not one
 * of the wrong type, then the one with the fewest errors; or, when the alternatives have a
 * common `x-problem` or are all constants, one sentence for the value.
 */
function resolveAlternatives(errors: Err[], resolved = new Set<Err>()): Err[] {
  const anyOf = errors.filter((e) => e.keyword === 'anyOf' && !resolved.has(e)).sort((a, b) => a.schemaPath.length - b.schemaPath.length)[0];
  if (!anyOf) return errors;
  resolved.add(anyOf);
  const prefix = `${anyOf.schemaPath}/`;
  const within = (e: Err) => e.schemaPath.startsWith(prefix) && (e.instancePath === anyOf.instancePath || e.instancePath.startsWith(`${anyOf.instancePath}/`));
  const inside = errors.filter((e) => e !== anyOf && within(e));
  const rest = errors.filter((e) => e !== anyOf && !within(e));
  const branches = anyOf.schema as TSchema[];
  let chosen: Err[] = [anyOf];
  if (!(PROBLEM_KEYWORD in (anyOf.parentSchema ?? {})) && !branches.every((b) => 'const' in b)) {
    const byBranch = new Map<number, Err[]>();
    for (const e of inside) {
      const i = Number(e.schemaPath.slice(prefix.length).split('/')[0]);
      byBranch.set(i, [...(byBranch.get(i) ?? []), e]);
    }
    const candidates = [...byBranch.entries()]
      .filter(([i, list]) => !list.some((e) => e.keyword === 'type' && e.instancePath === anyOf.instancePath && e.schemaPath === `${prefix}${i}/type`))
      .sort((a, b) => a[1].length - b[1].length);
    if (candidates[0]) chosen = candidates[0][1];
  }
  return resolveAlternatives([...rest, ...chosen], resolved);
}

/** Every JSON pointer in `doc`, numbered in reading order. */
export function documentOrder(doc: unknown): Map<string, number> {
  const order = new Map<string, number>();
  const walk = (v: unknown, pointer: string): void => {
    order.set(pointer, order.size);
    if (typeof v !== 'object' || v === null) return;
    for (const [k, child] of Object.entries(v)) walk(child, `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`);
  };
  walk(doc, '');
  return order;
}

function problemOf(e: Err): ConfigProblem {
  const at = fieldOf(e.instancePath);
  const child = (key: string) => (at === '' ? key : `${at}.${key}`);
  const field = at === '' ? 'config' : at;
  const p = e.params;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const allowed = allowedKeys(e);
      const suggestion = closest(key, allowed);
      return { field: child(key), problem: `unknown key${suggestion ? ` (did you mean ${suggestion}?)` : ''} (allowed: ${allowed.join(', ')})` };
    }
    case 'required':
      return { field: child(String(p.missingProperty)), problem: 'is required' };
    case 'dependencies':
      return { field: child(String(p.missingProperty)), problem: `is required with ${String(p.property)}` };
    case 'discriminator': {
      if (p.error === 'mapping') {
        const known = ((e.schema as { oneOf?: TSchema[] } | undefined)?.oneOf ?? (e.parentSchema?.oneOf as TSchema[] | undefined) ?? [])
          .map((s) => (s.properties as Record<string, { const?: string }>)?.[String(p.tag)]?.const)
          .filter((t): t is string => typeof t === 'string')
          .sort();
        return { field: child(String(p.tag)), problem: `unknown ${String(p.tag)} ${JSON.stringify(p.tagValue)} (known: ${known.join(', ')})` };
      }
      return { field: child(String(p.tag)), problem: 'is required' };
    }
  }
  const words = (e.parentSchema as Record<string, unknown> | undefined)?.[PROBLEM_KEYWORD];
  if (typeof words === 'string') return { field, problem: `must be ${words} (got ${describe(e.data)})` };
  switch (e.keyword) {
    case 'type':
      return { field, problem: `must be ${typeWords(p.type)} (got ${describe(e.data)})` };
    case 'anyOf': {
      const branches = e.schema as TSchema[];
      if (branches.every((b) => 'const' in b)) return { field, problem: `must be one of ${branches.map((b) => String(b.const)).join(', ')} (got ${describe(e.data)})` };
      return { field, problem: `has the wrong form (got ${describe(e.data)})` };
    }
    case 'const':
      return { field, problem: `must be ${JSON.stringify(p.allowedValue)} (got ${describe(e.data)})` };
    case 'enum':
      return { field, problem: `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')} (got ${describe(e.data)})` };
    case 'minimum':
    case 'exclusiveMinimum':
      return { field, problem: `must be at least ${String(p.limit)}${e.keyword === 'exclusiveMinimum' ? ' (exclusive)' : ''} (got ${describe(e.data)})` };
    case 'maximum':
    case 'exclusiveMaximum':
      return { field, problem: `must be at most ${String(p.limit)}${e.keyword === 'exclusiveMaximum' ? ' (exclusive)' : ''} (got ${describe(e.data)})` };
    case 'minItems':
      return { field, problem: `needs at least ${String(p.limit)} entr${p.limit === 1 ? 'y' : 'ies'} (got ${(e.data as unknown[]).length})` };
    case 'maxItems':
      return { field, problem: `takes at most ${String(p.limit)} entries (got ${(e.data as unknown[]).length})` };
    case 'minLength':
      return { field, problem: p.limit === 1 ? 'must be a non-empty string' : `must be at least ${String(p.limit)} characters long` };
    case 'pattern':
      return { field, problem: `must match ${String(p.pattern)} (got ${describe(e.data)})` };
    case 'format':
      return { field, problem: `must be a valid ${String(p.format)} (got ${describe(e.data)})` };
    default:
      return { field, problem: e.message ?? e.keyword };
  }
}

function allowedKeys(e: Err): string[] {
  return Object.keys((e.parentSchema?.properties as Record<string, unknown> | undefined) ?? {});
}

/**
 * Where `field` (`backends[0].resync.rate`) comes in the document, by its nearest part that
 * the document has: for sorting problems in reading order.
 */
export function fieldPosition(order: ReadonlyMap<string, number>, field: string): number {
  let pointer = field === '' ? '' : `/${field.replace(/\[(\d+)\]/g, '.$1').split('.').join('/')}`;
  for (;;) {
    const at = order.get(pointer);
    if (at !== undefined || pointer === '') return at ?? 0;
    pointer = pointer.slice(0, pointer.lastIndexOf('/'));
  }
}

/** `/backends/0/resync` → `backends[0].resync`. */
export function fieldOf(pointer: string): string {
  if (pointer === '') return '';
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc === '' ? s : `${acc}.${s}`), '');
}

function typeWords(type: unknown): string {
  const one = (t: string) =>
    ({ string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', object: 'a mapping', array: 'a list', null: 'null' })[t] ?? t;
  return (Array.isArray(type) ? type : String(type).split(',')).map((t) => one(String(t))).join(' or ');
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`;
}

/** The allowed key a misspelt one was probably meant to be: same letters in another case, or at most two edits away. */
export function closest(key: string, allowed: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const sameCase = allowed.find((a) => a.toLowerCase() === lower);
  if (sameCase) return sameCase;
  let best: { key: string; d: number } | undefined;
  for (const a of allowed) {
    const d = editDistance(lower, a.toLowerCase());
    if (d <= Math.min(2, Math.floor(a.length / 3)) && (!best || d < best.d)) best = { key: a, d };
  }
  return best?.key;
}

/** Levenshtein distance, with a swap of two neighbours counting as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
