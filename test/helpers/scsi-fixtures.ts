/** Shared helpers for the SCSI layer tests: a target over memory devices, CDB builders, fault injection. */
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { CheckedDevice } from '../../fabric/checked.js';
import type { BlockDevice } from '../../fabric/device.js';
import { FaultyDevice } from './faulty.js';
import { AluaState, type AluaOptions } from '../../gateway/scsi/alua.js';
import type { LunConfig } from '../../gateway/scsi/logical-unit.js';
import { MemoryReservationStore, type ReservationStore } from '../../gateway/scsi/reservation-store.js';
import { ScsiTarget } from '../../gateway/scsi/target.js';
import { DeviceReservations } from '../../gateway/scsi/device-reservations.js';
import type { Nexus, ScsiResult } from '../../gateway/scsi/types.js';

export const TARGET = 'iqn.2026-11.test.blockgate:t1';

export function nexus(initiator = 'iqn.2026-11.test:host1', isid = '400001370000', port = 1, group = 1): Nexus {
  return { initiatorName: initiator, isid, targetName: TARGET, relativeTargetPortId: port, targetPortGroupId: group };
}
export const A = nexus();
export const B = nexus('iqn.2026-11.test:host2', '400001370001');

export interface Fixture {
  target: ScsiTarget;
  memory: MemoryBackend;
  fault: FaultyDevice;
  device: BlockDevice;
  alua: AluaState;
  store: ReservationStore;
  run(cdb: number[] | Buffer, options?: { nexus?: Nexus; lun?: number; data?: Buffer | Buffer[]; tag?: number }): Promise<ScsiResult>;
}

let tags = 1;

export function makeTarget(
  options: {
    size?: number;
    blockSize?: 512 | 4096;
    readOnly?: boolean;
    alua?: AluaOptions;
    store?: ReservationStore;
    extraLuns?: Map<number, LunConfig>;
  } = {},
): Fixture {
  const memory = new MemoryBackend({ name: 'mem', size: options.size ?? 8 * 1024 * 1024, readOnly: options.readOnly });
  const fault = new FaultyDevice(memory);
  const device = new CheckedDevice(fault);
  const alua = options.alua ? new AluaState(options.alua) : AluaState.single();
  const store = options.store ?? new MemoryReservationStore();
  const luns = new Map<number, LunConfig>([[0, { device, exportName: 'disk0', blockSize: options.blockSize }]]);
  for (const [n, c] of options.extraLuns ?? []) luns.set(n, c);
  const target = new ScsiTarget({ targetName: TARGET, luns, alua, reservations: new DeviceReservations(store) });
  return {
    target,
    memory,
    fault,
    device,
    alua,
    store,
    run(cdb, o = {}) {
      const buf = Buffer.isBuffer(cdb) ? cdb : Buffer.from(cdb);
      const data = o.data === undefined ? undefined : Array.isArray(o.data) ? o.data : [o.data];
      return target.execute({
        nexus: o.nexus ?? A,
        lun: o.lun ?? 0,
        cdb: buf,
        direction: data ? 'write' : 'read',
        expectedDataInLength: 1 << 20,
        dataOut: data,
        taskTag: tags++,
      });
    },
  };
}

/** Concatenated data-in of a result. */
export function dataIn(r: ScsiResult): Buffer {
  if (!r.dataIn) return Buffer.alloc(0);
  return Buffer.isBuffer(r.dataIn) ? r.dataIn : Buffer.concat(r.dataIn as Buffer[]);
}

/** [sense key, ASC, ASCQ] of a CHECK CONDITION. */
export function senseOf(r: ScsiResult): [number, number, number] | undefined {
  return r.sense ? [r.sense[2]! & 0x0f, r.sense[12]!, r.sense[13]!] : undefined;
}

export function cdb10(opcode: number, lba: number, blocks: number, flags = 0): number[] {
  const b = Buffer.alloc(10);
  b[0] = opcode;
  b[1] = flags;
  b.writeUInt32BE(lba, 2);
  b.writeUInt16BE(blocks, 7);
  return [...b];
}

export function cdb16(opcode: number, lba: number, blocks: number, flags = 0): number[] {
  const b = Buffer.alloc(16);
  b[0] = opcode;
  b[1] = flags;
  b.writeBigUInt64BE(BigInt(lba), 2);
  b.writeUInt32BE(blocks, 10);
  return [...b];
}

/** Clears the power-on style unit attentions a test does not care about. */
export async function clearUnitAttentions(f: Fixture, n: Nexus = A, lun = 0): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const r = await f.run([0, 0, 0, 0, 0, 0], { nexus: n, lun });
    if (r.status !== 2 || (r.sense![2]! & 0x0f) !== 6) return;
  }
}
