/**
 * SCSI constants with the standards' names (SAM-5 status, SPC-4 / SBC-3 operation codes,
 * service actions, sense keys and additional sense codes). Everything else imports these.
 */

/** SAM-5 status codes. */
export const SAM_STAT_GOOD = 0x00;
export const SAM_STAT_CHECK_CONDITION = 0x02;
export const SAM_STAT_CONDITION_MET = 0x04;
export const SAM_STAT_BUSY = 0x08;
export const SAM_STAT_RESERVATION_CONFLICT = 0x18;
export const SAM_STAT_TASK_SET_FULL = 0x28;
export const SAM_STAT_TASK_ABORTED = 0x40;

/** Operation codes (SPC-4 / SBC-3). */
export const TEST_UNIT_READY = 0x00;
export const REQUEST_SENSE = 0x03;
export const READ_6 = 0x08;
export const WRITE_6 = 0x0a;
export const INQUIRY = 0x12;
export const MODE_SELECT_6 = 0x15;
export const RESERVE_6 = 0x16;
export const RELEASE_6 = 0x17;
export const MODE_SENSE_6 = 0x1a;
export const READ_CAPACITY_10 = 0x25;
export const READ_10 = 0x28;
export const WRITE_10 = 0x2a;
export const WRITE_AND_VERIFY_10 = 0x2e;
export const VERIFY_10 = 0x2f;
export const PRE_FETCH_10 = 0x34;
export const SYNCHRONIZE_CACHE_10 = 0x35;
export const WRITE_SAME_10 = 0x41;
export const UNMAP = 0x42;
export const MODE_SELECT_10 = 0x55;
export const RESERVE_10 = 0x56;
export const RELEASE_10 = 0x57;
export const MODE_SENSE_10 = 0x5a;
export const PERSISTENT_RESERVE_IN = 0x5e;
export const PERSISTENT_RESERVE_OUT = 0x5f;
export const READ_16 = 0x88;
export const COMPARE_AND_WRITE = 0x89;
export const WRITE_16 = 0x8a;
export const ORWRITE_16 = 0x8b;
export const WRITE_AND_VERIFY_16 = 0x8e;
export const VERIFY_16 = 0x8f;
export const PRE_FETCH_16 = 0x90;
export const SYNCHRONIZE_CACHE_16 = 0x91;
export const WRITE_SAME_16 = 0x93;
export const SERVICE_ACTION_IN_16 = 0x9e;
export const REPORT_LUNS = 0xa0;
export const MAINTENANCE_IN = 0xa3;
export const MAINTENANCE_OUT = 0xa4;
export const READ_12 = 0xa8;
export const WRITE_12 = 0xaa;
export const WRITE_AND_VERIFY_12 = 0xae;
export const VERIFY_12 = 0xaf;

/** SERVICE ACTION IN(16) service actions (SBC-3). */
export const SAI_READ_CAPACITY_16 = 0x10;
export const SAI_GET_LBA_STATUS = 0x12;

/** MAINTENANCE IN / OUT service actions (SPC-4). */
export const MI_REPORT_TARGET_PGS = 0x0a;
export const MI_REPORT_SUPPORTED_OPERATION_CODES = 0x0c;
export const MO_SET_TARGET_PGS = 0x0a;

/** PERSISTENT RESERVE IN service actions. */
export const PRI_READ_KEYS = 0x00;
export const PRI_READ_RESERVATION = 0x01;
export const PRI_REPORT_CAPABILITIES = 0x02;
export const PRI_READ_FULL_STATUS = 0x03;

/** PERSISTENT RESERVE OUT service actions. */
export const PRO_REGISTER = 0x00;
export const PRO_RESERVE = 0x01;
export const PRO_RELEASE = 0x02;
export const PRO_CLEAR = 0x03;
export const PRO_PREEMPT = 0x04;
export const PRO_PREEMPT_AND_ABORT = 0x05;
export const PRO_REGISTER_AND_IGNORE_EXISTING_KEY = 0x06;
export const PRO_REGISTER_AND_MOVE = 0x07;

/** Persistent reservation types. */
export const PR_TYPE_WRITE_EXCLUSIVE = 0x1;
export const PR_TYPE_EXCLUSIVE_ACCESS = 0x3;
export const PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY = 0x5;
export const PR_TYPE_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY = 0x6;
export const PR_TYPE_WRITE_EXCLUSIVE_ALL_REGISTRANTS = 0x7;
export const PR_TYPE_EXCLUSIVE_ACCESS_ALL_REGISTRANTS = 0x8;

