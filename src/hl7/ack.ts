// SPDX-License-Identifier: Apache-2.0
/**
 * Acknowledgements: the one place where errors become MSA/ERR (style habit 5, HAPI
 * `populateResponse`), and the salvage reader that lets us answer even unparseable input.
 */
import { DEFAULT_DELIMITERS, type Delimiters, encodingCharacters, makeDelimiters } from './delimiters.js';
import { type Hl7Error, formatLocation } from './errors.js';
import { escapeValue as escapeStrict } from './escape.js';
import { type AckRequest, ackRequestFromMsh, nthPiece } from './message.js';
import { formatHl7Timestamp } from './timestamp.js';

/** MSA-1 codes: original mode `AA`/`AE`/`AR`, enhanced mode (commit level) `CA`/`CE`/`CR`. */
export type AckCode = 'AA' | 'AR' | 'AE' | 'CA' | 'CR' | 'CE';

/** What to put in an ACK. */
export interface AckOptions {
  /** MSA-1. */
  code: AckCode;
  /** MSA-3 free text (escaped for you); defaults to the error's message and location. */
  text?: string;
  /** The problem to report in ERR (and, without `text`, in MSA-3). */
  error?: Hl7Error;
  /** MSH-10 of the ACK itself. */
  controlId: string;
  /** MSH-7 of the ACK. */
  timestamp: Date;
  /** MSH-3 of the ACK; default `TRIBUTARY`. */
  sendingApplication?: string;
  /** MSH-4 of the ACK; default `TRIBUTARY`. */
  sendingFacility?: string;
}

/** The version used when the inbound message gave none we can read. */
const DEFAULT_VERSION = '2.5.1';

/** True when the version (MSH-12.1) is before 2.5, where ERR-1 (ELD) was the only ERR field. */
/**
 * Escape text for the ACK, never throwing: an ACK must be sendable for any inbound message. With
 * delimiters that define no escape character (`^~&`, `^~}`), a delimiter or control character in
 * our text cannot be escaped, so it is replaced by a space.
 */
function escapeValue(value: string, d: Delimiters): string {
  if (d.escape !== '') return escapeStrict(value, d);
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value.charAt(i);
    const c = value.charCodeAt(i);
    const special = c < 32 || c === 127 || ch === d.field || ch === d.component || ch === d.repetition
      || ch === d.subcomponent || (d.truncation !== '' && ch === d.truncation);
    out += special ? ' ' : ch;
  }
  return out;
}

function beforeV25(version: string): boolean {
  // "2.3.1" → major 2, minor 3. Unknown or empty versions are treated as current (≥ 2.5).
  if (version.length < 3 || version.charCodeAt(0) !== 50 || version.charCodeAt(1) !== 46) return false;
  const minor = version.charCodeAt(2) - 48;
  if (minor < 0 || minor > 9) return false;
  const next = version.charCodeAt(3);
  if (next >= 48 && next <= 57) return false; // 2.10+
  return minor < 5;
}

function num(n: number | undefined): string {
  return n === undefined ? '' : String(n);
}

let stampMs = Number.NaN;
let stampText = '';

/** MSH-7 of an ACK: a busy engine sends many ACKs within one millisecond, so the last one is kept. */
function stamp(d: Date): string {
  const ms = d.getTime();
  if (ms !== stampMs) {
    stampText = formatHl7Timestamp(d);
    stampMs = ms;
  }
  return stampText;
}

/** The start of the last ACK's MSH (`MSH|^~\&|APP|FACILITY|`) and what it was built from. */
let headDelimiters: Delimiters | null = null;
let headApplication = '';
let headFacility = '';
let headText = '';

/**
 * `MSH`, the delimiters and our MSH-3/MSH-4, each escaped: the same for almost every ACK, so the
 * last one is kept (compared by value: every parsed message has its own delimiters object).
 */
function head(d: Delimiters, application: string, facility: string): string {
  const h = headDelimiters;
  if (
    h === null || h.field !== d.field || h.component !== d.component || h.repetition !== d.repetition || h.escape !== d.escape
    || h.subcomponent !== d.subcomponent || h.truncation !== d.truncation || application !== headApplication || facility !== headFacility
  ) {
    const f = d.field;
    headText = `MSH${f}${encodingCharacters(d)}${f}${escapeValue(application, d)}${f}${escapeValue(facility, d)}${f}`;
    headDelimiters = d;
    headApplication = application;
    headFacility = facility;
  }
  return headText;
}

