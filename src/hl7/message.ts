// SPDX-License-Identifier: Apache-2.0
/**
 * The ER7 ("pipe and hat") message model: a lossless, lazy parse of one message.
 *
 * `parse` scans the text once: it finds the segment boundaries, checks segment ids and control
 * bytes, and splits MSH only. Other segments' field separators are found on first access, and a read
 * slices the one field it needs; repetitions, components and subcomponents are never materialised
 * unless asked for (`encode({ rebuild: true })`). `set` rewrites one field of a segment's text in
 * place of splitting the segment. Everything is kept as raw (still escaped) text, so `toString()`
 * returns the input byte for byte.
 */
import { type Delimiters, makeDelimiters } from './delimiters.js';
import { Hl7Error, Hl7ErrorCode, type Hl7Location } from './errors.js';
import { escapeValue, unescapeValue } from './escape.js';
import { parsePath, type Hl7Path } from './path.js';

/** The fields of MSH needed to acknowledge a message, as raw (still escaped) text. */
export interface AckRequest {
  /** The inbound message's delimiters; the ACK uses them too. */
  delimiters: Delimiters;
  /** MSH-3, whole field. */
  sendingApplication: string;
  /** MSH-4, whole field. */
  sendingFacility: string;
  /** MSH-5, whole field. */
  receivingApplication: string;
  /** MSH-6, whole field. */
  receivingFacility: string;
  /** MSH-9, whole field, e.g. `ADT^A01^ADT_A01`. */
  messageType: string;
  /** MSH-9.2, e.g. `A01`; `''` when absent. */
  triggerEvent: string;
  /** MSH-10; `''` when absent. */
  controlId: string;
  /** MSH-11, e.g. `P`. */
  processingId: string;
  /** MSH-12, whole field, e.g. `2.5.1` or `2.5^FRA^2.5`. */
  version: string;
  /** MSH-15 (enhanced mode: `AL`, `NE`, `ER`, `SU`). */
  acceptAckType: string;
  /** MSH-16. */
  applicationAckType: string;
}

// Character codes used by the scanner.
/**
 * Text without control characters other than TAB, LF and CR (never valid in ER7 text, v2.5.1 §2.7).
 * Written as a whole-text match of the other characters: V8 runs an anchored class loop over a
 * message about a third faster than it searches for the first control character.
 */
// eslint-disable-next-line no-control-regex
const NO_CONTROL_BYTES = /^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F]*$/;
const CR = 13;
const LF = 10;
const TAB = 9;
const SPACE = 32;

/**
 * Messages of up to this many segments find a segment by scanning their ids (see `segmentIndex`);
 * longer ones build an index on the first lookup.
 */
const SCAN_SEGMENTS = 16;

/**
 * The 3 characters of a segment id at `at` as one number, the key of the segment index (which then
 * needs no string per segment); -1 when one is not ASCII (never a segment id, so never found).
 */
function idKey(s: string, at: number): number {
  const c0 = s.charCodeAt(at);
  const c1 = s.charCodeAt(at + 1);
  const c2 = s.charCodeAt(at + 2);
  return (c0 | c1 | c2) > 127 ? -1 : (c0 << 16) | (c1 << 8) | c2;
}

function isIdChar(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 48 && c <= 57);
}

/** The n-th (0-based) piece of `s` split on `sep`, without splitting the rest; undefined if absent. */
export function nthPiece(s: string, sep: string, n: number): string | undefined {
  let from = 0;
  for (let k = 0; k < n; k++) {
    const i = s.indexOf(sep, from);
    if (i < 0) return undefined;
    from = i + 1;
  }
  const end = s.indexOf(sep, from);
  return end < 0 ? (from === 0 ? s : s.slice(from)) : s.slice(from, end);
}

/**
 * Component `n` (0-based) of the repetition of a raw field that spans `from` to `to` (exclusive),
 * raw (still escaped), or its first subcomponent when `firstSub` is set; `''` when the repetition
 * has fewer components. What `split` of the repetition at the component separator, then of that
 * component at the subcomponent separator, would give at that index, without the arrays: readers of
 * a few components per repetition (identifiers, clinicians, locations) need none of the others.
 */
export function rawComponent(field: string, from: number, to: number, n: number, d: Delimiters, firstSub = false): string {
  // Character by character inside [from, to): an indexOf would run on past the repetition to the
  // next separator anywhere in the field, and a field of many repetitions (a 16 MB frame of `~`)
  // would be read in quadratic time.
  const cc = d.component.charCodeAt(0);
  const sc = firstSub ? d.subcomponent.charCodeAt(0) : -1;
  let a = from;
  for (let k = 0; k < n; k++) {
    while (a < to && field.charCodeAt(a) !== cc) a++;
    if (a >= to) return '';
    a++;
  }
  let b = a;
  for (; b < to; b++) {
    const c = field.charCodeAt(b);
    if (c === cc || c === sc) break;
  }
  return a === 0 && b === field.length ? field : field.slice(a, b);
}

/**
 * The AckRequest of an MSH split into fields (index = HL7 field number - 1, so `fields[9]` is
 * MSH-10). Shared by {@link Hl7Message.ackRequest} and the salvage path for malformed text.
 */
