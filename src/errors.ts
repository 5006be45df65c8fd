// SPDX-License-Identifier: Apache-2.0
/**
 * The one error catalog of Tributary.
 *
 * Every failure a user can see (a CLI message, a journal reason code, an ACK text) comes from an
 * entry here, so its code is stable and documented: `test/unit/errors.test.ts` fails when a code
 * has no heading in `docs/errors.md`. Codes follow `<AREA>_<WHAT>`; never rename one, add a new one.
 *
 * This file imports nothing of ours, so every layer may import it.
 */

/** One catalog entry: a message template with `{name}` placeholders. */
export interface ErrorSpec {
  /** Message template; `{key}` is replaced by `params[key]`. */
  readonly message: string;
  /** True for errors caused by the user's input (shown as one line, no stack trace). */
  readonly user: boolean;
}

const define = <T extends Record<string, ErrorSpec>>(entries: T): T => entries;

/** All error codes with their message templates. */
export const ERROR_CATALOG = define({
  // --- configuration and CLI ---
  CONFIG_INVALID: { message: 'invalid configuration:\n{issues}', user: true },
  CONFIG_UNREADABLE: { message: 'cannot read config file {file}: {reason}', user: true },
  CLI_USAGE: { message: '{reason}', user: true },
  CLI_FILE_UNREADABLE: { message: 'cannot read {file}: {reason}', user: true },
  CLI_BAD_ADDRESS: { message: 'invalid address "{value}": expected HOST:PORT', user: true },
  CLI_FILE_UNWRITABLE: { message: 'cannot write {file}: {reason}', user: true },
  // --- network listeners ---
  NET_PORT_IN_USE: { message: '{what} port {port} on {host} is already in use', user: true },
  NET_LISTEN_FAILED: { message: 'cannot listen for {what} on {host}:{port}: {reason}', user: true },
  NET_CONNECT_FAILED: { message: 'cannot connect to {host}:{port}: {reason}', user: true },
  NET_TLS_HANDSHAKE: { message: 'TLS handshake failed: {reason}', user: true },
  NET_TLS_FILES: { message: 'cannot load TLS {what} from {file}: {reason}', user: true },
  NET_ACK_TIMEOUT: { message: 'no ACK from {host}:{port} within {timeoutMs} ms', user: true },
  NET_CONNECTION_CLOSED: { message: 'connection to {host}:{port} closed before the ACK arrived', user: true },
  // --- MLLP framing (transport level, journaled as rejected frames or transport events) ---
  MLLP_FRAME_TOO_LARGE: { message: 'MLLP frame exceeds maxFrameBytes ({maxFrameBytes} bytes)', user: true },
  MLLP_TOO_MANY_CONNECTIONS: { message: 'connection refused: {limit} connections already open{scope}', user: true },
  MLLP_IDLE_TIMEOUT: { message: 'connection closed after {idleTimeoutMs} ms without data', user: true },
  MLLP_STRAY_BYTES: { message: '{bytes} bytes outside any frame were skipped on this connection', user: true },
  MLLP_INCOMPLETE_FRAME: { message: 'connection closed inside a frame ({bytes} bytes discarded)', user: true },
  // --- HL7 v2 content (each carries a table 0357 code and a location when raised as Hl7Error) ---
  HL7_EMPTY: { message: 'empty message', user: true },
  HL7_NO_MSH: { message: 'message does not start with an MSH segment', user: true },
  HL7_BAD_DELIMITERS: { message: 'invalid delimiters in MSH-1/MSH-2: {reason}', user: true },
  HL7_BAD_SEGMENT: { message: 'invalid segment: {reason}', user: true },
  HL7_REQUIRED_FIELD: { message: 'required field {field} is missing', user: true },
  HL7_BAD_ESCAPE: { message: 'invalid escape sequence: {reason}', user: true },
  HL7_BAD_CHARSET: { message: 'cannot decode the message as {charset}: {reason}', user: true },
  HL7_BAD_BATCH: { message: 'invalid batch: {reason}', user: true },
  HL7_BAD_PATH: { message: 'invalid path "{path}": {reason}', user: true },
  HL7_CONTROL_BYTES: { message: 'message contains control byte 0x{byte} at offset {offset}', user: true },
  // --- journal and storage ---
  JOURNAL_WRITE_FAILED: { message: 'could not commit to the journal: {reason}', user: false },
  JOURNAL_OPEN_FAILED: { message: 'cannot open the journal at {file}: {reason}', user: true },
  JOURNAL_NOT_FOUND: { message: 'no message with id {id} in {file}', user: true },
  JOURNAL_CLOSED: { message: 'the journal is closed (engine shutting down)', user: false },
  JOURNAL_DUPLICATE: { message: 'duplicate of message {originalId} (same sender and MSH-10 within {windowMs} ms)', user: true },
  // --- HTTP interface (HL7 over HTTP and SOAP; answered with an HTTP status, nothing journaled) ---
  HTTP_UNAUTHORIZED: { message: 'authentication required', user: true },
  HTTP_FORBIDDEN: { message: 'access denied', user: true },
  HTTP_BODY_TOO_LARGE: { message: 'request body exceeds http.maxBodyBytes ({maxBodyBytes} bytes)', user: true },
  HTTP_UNSUPPORTED_MEDIA_TYPE: { message: 'unsupported Content-Type "{contentType}": expected one of {expected}', user: true },
  HTTP_BAD_REQUEST: { message: 'bad HTTP request: {reason}', user: true },
  HTTP_SOAP_MALFORMED: { message: 'malformed SOAP request: {reason}', user: true },
  // --- senders, credentials, audit (runtime checks: AUTH_*, answered AR; administration: ADMIN_*) ---
  AUTH_ADDRESS_REFUSED: { message: 'connection from {address} refused: no sender allows this address', user: true },
  AUTH_FAILED: { message: 'authentication failed', user: true },
  AUTH_LOCKED_OUT: { message: 'too many failed authentication attempts from this address; try again later', user: true },
  AUTH_UNKNOWN_ALIAS: { message: 'MSH-4 names an unknown organisation alias "{alias}"', user: true },
  AUTH_NO_GRANT: { message: '{organisation} has not granted {grantee} the right to send for it{scope}', user: true },
  AUTH_ACTING_INVALID: { message: 'cannot tell the acting organisation from MSH-4: {reason}', user: true },
  AUTH_APPLICATION_REFUSED: { message: 'sending application "{application}" (MSH-3) is not allowed for this sender', user: true },
  ADMIN_INVALID: { message: '{field}: {reason}', user: true },
  ADMIN_NOT_FOUND: { message: 'no {what} "{id}"', user: true },
  ADMIN_DUPLICATE: { message: '{what} "{id}" already exists', user: true },
  ADMIN_IN_USE: { message: '{what} "{id}" is still used by {uses}; remove those first', user: true },
  ADMIN_CONFIG_INVALID: { message: 'invalid declared access configuration:\n{issues}', user: true },
  // --- record: patients, identifiers, ADT demographics and lists, merges, review queue (answered AR) ---
  RECORD_UNSUPPORTED_TYPE: { message: 'unsupported message type {type}', user: true },
  RECORD_NO_IDENTIFIER: { message: 'PID-2/PID-3 carry no patient identifier this organisation can use', user: true },
  RECORD_INVALID_NHS_NUMBER: { message: 'invalid NHS number in {location}: {reason}', user: true },
  RECORD_CONFLICTING_IDENTIFIERS: { message: 'conflicting patient identifiers: {reason}', user: true },
  RECORD_UNKNOWN_PATIENT: { message: 'no record matches the patient identifiers, and {type} does not create records{why}', user: true },
  RECORD_CREATE_INSUFFICIENT: { message: 'cannot create a record: {missing} missing', user: true },
  RECORD_EMAIL_IN_USE: { message: 'the email address in {location} belongs to another record', user: true },
  RECORD_NHS_NUMBER_IN_USE: { message: 'the NHS number in {location} belongs to another record', user: true },
  RECORD_INVALID_NATIONAL_ID: { message: 'invalid {name} in {location}: {reason}', user: true },
  RECORD_NATIONAL_ID_IN_USE: { message: 'the {name} in {location} belongs to another record', user: true },
  RECORD_ZTM_INVALID: { message: '{location}: {reason}', user: true },
  RECORD_BAD_FIELD: { message: '{location}: {reason}', user: true },
  RECORD_DUPLICATE_ALLERGY: { message: 'AL1[{second}] repeats AL1[{first}] (same allergen and date)', user: true },
  RECORD_MERGE_UNKNOWN: { message: 'MRG-1 identifies no record to merge', user: true },
  RECORD_MERGE_SAME: { message: 'MRG-1 and PID identify the same record', user: true },
  RECORD_REVIEW_CLOSED: { message: 'review item {id} is already {status}', user: true },
  RECORD_NOT_MERGED: { message: 'merge {id} has already been undone', user: true },
  RECORD_UNMERGE_ORDER: { message: 'merge {id} cannot be undone: its surviving record was merged into another record since (merge {later}); undo that merge first', user: true },
  RECORD_INVITATION_CLOSED: { message: 'invitation {id} is already {status}: only a pending invitation can be marked sent or cancelled', user: true },
  RECORD_PATIENT_NOT_FOUND: { message: 'no patient record {what}', user: true },
  RECORD_MIGRATION_FAILED: { message: 'cannot upgrade the record tables to version {version}: {reason}', user: true },
  // --- record: encounters and appointments (ADT A01..A38, SIU) ---
  RECORD_VISIT_NUMBER_MISSING: { message: 'PV1-19.1 (visit number) must be provided', user: true },
  RECORD_VISIT_UNKNOWN: { message: '{trigger} cancels an event of a visit (PV1-19.1) this organisation has not sent', user: true },
  RECORD_ZVN_INVALID: { message: 'ZVN-1 must name the event to update (A01, A02, A03, A05 or A14), got "{value}"', user: true },
  RECORD_ENCOUNTER_TIME_INVALID: { message: '{field} is not a valid HL7 timestamp', user: true },
  RECORD_PLACER_ID_MISSING: { message: 'SCH-1.1 (placer ID) must be provided', user: true },
  RECORD_APPOINTMENT_START_MISSING: { message: '{field} (appointment start) must be provided to create an appointment', user: true },
  RECORD_APPOINTMENT_TIME_INVALID: { message: '{field} is not a valid HL7 timestamp', user: true },
  // --- record: reports, results, documents (ORU, MDM) ---
  RECORD_SEGMENT_MISSING: { message: 'the message has no {segment} segment', user: true },
  RECORD_SEGMENT_ORDER: { message: '{where}: {segment} must follow an OBR', user: true },
  RECORD_FILLER_MISSING: { message: '{where}: no filler order number in ORC-3.1 or OBR-3.1', user: true },
  RECORD_FILLER_MISMATCH: { message: '{where}: ORC-3.1 "{orc}" and OBR-3.1 "{obr}" must be equal', user: true },
  RECORD_DUPLICATE_REPORT: { message: '{where}: filler order number "{filler}" appears in more than one OBR', user: true },
  RECORD_RESULT_CODE_MISSING: { message: '{where}: no test code in OBX-3.1', user: true },
  RECORD_DUPLICATE_RESULT: { message: '{where}: test code "{code}" appears more than once for filler order number "{filler}"', user: true },
  RECORD_OBSERVATION_TIME_MISSING: { message: '{where}: No observation timestamp in OBX or OBR', user: true },
  RECORD_BAD_TIMESTAMP: { message: '{where}: {field} is not a valid HL7 timestamp', user: true },
  RECORD_BAD_VALUE: { message: '{where}: OBX-5 is not a valid {type} value', user: true },
  RECORD_DOCUMENT_NUMBER_MISSING: { message: 'TXA-12 (unique document number) must be provided', user: true },
  RECORD_DOCUMENT_NOT_AUTHENTICATED: { message: 'TXA-17 (completion status) is "{status}": only authenticated (AU) documents are accepted', user: true },
  RECORD_DOCUMENT_NO_CONTENT: { message: 'the document has no content: no OBX with text or an encapsulated attachment', user: true },
  RECORD_BAD_ATTACHMENT: { message: '{where}: encapsulated data (OBX-5) {reason}', user: true },
  RECORD_ATTACHMENT_NOT_FOUND: { message: 'no attachment {id}, or its content is incomplete', user: true },
  // --- channels: configuration, scripts, routing, destinations ---
  CHANNEL_INVALID: { message: 'invalid channels ({count} problems):\n{issues}', user: true },
  CHANNEL_NO_ROUTE: { message: 'no channel for this message ({messageType})', user: true },
  CHANNEL_REJECTED: { message: 'channel {channel}, step {step}: rejected: {reason}', user: true },
  CHANNEL_MESSAGE_TOO_LARGE: { message: 'channel {channel}: the message ({reason}) exceeds limits.maxMessageBytes ({maxMessageBytes} bytes)', user: true },
  CHANNEL_SCRIPT_FAILED: { message: 'channel {channel}, step {step}: script failed: {reason}', user: true },
  CHANNEL_SCRIPT_TIMEOUT: { message: 'channel {channel}, step {step}: script exceeded its time limit of {timeoutMs} ms', user: true },
  CHANNEL_STEP_FAILED: { message: 'channel {channel}, step {step}: {reason}', user: true },
  CHANNEL_TEST_FAILED: { message: '{count} channel test cases failed:\n{failures}', user: true },
  // destinations and the outbox (recorded on the outbox item; never in an ACK: the sender already has AA)
  CHANNEL_DESTINATION_UNREACHABLE: { message: 'destination {destination}: cannot connect to {target}: {reason}', user: true },
  CHANNEL_DESTINATION_TIMEOUT: { message: 'destination {destination}: no answer within {timeoutMs} ms', user: true },
  CHANNEL_DESTINATION_FAILED: { message: 'destination {destination}: delivery failed: {reason}', user: true },
  CHANNEL_DESTINATION_ACK_MISMATCH: { message: 'destination {destination}: the ACK is for MSH-10 "{ackControlId}", expected "{controlId}"', user: true },
  CHANNEL_DESTINATION_REFUSED: { message: 'destination {destination} refused the message: {reason}', user: true },
  CHANNEL_DESTINATION_GAVE_UP: { message: 'destination {destination}: gave up after {attempts} attempts; last error: {reason}', user: true },
  OUTBOX_NOT_FOUND: { message: 'no outbox item with id {id}', user: true },
  OUTBOX_NOT_DEAD: { message: 'outbox item {id} is {status}; only dead items can be retried', user: true },
  OUTBOX_ORPHANED: { message: 'destination {destination} has {count} pending outbox items but no channel declares it', user: true },
  // --- anything unexpected: answered AE, logged with a stack (no PHI) ---
  INTERNAL: { message: 'unexpected error: {reason}', user: false },
});

