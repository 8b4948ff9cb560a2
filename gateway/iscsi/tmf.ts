import { FINAL_BIT, Opcode, TmfFunction, TmfResponse } from './constants.js';
import type { ConnectionLink } from './connection-link.js';
import { abortTargetTasks } from './target-runtime.js';
import { itt, lunOf, newBhs, type Pdu } from './pdu.js';

/**
 * Task management (RFC 7143 §11.5–11.6): aborts tasks in the transport (their responses are
 * suppressed) and tells the SCSI layer, which owns unit attentions and reservations.
 */
export async function handleTaskManagement(conn: ConnectionLink, pdu: Pdu): Promise<void> {
  const b = pdu.bhs;
  const fn = b[1]! & 0x7f;
  const lun = lunOf(b);
  const session = conn.session!;
  const target = session.target!;
  const nexus = session.nexus!;
  let response: number = TmfResponse.FUNCTION_COMPLETE;

  switch (fn) {
    case TmfFunction.ABORT_TASK: {
      // RFC 7143 §11.5.1: a) a task we have is aborted; b) one whose command has not
      // arrived yet is counted as received (and will never run); c) anything else — in
      // particular a command already answered — "does not exist", so an initiator never
      // gets both a response to the command and "function complete" for its abort.
      const referenced = b.readUInt32BE(20);
      const refCmdSN = b.readUInt32BE(32);
      const task = session.tasks.get(referenced);
      if (task) {
        conn.commands.abortTask(task);
        await target.scsi.abortTask(nexus, referenced);
      } else if (session.notYetReceived(refCmdSN, b.readUInt32BE(24))) {
        session.consume(refCmdSN);
      } else {
        response = TmfResponse.TASK_DOES_NOT_EXIST;
      }
      break;
    }
    case TmfFunction.ABORT_TASK_SET:
    case TmfFunction.CLEAR_TASK_SET:
      if (!target.scsi.hasLun(nexus, lun)) {
        response = TmfResponse.LUN_DOES_NOT_EXIST;
        break;
      }
      for (const task of [...session.tasks.values()]) if (task.lun === lun) conn.commands.abortTask(task);
      await target.scsi.abortTaskSet(nexus, lun);
      break;
    case TmfFunction.LOGICAL_UNIT_RESET:
      if (!target.scsi.hasLun(nexus, lun)) {
        response = TmfResponse.LUN_DOES_NOT_EXIST;
        break;
      }
      abortTargetTasks(target, lun);
      await target.scsi.lunReset(nexus, lun);
      break;
    case TmfFunction.TARGET_WARM_RESET:
    case TmfFunction.TARGET_COLD_RESET:
      // One initiator resetting the target aborts everyone's tasks: only where allowed.
      if (target.accessOf(session.initiatorName)?.allowTargetReset !== true) {
        conn.log.warn({ initiator: session.initiatorName, function: fn === TmfFunction.TARGET_COLD_RESET ? 'target cold reset' : 'target warm reset' }, 'target reset not authorized');
        response = TmfResponse.FUNCTION_AUTHORIZATION_FAILED;
        break;
      }
      abortTargetTasks(target, undefined);
      await target.scsi.targetReset(nexus, fn === TmfFunction.TARGET_COLD_RESET);
      break;
    case TmfFunction.TASK_REASSIGN:
      response = TmfResponse.TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED;
      break;
    default:
      response = TmfResponse.FUNCTION_NOT_SUPPORTED;
  }

  if (conn.closed) return;
  const bhs = newBhs(Opcode.TASK_MGMT_RESPONSE, FINAL_BIT);
  bhs[2] = response;
  bhs.writeUInt32BE(itt(b), 16);
  conn.fillCounters(bhs);
  conn.sendPdus([{ bhs }]);
  // A cold reset ends every session of the target (SAM-5: as if power-cycled).
  if (fn === TmfFunction.TARGET_COLD_RESET && response === TmfResponse.FUNCTION_COMPLETE) conn.close('target cold reset');
}