export function ackRequestFromMsh(fields: readonly string[], d: Delimiters): AckRequest {
  const type = fields[8] ?? '';
  return {
    delimiters: d,
    sendingApplication: fields[2] ?? '',
    sendingFacility: fields[3] ?? '',
    receivingApplication: fields[4] ?? '',
    receivingFacility: fields[5] ?? '',
    messageType: type,
    triggerEvent: nthPiece(type, d.component, 1) ?? '',
    controlId: nthPiece(fields[9] ?? '', d.component, 0) ?? '',
    processingId: fields[10] ?? '',
    version: fields[11] ?? '',
    acceptAckType: fields[14] ?? '',
    applicationAckType: fields[15] ?? '',
  };
}

/**
 * `s` with its n-th (0-based) piece split on `sep` replaced by `value`; when `s` has fewer pieces,
 * empty ones are added up to it. What split, pad, replace and join give, without the array.
 */
function replacePiece(s: string, sep: string, n: number, value: string): string {
  let from = 0;
  for (let k = 0; k < n; k++) {
    const i = s.indexOf(sep, from);
    if (i < 0) return s + sep.repeat(n - k) + value;
    from = i + 1;
  }
  const end = s.indexOf(sep, from);
  return end < 0 ? s.slice(0, from) + value : s.slice(0, from) + value + s.slice(end);
}

/** `field` (raw) with the repetition, component or subcomponent that `p` names replaced by `value` (raw). */
function replaceInField(field: string, p: Hl7Path, value: string, d: Delimiters): string {
  const rep = (p.repetition ?? 1) - 1;
  let v = value;
  if (p.component !== undefined) {
    const old = nthPiece(field, d.repetition, rep) ?? '';
    if (p.subcomponent !== undefined) {
      v = replacePiece(nthPiece(old, d.component, p.component - 1) ?? '', d.subcomponent, p.subcomponent - 1, v);
    }
    v = replacePiece(old, d.component, p.component - 1, v);
  }
  return replacePiece(field, d.repetition, rep, v);
}

/** Offsets of `fs` in `s` from `start` to before `end`. */
function separatorsIn(s: string, fs: string, start: number, end: number): number[] {
  const out: number[] = [];
  const code = fs.charCodeAt(0);
  // Empty fields (`|||`) are common: the next character is checked before another indexOf call.
  for (let i = s.indexOf(fs, start); i >= 0 && i < end; i = s.charCodeAt(i + 1) === code ? i + 1 : s.indexOf(fs, i + 1)) out.push(i);
  return out;
}

/** Every offset of `seps` plus `delta` (a new array: the old one may be shared). */
function shifted(seps: readonly number[], delta: number): number[] {
  const out = new Array<number>(seps.length);
  for (let i = 0; i < seps.length; i++) out[i] = (seps[i] as number) + delta;
  return out;
}

function noSegmentAfterMsh(): Hl7Error {
  return new Hl7Error('HL7_BAD_SEGMENT', Hl7ErrorCode.SegmentSequence, { reason: 'the message has no segment after MSH' }, { segment: 'MSH' });
}

/**
 * After a segment's content ends at `i` (a CR or LF, or the end), return where the next segment
 * starts. The terminator is kept with its segment, and is CR, LF, CRLF, or any run of them:
 * blank lines and lines of only spaces/tabs are part of the terminator too, because real senders
 * (and files edited by hand) put them between segments and messages and they carry no segment.
 */
function skipTerminator(text: string, i: number): number {
  const n = text.length;
  for (;;) {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== CR && c !== LF) break;
      i++;
    }
    if (i >= n) return i;
    let j = i;
    while (j < n) {
      const c = text.charCodeAt(j);
      if (c !== SPACE && c !== TAB) break;
      j++;
    }
    if (j === i) return i;
    if (j < n) {
      const c = text.charCodeAt(j);
      if (c !== CR && c !== LF) return i;
    }
    i = j;
  }
}

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== CR && c !== LF && c !== SPACE && c !== TAB) return false;
  }
  return true;
}

/** A field split all the way down: repetitions → components → subcomponents. */
type FieldTree = string[][][];

function splitField(raw: string, d: Delimiters): FieldTree {
  return raw.split(d.repetition).map((rep) => rep.split(d.component).map((comp) => comp.split(d.subcomponent)));
}

function encodeField(tree: FieldTree, d: Delimiters): string {
  let out = '';
  for (let r = 0; r < tree.length; r++) {
    if (r > 0) out += d.repetition;
    const rep = tree[r] as string[][];
    for (let c = 0; c < rep.length; c++) {
      if (c > 0) out += d.component;
      const comp = rep[c] as string[];
      for (let s = 0; s < comp.length; s++) {
        if (s > 0) out += d.subcomponent;
        out += comp[s] as string;
      }
    }
  }
  return out;
}

/**
 * One parsed HL7 v2 message (ER7 encoding).
 *
 * Numbering follows HL7: fields, repetitions, components and subcomponents are 1-based, and MSH-1
 * is the field separator itself. Reads return raw slices or unescaped text; nothing is allocated
 * per field until a segment is first read.
 */