/** A stable error code from the catalog. */
export type ErrorCode = keyof typeof ERROR_CATALOG;

/** Values substituted into a catalog message template. */
export type ErrorParams = Record<string, string | number | boolean | undefined>;

function format(template: string, params: ErrorParams): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => {
    const v = params[key];
    return v === undefined ? '' : String(v);
  });
}

/**
 * Base class of every error Tributary raises on purpose. `code` is stable; `params` keep the
 * values the message was built from (never PHI: ids, sizes, paths, reasons only).
 */
export class TributaryError extends Error {
  /** Stable catalog code, e.g. `MLLP_FRAME_TOO_LARGE`. */
  readonly code: ErrorCode;
  /** The values the message was built from. */
  readonly params: ErrorParams;

  /**
   * @param code - catalog code
   * @param params - values for the message template
   * @param options - `cause` for chained errors
   */
  constructor(code: ErrorCode, params: ErrorParams = {}, options?: ErrorOptions) {
    super(format(ERROR_CATALOG[code].message, params), options);
    this.name = 'TributaryError';
    this.code = code;
    this.params = params;
  }

  /** True when the error is the user's to fix (print one line, no stack). */
  get isUserError(): boolean {
    return ERROR_CATALOG[this.code].user;
  }
}

/** Narrowing helper: is `e` a {@link TributaryError} (optionally with the given code)? */
export function isTributaryError(e: unknown, code?: ErrorCode): e is TributaryError {
  return e instanceof TributaryError && (code === undefined || e.code === code);
}

/** The message of any thrown value, for logs and ACK texts. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
