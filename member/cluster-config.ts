import type { ClusterServices } from '../failover/boot/phase.js';
import { loadConfigFile } from '../failover/config/file.js';
import type { ConfigRecord } from '../failover/config/store.js';
import { validateMemberConfig } from '../failover/config/validate.js';
import type { ApplyOrigin, ApplyResult, ConfigControl, GenerationDiff } from './config-control.js';
import { UnknownGeneration, type LiveConfig } from './live-config.js';

/** The live configuration of a member as its starter drives it: the API, and SIGHUP's file. */
export type MemberConfigControl = ConfigControl & Pick<LiveConfig, 'applyFile'>;

/**
 * A cluster member's live configuration. The cluster keeps one configuration for all its
 * members, so a change is never applied here alone: it is submitted to the cluster
 * (ClusterServices.submitConfig: the cluster set's Primary makes it the next generation,
 * forwarded there from any member), and every member, this one included, then runs the
 * generation it pulls. Reading the generations, diffs and dry runs are this member's own.
 */
export class ClusterConfigControl implements MemberConfigControl {
  constructor(
    private readonly local: LiveConfig,
    private readonly cluster: ClusterServices,
  ) {}

  current(): ConfigRecord | undefined {
    return this.local.current();
  }

  generations(): ConfigRecord[] {
    return this.local.generations();
  }

  generation(n: number): ConfigRecord | undefined {
    return this.local.generation(n);
  }

  diff(from: number, to: number): GenerationDiff {
    return this.local.diff(from, to);
  }

  async apply(doc: unknown, origin: ApplyOrigin): Promise<ApplyResult> {
    // Validated (relative paths made absolute from baseDir) and its changes listed here first.
    const plan = await this.local.apply(doc, { ...origin, dryRun: true });
    if (origin.dryRun) return plan;
    const config = validateMemberConfig(doc, origin.baseDir === undefined ? {} : { baseDir: origin.baseDir }).config;
    const made = await this.cluster.submitConfig(config, origin.source);
    // The member restarts with the new generation (startup.ts): what it refuses live does not apply.
    return { applied: made.changed, dryRun: false, generation: made.generation, changes: plan.changes, diff: plan.diff, refused: [] };
  }

  async applyFile(path: string, options: { readonly dryRun?: boolean } = {}): Promise<ApplyResult> {
    const { config } = await loadConfigFile(path);
    return this.apply(config, { source: `file:${path}`, ...options });
  }

  async rollback(generation: number, options: { readonly dryRun?: boolean } = {}): Promise<ApplyResult> {
    const record = this.local.generation(generation);
    if (!record) throw new UnknownGeneration(generation);
    return this.apply(record.config, { source: `rollback:${generation}`, ...options });
  }
}