export class Hl7Message {
  /** The message's delimiters, from MSH-1 and MSH-2. */
  readonly delimiters: Delimiters;
  private readonly text: string;
  /** Per segment: start offset, end of content (start of terminator), end of terminator. */
  private readonly starts: number[];
  private readonly contentEnds: number[];
  private readonly ends: number[];
  /** MSH split on the field separator: [`MSH`, MSH-2, MSH-3, …]; so MSH-n is `mshFields[n - 1]`. */
  private readonly mshFields: string[];
  /**
   * Other segments' content (without terminator) once `set` wrote to them; the others are their
   * slice of `text`. `set` rewrites the one field it changes here: splitting the segment into a
   * string per field, most never read, cost more than the write (and all of it for the GC).
   */
  private edited: (string | undefined)[] | undefined;
  /**
   * Other segments' field separator offsets, on first read or write, so a read slices the one
   * field it needs: offsets into `edited[k]` for a segment `set` wrote to, else into `text`. An
   * array into `text` may be shared with a copy ({@link withoutSegments}), so it is never changed:
   * the first `set` to the segment makes its own.
   */
  private separatorCache: (number[] | undefined)[] | undefined;
  /** Segment indexes (into `starts`) by segment id ({@link idKey}), MSH's first excluded; see `segmentIndex`. */
  private segmentsById: Map<number, number[]> | undefined;
  /** Segments changed by `set` (rebuilt by `toString`): MSH in `mshFields`, the others in `edited`. */
  private changed: boolean[] | undefined;

  private constructor(text: string, d: Delimiters, starts: number[], contentEnds: number[], ends: number[], msh: string[]) {
    this.text = text;
    this.delimiters = d;
    this.starts = starts;
    this.contentEnds = contentEnds;
    this.ends = ends;
    this.mshFields = msh;
  }

  /**
   * Parse one message (text already decoded, see `decodeHl7Bytes`; one message, see `splitBatch`).
   *
   * Lenient where senders are sloppy and nothing is lost: CR, LF and CRLF segment terminators
   * (each segment keeps its own), a missing final terminator, blank or whitespace-only lines between
   * segments (kept as part of the terminator), trailing spaces (kept as data), any valid delimiter
   * set. Missing MSH-9/MSH-10 are not parse errors: the ingest layer decides.
   *
   * Strict where guessing could corrupt data (v2.5.1 §2.5–2.6):
   * - the text must start with `MSH` (HL7_NO_MSH, 100) and not be empty (HL7_EMPTY);
   * - MSH-1/MSH-2 must be valid, distinct delimiters (HL7_BAD_DELIMITERS, 102);
   * - every segment id is 3 upper-case letters or digits followed by the field separator or the
   *   end of the segment (HL7_BAD_SEGMENT, 100): a line of free text that lost its escaping is caught
   *   here instead of being read as a segment;
   * - no second MSH, and no batch envelope (FHS/BHS/BTS/FTS) inside a message (HL7_BAD_SEGMENT, 100);
   * - at least one segment after MSH (every v2 message structure has one; HL7_BAD_SEGMENT, 100);
   * - no control characters other than CR, LF and TAB (HL7_CONTROL_BYTES, 102).
   *
   * @throws Hl7Error with a 0357 code and a location
   */
  static parse(text: string): Hl7Message {
    return Hl7Message.parseText(text, true);
  }

  /**
   * Parse text that an `Hl7Message` wrote (`toString()` of a parsed message, edited only through
   * `set`, which escapes or refuses control characters): {@link parse} without its control-character
   * scan, which such text cannot fail. The channels' copies and re-reads use it; a message with steps
   * and a script is read four times, and the scan was half of each read. Ingest also uses it for a
   * received frame whose single-byte bytes it has already checked (`hasControlBytes` in
   * src/ingest/ingest.ts): the answer is the same, from the bytes, in about half the time.
   *
   * @throws Hl7Error as {@link parse} does for the structure
   */
  static parseOwn(text: string): Hl7Message {
    return Hl7Message.parseText(text, false);
  }

  /**
   * A copy that can be changed without changing this one. Without changes it shares the text and
   * the segment offsets (nothing is parsed again).
   */
  clone(): Hl7Message {
    if (this.changed !== undefined) return Hl7Message.parseOwn(this.toString());
    return new Hl7Message(this.text, this.delimiters, this.starts, this.contentEnds, this.ends, this.mshFields.slice());
  }

