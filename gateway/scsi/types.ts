/**
 * Notes for the transport (H7, SCSI side), all compatible additions:
 * - `ScsiResult.dataOutLength`: the data-out length the CDB asked for (SPDTL), so the
 *   transport can report write residuals against its Expected Data Transfer Length, also
 *   when that length is 0. When a WRITE's data-out is shorter than the CDB asks, the whole
 *   blocks received are written and the status is GOOD (FCP-4 option a, as libiscsi's
 *   residual tests expect); WRITE SAME / COMPARE AND WRITE need their exact size, and a
 *   short parameter list fails with INVALID FIELD IN INFORMATION UNIT.
 * - `lun` is the LUN number already decoded from the 8-byte SAM LUN field.
 * - `cdb` may be the whole 16-byte CDB field: the SCSI layer cuts it to the opcode's length.
 * - Data-in is already truncated to the CDB's ALLOCATION LENGTH; the transport truncates
 *   further to its EDTL and reports residuals.
 * - ScsiTarget also has `nexusLost(nexus)` (call when a session ends: releases RESERVE(6)
 *   reservations and aborts its tasks) and `close()`; SAM status TASK ABORTED (0x40) is
 *   returned for a command aborted by task management (the transport then sends nothing).
 *
 * The contract between the iSCSI transport (gateway/iscsi) and the protocol-neutral SCSI
 * layer (gateway/scsi). The transport collects a command's data-out (immediate, unsolicited
 * and R2T-solicited) before calling `execute`, and sends back data-in, status and sense;
 * the SCSI layer only ever calls the fabric.
 */

export type DataDirection = 'none' | 'read' | 'write' | 'bidirectional';

/** What a command does to the medium, for reservation conflicts (SPC-4 5.9.1 tables 49-50). */
export type ReservationAccess = 'none' | 'read' | 'write';

/** The I_T nexus: who sent the command and through which target port. */
export interface Nexus {
  /** iSCSI initiator name (IQN/EUI) */
  readonly initiatorName: string;
  /** Initiator session id, 6 bytes as 12 hex digits; with the name, the initiator port. */
  readonly isid: string;
  /** Target name (IQN) the session logged in to. */
  readonly targetName: string;
  /** Relative target port identifier (1-based, unique within the target). */
  readonly relativeTargetPortId: number;
  /** Target port group the receiving portal belongs to. */
  readonly targetPortGroupId: number;
}

export interface ScsiCommand {
  readonly nexus: Nexus;
  readonly lun: number;
  readonly cdb: Buffer;
  readonly direction: DataDirection;
  /** Initiator's Expected Data Transfer Length for data-in (read direction). */
  readonly expectedDataInLength: number;
  /** Data-out as received, in slices (no concatenation); undefined when none. */
  readonly dataOut?: readonly Buffer[];
  /** Transport task tag, so task management can find and abort it. */
  readonly taskTag: number;
  /** Aborted by task management: the SCSI layer should stop at the next opportunity. */
  readonly signal?: AbortSignal;
}

export interface ScsiResult {
  /** SAM status byte: GOOD 0x00, CHECK CONDITION 0x02, BUSY 0x08, RESERVATION CONFLICT 0x18, TASK SET FULL 0x28. */
  readonly status: number;
  /** Data-in, possibly longer than the allocation length; the transport truncates and computes residuals. */
  readonly dataIn?: Buffer | readonly Buffer[];
  /** Fixed-format sense data (0x70) for CHECK CONDITION. */
  readonly sense?: Buffer;
  /**
   * Data-in bytes the CDB called for, when `dataIn` holds less (a READ produces no more than
   * the initiator's expected length); the transport reports the overflow residual from it.
   */
  readonly dataInLength?: number;
  /** Data-out bytes the CDB called for (SPDTL), set by commands that take data-out. */
  readonly dataOutLength?: number;
  /**
   * Set when data-in lies in a pooled buffer: the transport calls it once the socket is
   * done with the data (sent, or dropped with the command), and not before.
   */
  readonly release?: () => void;
}
