// SPDX-License-Identifier: Apache-2.0
/**
 * Message delimiters, read from MSH-1 and MSH-2 (v2.5.1 §2.5.4 "Message delimiters").
 */
import { Hl7Error, Hl7ErrorCode } from './errors.js';

/** The delimiters of one message. */
export interface Delimiters {
  /** Field separator (MSH-1), normally `|`. */
  field: string;
  /** Component separator (MSH-2 char 1), normally `^`. */
  component: string;
  /** Repetition separator (MSH-2 char 2), normally `~`. */
  repetition: string;
  /** Escape character (MSH-2 char 3), normally `\`; `''` when MSH-2 has only 3 characters. */
  escape: string;
  /** Subcomponent separator (MSH-2 char 4, or char 3 when there is no escape), normally `&`. */
  subcomponent: string;
  /** Truncation character (MSH-2 char 5, v2.7+), normally `#`; `''` when absent. */
  truncation: string;
}

/** The recommended delimiters `|^~\&`, with no truncation character. */
export const DEFAULT_DELIMITERS: Delimiters = Object.freeze({
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
  truncation: '',
});

/**
 * Why a character cannot be a delimiter, or undefined when it can. Delimiters must be printable
 * ASCII punctuation: letters and digits would be read as data, CR/LF end segments, and control,
 * space and non-ASCII characters are either invisible or change meaning with the charset.
 */
function badDelimiterChar(c: number): string | undefined {
  if (c === 13 || c === 10) return 'CR/LF';
  if (c <= 32 || c === 127) return 'a control or space character';
  if (c > 126) return 'a non-ASCII character';
  if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return 'alphanumeric';
  return undefined;
}

function bad(reason: string, field: 1 | 2): Hl7Error {
  return new Hl7Error('HL7_BAD_DELIMITERS', Hl7ErrorCode.DataType, { reason }, { segment: 'MSH', field });
}

/**
 * Build and check delimiters from MSH-1 and the MSH-2 text.
 *
 * MSH-2 may hold 3, 4 or 5 characters: 4 is the norm (component, repetition, escape,
 * subcomponent); 5 adds the v2.7 truncation character; 3 is read as component, repetition,
 * subcomponent with no escape character, as old St. Louis BJC feeds send `^~}` beside `^~\}`.
 * Every character must be distinct (a doubled character, e.g. `^~\\&` copied from a Java string
 * literal, makes splitting ambiguous, so it is refused rather than guessed).
 *
 * @throws Hl7Error HL7_BAD_DELIMITERS with location MSH-1 or MSH-2
 */
export function makeDelimiters(field: string, enc: string): Delimiters {
  const fc = field.charCodeAt(0);
  const why = field.length !== 1 ? 'MSH-1 must be one character' : badDelimiterChar(fc);
  if (why !== undefined) throw bad(`field separator is ${why}`, 1);
  if (enc.length < 3 || enc.length > 5) throw bad(`MSH-2 must have 3 to 5 encoding characters, got ${enc.length}`, 2);
  for (let i = 0; i < enc.length; i++) {
    const c = enc.charCodeAt(i);
    const w = badDelimiterChar(c);
    if (w !== undefined) throw bad(`encoding character ${i + 1} is ${w}`, 2);
    if (c === fc) throw bad(`encoding character ${i + 1} repeats the field separator`, 2);
    if (enc.indexOf(enc.charAt(i)) !== i) throw bad(`encoding character ${i + 1} repeats an earlier one`, 2);
  }
  if (enc.length === 3) {
    return { field, component: enc.charAt(0), repetition: enc.charAt(1), escape: '', subcomponent: enc.charAt(2), truncation: '' };
  }
  return {
    field,
    component: enc.charAt(0),
    repetition: enc.charAt(1),
    escape: enc.charAt(2),
    subcomponent: enc.charAt(3),
    truncation: enc.charAt(4),
  };
}

/** MSH-2 text for a delimiter set (the inverse of {@link makeDelimiters}). */
export function encodingCharacters(d: Delimiters): string {
  return d.component + d.repetition + d.escape + d.subcomponent + d.truncation;
}