  private static parseText(text: string, checkControl: boolean): Hl7Message {
    const n = text.length;
    if (n === 0 || (text.charCodeAt(0) !== 77 && isBlank(text))) {
      throw new Hl7Error('HL7_EMPTY', Hl7ErrorCode.SegmentSequence, {});
    }
    if (text.charCodeAt(0) !== 77 || text.charCodeAt(1) !== 83 || text.charCodeAt(2) !== 72) {
      throw new Hl7Error('HL7_NO_MSH', Hl7ErrorCode.SegmentSequence, {}, { segment: '', sequence: 1 });
    }
    // MSH-1 and MSH-2: the 4th character, then up to the next field separator or segment end.
    if (n < 4 || text.charCodeAt(3) === CR || text.charCodeAt(3) === LF) {
      throw new Hl7Error('HL7_BAD_DELIMITERS', Hl7ErrorCode.DataType, { reason: 'MSH-1 is missing' }, { segment: 'MSH', field: 1 });
    }
    const fs = text.charAt(3);
    const fsCode = text.charCodeAt(3);
    let e = 4;
    while (e < n && e < 12) {
      const c = text.charCodeAt(e);
      if (c === fsCode || c === CR || c === LF) break;
      e++;
    }
    const d = makeDelimiters(fs, text.slice(4, e));

    const starts: number[] = [];
    const contentEnds: number[] = [];
    const ends: number[] = [];
    let pos = 0;
    if (!checkControl || NO_CONTROL_BYTES.test(text)) {
      // Fast path (almost every message): no control bytes, so segment ends are found with native
      // indexOf scans. The next CR and LF positions are cached so a text that lacks one of them is
      // not rescanned to its end for every segment.
      let nextCr = text.indexOf('\r');
      let nextLf = text.indexOf('\n');
      while (pos < n) {
        if (starts.length > 0) Hl7Message.checkSegmentId(text, pos, fsCode, starts);
        if (nextCr !== -1 && nextCr < pos) nextCr = text.indexOf('\r', pos);
        if (nextLf !== -1 && nextLf < pos) nextLf = text.indexOf('\n', pos);
        const i = nextCr === -1 ? (nextLf === -1 ? n : nextLf) : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
        starts.push(pos);
        contentEnds.push(i);
        pos = i < n ? skipTerminator(text, i) : n;
        ends.push(pos);
      }
    } else {
      while (pos < n) {
        if (starts.length > 0) Hl7Message.checkSegmentId(text, pos, fsCode, starts);
        let i = pos;
        for (; i < n; i++) {
          const c = text.charCodeAt(i);
          if (c < 32 || c === 127) {
            if (c === CR || c === LF) break;
            if (c !== TAB) throw Hl7Message.controlByte(text, i, pos, fsCode, starts);
          }
        }
        starts.push(pos);
        contentEnds.push(i);
        pos = i < n ? skipTerminator(text, i) : n;
        ends.push(pos);
      }
    }
    if (starts.length === 1) throw noSegmentAfterMsh();
    const msh = text.slice(0, contentEnds[0]).split(fs);
    return new Hl7Message(text, d, starts, contentEnds, ends, msh);
  }

  private static occurrence(text: string, starts: number[], pos: number): number {
    let occ = 1;
    for (const s of starts) {
      if (text.charCodeAt(s) === text.charCodeAt(pos) && text.charCodeAt(s + 1) === text.charCodeAt(pos + 1)
        && text.charCodeAt(s + 2) === text.charCodeAt(pos + 2)) occ++;
    }
    return occ;
  }

  private static checkSegmentId(text: string, pos: number, fsCode: number, starts: number[]): void {
    const c0 = text.charCodeAt(pos);
    const c1 = text.charCodeAt(pos + 1);
    const c2 = text.charCodeAt(pos + 2);
    const c3 = text.charCodeAt(pos + 3); // NaN at the end of the text
    const index = starts.length + 1;
    if (!isIdChar(c0) || !isIdChar(c1) || !isIdChar(c2) || !(c3 === fsCode || c3 === CR || c3 === LF || Number.isNaN(c3))) {
      throw new Hl7Error('HL7_BAD_SEGMENT', Hl7ErrorCode.SegmentSequence, {
        reason: `segment ${index} does not start with a segment id (3 upper-case letters or digits, then the field separator)`,
      }, { segment: '', sequence: index });
    }
    // The ids refused below (MSH, FHS, BHS, BTS, FTS) end in H or S: only those are sliced to compare.
    if (c2 !== 72 && c2 !== 83) return;
    const id = text.slice(pos, pos + 3);
    if (id === 'MSH') {
      throw new Hl7Error('HL7_BAD_SEGMENT', Hl7ErrorCode.SegmentSequence, {
        reason: `a second MSH at segment ${index}: several messages must be split first (splitBatch)`,
      }, { segment: 'MSH', sequence: Hl7Message.occurrence(text, starts, pos) });
    }
    if (id === 'FHS' || id === 'BHS' || id === 'BTS' || id === 'FTS') {
      throw new Hl7Error('HL7_BAD_SEGMENT', Hl7ErrorCode.SegmentSequence, {
        reason: `batch envelope segment ${id} inside a message (segment ${index})`,
      }, { segment: id, sequence: Hl7Message.occurrence(text, starts, pos) });
    }
  }

  private static controlByte(text: string, at: number, pos: number, fsCode: number, starts: number[]): Hl7Error {
    const c = text.charCodeAt(at);
    let seps = 0;
    for (let i = pos; i < at; i++) if (text.charCodeAt(i) === fsCode) seps++;
    const isMsh = starts.length === 0;
    const loc: Hl7Location = isMsh
      ? { segment: 'MSH', field: seps === 0 ? 0 : seps + 1 }
      : { segment: text.slice(pos, pos + 3), sequence: Hl7Message.occurrence(text, starts, pos), field: seps };
    return new Hl7Error('HL7_CONTROL_BYTES', Hl7ErrorCode.DataType, { byte: c.toString(16).padStart(2, '0'), offset: at }, loc);
  }

