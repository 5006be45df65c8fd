// SPDX-License-Identifier: Apache-2.0
/**
 * Path syntax for reading and writing message content.
 */
import { Hl7Error, Hl7ErrorCode } from './errors.js';

/** A parsed path; every number is 1-based. */
export interface Hl7Path {
  /** Segment id, e.g. `PID`. */
  segment: string;
  /** Which occurrence of that segment (default 1). */
  occurrence: number;
  /** Field number, HL7 numbering (MSH-1 is the field separator, MSH-2 the encoding characters). */
  field: number;
  /** Field repetition; absent means 1 for reads of one value. */
  repetition?: number;
  /** Component, absent for the whole repetition. */
  component?: number;
  /** Subcomponent, absent for the whole component. */
  subcomponent?: number;
}

const cache = new Map<string, Hl7Path>();
const CACHE_MAX_ENTRIES = 2048;

function fail(path: string, reason: string): Hl7Error {
  return new Hl7Error('HL7_BAD_PATH', Hl7ErrorCode.DataType, { path, reason });
}

/**
 * Parse a path. Grammar (every index 1-based, as HAPI's Terser and the HL7 standard count):
 *
 * ```
 * path  = SEG [ "[" occurrence "]" ] "-" field [ "[" repetition "]" ] [ "." component [ "." subcomponent ] ]
 * SEG   = 3 characters A-Z or 0-9 (segment ids are upper case)
 * ```
 *
 * Examples: `PID-3` (first repetition of PID-3), `PID-3[2].1` (ID number of the second
 * identifier), `OBX[3]-5.1.2` (third OBX, field 5, component 1, subcomponent 2), `MSH-9.2`
 * (trigger event). MSH uses HL7's numbering: `MSH-1` is the field separator, `MSH-2` the encoding
 * characters, `MSH-3` the sending application. Occurrence and repetition default to 1.
 *
 * Parsed paths are cached, so calling this with literal paths in a hot loop is cheap.
 *
 * @throws Hl7Error HL7_BAD_PATH naming what is wrong
 */
export function parsePath(path: string): Hl7Path {
  const hit = cache.get(path);
  if (hit !== undefined) return hit;
  const p = parseUncached(path);
  if (cache.size >= CACHE_MAX_ENTRIES) cache.clear();
  cache.set(path, Object.freeze(p) as Hl7Path);
  return p;
}

function parseUncached(path: string): Hl7Path {
  if (typeof path !== 'string') throw fail(String(path), 'not a string');
  let i = 0;
  const n = path.length;
  if (n < 5) throw fail(path, 'expected SEG-field, e.g. PID-3');
  for (; i < 3; i++) {
    const c = path.charCodeAt(i);
    if (!((c >= 65 && c <= 90) || (c >= 48 && c <= 57))) throw fail(path, 'the segment id must be 3 upper-case letters or digits');
  }
  const segment = path.slice(0, 3);
  // Reads a positive integer at i; returns [value, next index].
  const num = (what: string): number => {
    const start = i;
    let v = 0;
    while (i < n) {
      const c = path.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      i++;
    }
    if (i === start) throw fail(path, `expected a number for the ${what} at character ${start + 1}`);
    if (v < 1) throw fail(path, `the ${what} is 1-based, got ${v}`);
    if (v > 1_000_000) throw fail(path, `the ${what} ${v} is too large`);
    return v;
  };
  let occurrence = 1;
  if (path.charAt(i) === '[') {
    i++;
    occurrence = num('segment occurrence');
    if (path.charAt(i) !== ']') throw fail(path, `expected ] at character ${i + 1}`);
    i++;
  }
  if (path.charAt(i) !== '-') throw fail(path, `expected - after the segment at character ${i + 1}`);
  i++;
  const field = num('field');
  const out: Hl7Path = { segment, occurrence, field };
  if (path.charAt(i) === '[') {
    i++;
    out.repetition = num('repetition');
    if (path.charAt(i) !== ']') throw fail(path, `expected ] at character ${i + 1}`);
    i++;
  }
  if (i < n && path.charAt(i) === '.') {
    i++;
    out.component = num('component');
    if (i < n && path.charAt(i) === '.') {
      i++;
      out.subcomponent = num('subcomponent');
    }
  }
  if (i !== n) throw fail(path, `unexpected "${path.charAt(i)}" at character ${i + 1}`);
  return out;
}
