import { createHash, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { logger } from '../../fabric/log.js';
import { newToken, ROLES, TOKEN_DIR, TOKEN_SHAPE, tokenFileName, type Role } from './token-files.js';

/**
 * The management API's bearer tokens: one admin token (everything) and one read-only token
 * (GET only), each in its own file under `DATA/api/` (mode 0600, directory 0700). They are
 * created at the member's first start; the log says where they are, never what they are.
 * The files are the only copy: the CLI on the member's host reads the admin token from
 * there, an operator elsewhere copies it from there or receives it from `token rotate`.
 */

export { newToken, ROLES, TOKEN_DIR, TOKEN_SHAPE, tokenFileName, tokenPath, type Role } from './token-files.js';

const log = logger('api-auth');

/** Compared as SHA-256 digests: equal lengths for timingSafeEqual, nothing learnt from timing. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export class ApiTokens {
  private readonly digests = new Map<Role, Buffer>();

  private constructor(readonly dir: string) {}

  /** Load the tokens of `dataDir`, creating the missing ones. */
  static async open(dataDir: string): Promise<ApiTokens> {
    const tokens = new ApiTokens(join(dataDir, TOKEN_DIR));
    await mkdir(tokens.dir, { recursive: true, mode: 0o700 });
    await chmod(tokens.dir, 0o700);
    for (const role of ROLES) await tokens.load(role);
    return tokens;
  }

  path(role: Role): string {
    return join(this.dir, tokenFileName(role));
  }

  /** The role a presented token grants, if any. */
  roleOf(presented: string): Role | undefined {
    const d = digest(presented);
    let found: Role | undefined;
    // Every role is compared, so the time taken does not say which one matched.
    for (const [role, known] of this.digests) if (timingSafeEqual(d, known)) found ??= role;
    return found;
  }

  /** Replace a role's token (a fresh random one unless given): the old one stops working at once. */
  async rotate(role: Role, token: string = newToken(role)): Promise<string> {
    if (!TOKEN_SHAPE.test(token)) throw new TypeError('a token is 32 to 256 characters of A-Z, a-z, 0-9, "_" and "-"');
    const other = ROLES.find((r) => r !== role && this.digests.get(r)?.equals(digest(token)));
    if (other) throw new TypeError(`that token is already the ${other} token`);
    await this.write(role, token);
    this.digests.set(role, digest(token));
    log.info({ role, path: this.path(role) }, 'API token rotated');
    return token;
  }

  private async load(role: Role): Promise<void> {
    const path = this.path(role);
    let text: string | undefined;
    try {
      const info = await stat(path);
      if ((info.mode & 0o077) !== 0) {
        // Someone loosened it (a copy, an editor): tighten it rather than serve a readable secret.
        log.warn({ role, path, mode: (info.mode & 0o777).toString(8) }, 'API token file was readable by others: mode set to 0600');
        await chmod(path, 0o600);
      }
      text = (await readFile(path, 'utf8')).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined && TOKEN_SHAPE.test(text)) {
      this.digests.set(role, digest(text));
      log.info({ role, path }, 'API token loaded');
      return;
    }
    if (text !== undefined) log.warn({ role, path }, 'API token file holds no valid token: a new one replaces it');
    const token = newToken(role);
    await this.write(role, token);
    this.digests.set(role, digest(token));
    // Printed once, at creation; the token itself never reaches the log.
    log.info({ role, path }, `API ${role === 'admin' ? 'admin' : 'read-only'} token created: read it from ${path} (mode 0600)`);
  }

  /** Written beside, synced, then renamed over: a crash leaves the old token or the new one. */
  private async write(role: Role, token: string): Promise<void> {
    const path = this.path(role);
    const temporary = `${path}.${process.pid}.tmp`;
    const file = await open(temporary, 'w', 0o600);
    try {
      await file.chmod(0o600);
      await file.writeFile(`${token}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  }
}
