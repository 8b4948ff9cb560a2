import { HttpError } from './http-error.js';
import { ROLES, type ApiTokens, type Role } from './tokens.js';

/**
 * POST /api/v1/tokens/rotate `{"role": "admin" | "read", "token"?: "..."}`: replace one
 * token. Without `token` the member draws a random one; the CLI passes its own so that the
 * members of a cluster can share one. The answer carries the new token — the only place it
 * is ever shown besides its file — so the operator who rotated it can use it.
 */
export async function rotateToken(tokens: ApiTokens, body: unknown): Promise<{ role: Role; token: string; path: string }> {
  const fields = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  if (!fields) throw new HttpError(400, 'the body must be a JSON object {"role": "admin" | "read", "token"?: "..."}');
  const unknown = Object.keys(fields).filter((k) => k !== 'role' && k !== 'token');
  if (unknown.length > 0) throw new HttpError(400, `unknown field ${JSON.stringify(unknown[0])} (allowed: role, token)`);
  const role = fields.role ?? 'admin';
  if (!ROLES.includes(role as Role)) throw new HttpError(400, `role must be one of ${ROLES.join(', ')} (got ${JSON.stringify(role)})`);
  if (fields.token !== undefined && typeof fields.token !== 'string') throw new HttpError(400, 'token must be a string');
  let token: string;
  try {
    token = await tokens.rotate(role as Role, fields.token);
  } catch (err) {
    if (err instanceof TypeError) throw new HttpError(400, err.message);
    throw err;
  }
  return { role: role as Role, token, path: tokens.path(role as Role) };
}
