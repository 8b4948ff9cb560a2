import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** What an API token looks like and where its file is: shared by the member and the CLI. */
export type Role = 'admin' | 'read';
export const ROLES: readonly Role[] = ['admin', 'read'];

/** The tokens' directory, relative to the data directory. */
export const TOKEN_DIR = 'api';

export function tokenFileName(role: Role): string {
  return `${role}.token`;
}

export function tokenPath(dataDir: string, role: Role): string {
  return join(dataDir, TOKEN_DIR, tokenFileName(role));
}

/** `bga_`/`bgr_` then 43 base64url characters (32 random bytes): a leaked one is recognisable in a paste. */
const PREFIX: Record<Role, string> = { admin: 'bga_', read: 'bgr_' };

/** What an operator-chosen token (token rotate, shared by a cluster's members) must look like. */
export const TOKEN_SHAPE = /^[A-Za-z0-9_-]{32,256}$/;

export function newToken(role: Role): string {
  return PREFIX[role] + randomBytes(32).toString('base64url');
}
