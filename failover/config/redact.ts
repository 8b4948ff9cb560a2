/**
 * A configuration as it may be shown (show-config, the API's config endpoints, logs):
 * every value whose key names a secret — CHAP `secret`/`mutualSecret`, passwords, TLS
 * pre-shared keys — replaced by a marker. Keyed on names rather than on today's schema, so a
 * section added later with a `secret` is hidden without anyone remembering to list it.
 */
export const REDACTED = '(redacted)';

const SECRET_KEY = /secret|password|passphrase|psk|token/i;

export function redactSecrets<T>(value: T): T {
  return redact(value) as T;
}

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) && (typeof v === 'string' || typeof v === 'number') ? REDACTED : redact(v);
  return out;
}
