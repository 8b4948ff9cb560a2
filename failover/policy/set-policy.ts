import { performance } from 'node:perf_hooks';
import type { MemberRole } from '../peer/messages.js';

/**
 * Roles in a failover set of members, decided by the Policy Manager from what every member
 * announces on every network. The arbiter makes the Primary (one at most, ever); this policy
 * decides who may campaign for it, so that a named Secondary — not whichever member races
 * first — takes over:
 *   - the Primary names the Secondary: the first member in the set's preference order that
 *     is alive and eligible (compatible, not quarantined, its configuration caught up), and
 *     keeps it while it stays so; only the Secondary campaigns, the others are Alternates. In
 *     a hierarchical set (sets of sets, e.g. one per chassis) the Primary's own set comes
 *     first: a Primary's loss moves the role inside its chassis while that can serve;
 *   - without a Primary (a cold start, or Primary and Secondary lost together), the member
 *     with the newest configuration generation, then the first in preference order, campaigns;
 *   - if views disagree and nobody has become Primary after a grace period, every eligible
 *     member campaigns (the arbiter still lets one win).
 */

/** One member as the policy sees it. */
export interface Candidate {
  readonly id: string;
  /** Heard on some network within the silence (always true for this member). */
  readonly live: boolean;
  /** May take a role: booted, compatible, not quarantined, configuration caught up, self-test passing. */
  readonly eligible: boolean;
  /** Would be eligible but for a configuration generation it has not pulled yet (a change going round). */
  readonly lagging?: boolean;
  readonly generation: number;
  readonly role: MemberRole | undefined;
  /** As Primary: the Secondary it named. */
  readonly secondary: string | undefined;
}

export interface Decision {
  readonly role: MemberRole;
  /** Should this member campaign (or keep its leadership) now? */
  readonly campaign: boolean;
  /** As Primary: the Secondary this member names. */
  readonly secondary?: string;
  /** Why not, when it does not campaign. */
  readonly why?: string;
}

export class SetPolicy {
  private noPrimarySinceMs: number | undefined;
  private named: string | undefined;
  /** Where this member, as Primary, looks for its Secondary: its own group first. */
  private readonly secondaryOrder: readonly string[];

  constructor(
    readonly set: string,
    /** Members of the set in preference order. */
    private readonly members: readonly string[],
    private readonly self: string,
    private readonly graceMs: number,
    /** A hierarchical set: the members of each of its sets. */
    groups: readonly (readonly string[])[] = [],
    private readonly now: () => number = () => performance.now(),
  ) {
    const own = groups.find((g) => g.includes(self)) ?? [];
    this.secondaryOrder = [...own, ...members.filter((m) => !own.includes(m))];
  }

  decide(me: Candidate, peers: readonly Candidate[], holding: boolean): Decision {
    const others = peers.filter((p) => this.members.includes(p.id));
    if (holding) {
      this.noPrimarySinceMs = undefined;
      const secondary = this.nameSecondary(others);
      return { role: 'primary', campaign: me.eligible, ...(secondary !== undefined && { secondary }) };
    }
    this.named = undefined;
    if (!me.eligible) return { role: 'none', campaign: false, why: 'not eligible' };
    const primary = others.find((p) => p.live && p.role === 'primary');
    if (primary) {
      this.noPrimarySinceMs = undefined;
      const mine = primary.secondary === this.self;
      return mine ? { role: 'secondary', campaign: true } : { role: 'alternate', campaign: false, why: `${primary.id} is Primary, ${primary.secondary ?? 'nobody'} its Secondary` };
    }
    this.noPrimarySinceMs ??= this.now();
    if (this.now() - this.noPrimarySinceMs > this.graceMs) return { role: 'secondary', campaign: true };
    // Already campaigning as Secondary: keep at it (the lost Primary's lease is about to free).
    if (me.role === 'secondary') return { role: 'secondary', campaign: true };
    const secondary = others.find((p) => p.live && p.eligible && p.role === 'secondary');
    if (secondary) return { role: 'alternate', campaign: false, why: `${secondary.id} is Secondary and takes over` };
    const best = [me, ...others.filter((p) => p.live && p.eligible)].sort(
      (a, b) => b.generation - a.generation || this.rank(a.id) - this.rank(b.id),
    )[0]!;
    return best.id === this.self ? { role: 'secondary', campaign: true } : { role: 'alternate', campaign: false, why: `${best.id} campaigns first (newest configuration, then preference)` };
  }

  /**
   * The Secondary a Primary names: the one named before while still fit (a moment behind a new
   * configuration generation does not unseat it: it pulls it before it could campaign), else
   * the first fit one by preference.
   */
  private nameSecondary(others: readonly Candidate[]): string | undefined {
    const fit = (id: string | undefined) => others.some((p) => p.id === id && p.live && p.eligible);
    const keeps = (id: string | undefined) => others.some((p) => p.id === id && p.live && (p.eligible || p.lagging === true));
    if (!keeps(this.named)) this.named = this.secondaryOrder.find((id) => id !== this.self && fit(id));
    return this.named;
  }

  private rank(id: string): number {
    const i = this.members.indexOf(id);
    return i < 0 ? this.members.length : i;
  }
}
