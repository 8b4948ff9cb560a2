/**
 * In-process fuzz harnesses, libFuzzer style: each feeds one input to the parser the servers
 * run, loaded from the built dist/ (the code that ships, and what the coverage counts). A
 * harness throws only when the code did something other than parse or refuse: an error
 * that is not the protocol's own refusal, or a fault the code reports as internal.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../blockgate-cli.js';
import { iscsiSeeds, nbdRequestSeeds, nbdSeeds, scsiSeeds } from './seeds.js';

type Mod<T> = Promise<T>;
const dist = <T>(path: string): Mod<T> => import(pathToFileURL(join(ROOT, 'dist', path)).href) as Mod<T>;

export const DIST_URL = pathToFileURL(join(ROOT, 'dist')).href + '/';

export interface Harness {
  readonly name: string;
  readonly seeds: Buffer[];
  /** Runs one input; rejects with the failure when the input found a bug. */
  run(input: Buffer): Promise<void>;
}

/** An input's failure: a bug, not a refusal. */
export class HarnessFailure extends Error {
  override readonly name = 'HarnessFailure';
}

const TARGET = 'iqn.2026-11.dev.blockgate:fuzz';
const LOGIN_REQUEST = 0x03;

/** The leading Login Request PDUs of a stream: what the login harness reads (the rest never reaches it). */
function loginPart(stream: Buffer): Buffer {
  let at = 0;
  while (at + 48 <= stream.length && (stream[at]! & 0x3f) === LOGIN_REQUEST) {
    const dlen = stream.readUIntBE(at + 5, 3);
    at += 48 + stream[at + 4]! * 4 + dlen + ((4 - (dlen & 3)) & 3);
  }
  return stream.subarray(0, at);
}
const EXPORT = 'fuzz';

/** The chunk sizes a stream arrives in, from the input's first byte: parsers see every kind of cut. */
function* cut(input: Buffer): Generator<Buffer> {
  const step = input.length ? 1 + (input[0]! % 61) * 3 : 1;
  for (let at = 0; at < input.length; at += step) yield input.subarray(at, at + step);
}

