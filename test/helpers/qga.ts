/**
 * The QEMU guest agent protocol (QMP-style JSON over the VM's virtio-serial channel), as a
 * hypervisor uses it: wait for the agent, run a command in the guest and read its output.
 * The VM exposes the channel as a Unix socket (-chardev socket,path=…,server=on,wait=off).
 */
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ExecResult {
  readonly exitcode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class GuestAgent {
  private buffer = '';
  /** Answers are matched in order; a sync skips whatever comes before its own answer. */
  private readonly waiting: Array<(line: Record<string, unknown>) => boolean> = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8').on('data', (d: string) => {
      this.buffer += d;
      for (;;) {
        const nl = this.buffer.indexOf('\n');
        if (nl < 0) break;
        // guest-sync-delimited answers start with 0xFF: drop it and anything before it.
        const text = this.buffer.slice(0, nl).replace(/^[^{]*/, '');
        this.buffer = this.buffer.slice(nl + 1);
        if (text === '') continue;
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue; // noise from an agent (re)starting
        }
        if (this.waiting[0]?.(line)) this.waiting.shift();
      }
    });
  }

  /** Connect and wait until the agent answers a sync (it starts late in the guest's boot). */
  static async connect(path: string, timeoutMs: number): Promise<GuestAgent> {
    const deadline = Date.now() + timeoutMs;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path, () => resolve(s));
      s.once('error', reject);
    });
    const agent = new GuestAgent(socket);
    for (let id = 1; Date.now() < deadline; id++) {
      const answer = await agent.call('guest-sync-delimited', { id }, 3000).catch(() => undefined);
      if (answer === id) return agent;
      agent.waiting.length = 0;
      agent.buffer = '';
      await sleep(2000);
    }
    socket.destroy();
    throw new Error(`the guest agent did not answer within ${timeoutMs} ms`);
  }

  call(command: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${command}: no answer within ${timeoutMs} ms`)), timeoutMs);
      const sync = command === 'guest-sync-delimited';
      this.waiting.push((line) => {
        // The 0xFF that starts a sync makes the agent answer a parse error first: skip it.
        if (sync && line.return !== args.id) return false;
        clearTimeout(timer);
        if ('error' in line) reject(new Error(`${command}: ${JSON.stringify(line.error)}`));
        else resolve(line.return);
        return true;
      });
      // A sync starts with a 0xFF byte: the agent drops any half-read request before it.
      if (command === 'guest-sync-delimited') this.socket.write(Buffer.from([0xff]));
      this.socket.write(`${JSON.stringify({ execute: command, arguments: args })}\n`);
    });
  }

  /** Run a program in the guest to completion. */
  async exec(path: string, args: readonly string[], timeoutMs = 120_000): Promise<ExecResult> {
    const { pid } = (await this.call('guest-exec', { path, arg: args, 'capture-output': true })) as { pid: number };
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const s = (await this.call('guest-exec-status', { pid })) as { exited: boolean; exitcode?: number; 'out-data'?: string; 'err-data'?: string };
      if (s.exited) {
        const text = (b64?: string): string => (b64 ? Buffer.from(b64, 'base64').toString('utf8') : '');
        return { exitcode: s.exitcode ?? -1, stdout: text(s['out-data']), stderr: text(s['err-data']) };
      }
      await sleep(500);
    }
    throw new Error(`${path} ${args.join(' ')} did not finish in the guest within ${timeoutMs} ms`);
  }

  close(): void {
    this.socket.destroy();
  }
}
