import type { ClusterStatus } from '../../failover/cluster/runtime.js';
import { loadConfigFile } from '../../failover/config/file.js';
import { EXIT_OK, UsageError } from './exit.js';
import { memberPoolFrom, parseMemberArgs } from './member-options.js';
import { HELP } from './usage.js';

/** `blockgate cluster status | clear-quarantine MEMBER | apply-config FILE`. */
export async function clusterCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseMemberArgs(args, { json: { type: 'boolean' } });
  const [sub, ...rest] = positionals;
  if (values.help || sub === undefined) {
    process.stdout.write(HELP.get('cluster')!);
    return sub === undefined && !values.help ? 2 : EXIT_OK;
  }
  const arity: Record<string, number> = { status: 0, 'clear-quarantine': 1, 'apply-config': 1 };
  if (!(sub in arity)) throw new UsageError(`unknown cluster command ${JSON.stringify(sub)}`);
  if (rest.length !== arity[sub]) throw new UsageError(`cluster ${sub} takes ${arity[sub] === 0 ? 'no argument' : 'one argument'}`);
  // Any member answers (each forwards what the cluster set's Primary must do): the next one if one is down.
  const pool = memberPoolFrom(values);
  switch (sub) {
    case 'status': {
      const { body } = await pool.get<ClusterStatus>('/api/v1/cluster');
      process.stdout.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : describe(body));
      return EXIT_OK;
    }
    case 'clear-quarantine': {
      const member = rest[0]!;
      const { body } = await pool.post<{ cleared: boolean }>(`/api/v1/cluster/members/${encodeURIComponent(member)}/actions/clearQuarantine`, {});
      process.stdout.write(body.cleared ? `${member}: quarantine cleared\n` : `${member} was not quarantined\n`);
      return EXIT_OK;
    }
    default: {
      // Checked here first: a mistake is reported against the file, not by a distant member.
      const { config } = await loadConfigFile(rest[0]!);
      // Making the same document again changes nothing, so a retry on another member is safe.
      const { value: { body } } = await pool.one((c) => c.request<{ generation: number; checksum: string; changed: boolean; appliedBy: string }>('PUT', '/api/v1/config', config));
      process.stdout.write(body.changed ? `generation ${body.generation} ${body.checksum} made by ${body.appliedBy}\n` : `unchanged: generation ${body.generation} ${body.checksum}\n`);
      return EXIT_OK;
    }
  }
}

function describe(s: ClusterStatus): string {
  const lines = [`cluster ${s.name}: member ${s.member} incarnation ${s.incarnation}, boot ${s.boot}, version ${s.version}${s.refused ? ` — refused: ${s.refused}` : ''}`];
  for (const set of s.sets) lines.push(`  set ${set.name}: ${set.role}${set.secondary ? `, Secondary ${set.secondary}` : ''}${set.token !== undefined ? `, token ${set.token}` : ''}`);
  for (const p of s.peers) {
    const nets = Object.entries(p.networks)
      .map(([n, v]) => `${n} ${v.state}`)
      .join(', ');
    const roles = Object.entries(p.roles ?? {})
      .map(([set, r]) => `${set} ${r}`)
      .join(', ');
    lines.push(`  ${p.id}: ${p.health}${p.compatible ? '' : ' INCOMPATIBLE'}${p.quarantined ? ' QUARANTINED' : ''}, incarnation ${p.incarnation ?? '?'}, generation ${p.generation ?? '?'}; ${nets}; ${roles}`);
  }
  for (const a of s.alarms) lines.push(`  ALARM ${a.kind} (${a.persistence}): ${a.message}`);
  return `${lines.join('\n')}\n`;
}
