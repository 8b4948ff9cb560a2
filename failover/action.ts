/**
 * Operator actions on a failover set, as the API takes them: each set kind offers a table
 * of named actions, each with at most one argument read from the JSON body. The API
 * dispatches through the set of the device named in the URL, never by device class.
 *
 * Outcomes: a result (200); `InvalidArgument` when the request names nothing the set has or
 * lacks its argument (400); `Refused` when the set's current state forbids it, with the
 * reason (409). Anything else comes from the device (a probe that fails: EIO).
 */
export class InvalidArgument extends Error {
  override readonly name = 'InvalidArgument';
}

export class Refused extends Error {
  override readonly name = 'Refused';
}

export interface ActionArgument {
  /** The body field: `{"replica": "r1"}`. */
  readonly field: string;
  readonly type: 'string' | 'number';
}

export interface Action {
  readonly description: string;
  readonly argument?: ActionArgument;
  run(argument: string | number | undefined): Promise<Record<string, unknown>>;
}

export type ActionTable = Readonly<Record<string, Action>>;

/** What the status page lists for each action. */
export interface ActionInfo {
  readonly name: string;
  readonly description: string;
  readonly argument?: ActionArgument;
}

export function describeActions(table: ActionTable): ActionInfo[] {
  return Object.entries(table).map(([name, a]) => ({ name, description: a.description, ...(a.argument && { argument: a.argument }) }));
}

/** Run action `name` of `table` with the parsed JSON `body`. */
export async function runAction(table: ActionTable, setName: string, name: string, body: unknown): Promise<Record<string, unknown>> {
  const action = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!action) throw new InvalidArgument(`unknown action ${JSON.stringify(name)} for ${setName} (available: ${Object.keys(table).join(', ')})`);
  let argument: string | number | undefined;
  if (action.argument) {
    const { field, type } = action.argument;
    const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[field] : undefined;
    const example = type === 'string' ? '"NAME"' : '10';
    const ok = type === 'string' ? typeof v === 'string' && v !== '' : typeof v === 'number' && Number.isFinite(v);
    if (!ok) throw new InvalidArgument(`${name} needs a JSON body with a "${field}" ${type === 'string' ? 'name' : 'number'}, e.g. {"${field}": ${example}}`);
    argument = v as string | number;
  }
  return action.run(argument);
}