  /**
   * Raw MSH-n (escaped), `''` when absent. HL7 numbering: MSH-1 is the field separator, MSH-2 the
   * encoding characters, MSH-3 the sending application. The fast path for the ingest loop.
   */
  msh(n: number): string {
    if (n === 1) return this.delimiters.field;
    return n >= 2 ? (this.mshFields[n - 1] ?? '') : '';
  }

  /** MSH-10, first component, raw; `''` when absent. */
  get controlId(): string {
    return nthPiece(this.msh(10), this.delimiters.component, 0) ?? '';
  }

  /** `TYPE^EVENT` from MSH-9.1 and MSH-9.2 (always joined with `^`), `TYPE` when there is no event; raw. */
  get messageType(): string {
    const f = this.msh(9);
    const c = this.delimiters.component;
    const i = f.indexOf(c);
    if (i < 0) return f;
    const type = f.slice(0, i);
    const event = nthPiece(f, c, 1) ?? '';
    return event === '' ? type : `${type}^${event}`;
  }

  /** MSH-12.1, e.g. `2.5.1`, raw. */
  get version(): string {
    return nthPiece(this.msh(12), this.delimiters.component, 0) ?? '';
  }

  /** MSH-18 first repetition (the character set), raw; `''` when absent. */
  get charset(): string {
    return nthPiece(this.msh(18), this.delimiters.repetition, 0) ?? '';
  }

  /** The MSH fields needed to acknowledge this message (see `buildAck`). */
  ackRequest(): AckRequest {
    return ackRequestFromMsh(this.mshFields, this.delimiters);
  }

  /** Number of segments. */
  get segmentCount(): number {
    return this.starts.length;
  }

  /** The segment ids in order, e.g. `['MSH', 'EVN', 'PID', …]`. */
  segmentNames(): string[] {
    const out: string[] = [];
    for (const s of this.starts) out.push(this.text.slice(s, s + 3));
    return out;
  }

  /** How many segments have this id (e.g. to loop over `OBX[i]`). */
  countSegments(id: string): number {
    let count = 0;
    for (const s of this.starts) if (this.text.startsWith(id, s) && id.length === 3) count++;
    return count;
  }

  /** Index of the `occ`-th segment with this id, or -1. */
  private segmentIndex(id: string, occ: number): number {
    if (occ === 1 && id === 'MSH') return 0;
    if (id.length !== 3) return -1;
    const starts = this.starts;
    if (starts.length <= SCAN_SEGMENTS) {
      // A short message (an ADT has about eight segments) is scanned: comparing a few character
      // codes per segment costs less than building the index below for the few reads most make.
      const text = this.text;
      const c0 = id.charCodeAt(0);
      const c1 = id.charCodeAt(1);
      const c2 = id.charCodeAt(2);
      let left = occ;
      for (let k = 1; k < starts.length; k++) {
        const at = starts[k] as number;
        if (text.charCodeAt(at) === c0 && text.charCodeAt(at + 1) === c1 && text.charCodeAt(at + 2) === c2 && --left === 0) return k;
      }
      return -1;
    }
    // Built on the first lookup: a 20-result ORU reads OBX[n] hundreds of times, and scanning the
    // segments from the top for each read was a tenth of its record cost. Segments never move.
    // Keyed by number: a string key meant slicing every segment's id out of the text first.
    let byId = this.segmentsById;
    if (byId === undefined) {
      byId = this.segmentsById = new Map();
      const text = this.text;
      for (let k = 1; k < starts.length; k++) {
        const key = idKey(text, starts[k] as number);
        const list = byId.get(key);
        if (list === undefined) byId.set(key, [k]);
        else list.push(k);
      }
    }
    return byId.get(idKey(id, 0))?.[occ - 1] ?? -1;
  }

  /** Segment k's field separator offsets (k > 0), into `edited[k]` when `set` wrote to it, else into `text`. */
  private separators(k: number): number[] {
    const cache = (this.separatorCache ??= []);
    let seps = cache[k];
    if (seps === undefined) {
      const own = this.edited?.[k];
      seps = own === undefined
        ? separatorsIn(this.text, this.delimiters.field, this.starts[k] as number, this.contentEnds[k] as number)
        : separatorsIn(own, this.delimiters.field, 0, own.length);
      cache[k] = seps;
    }
    return seps;
  }

  /**
   * Field `idx` of segment k (0 is the segment id; for MSH, entry `idx` of `mshFields`, i.e.
   * MSH-(idx+1)), read without splitting the segment.
   */
  private fieldAt(k: number, idx: number): string | undefined {
    if (k === 0) return this.mshFields[idx];
    const seps = this.separators(k);
    if (idx > seps.length) return undefined;
    const own = this.edited?.[k];
    const s = own ?? this.text;
    const start = own === undefined ? (this.starts[k] as number) : 0;
    const end = own === undefined ? (this.contentEnds[k] as number) : own.length;
    return s.slice(idx === 0 ? start : (seps[idx - 1] as number) + 1, idx === seps.length ? end : seps[idx]);
  }

