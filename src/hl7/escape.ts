// SPDX-License-Identifier: Apache-2.0
/**
 * Escape sequences (v2.5.1 §2.7 "Use of escape sequences in text fields").
 */
import { Buffer, isUtf8 } from 'node:buffer';
import type { Delimiters } from './delimiters.js';
import { Hl7Error, Hl7ErrorCode } from './errors.js';

const HEX = '0123456789ABCDEF';

function hexByte(c: number): string {
  return HEX.charAt(c >> 4) + HEX.charAt(c & 15);
}

/**
 * Escape a plain value so it can stand in a field: the delimiters become `\F\ \S\ \T\ \R\ \E\`
 * (and `\P\` for the v2.7 truncation character), CR and LF become `\X0D\` and `\X0A\` so that
 * the value cannot end the segment, and other control characters become `\Xhh\` (the parser
 * refuses raw control bytes). TAB is kept.
 *
 * @throws Hl7Error HL7_BAD_ESCAPE when the value needs escaping but the message has no escape
 *   character (a 3-character MSH-2)
 */
export function escapeValue(value: string, d: Delimiters): string {
  // Fast path: most values need nothing (one scan, no allocation).
  const n = value.length;
  let i = 0;
  for (; i < n; i++) {
    const ch = value.charAt(i);
    const c = value.charCodeAt(i);
    if (c < 32 || c === 127) {
      if (c !== 9) break;
    } else if (ch === d.field || ch === d.component || ch === d.repetition || ch === d.subcomponent
      || ch === d.escape || (ch === d.truncation && d.truncation !== '')) break;
  }
  if (i === n) return value;
  const e = d.escape;
  if (e === '') {
    throw new Hl7Error('HL7_BAD_ESCAPE', Hl7ErrorCode.DataType, {
      reason: 'the value contains a delimiter or control character but MSH-2 defines no escape character',
    });
  }
  let out = value.slice(0, i);
  for (; i < n; i++) {
    const ch = value.charAt(i);
    const c = value.charCodeAt(i);
    if (c < 32 || c === 127) out += c === 9 ? ch : `${e}X${hexByte(c)}${e}`;
    else if (ch === e) out += `${e}E${e}`;
    else if (ch === d.field) out += `${e}F${e}`;
    else if (ch === d.component) out += `${e}S${e}`;
    else if (ch === d.subcomponent) out += `${e}T${e}`;
    else if (ch === d.repetition) out += `${e}R${e}`;
    else if (ch === d.truncation && d.truncation !== '') out += `${e}P${e}`;
    else out += ch;
  }
  return out;
}

function isHex(s: string): boolean {
  if (s.length === 0 || s.length % 2 !== 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** Hex bytes as text: UTF-8 when they form valid UTF-8, else ISO 8859-1 (one char per byte). */
function decodeHex(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  return isUtf8(bytes) ? bytes.toString('utf8') : bytes.toString('latin1');
}

/**
 * Decode the escape sequences of a raw value. `\F\ \S\ \T\ \R\ \E\` give the delimiters (`\P\` the
 * truncation character when there is one), `\Xhh..\` gives the bytes as UTF-8 when valid and
 * ISO 8859-1 otherwise (adjacent `\X..\` sequences are decoded together so a UTF-8 character split
 * over several survives), and `\.br\` gives a line feed. Other formatting sequences (`\.sp\`, `\H\`,
 * `\N\`, `\.in\` …), charset switches (`\C..\`, `\M..\`), local `\Z..\` sequences and anything
 * unknown or unterminated are kept verbatim: reading must never throw or lose text.
 */
export function unescapeValue(raw: string, d: Delimiters): string {
  const e = d.escape;
  if (e === '') return raw;
  let i = raw.indexOf(e);
  if (i < 0) return raw;
  let out = '';
  let from = 0;
  while (i >= 0) {
    const j = raw.indexOf(e, i + 1);
    if (j < 0) break; // unterminated: the rest is literal
    const seq = raw.slice(i + 1, j);
    let rep: string | undefined;
    let next = j + 1;
    if (seq.length === 1) {
      switch (seq) {
        case 'F': rep = d.field; break;
        case 'S': rep = d.component; break;
        case 'T': rep = d.subcomponent; break;
        case 'R': rep = d.repetition; break;
        case 'E': rep = e; break;
        case 'P': rep = d.truncation !== '' ? d.truncation : undefined; break;
        default: rep = undefined;
      }
    } else if (seq === '.br') {
      rep = '\n';
    } else if ((seq.charCodeAt(0) === 88 || seq.charCodeAt(0) === 120) && isHex(seq.slice(1))) {
      // \Xhh\ (x accepted too): gather directly following hex sequences first.
      let hex = seq.slice(1);
      for (;;) {
        if (raw.charAt(next) !== e) break;
        const k = raw.indexOf(e, next + 1);
        if (k < 0) break;
        const s2 = raw.slice(next + 1, k);
        if (!((s2.charCodeAt(0) === 88 || s2.charCodeAt(0) === 120) && isHex(s2.slice(1)))) break;
        hex += s2.slice(1);
        next = k + 1;
      }
      rep = decodeHex(hex);
    }
    if (rep === undefined) {
      // Unknown or formatting sequence: keep it whole and continue after it.
      i = raw.indexOf(e, j + 1);
      continue;
    }
    out += raw.slice(from, i) + rep;
    from = next;
    i = raw.indexOf(e, next);
  }
  return out + raw.slice(from);
}
