import type { IncomingMessage } from 'node:http';
import { FORWARD_SEAL, type SealChecker } from './forward-seal.js';
import { HttpError } from './http-error.js';
import type { ApiTokens, Role } from './tokens.js';

/**
 * Who may do what on the management API, checked before any handler runs:
 *
 * 1. A browser request from another origin is refused (403): its `Origin` must be the API's
 *    own, and `Sec-Fetch-Site` (sent by browsers on every request) must be `same-origin` or
 *    `none`. A page the operator visits can then neither act nor read.
 * 2. Every endpoint but the public ones (the dashboard's static page, `/metrics` when left
 *    open) needs `Authorization: Bearer TOKEN` (401 without a valid one).
 * 3. The read-only token reads (GET, HEAD); anything else needs the admin token (403).
 *    A change another cluster member forwarded carries that member's seal instead (forward-seal.ts).
 * 4. A state-changing request must say `Content-Type: application/json` (415): HTML forms
 *    and no-CORS fetches cannot send that type, so no page can forge one.
 */

export interface GuardOptions {
  readonly tokens: ApiTokens;
  /** A cluster member: a change forwarded by another member is admitted by its seal (forward-seal.ts). */
  readonly seals?: SealChecker;
  /** The scheme the API is served with, for its own origin. */
  readonly scheme: 'http' | 'https';
}

/** What a request may see: a role, or only public endpoints. */
export type Caller = Role | 'public';

const READ_METHODS = new Set(['GET', 'HEAD']);
const SAME_SITE_FETCH = new Set(['same-origin', 'none']);

export function admit(req: IncomingMessage, options: GuardOptions, isPublic: boolean): Caller {
  checkOrigin(req, options.scheme);
  const method = req.method ?? 'GET';
  const seal = req.headers[FORWARD_SEAL];
  const role = typeof seal === 'string' && options.seals ? options.seals.open(seal, method, req.url ?? '/').role : bearerRole(req, options.tokens);
  if (role === undefined) {
    if (isPublic && READ_METHODS.has(method)) return 'public';
    throw new HttpError(401, 'this endpoint needs "Authorization: Bearer TOKEN" with an API token (see DATA_DIR/api/*.token)', {
      'www-authenticate': 'Bearer realm="blockgate"',
    });
  }
  if (READ_METHODS.has(method)) return role;
  if (role !== 'admin') throw new HttpError(403, `${method} needs the admin token; this is the read-only token`);
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new HttpError(415, `a ${method} request must have "Content-Type: application/json" (got ${type === '' ? 'none' : JSON.stringify(type)})`);
  }
  return role;
}

function checkOrigin(req: IncomingMessage, scheme: 'http' | 'https'): void {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && !SAME_SITE_FETCH.has(site)) throw new HttpError(403, `cross-site request refused (Sec-Fetch-Site: ${site})`);
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const own = ownOrigin(req, scheme);
  if (own === undefined || normalOrigin(origin) !== own) throw new HttpError(403, `request from a foreign origin refused (Origin: ${origin})`);
}

/** The origin a browser shows for a page this API served: scheme and Host header. */
function ownOrigin(req: IncomingMessage, scheme: 'http' | 'https'): string | undefined {
  const host = req.headers.host;
  return host ? normalOrigin(`${scheme}://${host}`) : undefined;
}

/** `http://h:80` and `http://h` are one origin; "null" and garbage match nothing. */
function normalOrigin(value: string): string | undefined {
  try {
    const origin = new URL(value).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

function bearerRole(req: IncomingMessage, tokens: ApiTokens): Role | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
  if (!m) throw new HttpError(401, 'the Authorization header must be "Bearer TOKEN"', { 'www-authenticate': 'Bearer realm="blockgate", error="invalid_request"' });
  const role = tokens.roleOf(m[1]!);
  if (role === undefined) throw new HttpError(401, 'the API token is not valid (rotated or mistyped?)', { 'www-authenticate': 'Bearer realm="blockgate", error="invalid_token"' });
  return role;
}
