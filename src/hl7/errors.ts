// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 content errors: a catalog code (for logs, journal reasons and docs) plus the HL7 table 0357
 * code and the location that end up in the ACK's MSA/ERR segments (see `buildAck`).
 */
import { TributaryError, type ErrorCode, type ErrorParams } from '../errors.js';

/**
 * HL7 table 0357 ("Message error condition codes"), the codes HAPI's `ErrorCode` also uses.
 * 1xx are message problems (answered `AR`), 2xx are application problems (`AE`/`AR`).
 */
export const Hl7ErrorCode = {
  SegmentSequence: 100,
  RequiredFieldMissing: 101,
  DataType: 102,
  TableValueNotFound: 103,
  UnsupportedMessageType: 200,
  UnsupportedEventCode: 201,
  UnsupportedProcessingId: 202,
  UnsupportedVersionId: 203,
  UnknownKeyIdentifier: 204,
  DuplicateKeyIdentifier: 205,
  ApplicationRecordLocked: 206,
  ApplicationInternalError: 207,
} as const;

/**
 * Where in a message a problem is, in HL7's own terms (all numbers 1-based, as in the ERL data
 * type of ERR-2, v2.5.1 §2.15.5.2).
 */
export interface Hl7Location {
  /** Segment id, e.g. `PID`; `''` when the segment has no valid id (then `sequence` is its index). */
  segment: string;
  /** 1-based occurrence of that segment id in the message, or the 1-based segment index when `segment` is `''`. */
  sequence?: number;
  /** Field number (HL7 numbering: MSH-1 is the field separator). */
  field?: number;
  /** 1-based field repetition. */
  repetition?: number;
  /** 1-based component. */
  component?: number;
  /** 1-based subcomponent. */
  subcomponent?: number;
}

/**
 * Render a location in the path syntax of {@link parsePath}, e.g. `PID-3[2].1`, `OBX[3]-5`,
 * `MSH-10`. Occurrence and repetition 1 are left out, as they are the path defaults; a segment
 * without a valid id prints as `segment 5`.
 */
export function formatLocation(loc: Hl7Location): string {
  let s: string;
  if (loc.segment === '') s = loc.sequence !== undefined ? `segment ${loc.sequence}` : 'segment';
  else s = loc.sequence !== undefined && loc.sequence > 1 ? `${loc.segment}[${loc.sequence}]` : loc.segment;
  if (loc.field === undefined) return s;
  s += `-${loc.field}`;
  if (loc.repetition !== undefined && loc.repetition > 1) s += `[${loc.repetition}]`;
  if (loc.component === undefined) return s;
  s += `.${loc.component}`;
  if (loc.subcomponent !== undefined) s += `.${loc.subcomponent}`;
  return s;
}

/**
 * An error in message content: a catalog code, the HL7 table 0357 code to report in the ACK, and
 * (when known) where it is. Only `buildAck` turns it into MSA/ERR (style habit 5).
 */
export class Hl7Error extends TributaryError {
  /** HL7 table 0357 code, see {@link Hl7ErrorCode}. */
  readonly hl7Code: number;
  /** Where the problem is, when known. */
  readonly location?: Hl7Location;

  /**
   * @param code - catalog code (`HL7_*` for content problems, `INTERNAL` for 207)
   * @param hl7Code - HL7 table 0357 code
   * @param params - values for the catalog message template
   * @param location - where in the message
   * @param options - `cause` for chained errors
   */
  constructor(code: ErrorCode, hl7Code: number, params: ErrorParams = {}, location?: Hl7Location, options?: ErrorOptions) {
    super(code, params, options);
    this.name = 'Hl7Error';
    this.hl7Code = hl7Code;
    if (location !== undefined) this.location = location;
  }
}
