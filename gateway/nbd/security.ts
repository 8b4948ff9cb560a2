import { ConfigError } from '../../failover/config/errors.js';
import type { MemberConfig } from '../../failover/config/schema/member-config.js';
import { logger } from '../../fabric/log.js';
import { NbdAccess, type ExportRules } from './access.js';
import { NbdTls } from './tls.js';
import { PskFileError } from '../access/psk-file.js';

/**
 * The NBD front end's TLS credentials and access lists from a member configuration. Files
 * are read now: a missing certificate or a bad PSK file is a configuration error naming
 * its field (the message names the file, never a key).
 */
export function nbdSecurity(config: Pick<MemberConfig, 'nbd' | 'exports'>): { tls?: NbdTls; access?: NbdAccess } {
  let tls: NbdTls | undefined;
  if (config.nbd.tls) {
    try {
      tls = new NbdTls(config.nbd.tls, logger('nbd'));
    } catch (err) {
      const field = err instanceof PskFileError ? 'nbd.tls.pskFile' : config.nbd.tls.certificates ? 'nbd.tls.certificates' : 'nbd.tls';
      throw new ConfigError(field, err instanceof Error ? err.message : String(err));
    }
  }
  const rules = new Map<string, ExportRules>();
  for (const e of config.exports) if (e.requireTls || e.allow) rules.set(e.name, { requireTls: e.requireTls, ...(e.allow && { allow: e.allow }) });
  const forced = tls?.forced === true;
  const access = rules.size > 0 || forced ? new NbdAccess(rules, forced) : undefined;
  return { ...(tls && { tls }), ...(access && { access }) };
}