/** Loads every harness's code from dist/. */
export async function harnesses(): Promise<Harness[]> {
  const [{ ByteQueue }, { FabricSwitch }, { MemoryBackend }, { rootLogger }, { Refusals }] = await Promise.all([
    dist<typeof import('../../../fabric/byte-queue.js')>('fabric/byte-queue.js'),
    dist<typeof import('../../../fabric/switch.js')>('fabric/switch.js'),
    dist<typeof import('../../../fabric/backends/memory.js')>('fabric/backends/memory.js'),
    dist<typeof import('../../../fabric/log.js')>('fabric/log.js'),
    dist<typeof import('../../../gateway/access/refusals.js')>('gateway/access/refusals.js'),
  ]);
  const [nbdErrors, { handshake }, { negotiateOptions }, { RequestReader }, { FenceRegistry }] = await Promise.all([
    dist<typeof import('../../../gateway/nbd/errors.js')>('gateway/nbd/errors.js'),
    dist<typeof import('../../../gateway/nbd/handshake.js')>('gateway/nbd/handshake.js'),
    dist<typeof import('../../../gateway/nbd/options.js')>('gateway/nbd/options.js'),
    dist<typeof import('../../../gateway/nbd/request-reader.js')>('gateway/nbd/request-reader.js'),
    dist<typeof import('../../../gateway/nbd/fencing.js')>('gateway/nbd/fencing.js'),
  ]);
  const [pdu, { Login }, { DEFAULT_TARGET_LIMITS }] = await Promise.all([
    dist<typeof import('../../../gateway/iscsi/pdu.js')>('gateway/iscsi/pdu.js'),
    dist<typeof import('../../../gateway/iscsi/login.js')>('gateway/iscsi/login.js'),
    dist<typeof import('../../../gateway/iscsi/negotiation.js')>('gateway/iscsi/negotiation.js'),
  ]);
  const [{ ScsiTarget }, { AluaState }, { DeviceReservations }, { MemoryReservationStore }, { cdbLengthOf }] = await Promise.all([
    dist<typeof import('../../../gateway/scsi/target.js')>('gateway/scsi/target.js'),
    dist<typeof import('../../../gateway/scsi/alua.js')>('gateway/scsi/alua.js'),
    dist<typeof import('../../../gateway/scsi/device-reservations.js')>('gateway/scsi/device-reservations.js'),
    dist<typeof import('../../../gateway/scsi/reservation-store.js')>('gateway/scsi/reservation-store.js'),
    dist<typeof import('../../../gateway/scsi/cdb.js')>('gateway/scsi/cdb.js'),
  ]);
  const log = rootLogger.child({ component: 'fuzz' }, { level: 'silent' });

  // ---- NBD: fixed newstyle handshake and option haggling over a NegotiationIo ----------
  const fabric = new FabricSwitch();
  fabric.addDevice(new MemoryBackend({ name: 'ram', size: 1 << 20 }));
  fabric.addExport({ name: EXPORT, device: 'ram' });
  class InputEnded extends Error {}
  const nbdOptions: Harness = {
    name: 'nbd-options',
    seeds: nbdSeeds(EXPORT),
    async run(input) {
      let at = 0;
      const io = {
        address: '192.0.2.1',
        read: (n: number) => (at + n > input.length ? Promise.reject(new InputEnded()) : Promise.resolve(Buffer.from(input.subarray(at, (at += n))))),
        write: () => undefined,
      };
      try {
        const flags = await handshake(io);
        await negotiateOptions(io, flags, { fabric, stopping: () => false, log, refusals: new Refusals(), fences: new FenceRegistry() });
      } catch (err) {
        if (err instanceof InputEnded || err instanceof nbdErrors.NbdProtocolError) return;
        throw err;
      }
    },
  };

  // ---- NBD: the transmission phase's request reader over the socket's byte queue ------
  const nbdRequests: Harness = {
    name: 'nbd-requests',
    seeds: nbdRequestSeeds(),
    async run(input) {
      const queue = new ByteQueue();
      const reader = new RequestReader(queue, 64 * 1024);
      try {
        for (const chunk of cut(input)) {
          queue.push(chunk);
          for (let r = reader.next(); r; r = reader.next()) for (const h of r.holds ?? []) h.release();
        }
      } catch (err) {
        if (!(err instanceof nbdErrors.NbdProtocolError)) throw err;
      }
    },
  };

  // ---- iSCSI: the PDU reader (framing, AHS, digests, segment limits) -----------------
  const iscsiPdu: Harness = {
    name: 'iscsi-pdu',
    seeds: iscsiSeeds(TARGET),
    async run(input) {
      const queue = new ByteQueue();
      // The first byte also decides which digests are on, so both framings are fuzzed.
      const limits = { headerDigest: (input[0] ?? 0) % 3 === 1, dataDigest: (input[0] ?? 0) % 5 === 1, maxDataSegment: 8192 };
      const reader = new pdu.PduReader(queue, limits);
      try {
        for (const chunk of cut(input)) {
          queue.push(chunk);
          for (let p = reader.next(); p; p = reader.next()) pdu.releasePdu(pdu.detachPdu(p));
        }
      } catch (err) {
        if (!(err instanceof pdu.FramingError)) throw err;
      }
    },
  };

  // ---- iSCSI: login PDUs, their text, security and operational negotiation -----------
  const loginTarget = {
    name: TARGET,
    alias: 'fuzz',
    accessOf: () => ({ allowNoAuth: true, allowTargetReset: false, chap: { user: 'fuzz', secret: 'fuzzsecret12' } }),
  };
  const loginContext = {
    limits: DEFAULT_TARGET_LIMITS,
    findTarget: (name: string) => (name === TARGET ? loginTarget : undefined),
    portalGroupTag: () => 1,
  };
  const iscsiLogin: Harness = {
    name: 'iscsi-login',
    seeds: iscsiSeeds(TARGET).map(loginPart),
    async run(input) {
      const queue = new ByteQueue();
      const reader = new pdu.PduReader(queue, { headerDigest: false, dataDigest: false, maxDataSegment: 8192 });
      const login = new Login(loginContext);
      queue.push(input);
      for (;;) {
        let p;
        try {
          p = reader.next();
        } catch (err) {
          if (err instanceof pdu.FramingError) return;
          throw err;
        }
        if (!p) return;
        const step = login.handle(pdu.detachPdu(p));
        // Login answers every initiator error itself; what it calls internal is a bug.
        if (login.internalError !== undefined) throw login.internalError;
        if (step.status !== 0 || step.result) return;
      }
    },
  };

  // ---- SCSI: CDB decoding and the target's dispatch, on a memory device ---------------
  const HARDWARE_ERROR = 0x04;
  const ASC_INTERNAL_TARGET_FAILURE = 0x44;
  const nexus = { initiatorName: 'iqn.2026-11.dev.blockgate:fuzz', isid: '400001370000', targetName: TARGET, relativeTargetPortId: 1, targetPortGroupId: 1 };
  const scsiCdb: Harness = {
    name: 'scsi-cdb',
    seeds: scsiSeeds(),
    async run(input) {
      const device = new MemoryBackend({ name: 'ram', size: 1 << 20 });
      const luns = new Map([[0, { device, exportName: EXPORT }]]);
      const target = new ScsiTarget({ targetName: TARGET, luns, alua: AluaState.single(), reservations: new DeviceReservations(new MemoryReservationStore()) });
      let tag = 1;
      // Records: CDB length (0: the opcode's own), the CDB, u16 data-out length, data-out.
      for (let at = 0; at < input.length; ) {
        const declared = input[at]! % 33;
        const opcode = input[at + 1] ?? 0;
        const n = declared || cdbLengthOf(opcode) || 16;
        const cdb = input.subarray(at + 1, at + 1 + n);
        at += 1 + n;
        const outLength = at + 2 <= input.length ? input.readUInt16BE(at) : 0;
        at += 2;
        const dataOut = outLength > 0 ? [input.subarray(at, at + outLength)] : undefined;
        at += outLength;
        const result = await target.execute({ nexus, lun: 0, cdb, direction: dataOut ? 'write' : 'read', expectedDataInLength: 1 << 16, dataOut, taskTag: tag++ });
        result.release?.();
        const sense = result.sense;
        if (sense && (sense[2]! & 0x0f) === HARDWARE_ERROR && sense[12] === ASC_INTERNAL_TARGET_FAILURE) {
          throw new HarnessFailure(`CDB ${cdb.toString('hex')} ended in INTERNAL TARGET FAILURE (an exception inside the command)`);
        }
      }
    },
  };

  return [nbdOptions, nbdRequests, iscsiPdu, iscsiLogin, scsiCdb];
}
