import type { ConfigRecord } from '../../failover/config/store.js';

/** One line about a stored configuration generation: for `show-config` and `config show`. */
export function recordHeader(r: Pick<ConfigRecord, 'generation' | 'writtenAt' | 'writtenBy' | 'source' | 'checksum'>): string {
  return `generation ${r.generation}  ${r.writtenAt}  by ${r.writtenBy}  from ${r.source}  ${r.checksum}`;
}
