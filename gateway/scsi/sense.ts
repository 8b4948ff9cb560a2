import { isBlockError, type BlockErrorCode } from '../../fabric/errors.js';
import * as op from './opcodes.js';
import type { Asc } from './opcodes.js';
import type { ScsiResult } from './types.js';

/** Where an invalid field sits, for the sense-key specific FIELD POINTER (SPC-4 4.5.2.4.2). */
export interface FieldPointer {
  /** true: in the CDB; false: in the parameter list (data-out). */
  readonly inCdb: boolean;
  readonly byte: number;
  /** Bit of the field's most significant bit, when the field does not start at bit 7. */
  readonly bit?: number;
}

export interface SenseOptions {
  /** INFORMATION field (VALID bit set): an LBA or a byte offset, per command. */
  readonly information?: number;
  readonly field?: FieldPointer;
}

/** Thrown by command handlers; the target turns it into status + sense. */
export class ScsiError extends Error {
  override readonly name = 'ScsiError';
  constructor(
    readonly senseKey: number,
    readonly asc: Asc,
    readonly options: SenseOptions = {},
    /** Non-CHECK CONDITION outcomes (BUSY, RESERVATION CONFLICT) carry no sense. */
    readonly status: number = op.SAM_STAT_CHECK_CONDITION,
  ) {
    super(`sense ${senseKey.toString(16)}/${asc[0].toString(16)}/${asc[1].toString(16)}`);
  }

  toResult(): ScsiResult {
    if (this.status !== op.SAM_STAT_CHECK_CONDITION) return { status: this.status };
    return { status: this.status, sense: fixedSense(this.senseKey, this.asc, this.options) };
  }
}

export const FIXED_SENSE_LENGTH = 18;

/** Fixed-format sense data (response code 70h, current error). */
export function fixedSense(senseKey: number, asc: Asc, options: SenseOptions = {}): Buffer {
  const sense = Buffer.alloc(FIXED_SENSE_LENGTH);
  sense[0] = 0x70;
  sense[2] = senseKey & 0x0f;
  if (options.information !== undefined) {
    sense[0] |= 0x80;
    // The INFORMATION field is 4 bytes; larger LBAs are truncated as SPC-4 allows.
    sense.writeUInt32BE(options.information % 2 ** 32, 3);
  }
  sense[7] = FIXED_SENSE_LENGTH - 8;
  sense[12] = asc[0];
  sense[13] = asc[1];
  const field = options.field;
  if (field) {
    sense[15] = 0x80 | (field.inCdb ? 0x40 : 0) | (field.bit !== undefined ? 0x08 | (field.bit & 7) : 0);
    sense.writeUInt16BE(field.byte, 16);
  }
  return sense;
}

export const GOOD: ScsiResult = Object.freeze({ status: op.SAM_STAT_GOOD });

export function invalidFieldInCdb(byte: number, bit?: number): ScsiError {
  return new ScsiError(op.ILLEGAL_REQUEST, op.ASC_INVALID_FIELD_IN_CDB, { field: { inCdb: true, byte, bit } });
}

export function invalidFieldInParameterList(byte: number, bit?: number): ScsiError {
  return new ScsiError(op.ILLEGAL_REQUEST, op.ASC_INVALID_FIELD_IN_PARAMETER_LIST, {
    field: { inCdb: false, byte, bit },
  });
}

export function parameterListLengthError(): ScsiError {
  return new ScsiError(op.ILLEGAL_REQUEST, op.ASC_PARAMETER_LIST_LENGTH_ERROR);
}

export function lbaOutOfRange(lba?: number): ScsiError {
  return new ScsiError(op.ILLEGAL_REQUEST, op.ASC_LBA_OUT_OF_RANGE, lba === undefined ? {} : { information: lba });
}

export function invalidOpcode(): ScsiError {
  return new ScsiError(op.ILLEGAL_REQUEST, op.ASC_INVALID_COMMAND_OPERATION_CODE, {
    field: { inCdb: true, byte: 0, bit: 7 },
  });
}

export function writeProtected(): ScsiError {
  return new ScsiError(op.DATA_PROTECT, op.ASC_WRITE_PROTECTED);
}

export function reservationConflict(): ScsiError {
  return new ScsiError(0, op.ASC_NO_ADDITIONAL_SENSE, {}, op.SAM_STAT_RESERVATION_CONFLICT);
}

export function notReady(asc: Asc): ScsiError {
  return new ScsiError(op.NOT_READY, asc);
}

/** What the failed request was doing: the same errno means a different sense on read and write. */
export type IoKind = 'read' | 'write' | 'other';

interface Mapping {
  readonly key: number;
  readonly asc: Asc;
  readonly status?: number;
}

/**
 * The one place fabric BlockError codes become sense data. EIO on a read is an unrecovered
 * read error; on anything that changes the medium, a write error.
 */
const BLOCK_ERROR_SENSE: Record<BlockErrorCode, (io: IoKind) => Mapping> = {
  EIO: (io) => ({ key: op.MEDIUM_ERROR, asc: io === 'read' ? op.ASC_UNRECOVERED_READ_ERROR : op.ASC_WRITE_ERROR }),
  EPERM: () => ({ key: op.DATA_PROTECT, asc: op.ASC_WRITE_PROTECTED }),
  ENOSPC: () => ({ key: op.DATA_PROTECT, asc: op.ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT }),
  EINVAL: () => ({ key: op.ILLEGAL_REQUEST, asc: op.ASC_INVALID_FIELD_IN_CDB }),
  EOVERFLOW: () => ({ key: op.ILLEGAL_REQUEST, asc: op.ASC_INVALID_FIELD_IN_CDB }),
  ENOTSUP: () => ({ key: op.ILLEGAL_REQUEST, asc: op.ASC_INVALID_FIELD_IN_CDB }),
  ESHUTDOWN: () => ({ key: op.NOT_READY, asc: op.ASC_LOGICAL_UNIT_NOT_READY }),
  // A slow backend is worth a retry by the host (possibly down another path).
  ETIMEDOUT: () => ({ key: op.ABORTED_COMMAND, asc: op.ASC_LOGICAL_UNIT_COMMUNICATION_TIMEOUT }),
  // Out of memory is transient: BUSY makes the initiator retry later.
  ENOMEM: () => ({ key: 0, asc: op.ASC_NO_ADDITIONAL_SENSE, status: op.SAM_STAT_BUSY }),
};

/** Any error thrown while executing a command, as a ScsiError. */
export function toScsiError(err: unknown, io: IoKind, information?: number): ScsiError {
  if (err instanceof ScsiError) return err;
  if (isBlockError(err)) {
    const m = BLOCK_ERROR_SENSE[err.code](io);
    const options = m.key === op.MEDIUM_ERROR && information !== undefined ? { information } : {};
    return new ScsiError(m.key, m.asc, options, m.status);
  }
  return new ScsiError(op.HARDWARE_ERROR, op.ASC_INTERNAL_TARGET_FAILURE);
}