  /** The `fieldAt` index of field `p.field`: MSH is stored from MSH-2 (MSH-1 is the separator itself). */
  private static fieldIndex(p: Hl7Path): number {
    return p.segment === 'MSH' ? p.field - 1 : p.field;
  }

  private rawValue(p: Hl7Path): string | undefined {
    const k = this.segmentIndex(p.segment, p.occurrence);
    if (k < 0) return undefined;
    const d = this.delimiters;
    if (k === 0 && p.field <= 2) {
      // MSH-1 and MSH-2 hold the delimiters themselves: never split them.
      if ((p.repetition ?? 1) !== 1 || (p.component ?? 1) !== 1 || (p.subcomponent ?? 1) !== 1) return undefined;
      return p.field === 1 ? d.field : (this.mshFields[1] ?? '');
    }
    const field = this.fieldAt(k, Hl7Message.fieldIndex(p));
    if (field === undefined) return undefined;
    const rep = nthPiece(field, d.repetition, (p.repetition ?? 1) - 1);
    if (rep === undefined || p.component === undefined) return rep;
    const comp = nthPiece(rep, d.component, p.component - 1);
    if (comp === undefined || p.subcomponent === undefined) return comp;
    return nthPiece(comp, d.subcomponent, p.subcomponent - 1);
  }

  /**
   * Read one value by path (grammar in `parsePath`): `PID-3` is the first repetition of PID-3 with
   * its components, `PID-3[2].1` a component of the second, `MSH-9.2` the trigger event.
   *
   * Unescaped by default (escape sequences decoded; structural delimiters inside a composite value
   * stay as they are), `{ raw: true }` gives the escaped text. MSH-1 and MSH-2 are always returned
   * as they are. `undefined` when the segment, field, repetition or component is absent; `''` when
   * it is present but empty.
   *
   * A parsed {@link Hl7Path} may be given instead of the text (a loop over OBX[n] then builds no
   * path strings); its numbers must be what `parsePath` would give (1-based, field ≥ 1).
   *
   * @throws Hl7Error HL7_BAD_PATH for a malformed path (never for content)
   */
  get(path: string | Hl7Path, opts?: { raw?: boolean }): string | undefined {
    const p = typeof path === 'string' ? parsePath(path) : path;
    const raw = this.rawValue(p);
    if (raw === undefined || opts?.raw === true || (p.segment === 'MSH' && p.field <= 2)) return raw;
    return unescapeValue(raw, this.delimiters);
  }

  /**
   * Every repetition of a field: `getAll('PID-3')` → `['123^^^MRN', '9434765919^^^NHS']`, and with a
   * component or subcomponent, that part of each repetition (`''` where a repetition lacks it, so
   * indexes line up). `[]` when the segment or field is absent or the field is empty. Unescaped
   * unless `{ raw: true }`.
   *
   * @throws Hl7Error HL7_BAD_PATH for a malformed path
   */
  getAll(path: string | Hl7Path, opts?: { raw?: boolean }): string[] {
    const p = typeof path === 'string' ? parsePath(path) : path;
    if (p.segment === 'MSH' && p.field <= 2) {
      const v = this.rawValue({ segment: 'MSH', occurrence: 1, field: p.field });
      return v === undefined ? [] : [v];
    }
    const d = this.delimiters;
    let reps = this.repetitionsOf(p);
    if (p.repetition !== undefined) reps = p.repetition <= reps.length ? [reps[p.repetition - 1] as string] : [];
    const out: string[] = [];
    for (const rep of reps) {
      let v: string | undefined = rep;
      if (p.component !== undefined) v = nthPiece(v, d.component, p.component - 1);
      if (v !== undefined && p.subcomponent !== undefined) v = nthPiece(v, d.subcomponent, p.subcomponent - 1);
      v ??= '';
      out.push(opts?.raw === true ? v : unescapeValue(v, d));
    }
    return out;
  }

  /**
   * Every repetition of a field split into its components, raw (escaped; split a component at the
   * subcomponent separator before unescaping it): `PID-3` → `[['123', '', '', 'MRN'], …]`. One split
   * of the field where reading several components through {@link getAll} would split it once per
   * component. Only the segment, occurrence and field of the path count. `[]` when the segment or
   * field is absent or the field is empty.
   *
   * @throws Hl7Error HL7_BAD_PATH for a malformed path
   */
  componentsOf(path: string | Hl7Path): string[][] {
    const p = typeof path === 'string' ? parsePath(path) : path;
    if (p.segment === 'MSH' && p.field <= 2) {
      const v = this.rawValue({ segment: 'MSH', occurrence: 1, field: p.field });
      return v === undefined ? [] : [[v]];
    }
    const reps = this.repetitionsOf(p);
    const out: string[][] = new Array(reps.length);
    for (let i = 0; i < reps.length; i++) out[i] = (reps[i] as string).split(this.delimiters.component);
    return out;
  }

