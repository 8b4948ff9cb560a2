import type { Logger } from '../../fabric/log.js';
import type { OperationalParams } from './negotiation.js';
import type { Session } from './session.js';
import type { Task } from './task.js';

/**
 * What a connection's handlers (the command path, task management, text requests) use of
 * their connection. Connection implements it; the handlers import this instead of the
 * Connection class, which imports them, so the imports have no cycle.
 */
export interface ConnectionLink {
  readonly session: Session | undefined;
  readonly params: OperationalParams;
  readonly closed: boolean;
  /** The connection's logger (bound to its id and peer). */
  readonly log: Logger;
  readonly commands: { abortTask(task: Task): void };
  fillCounters(bhs: Buffer, advanceStatSN?: boolean): void;
  sendPdus(pdus: readonly { bhs: Buffer; data?: readonly Buffer[]; length?: number }[], onSent?: () => void): void;
  reject(rejected: Buffer, reason: number): void;
  close(reason: string): void;
}
