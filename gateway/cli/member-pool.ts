import { ApiError, MemberUnreachableError, type ApiClient, type ApiResponse } from './api-client.js';

/**
 * The members a command may ask (`--member` repeated: members of one cluster). Reads start
 * at a random member, spreading the load of scripts polling the cluster, and move to the
 * next when one cannot be reached. A change goes to the members in the order given and
 * moves on only when it surely did not arrive (the connection was never made): sent twice,
 * an action such as a failback could run twice.
 */
export interface Answer<T> extends ApiResponse<T> {
  /** The member that answered. */
  readonly member: string;
}

export class MemberPool {
  constructor(
    readonly clients: readonly ApiClient[],
    private readonly pick: () => number = Math.random,
  ) {
    if (clients.length === 0) throw new TypeError('a member pool needs at least one member');
  }

  get(path: string): Promise<Answer<unknown>>;
  get<T>(path: string): Promise<Answer<T>>;
  get<T>(path: string): Promise<Answer<T>> {
    const start = Math.floor(this.pick() * this.clients.length) % this.clients.length;
    return this.first(start, (c) => c.get<T>(path), () => true);
  }

  /**
   * Several requests to one member (a random one; the next if it is down), for answers that
   * must agree with each other: status and the exports of the same member.
   */
  async one<T>(use: (client: ApiClient) => Promise<T>): Promise<{ member: string; value: T }> {
    const start = Math.floor(this.pick() * this.clients.length) % this.clients.length;
    const answer = await this.first(start, async (c) => ({ status: 200, headers: {}, body: await use(c) }), () => true);
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

  private async first<T>(start: number, call: (c: ApiClient) => Promise<ApiResponse<T>>, mayRetry: (err: MemberUnreachableError) => boolean): Promise<Answer<T>> {
    const failures: string[] = [];
    for (let i = 0; i < this.clients.length; i++) {
      const client = this.clients[(start + i) % this.clients.length]!;
      try {
        return { ...(await call(client)), member: client.member };
      } catch (err) {
        if (err instanceof ApiError || !(err instanceof MemberUnreachableError)) throw err;
        failures.push(err.message);
        if (!mayRetry(err)) break;
      }
    }
    throw new MemberUnreachableError(failures.length === 1 ? failures[0]! : `no member answered:\n  ${failures.join('\n  ')}`);
  }
}