/**
 * Build an ACK (segments joined and terminated by CR).
 *
 * - MSH uses the inbound delimiters; MSH-3/4 are ours (default `TRIBUTARY`), MSH-5/6 echo the
 *   inbound MSH-3/4, MSH-7 is `timestamp`, MSH-9 is `ACK^<trigger>` (`ACK` without one), MSH-10 is
 *   `controlId`, MSH-11/12 echo the inbound.
 * - MSA-1 is `code`, MSA-2 echoes the inbound MSH-10, MSA-3 is `text` or, when an error is given,
 *   its message and location (`required field MSH-10 is missing at MSH-10`), as PKB's AR texts do.
 * - With an error, ERR follows the inbound version (v2.5.1 §2.15.5; HAPI does the same): before
 *   2.5, ERR-1 (ELD) = `segment^sequence^field^code&text&HL70357`; from 2.5, ERR-2 (ERL) =
 *   `segment^sequence^field^repetition^component^subcomponent`, ERR-3 (CWE) =
 *   `code^text^HL70357`, ERR-4 (severity) = `E`.
 * - `request` null (nothing readable came in): default delimiters, version 2.5.1, empty echoes.
 *
 * A hot path (every message): string templates only, no message tree.
 */
export function buildAck(request: AckRequest | null, opts: AckOptions): string {
  const d: Delimiters = request?.delimiters ?? DEFAULT_DELIMITERS;
  const f = d.field;
  const c = d.component;
  const version = request === null ? DEFAULT_VERSION : request.version;
  const trigger = request?.triggerEvent ?? '';
  const err = opts.error;
  let text = opts.text;
  if (text === undefined && err !== undefined) {
    text = err.location !== undefined ? `${err.message} at ${formatLocation(err.location)}` : err.message;
  }
  let ack = head(d, opts.sendingApplication ?? 'TRIBUTARY', opts.sendingFacility ?? 'TRIBUTARY')
    + `${request?.sendingApplication ?? ''}${f}${request?.sendingFacility ?? ''}`
    + `${f}${stamp(opts.timestamp)}${f}${f}ACK${trigger === '' ? '' : c + trigger}`
    + `${f}${escapeValue(opts.controlId, d)}${f}${request?.processingId ?? ''}${f}${version}\r`
    + `MSA${f}${opts.code}${f}${request?.controlId ?? ''}${text === undefined || text === '' ? '' : f + escapeValue(text, d)}\r`;
  if (err !== undefined) {
    const loc = err.location;
    const codeText = escapeValue(err.message, d);
    const v1 = nthPiece(version, c, 0) ?? '';
    if (beforeV25(v1)) {
      const s = d.subcomponent;
      ack += `ERR${f}${loc?.segment ?? ''}${c}${num(loc?.sequence)}${c}${num(loc?.field)}${c}${err.hl7Code}${s}${codeText}${s}HL70357\r`;
    } else {
      const erl = loc === undefined
        ? ''
        : `${loc.segment}${c}${num(loc.sequence)}${c}${num(loc.field)}${c}${num(loc.repetition)}${c}${num(loc.component)}${c}${num(loc.subcomponent)}`;
      ack += `ERR${f}${f}${erl}${f}${err.hl7Code}${c}${codeText}${c}HL70357${f}E\r`;
    }
  }
  return ack;
}

function stripControls(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) {
      let out = '';
      for (let j = 0; j < s.length; j++) {
        const cj = s.charCodeAt(j);
        if (!((cj < 32 && cj !== 9) || cj === 127)) out += s.charAt(j);
      }
      return out;
    }
  }
  return s;
}

/**
 * Read just enough of a possibly malformed text to acknowledge it: the MSH fields of the first
 * line that starts with `MSH` (also after junk such as `[SOM]` on the same line). Delimiters
 * that are invalid fall back to the defaults one by one. Returns null when there is no MSH at
 * all (answer with `buildAck(null, …)`). Never throws.
 */
export function salvageAckRequest(text: string): AckRequest | null {
  try {
    let at = text.indexOf('MSH');
    while (at >= 0) {
      const sep = text.charCodeAt(at + 3);
      if (sep > 32 && sep < 127 && !((sep >= 48 && sep <= 57) || (sep >= 65 && sep <= 90) || (sep >= 97 && sep <= 122))) break;
      at = text.indexOf('MSH', at + 3);
    }
    if (at < 0) return null;
    let end = at;
    while (end < text.length) {
      const ch = text.charCodeAt(end);
      if (ch === 13 || ch === 10) break;
      end++;
    }
    const fs = text.charAt(at + 3);
    const parts = text.slice(at, end).split(fs);
    const enc = parts[1] ?? '';
    let d: Delimiters;
    try {
      d = makeDelimiters(fs, enc);
    } catch {
      // Unusable MSH-2: answer with the default encoding characters (and the sender's field
      // separator when it does not clash with them).
      d = '^~\\&'.includes(fs) ? DEFAULT_DELIMITERS : { ...DEFAULT_DELIMITERS, field: fs };
    }
    // Echoed fields go back into our ACK: drop control characters so the ACK itself is clean.
    for (let i = 0; i < parts.length; i++) parts[i] = stripControls(parts[i] as string);
    return ackRequestFromMsh(parts, d);
  } catch {
    return null;
  }
}