  /**
   * The whole raw field a path names, every repetition (escaped): `PID-3` →
   * `123^^^MRN~9434765919^^^NHS`. Only the segment, occurrence and field of the path count; MSH-1
   * and MSH-2 of the first MSH are returned as they are (as {@link get} does). `undefined` when the segment or field
   * is absent, `''` when the field is empty. With {@link rawComponent}, a reader walks the
   * repetitions and components it needs without the arrays of {@link componentsOf}.
   *
   * @throws Hl7Error HL7_BAD_PATH for a malformed path
   */
  rawField(path: string | Hl7Path): string | undefined {
    const p = typeof path === 'string' ? parsePath(path) : path;
    if (p.segment === 'MSH' && p.field <= 2) return p.occurrence === 1 ? this.rawValue({ segment: 'MSH', occurrence: 1, field: p.field }) : undefined;
    const k = this.segmentIndex(p.segment, p.occurrence);
    return k < 0 ? undefined : this.fieldAt(k, Hl7Message.fieldIndex(p));
  }

  /** The raw repetitions of the field a path names (not MSH-1/MSH-2); `[]` when absent or empty. */
  private repetitionsOf(p: Hl7Path): string[] {
    const k = this.segmentIndex(p.segment, p.occurrence);
    if (k < 0) return [];
    const field = this.fieldAt(k, Hl7Message.fieldIndex(p));
    return field === undefined || field === '' ? [] : field.split(this.delimiters.repetition);
  }

  /**
   * Write one value by path. The value is escaped unless `{ raw: true }`; missing fields,
   * repetitions, components and subcomponents are created (padded with empty ones). Only the
   * touched segment is rebuilt by `toString()`.
   *
   * @throws Hl7Error HL7_BAD_PATH when the segment does not exist (segments are never created),
   *   for MSH-1/MSH-2 (changing the delimiters would mean re-encoding the whole message), and for a
   *   raw value containing the field separator, CR/LF or control characters;
   *   HL7_BAD_ESCAPE when a value needs escaping but the message has no escape character
   */
  set(path: string, value: string, opts?: { raw?: boolean }): void {
    const p = parsePath(path);
    if (p.segment === 'MSH' && p.field <= 2) {
      throw new Hl7Error('HL7_BAD_PATH', Hl7ErrorCode.DataType, { path, reason: 'MSH-1 and MSH-2 (the delimiters) cannot be changed' });
    }
    const k = this.segmentIndex(p.segment, p.occurrence);
    if (k < 0) {
      throw new Hl7Error('HL7_BAD_PATH', Hl7ErrorCode.DataType, {
        path,
        reason: `the message has no ${p.segment}${p.occurrence > 1 ? `[${p.occurrence}]` : ''} segment (set never creates segments)`,
      });
    }
    const d = this.delimiters;
    let v: string;
    if (opts?.raw === true) {
      for (let i = 0; i < value.length; i++) {
        const c = value.charCodeAt(i);
        if ((c < 32 && c !== TAB) || c === 127 || value.charAt(i) === d.field) {
          throw new Hl7Error('HL7_BAD_PATH', Hl7ErrorCode.DataType, {
            path,
            reason: 'a raw value must not contain the field separator, CR/LF or control characters',
          });
        }
      }
      v = value;
    } else {
      v = escapeValue(value, d);
    }
    if (k === 0) {
      const fields = this.mshFields;
      const idx = Hl7Message.fieldIndex(p);
      while (fields.length <= idx) fields.push('');
      fields[idx] = replaceInField(fields[idx] as string, p, v, d);
    } else {
      this.writeField(k, p, v);
    }
    (this.changed ??= [])[k] = true;
  }

  /**
   * Write `v` (raw) where `p` points in segment k (not MSH) through its separator offsets: the
   * content is rebuilt around the one field, and the offsets after it move by the change in length.
   * Fields missing up to `p.field` are added empty, as split, pad and join would.
   */
  private writeField(k: number, p: Hl7Path, v: string): void {
    const fs = this.delimiters.field;
    const edited = (this.edited ??= []);
    const cache = (this.separatorCache ??= []);
    let content = edited[k];
    let seps: number[];
    if (content === undefined) {
      const start = this.starts[k] as number;
      content = this.text.slice(start, this.contentEnds[k]);
      // Offsets into `text` may be shared: this segment gets its own, into its content.
      const known = cache[k];
      seps = known === undefined ? separatorsIn(content, fs, 0, content.length) : shifted(known, -start);
    } else {
      seps = this.separators(k);
    }
    const idx = p.field;
    const n = seps.length;
    if (idx > n) {
      // Field idx does not exist: separators for the empty fields n+1…idx-1 and field idx, then the value.
      for (let i = n; i < idx; i++) seps.push(content.length + (i - n));
      content = content + fs.repeat(idx - n) + replaceInField('', p, v, this.delimiters);
    } else {
      const a = (seps[idx - 1] as number) + 1;
      const b = idx === n ? content.length : (seps[idx] as number);
      const field = replaceInField(content.slice(a, b), p, v, this.delimiters);
      const delta = field.length - (b - a);
      if (delta !== 0) for (let i = idx; i < n; i++) seps[i] = (seps[i] as number) + delta;
      content = content.slice(0, a) + field + content.slice(b);
    }
    edited[k] = content;
    cache[k] = seps;
  }

