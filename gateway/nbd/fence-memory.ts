import type { RootDatabase } from 'lmdb';
import type { FenceToken } from '../../fabric/fencing.js';
import type { FenceMemory } from './fencing.js';

/** The sub-database of the member store that holds a fencing registry's newest tokens. */
const DB_NAME = 'fence-tokens';

/**
 * A fencing registry's memory in the member store (LMDB): one entry per export under
 * `scope` (one registry's exports are not another's), written synchronously so the token is
 * on disk before any request it admits is served.
 */
export function lmdbFenceMemory(root: RootDatabase, scope: string): FenceMemory {
  const db = root.openDB<FenceToken, string>({ name: DB_NAME });
  const prefix = `${scope}\u0000`;
  return {
    *load() {
      for (const { key, value } of db.getRange({ start: prefix, end: `${scope}\u0001` })) {
        if (typeof value?.term === 'number' && typeof value.generation === 'number') yield [key.slice(prefix.length), { term: value.term, generation: value.generation }] as const;
      }
    },
    save(exportName, token) {
      db.putSync(prefix + exportName, { term: token.term, generation: token.generation });
    },
  };
}
