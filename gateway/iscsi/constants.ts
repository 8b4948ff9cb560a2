/**
 * iSCSI protocol constants with the names RFC 7143 gives them (section 11 for PDUs,
 * section 13 for login/text keys). Everything the transport puts on the wire comes from here.
 */

export const BHS_LENGTH = 48;
export const DIGEST_LENGTH = 4;
/** Reserved tag value meaning "no task" (ITT) or "no transfer" (TTT). */
export const RESERVED_TAG = 0xffffffff;

/** Opcodes, initiator to target (RFC 7143 §11.1.1). */
export const Opcode = {
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TASK_MGMT_REQUEST: 0x02,
  LOGIN_REQUEST: 0x03,
  TEXT_REQUEST: 0x04,
  SCSI_DATA_OUT: 0x05,
  LOGOUT_REQUEST: 0x06,
  SNACK_REQUEST: 0x10,
  /** Target to initiator. */
  NOP_IN: 0x20,
  SCSI_RESPONSE: 0x21,
  TASK_MGMT_RESPONSE: 0x22,
  LOGIN_RESPONSE: 0x23,
  TEXT_RESPONSE: 0x24,
  SCSI_DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26,
  R2T: 0x31,
  ASYNC_MESSAGE: 0x32,
  REJECT: 0x3f,
} as const;

export const OPCODE_MASK = 0x3f;
export const IMMEDIATE_BIT = 0x40;
export const FINAL_BIT = 0x80;

/** SCSI Command flags (byte 1). */
export const CommandFlag = { READ: 0x40, WRITE: 0x20, ATTR_MASK: 0x07 } as const;
/** SCSI Response / Data-In flags (byte 1). */
export const ResponseFlag = {
  BIDI_OVERFLOW: 0x10,
  BIDI_UNDERFLOW: 0x08,
  OVERFLOW: 0x04,
  UNDERFLOW: 0x02,
  /** Data-In only: status carried in this PDU. */
  STATUS: 0x01,
  /** Data-In only: acknowledge requested. */
  ACKNOWLEDGE: 0x40,
} as const;

/** SCSI Response "Response" field (§11.4.3). */
export const ScsiResponseCode = { COMMAND_COMPLETED: 0x00, TARGET_FAILURE: 0x01 } as const;

/** Login flags (byte 1): transit, continue, current and next stage. */
export const LoginFlag = { TRANSIT: 0x80, CONTINUE: 0x40 } as const;
export const Stage = { SECURITY_NEGOTIATION: 0, LOGIN_OPERATIONAL_NEGOTIATION: 1, FULL_FEATURE_PHASE: 3 } as const;
export const ISCSI_VERSION = 0x00;

/** Login response Status-Class / Status-Detail, as (class << 8) | detail (§11.13.5). */
export const LoginStatus = {
  SUCCESS: 0x0000,
  TARGET_MOVED_TEMPORARILY: 0x0101,
  TARGET_MOVED_PERMANENTLY: 0x0102,
  INITIATOR_ERROR: 0x0200,
  AUTHENTICATION_FAILURE: 0x0201,
  AUTHORIZATION_FAILURE: 0x0202,
  NOT_FOUND: 0x0203,
  TARGET_REMOVED: 0x0204,
  UNSUPPORTED_VERSION: 0x0205,
  TOO_MANY_CONNECTIONS: 0x0206,
  MISSING_PARAMETER: 0x0207,
  CANT_INCLUDE_IN_SESSION: 0x0208,
  SESSION_TYPE_NOT_SUPPORTED: 0x0209,
  SESSION_DOES_NOT_EXIST: 0x020a,
  INVALID_DURING_LOGIN: 0x020b,
  TARGET_ERROR: 0x0300,
  SERVICE_UNAVAILABLE: 0x0301,
  OUT_OF_RESOURCES: 0x0302,
} as const;

/** Text / login C (continue) and F bits for Text PDUs. */
export const TextFlag = { CONTINUE: 0x40 } as const;

/** Task management functions (§11.5.1). */
export const TmfFunction = {
  ABORT_TASK: 1,
  ABORT_TASK_SET: 2,
  CLEAR_ACA: 3,
  CLEAR_TASK_SET: 4,
  LOGICAL_UNIT_RESET: 5,
  TARGET_WARM_RESET: 6,
  TARGET_COLD_RESET: 7,
  TASK_REASSIGN: 8,
} as const;

/** Task management responses (§11.6.1). */
export const TmfResponse = {
  FUNCTION_COMPLETE: 0,
  TASK_DOES_NOT_EXIST: 1,
  LUN_DOES_NOT_EXIST: 2,
  TASK_STILL_ALLEGIANT: 3,
  TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED: 4,
  FUNCTION_NOT_SUPPORTED: 5,
  FUNCTION_AUTHORIZATION_FAILED: 6,
  FUNCTION_REJECTED: 255,
} as const;

/** Logout reason codes (§11.14.1) and responses (§11.15.1). */
export const LogoutReason = { CLOSE_SESSION: 0, CLOSE_CONNECTION: 1, REMOVE_CONNECTION_FOR_RECOVERY: 2 } as const;
export const LogoutResponse = { SUCCESS: 0, CID_NOT_FOUND: 1, RECOVERY_NOT_SUPPORTED: 2, CLEANUP_FAILED: 3 } as const;

/** Reject reasons (§11.17.1). */
export const RejectReason = {
  DATA_DIGEST_ERROR: 0x02,
  SNACK_REJECT: 0x03,
  PROTOCOL_ERROR: 0x04,
  COMMAND_NOT_SUPPORTED: 0x05,
  IMMEDIATE_COMMAND_REJECT: 0x06,
  TASK_IN_PROGRESS: 0x07,
  INVALID_DATA_ACK: 0x08,
  INVALID_PDU_FIELD: 0x09,
  LONG_OPERATION_REJECT: 0x0a,
  DEPRECATED: 0x0b,
  WAITING_FOR_LOGOUT: 0x0c,
} as const;

/** Asynchronous events (§11.9.1). */
export const AsyncEvent = {
  SCSI_ASYNC_EVENT: 0,
  LOGOUT_REQUEST: 1,
  CONNECTION_DROP: 2,
  SESSION_DROP: 3,
  PARAMETER_NEGOTIATION: 4,
} as const;

/** Additional header segment types (§11.2.2). */
export const AhsType = { EXTENDED_CDB: 1, BIDI_READ_DATA_LENGTH: 2 } as const;

/** SAM status codes the transport itself produces. */
export const SamStatus = { GOOD: 0x00, CHECK_CONDITION: 0x02, BUSY: 0x08, TASK_ABORTED: 0x40 } as const;

/** Largest data segment the 24-bit DataSegmentLength can describe. */
export const MAX_DATA_SEGMENT = 0xffffff;
/** RFC 7143 §13.12: MaxRecvDataSegmentLength range. */
export const MIN_RECV_DATA_SEGMENT = 512;
export const MAX_RECV_DATA_SEGMENT = 0xffffff;
/** Text keys and values: at most 255 bytes of key, 8192 of value (§6.1). */
export const MAX_TEXT_KEY = 63;
export const MAX_TEXT_VALUE = 8192;
/** Login/text PDUs we accept in one negotiation before giving up (runaway initiators). */
export const MAX_TEXT_BYTES = 64 * 1024;
