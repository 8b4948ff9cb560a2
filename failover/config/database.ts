import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';

/**
 * The member's LMDB environment: one per data directory. Subsystems keep their state in
 * named sub-databases of it (`root.openDB({ name: 'config' })`, persistent reservations…),
 * so one transaction can span them and one directory holds all of a member's state.
 */
export const MEMBER_DATABASE_DIR = 'member.lmdb';

export function openMemberDatabase(dataDir: string): RootDatabase {
  mkdirSync(dataDir, { recursive: true });
  return open({
    path: join(dataDir, MEMBER_DATABASE_DIR),
    // A directory holding data.mdb and lock.mdb, as the LMDB tools (mdb_stat) expect.
    noSubdir: false,
    maxDbs: 64,
  });
}
