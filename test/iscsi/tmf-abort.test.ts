/**
 * ABORT TASK as RFC 7143 §11.5.1 has it: a) a task the target has is aborted and gets no
 * response; b) one whose command has not arrived yet is counted as received and never
 * runs; c) a command already answered "does not exist". libiscsi's
 * iSCSITMF.AbortTaskSimpleAsync accepts only (GOOD, task does not exist) or (no response,
 * function complete): answering a finished WRITE's abort with "function complete" failed it
 * whenever the WRITE completed before its ABORT TASK was read.
 */
import t from 'tap';
import type { WriteOptions } from '../../fabric/device.js';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { Layer } from '../../fabric/layer.js';
import { read10, startBlockgate, TEST_UNIT_READY, TestInitiator, write10 } from '../helpers/iscsi.js';

/** RFC 7143 §11.5.1 function codes and §11.6.1 response codes. */
const ABORT_TASK = 1;
const FUNCTION_COMPLETE = 0;
const TASK_DOES_NOT_EXIST = 1;

/** Holds writes while `held` is set; `reached` resolves when one arrives. */
class HeldWrites extends Layer {
  held: Promise<void> | null = null;
  reached: Promise<void> = Promise.resolve();
  private arrive: () => void = () => undefined;
  writes = 0;

  hold(until: Promise<void>): void {
    this.held = until;
    this.reached = new Promise((resolve) => (this.arrive = resolve));
  }

  override async write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    this.writes++;
    if (this.held) {
      this.arrive();
      await this.held;
    }
    return this.next.write(offset, data, options);
  }
}

const device = new HeldWrites(new MemoryBackend({ name: 'disk', size: 8 << 20 }));
const bg = await startBlockgate({ device });
t.teardown(() => bg.stop());
const ini = await TestInitiator.connect(bg.port);
t.teardown(() => ini.close());
await ini.login();
await ini.scsi(TEST_UNIT_READY); // the power-on unit attention
const data = Buffer.alloc(4096, 0x5a);

t.test('c) the abort of a WRITE already answered GOOD: task does not exist', async (t) => {
  for (let i = 0; i < 20; i++) {
    const tag = ini.itt;
    const cmdSN = ini.cmdSN;
    t.equal((await ini.scsi(write10(i * 8, 8), { write: data })).status, 0, 'WRITE: GOOD');
    t.equal(await ini.taskManagement(ABORT_TASK, { refItt: tag, refCmdSN: cmdSN }), TASK_DOES_NOT_EXIST, 'ABORT TASK: task does not exist');
  }
});

t.test('a) the abort of a WRITE still running: function complete, and the WRITE gets no response', async (t) => {
  let release!: () => void;
  device.hold(new Promise((resolve) => (release = resolve)));
  const tag = ini.itt;
  const cmdSN = ini.cmdSN;
  const write = ini.scsi(write10(1000, 8), { write: data });
  write.catch(() => undefined); // never answered
  await device.reached;
  t.equal(await ini.taskManagement(ABORT_TASK, { refItt: tag, refCmdSN: cmdSN }), FUNCTION_COMPLETE);
  device.held = null;
  release();
  await ini.nop(); // a round trip after the device finished
  t.equal((await ini.scsi(TEST_UNIT_READY)).status, 0);
  t.notOk(ini.hasPduFor(tag), 'no response for the aborted WRITE');
});

t.test('b) the abort of a command not received yet: counted as received, and it never runs', async (t) => {
  const lost = ini.cmdSN++;
  const tag = ini.itt++;
  t.equal(await ini.taskManagement(ABORT_TASK, { refItt: tag, refCmdSN: lost }), FUNCTION_COMPLETE);
  t.equal((await ini.scsi(TEST_UNIT_READY)).status, 0, 'the next command runs: the window moved past the lost one');
  // The lost WRITE turns up after all: it must not run.
  const writesBefore = device.writes;
  const next = ini.itt;
  ini.itt = tag;
  const late = ini.scsi(write10(2000, 8), { write: data, cmdSN: lost });
  late.catch(() => undefined);
  ini.itt = next;
  t.equal((await ini.scsi(read10(0, 1), { read: 512 })).status, 0);
  await ini.nop();
  t.notOk(ini.hasPduFor(tag), 'no R2T or response for the late command');
  t.equal(device.writes, writesBefore, 'the device never saw it');
});
