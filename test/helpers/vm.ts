/**
 * qemu-system-x86_64 virtual machines for tests (TCG: these machines have no KVM). The serial
 * console is the VM's stdout, kept in full and matched against awaited patterns. Every VM is
 * killed in teardown.
 */
import { spawn } from 'node:child_process';

export interface VmOptions {
  /** -drive values, e.g. `file=nbd://127.0.0.1:PORT/boot,format=raw,if=virtio`. */
  readonly drives: readonly string[];
  readonly memoryMiB?: number;
  readonly cpus?: number;
  /** More qemu arguments (network, guest agent channel…). */
  readonly args?: readonly string[];
}

export interface Vm {
  /** Everything the serial console printed so far. */
  readonly serial: () => string;
  /** Resolves with the match once the console prints it; rejects if qemu exits or time runs out. */
  waitForSerial(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): Promise<void>;
}

export function startVm(t: { teardown(fn: () => unknown): void }, options: VmOptions): Vm {
  const args = [
    '-nodefaults',
    '-machine',
    'pc,accel=tcg',
    '-m',
    String(options.memoryMiB ?? 512),
    '-smp',
    String(options.cpus ?? 1),
    '-display',
    'none',
    '-serial',
    'stdio',
    '-monitor',
    'none',
    '-no-reboot',
    ...options.drives.flatMap((d) => ['-drive', d]),
    ...(options.args ?? []),
  ];
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let serial = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('latin1').on('data', (d: string) => {
    serial += d;
    for (const l of [...listeners]) l();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const l of [...listeners]) l();
      resolve({ code, signal });
    }),
  );
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  t.teardown(kill);

  return {
    serial: () => serial,
    exited,
    kill,
    waitForSerial(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = pattern.exec(serial);
          if (m) return done(() => resolve(m));
          if (child.exitCode !== null || child.signalCode !== null) {
            done(() => reject(new Error(`qemu exited (${child.exitCode ?? child.signalCode}) before ${pattern}; stderr: ${stderr}\n--- serial tail\n${serial.slice(-3000)}`)));
          }
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`no ${pattern} on the serial console within ${timeoutMs} ms\n--- serial tail\n${serial.slice(-3000)}`))),
          timeoutMs,
        );
        const done = (fn: () => void): void => {
          clearTimeout(timer);
          listeners.delete(check);
          fn();
        };
        listeners.add(check);
        check();
      });
    },
  };
}