  /** Segment k's content (without terminator) as it is now: `set` may have changed it. */
  private currentContent(k: number): string {
    if (k === 0) return this.mshFields.join(this.delimiters.field);
    return this.edited?.[k] ?? this.text.slice(this.starts[k], this.contentEnds[k]);
  }

  /** Segment k's content rebuilt from the field tree: every field split down to subcomponents and encoded back. */
  private rebuiltContent(k: number): string {
    const d = this.delimiters;
    const fields = k === 0 ? this.mshFields : this.currentContent(k).split(d.field);
    let out = fields[0] as string;
    for (let f = 1; f < fields.length; f++) {
      const raw = fields[f] as string;
      out += d.field + (k === 0 && f === 1 ? raw : encodeField(splitField(raw, d), d));
    }
    return out;
  }

  /**
   * The message text. Lossless: byte for byte the parsed text when nothing was `set`; after `set`,
   * only the touched segments are rebuilt (every segment keeps its own terminator).
   */
  toString(): string {
    if (this.changed === undefined) return this.text;
    return this.encode();
  }

  /** Whether segment k (not the first) is an `id` segment: its text starts with `id`, then the field separator or its end. */
  private isSegment(k: number, id: string): boolean {
    const at = this.starts[k] as number;
    return this.text.startsWith(id, at) && (this.contentEnds[k] === at + 3 || this.text.startsWith(this.delimiters.field, at + 3));
  }

  /**
   * A copy without any `id` segment (never the first MSH), or this message itself when it has none.
   * Each kept segment keeps its terminator; changed segments are written as they are now.
   *
   * The copy is built with its segment offsets (each kept segment moves by what was dropped or
   * rewritten before it) and the field separator offsets known so far, as parsing its text again
   * would find them: every kept segment came out of a parse, and `set` never writes a terminator.
   *
   * @throws Hl7Error HL7_BAD_SEGMENT when no segment would be left after MSH (as `parse` would)
   */
  withoutSegments(id: string): Hl7Message {
    const { text, starts, contentEnds, ends } = this;
    const count = starts.length;
    let first = 1;
    while (first < count && !this.isSegment(first, id)) first++;
    if (first === count) return this;
    const keptStarts: number[] = [];
    const keptContentEnds: number[] = [];
    const keptEnds: number[] = [];
    const known = this.separatorCache;
    const seps: (number[] | undefined)[] = [];
    let out = '';
    let copied = 0; // `text` before this offset is in `out` or dropped
    let shift = 0; // offset in `out` minus offset in `text`, where segment k starts
    for (let k = 0; k < count; k++) {
      const at = starts[k] as number;
      const contentEnd = contentEnds[k] as number;
      const end = ends[k] as number;
      if (k >= first && this.isSegment(k, id)) {
        out += text.slice(copied, at);
        copied = end;
        shift -= end - at;
        continue;
      }
      const start = at + shift;
      const mine = known?.[k];
      if (this.changed?.[k] === true) {
        // Rewritten by `set`: its separator offsets are into its own content.
        const content = this.currentContent(k);
        out += text.slice(copied, at) + content;
        copied = contentEnd;
        if (mine !== undefined) seps[keptStarts.length] = shifted(mine, start);
        shift += content.length - (contentEnd - at);
      } else if (mine !== undefined) {
        // Never changed once shared (see `separatorCache`), so the same offsets can serve both.
        seps[keptStarts.length] = shift === 0 ? mine : shifted(mine, shift);
      }
      keptStarts.push(start);
      keptContentEnds.push(contentEnd + shift);
      keptEnds.push(end + shift);
    }
    out += text.slice(copied);
    if (keptStarts.length === 1) throw noSegmentAfterMsh();
    const copy = new Hl7Message(out, this.delimiters, keptStarts, keptContentEnds, keptEnds, this.mshFields.slice());
    copy.separatorCache = seps;
    return copy;
  }

  /**
   * Encode the message. `{ rebuild: true }` re-encodes every segment from its split field tree
   * (repetitions, components, subcomponents) instead of reusing the input slices; the result must
   * still equal the input byte for byte, which is what the round-trip tests check.
   */
  encode(opts?: { rebuild?: boolean }): string {
    const { text, starts, contentEnds, ends } = this;
    if (opts?.rebuild === true) {
      let out = '';
      for (let k = 0; k < starts.length; k++) out += this.rebuiltContent(k) + text.slice(contentEnds[k], ends[k]);
      return out;
    }
    const changed = this.changed;
    if (changed === undefined) return text;
    // The text between changed segments' contents (terminators included) is copied in one slice.
    let out = '';
    let copied = 0;
    for (let k = 0; k < starts.length; k++) {
      if (changed[k] !== true) continue;
      out += text.slice(copied, starts[k]) + this.currentContent(k);
      copied = contentEnds[k] as number;
    }
    return out + text.slice(copied);
  }
}
