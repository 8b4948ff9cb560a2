import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { redactSecrets } from '../../failover/config/redact.js';
import { MemberStore } from '../../member/store.js';
import { recordHeader as header } from './config-record.js';
import { EXIT_FAILURE, EXIT_OK, reportError } from './exit.js';

/** `blockgate show-config`: what a data directory would serve, or its kept history. */
export async function showConfig(options: { dataDir: string; history: boolean }): Promise<number> {
  const dataDir = resolve(options.dataDir);
  let memberStore: MemberStore;
  try {
    // Unlocked: what a running member stores may be read beside it.
    memberStore = MemberStore.openUnlocked(dataDir);
  } catch (err) {
    return reportError(err, `cannot open the member store in ${dataDir}`);
  }
  try {
    const store = memberStore.config;
    if (options.history) {
      const records = store.list();
      for (const r of records) process.stdout.write(`${header(r)}\n`);
      if (records.length === 0) process.stdout.write(`no configuration stored in ${dataDir}\n`);
      return EXIT_OK;
    }
    const record = store.current();
    if (!record) {
      process.stdout.write(`no configuration stored in ${dataDir} (serve would run the demo)\n`);
      return EXIT_FAILURE;
    }
    // CHAP secrets and the like stay in the database: an operator's terminal is often shared.
    process.stdout.write(`# ${header(record)}\n${stringify(redactSecrets(record.config))}`);
    return EXIT_OK;
  } catch (err) {
    return reportError(err, dataDir);
  } finally {
    await memberStore.close();
  }
}
