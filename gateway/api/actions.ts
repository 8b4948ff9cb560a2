import { InvalidArgument, runAction } from '../../failover/action.js';
import type { FailoverSets } from '../../failover/sets.js';

/**
 * POST /api/v1/devices/NAME/actions/ACTION: the action of the failover set that drives
 * device NAME. A device that no set drives has no actions.
 */
export async function deviceAction(sets: FailoverSets, device: string, action: string, body: unknown): Promise<Record<string, unknown>> {
  const set = sets.get(device);
  if (!set) throw new InvalidArgument(`device ${device} has no operator actions (it is not a failover set)`);
  return runAction(set.actions, device, action, body);
}

/** The names of the actions device NAME offers (for the audit log). */
export function actionNames(sets: FailoverSets, device: string): string[] {
  return Object.keys(sets.get(device)?.actions ?? {});
}