/** Sense keys. */
export const NO_SENSE = 0x0;
export const RECOVERED_ERROR = 0x1;
export const NOT_READY = 0x2;
export const MEDIUM_ERROR = 0x3;
export const HARDWARE_ERROR = 0x4;
export const ILLEGAL_REQUEST = 0x5;
export const UNIT_ATTENTION = 0x6;
export const DATA_PROTECT = 0x7;
export const ABORTED_COMMAND = 0xb;
export const MISCOMPARE = 0xe;

/** Additional sense code and qualifier, as [ASC, ASCQ]. */
export type Asc = readonly [number, number];
export const ASC_NO_ADDITIONAL_SENSE: Asc = [0x00, 0x00];
export const ASC_LOGICAL_UNIT_NOT_READY: Asc = [0x04, 0x00];
export const ASC_LOGICAL_UNIT_NOT_READY_MANUAL_INTERVENTION: Asc = [0x04, 0x03];
export const ASC_LOGICAL_UNIT_NOT_ACCESSIBLE_TRANSITION: Asc = [0x04, 0x0a];
export const ASC_LOGICAL_UNIT_NOT_ACCESSIBLE_STANDBY: Asc = [0x04, 0x0b];
export const ASC_LOGICAL_UNIT_NOT_ACCESSIBLE_UNAVAILABLE: Asc = [0x04, 0x0c];
export const ASC_LOGICAL_UNIT_COMMUNICATION_TIMEOUT: Asc = [0x08, 0x01];
export const ASC_WRITE_ERROR: Asc = [0x0c, 0x00];
export const ASC_INVALID_FIELD_IN_INFORMATION_UNIT: Asc = [0x0e, 0x03];
export const ASC_UNRECOVERED_READ_ERROR: Asc = [0x11, 0x00];
export const ASC_MISCOMPARE_DURING_VERIFY: Asc = [0x1d, 0x00];
export const ASC_PARAMETER_LIST_LENGTH_ERROR: Asc = [0x1a, 0x00];
export const ASC_INVALID_COMMAND_OPERATION_CODE: Asc = [0x20, 0x00];
export const ASC_LBA_OUT_OF_RANGE: Asc = [0x21, 0x00];
export const ASC_INVALID_FIELD_IN_CDB: Asc = [0x24, 0x00];
export const ASC_LOGICAL_UNIT_NOT_SUPPORTED: Asc = [0x25, 0x00];
export const ASC_INVALID_FIELD_IN_PARAMETER_LIST: Asc = [0x26, 0x00];
export const ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION: Asc = [0x26, 0x04];
export const ASC_WRITE_PROTECTED: Asc = [0x27, 0x00];
export const ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT: Asc = [0x27, 0x07];
export const ASC_POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED: Asc = [0x29, 0x00];
export const ASC_BUS_DEVICE_RESET_FUNCTION_OCCURRED: Asc = [0x29, 0x03];
export const ASC_I_T_NEXUS_LOSS_OCCURRED: Asc = [0x29, 0x07];
export const ASC_MODE_PARAMETERS_CHANGED: Asc = [0x2a, 0x01];
export const ASC_RESERVATIONS_PREEMPTED: Asc = [0x2a, 0x03];
export const ASC_RESERVATIONS_RELEASED: Asc = [0x2a, 0x04];
export const ASC_REGISTRATIONS_PREEMPTED: Asc = [0x2a, 0x05];
export const ASC_ASYMMETRIC_ACCESS_STATE_CHANGED: Asc = [0x2a, 0x06];
export const ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: Asc = [0x2f, 0x00];
export const ASC_SAVING_PARAMETERS_NOT_SUPPORTED: Asc = [0x39, 0x00];
export const ASC_REPORTED_LUNS_DATA_HAS_CHANGED: Asc = [0x3f, 0x0e];
export const ASC_INTERNAL_TARGET_FAILURE: Asc = [0x44, 0x00];

/** Asymmetric access states (SPC-4 REPORT TARGET PORT GROUPS). */
export const ALUA_ACTIVE_OPTIMIZED = 0x0;
export const ALUA_ACTIVE_NON_OPTIMIZED = 0x1;
export const ALUA_STANDBY = 0x2;
export const ALUA_UNAVAILABLE = 0x3;
export const ALUA_OFFLINE = 0xe;
export const ALUA_TRANSITIONING = 0xf;

/** SCSI protocol identifier for iSCSI (SPC-4 table 362). */
export const PROTOCOL_ID_ISCSI = 0x5;
