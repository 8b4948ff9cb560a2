/** One configuration mistake: the field it is in (`devices[2].replicas`) and what is wrong. */
export interface ConfigProblem {
  readonly field: string;
  readonly problem: string;
}

/**
 * A configuration that cannot be used, with every problem found (not only the first), each
 * naming its field. `field` and `problem` are the first one's, for callers that show one.
 */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
  readonly field: string;
  readonly problem: string;
  readonly problems: readonly ConfigProblem[];

  constructor(field: string, problem: string);
  constructor(problems: readonly ConfigProblem[]);
  constructor(fieldOrProblems: string | readonly ConfigProblem[], problem?: string) {
    const problems = typeof fieldOrProblems === 'string' ? [{ field: fieldOrProblems, problem: problem! }] : fieldOrProblems;
    if (problems.length === 0) throw new TypeError('a ConfigError needs at least one problem');
    super(problems.map((p) => `${p.field}: ${p.problem}`).join('\n'));
    this.problems = problems;
    this.field = problems[0]!.field;
    this.problem = problems[0]!.problem;
  }
}

/** Collects problems so a check can report all of them at once. */
export class Problems {
  private readonly list: ConfigProblem[] = [];

  add(field: string, problem: string): void {
    this.list.push({ field, problem });
  }

  get count(): number {
    return this.list.length;
  }

  /**
   * Throw one ConfigError holding everything added, if anything was; `order` gives the
   * position of a field in the document, to report problems as a person reads it.
   */
  throwIfAny(order?: (field: string) => number): void {
    if (this.list.length === 0) return;
    const list = order ? [...this.list].sort((a, b) => order(a.field) - order(b.field)) : this.list;
    throw new ConfigError(list);
  }
}
