import { ApiError, MemberUnreachableError, type ApiClient, type ApiResponse } from './api-client.js';

/**
 * The members a command or a program may ask (the members of one cluster). Reads go round
 * the members in turn, starting at a random one (scripts polling the cluster spread their
 * load), and move on to the next when one cannot be reached or does not answer in time; a
 * member's answer, an error status included, is the answer. A change goes to the members
 * in the order given and moves on only when it surely did not arrive (no connection was
 * made): sent twice, an action such as a failback could run twice. A cluster member
 * forwards a change to its Primary, so any member will do.
 */
export interface Answer<T> extends ApiResponse<T> {
  /** The member that answered. */
  readonly member: string;
}

export class MemberPool {
  /** Where the next read starts. */
  private next: number;

  constructor(
    readonly clients: readonly ApiClient[],
    pick: () => number = Math.random,
  ) {
    if (clients.length === 0) throw new TypeError('a member pool needs at least one member');
    this.next = Math.floor(pick() * clients.length) % clients.length;
  }

  get(path: string): Promise<Answer<unknown>>;
  get<T>(path: string): Promise<Answer<T>>;
  get<T>(path: string): Promise<Answer<T>> {
    return this.first(this.turn(), (c) => c.get<T>(path), () => true);
  }

  /**
   * Several requests to one member (the next in turn; the one after if it is down), for
   * answers that must agree with each other: status and the exports of the same member.
   */
  async one<T>(use: (client: ApiClient) => Promise<T>): Promise<{ member: string; value: T }> {
    const answer = await this.first(this.turn(), async (c) => ({ status: 200, headers: {}, body: await use(c) }), () => true);
    return { member: answer.member, value: answer.body };
  }

  post<T>(path: string, body: unknown): Promise<Answer<T>> {
    return this.first(0, (c) => c.post<T>(path, body), (err) => err.notSent);
  }

  /** Ask every member (token rotation): each one's answer or error, in order. */
  async each<T>(call: (client: ApiClient) => Promise<ApiResponse<T>>): Promise<Array<{ member: string; answer?: ApiResponse<T>; error?: Error }>> {
    return Promise.all(
      this.clients.map(async (c) => {
        try {
          return { member: c.member, answer: await call(c) };
        } catch (err) {
          return { member: c.member, error: err as Error };
        }
      }),
    );
  }

  private turn(): number {
    const start = this.next;
    this.next = (start + 1) % this.clients.length;
    return start;
  }

  private async first<T>(start: number, call: (c: ApiClient) => Promise<ApiResponse<T>>, mayRetry: (err: MemberUnreachableError) => boolean): Promise<Answer<T>> {
    const failures: Array<{ member: string; error: string }> = [];
    let notSent = true;
    for (let i = 0; i < this.clients.length; i++) {
      const client = this.clients[(start + i) % this.clients.length]!;
      try {
        return { ...(await call(client)), member: client.member };
      } catch (err) {
        if (err instanceof ApiError || !(err instanceof MemberUnreachableError)) throw err;
        failures.push({ member: client.member, error: err.message });
        notSent &&= err.notSent;
        if (!mayRetry(err)) break;
      }
    }
    const listed = failures.map((f) => `  ${f.error}`).join('\n');
    const message =
      failures.length === 1 && this.clients.length === 1
        ? failures[0]!.error
        : failures.length < this.clients.length
          ? `the change may have arrived, so it was not sent to another member:\n${listed}`
          : `no member answered (${failures.length} asked):\n${listed}`;
    throw new MemberUnreachableError(message, notSent, failures);
  }
}
