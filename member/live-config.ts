import { logger } from '../fabric/log.js';
import { checkBackingFiles } from '../failover/config/backing-files.js';
import { describeDiff, diffConfigs } from '../failover/config/diff.js';
import { loadConfigFile } from '../failover/config/file.js';
import type { ConfigRecord } from '../failover/config/store.js';
import { validateMemberConfig, type ValidatedConfig } from '../failover/config/validate.js';
import type { ApplyOrigin, ApplyResult, ConfigControl, GenerationDiff } from './config-control.js';
import type { Member } from './member.js';
import { withOverrides, type RunOverrides } from './overrides.js';
import type { MemberStore } from './store.js';

/** A generation that is not (or no longer) kept: the store keeps the last few. */
export class UnknownGeneration extends Error {
  override readonly name = 'UnknownGeneration';
  constructor(readonly generation: number) {
    super(`no configuration generation ${generation} is kept`);
  }
}

const log = logger('config');

/**
 * Applies configurations to a running member and keeps the member store's generations in
 * step with what runs: a configuration is stored once it is running, never before, so an
 * invalid or refused one leaves no generation behind.
 */
export class LiveConfig implements ConfigControl {
  constructor(
    private readonly member: Member,
    private readonly store: MemberStore,
    /** This run's command-line settings, applied over every configuration as at start. */
    private readonly overrides: RunOverrides,
  ) {}

  current(): ConfigRecord | undefined {
    return this.store.config.current();
  }

  generations(): ConfigRecord[] {
    return this.store.config.list();
  }

  generation(n: number): ConfigRecord | undefined {
    return this.store.config.get(n);
  }

  async apply(doc: unknown, origin: ApplyOrigin): Promise<ApplyResult> {
    const validated = validateMemberConfig(doc, origin.baseDir === undefined ? {} : { baseDir: origin.baseDir });
    return this.applyValidated(validated, origin);
  }

  /** A config file read again (SIGHUP): relative paths are taken from its directory, as at start. */
  async applyFile(path: string, options: { readonly dryRun?: boolean } = {}): Promise<ApplyResult> {
    return this.applyValidated(await loadConfigFile(path), { source: `file:${path}`, ...options });
  }

  async rollback(generation: number, options: { readonly dryRun?: boolean } = {}): Promise<ApplyResult> {
    const record = this.store.config.get(generation);
    if (!record) throw new UnknownGeneration(generation);
    return this.apply(record.config, { source: `rollback:${generation}`, ...options });
  }

  diff(from: number, to: number): GenerationDiff {
    const a = this.store.config.get(from);
    const b = this.store.config.get(to);
    if (!a) throw new UnknownGeneration(from);
    if (!b) throw new UnknownGeneration(to);
    const diff = diffConfigs(validateMemberConfig(a.config), validateMemberConfig(b.config));
    return { from, to, changes: describeDiff(diff), diff };
  }

  private async applyValidated(validated: ValidatedConfig, origin: ApplyOrigin): Promise<ApplyResult> {
    await checkBackingFiles(validated);
    const effective = withOverrides(validated.config, this.overrides);
    if (origin.dryRun) {
      const { diff, refused } = this.member.plan(effective);
      return { applied: false, dryRun: true, generation: this.current()?.generation, changes: describeDiff(diff), diff, refused };
    }
    const diff = await this.member.reload(effective);
    const changes = describeDiff(diff);
    const { record, changed } = await this.store.config.commit(validated.config, { writtenBy: validated.config.member, source: origin.source });
    log.info({ generation: record.generation, source: origin.source, changes }, changed ? 'configuration applied and stored' : 'configuration unchanged');
    return { applied: !diff.empty, dryRun: false, generation: record.generation, changes, diff, refused: [] };
  }
}
