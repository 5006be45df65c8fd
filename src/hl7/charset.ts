// SPDX-License-Identifier: Apache-2.0
/**
 * Bytes to text, honouring MSH-18 (HL7 table 0211) with the fallbacks real feeds need.
 */
import { Buffer, isAscii, isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { Hl7Error, Hl7ErrorCode } from './errors.js';

/** Result of {@link decodeHl7Bytes}. */
export interface DecodedHl7 {
  /** The decoded text (without the BOM). */
  text: string;
  /** What the bytes were decoded as, in table 0211 terms: `UNICODE UTF-8`, `ASCII`, `8859/1` … */
  charset: string;
  /** True when the bytes started with a UTF-8 byte order mark (stripped from `text`). */
  bom: boolean;
  /** True when we did not (or could not) decode as MSH-18 says, or guessed with MSH-18 absent. */
  fallback: boolean;
}

const UTF8 = 'UNICODE UTF-8';
const LATIN1 = '8859/1';

/** Table 0211 names (upper case) → WHATWG/ICU decoder labels. */
const DECODER_LABELS: Record<string, string> = {
  '8859/2': 'iso-8859-2',
  '8859/3': 'iso-8859-3',
  '8859/4': 'iso-8859-4',
  '8859/5': 'iso-8859-5',
  '8859/6': 'iso-8859-6',
  '8859/7': 'iso-8859-7',
  '8859/8': 'iso-8859-8',
  '8859/9': 'iso-8859-9',
  '8859/10': 'iso-8859-10',
  '8859/13': 'iso-8859-13',
  '8859/14': 'iso-8859-14',
  '8859/15': 'iso-8859-15',
  'GB 18030-2000': 'gb18030',
  'BIG-5': 'big5',
  'KS X 1001': 'euc-kr',
};

const decoders = new Map<string, TextDecoder | null>();
function decoderFor(label: string): TextDecoder | null {
  let dec = decoders.get(label);
  if (dec === undefined) {
    try {
      dec = new TextDecoder(label);
    } catch {
      dec = null; // Node built without full ICU
    }
    decoders.set(label, dec);
  }
  return dec;
}

/**
 * MSH-18 (first repetition, trimmed, upper case) read straight from the bytes of the first
 * segment, without decoding the message: `''` when absent.
 */
function peekMsh18(b: Uint8Array, from: number): string {
  const n = b.length;
  // "MSH" then the field separator.
  if (n < from + 8 || b[from] !== 77 || b[from + 1] !== 83 || b[from + 2] !== 72) return '';
  const fs = b[from + 3];
  const rep = b[from + 5];
  let field = 2; // MSH-1 is the separator at from+3; the bytes after it are MSH-2.
  let i = from + 4;
  let start = -1;
  for (; i < n; i++) {
    const c = b[i];
    if (c === 13 || c === 10) break;
    if (c === fs) {
      field++;
      if (field === 18) start = i + 1;
      else if (field === 19) break;
    }
  }
  if (start < 0) return '';
  let end = start;
  while (end < i && b[end] !== rep && b[end] !== fs) end++;
  let s = '';
  for (let k = start; k < end; k++) s += String.fromCharCode(b[k] as number);
  return s.trim().toUpperCase();
}

function canonical(msh18: string): string {
  switch (msh18) {
    case 'UNICODE UTF-8': case 'UTF-8': case 'UTF8': case 'UNICODE UTF8':
      return UTF8;
    case '8859/1': case 'ISO-8859-1': case 'ISO8859-1': case 'ISO 8859-1': case 'ISO-IR100': case 'ISO IR100': case 'LATIN1':
      return LATIN1;
    case 'ASCII': case 'US-ASCII':
      return 'ASCII';
    default:
      return msh18;
  }
}

/**
 * Decode the raw bytes of a message (or a batch: MSH-18 of the first MSH is used).
 *
 * - A UTF-8 byte order mark is stripped (`bom: true`).
 * - MSH-18 absent: UTF-8 when the bytes are valid UTF-8 (ASCII is a subset), else ISO 8859-1
 *   (`fallback: true`): the usual mistake is a Windows/Latin-1 sender that never fills MSH-18.
 * - `UNICODE UTF-8`/`UTF-8`: strict; invalid bytes → Hl7Error HL7_BAD_CHARSET (102, at MSH-18),
 *   because the sender promised UTF-8 and silently replacing bytes would lose data.
 * - `8859/1`: Latin-1, except that bytes which are valid UTF-8 and not plain ASCII are read as
 *   UTF-8 (`fallback: true`): senders often label UTF-8 text 8859/1, and real Latin-1 text
 *   practically never forms valid multi-byte UTF-8 (`Ã«` is not a name).
 * - `ASCII`: as UTF-8 when valid (ASCII is a subset; `fallback` when non-ASCII bytes are present),
 *   else Latin-1 with `fallback`.
 * - `8859/2`…`8859/15`, `GB 18030-2000`, `BIG-5`, `KS X 1001`: through TextDecoder when the runtime
 *   has it, else Latin-1 with `fallback`.
 * - Anything else: UTF-8 (Latin-1 if invalid), `fallback: true`.
 *
 * Hot path: MSH-18 is peeked from the bytes of the first segment; `buffer.isUtf8` is SIMD-fast.
 *
 * @throws Hl7Error HL7_BAD_CHARSET only when MSH-18 declares UTF-8 and the bytes are not
 */
export function decodeHl7Bytes(bytes: Uint8Array): DecodedHl7 {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bom = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf;
  const body = bom ? buf.subarray(3) : buf;
  const declared = canonical(peekMsh18(body, 0));
  const utf8 = (charset: string, fallback: boolean): DecodedHl7 => ({ text: body.toString('utf8'), charset, bom, fallback });
  const latin1 = (fallback: boolean): DecodedHl7 => ({ text: body.toString('latin1'), charset: LATIN1, bom, fallback });
  if (declared === '') return isUtf8(body) ? utf8(UTF8, false) : latin1(true);
  if (declared === UTF8) {
    if (isUtf8(body)) return utf8(UTF8, false);
    throw new Hl7Error('HL7_BAD_CHARSET', Hl7ErrorCode.DataType, { charset: UTF8, reason: 'the bytes are not valid UTF-8' }, { segment: 'MSH', field: 18 });
  }
  if (declared === LATIN1) {
    if (!isAscii(body) && isUtf8(body)) return utf8(UTF8, true);
    return latin1(false);
  }
  if (declared === 'ASCII') {
    if (isAscii(body)) return utf8('ASCII', false);
    return isUtf8(body) ? utf8(UTF8, true) : latin1(true);
  }
  const label = DECODER_LABELS[declared];
  if (label !== undefined) {
    const dec = decoderFor(label);
    if (dec !== null) return { text: dec.decode(body), charset: declared, bom, fallback: false };
    return latin1(true);
  }
  return isUtf8(body) ? utf8(UTF8, true) : latin1(true);
}
