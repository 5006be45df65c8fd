// SPDX-License-Identifier: Apache-2.0
// Hl7Message.set and withoutSegments against a reference model written the simple way: each
// segment split into fields, a write pads and replaces with split/join, a drop filters the list,
// the text is the fields joined back with each segment's own terminator. Random sequences of
// writes, reads, drops and copies run on every message of the corpus and on hand-made edge cases
// (blank lines, LF/CRLF, no final terminator, segments of only an id, other delimiters, no escape
// character); after each operation the text, the errors and the reads must be the model's.
import test, { type ExecutionContext } from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Delimiters, Hl7Error, Hl7Message, type Hl7Path, decodeHl7Bytes, escapeValue, splitBatch, unescapeValue } from '../../src/hl7/index.js';

const CORPUS = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));

/** Messages the corpus parses (malformed files are hl7-corpus.test.ts's business). */
function corpusMessages(): string[] {
  const out: string[] = [];
  for (const file of readdirSync(CORPUS).filter((f) => f.endsWith('.hl7')).sort()) {
    try {
      for (const m of splitBatch(decodeHl7Bytes(readFileSync(CORPUS + file)).text).messages) {
        Hl7Message.parse(m);
        out.push(m);
      }
    } catch (e) {
      if (!(e instanceof Hl7Error)) throw e;
    }
  }
  return out;
}

const EDGE_CASES = [
  // Blank and whitespace-only lines in terminators, trailing spaces, a segment of only its id, whitespace at the end.
  'MSH|^~\\&|APP|FAC|||20250101||ADT^A01|C1|P|2.5\r\n\r\nPID\r\nDG1|1|x^y\n \t\nPV1|1|I  \r\nDG1\r\n \t',
  // No final terminator, the segment to drop is the last one.
  'MSH|^~\\&|APP|FAC|||20250101||ADT^A01|C1|P|2.5\rPID|1||123^^^MRN||DOE^JO\rDG1|1',
  // Dropping DG1 leaves nothing after MSH.
  'MSH|^~\\&|APP|FAC|||20250101||ADT^A01|C1|P|2.5\rDG1|1\rDG1|2\r',
  // Other delimiters, with a truncation character.
  'MSH#$%@!*#APP#FAC###20250101##ADT$A01#C1#P#2.7\rPID#1##123$$$MRN%456!7#\rDG1#1\rNTE#1##a@F@b\r',
  // No escape character: a value with a delimiter cannot be written.
  'MSH|^~&|APP|FAC|||20250101||ADT^A01|C1|P|2.3\nPID|1||123^^^MRN&X~9\nDG1|1\nZDG|1|||\n',
];

interface Seg {
  fields: string[];
  term: string;
}

/** The model of a message text: lines split on the field separator; blank lines belong to the terminator before them. */
function model(text: string): Seg[] {
  const fs = text.charAt(3);
  const parts = text.split(/(\r\n|\r|\n)/);
  const segs: Seg[] = [];
  for (let i = 0; i < parts.length; i += 2) {
    const line = parts[i] as string;
    const sep = parts[i + 1] ?? '';
    const last = segs[segs.length - 1];
    if (last !== undefined && /^[ \t]*$/.test(line)) last.term += line + sep;
    else segs.push({ fields: line.split(fs), term: sep });
  }
  return segs;
}

const textOf = (segs: Seg[], fs: string): string => segs.map((s) => s.fields.join(fs) + s.term).join('');
const copyOf = (segs: Seg[]): Seg[] => segs.map((s) => ({ fields: [...s.fields], term: s.term }));

type Path = Hl7Path;

const pathText = (p: Path): string =>
  `${p.segment}${p.occurrence > 1 ? `[${p.occurrence}]` : ''}-${p.field}${p.repetition !== undefined ? `[${p.repetition}]` : ''}` +
  `${p.component !== undefined ? `.${p.component}` : ''}${p.subcomponent !== undefined ? `.${p.subcomponent}` : ''}`;

/** Index of a path's segment in the model (the first MSH only as MSH, as `Hl7Message` counts), or -1. */
function segIndex(segs: Seg[], p: Path): number {
  if (p.segment === 'MSH') return p.occurrence === 1 ? 0 : -1;
  let n = 0;
  for (let k = 1; k < segs.length; k++) if (segs[k]!.fields[0] === p.segment && ++n === p.occurrence) return k;
  return -1;
}

/** Field index in the model's split: MSH's split starts at MSH-2 (MSH-1 is the separator itself). */
const fieldIdx = (p: Path): number => (p.segment === 'MSH' ? p.field - 1 : p.field);

function modelGet(segs: Seg[], p: Path, raw: boolean, d: Delimiters): string | undefined {
  const k = segIndex(segs, p);
  if (k < 0) return undefined;
  if (p.segment === 'MSH' && p.field <= 2) {
    if ((p.repetition ?? 1) !== 1 || (p.component ?? 1) !== 1 || (p.subcomponent ?? 1) !== 1) return undefined;
    return p.field === 1 ? d.field : segs[0]!.fields[1];
  }
  let v = segs[k]!.fields[fieldIdx(p)];
  if (v === undefined) return undefined;
  v = v.split(d.repetition)[(p.repetition ?? 1) - 1];
  if (v !== undefined && p.component !== undefined) v = v.split(d.component)[p.component - 1];
  if (v !== undefined && p.subcomponent !== undefined) v = v.split(d.subcomponent)[p.subcomponent - 1];
  return v === undefined || raw ? v : unescapeValue(v, d);
}

/** Piece n of s split on sep replaced by fn(old), padded with empty pieces: the simple way. */
function splice(s: string, sep: string, n: number, fn: (old: string) => string): string {
  const parts = s.split(sep);
  while (parts.length <= n) parts.push('');
  parts[n] = fn(parts[n]!);
  return parts.join(sep);
}

/** The model's `set`: the error code it must give, or null after writing. */
function modelSet(segs: Seg[], p: Path, value: string, raw: boolean, d: Delimiters): string | null {
  if (p.segment === 'MSH' && p.field <= 2) return 'HL7_BAD_PATH';
  const k = segIndex(segs, p);
  if (k < 0) return 'HL7_BAD_PATH';
  let v = value;
  if (raw) {
    if (/[\x00-\x08\x0A-\x1F\x7F]/.test(value) || value.includes(d.field)) return 'HL7_BAD_PATH';
  } else {
    try {
      v = escapeValue(value, d);
    } catch (e) {
      return (e as Hl7Error).code;
    }
  }
  const fields = segs[k]!.fields;
  const idx = fieldIdx(p);
  while (fields.length <= idx) fields.push('');
  fields[idx] = splice(fields[idx]!, d.repetition, (p.repetition ?? 1) - 1, (rep) =>
    p.component === undefined
      ? v
      : splice(rep, d.component, p.component - 1, (comp) => (p.subcomponent === undefined ? v : splice(comp, d.subcomponent, p.subcomponent - 1, () => v))));
  return null;
}

/** A small deterministic generator (mulberry32), so a failure names a reproducible case. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

const VALUES = ['', 'X', 'NEW VALUE', 'a^b', 'r1~r2&s', 'x|y', 'back\\slash', 'line\r\nbreak', 'tab\there', 'é中😀', 'L'.repeat(60), '#$%@!*'];
const RAW_VALUES = ['', 'Y', 'a^b', 'a&b^c', 'r1~r2', 'x|y', '\\F\\', 'c\nd', 'e\tf', '$%@!'];

function randomPath(segs: Seg[], r: (n: number) => number): Path {
  const k = r(10) === 0 ? 0 : r(segs.length);
  let segment = segs[k]!.fields[0]!;
  let occurrence = 1;
  if (k > 0) for (let j = 1; j < k; j++) if (segs[j]!.fields[0] === segment) occurrence++;
  if (r(12) === 0) occurrence += 1 + r(2); // a missing occurrence
  if (r(25) === 0) segment = 'ZZZ';
  const width = Math.max(segs[k]!.fields.length, 3);
  const p: Path = { segment, occurrence, field: 1 + r(width + 3) };
  if (r(3) === 0) p.repetition = 1 + r(3);
  if (r(2) === 0) {
    p.component = 1 + r(5);
    if (r(3) === 0) p.subcomponent = 1 + r(3);
  }
  return p;
}

/** Every field of every segment, as read through both; plus a component and a subcomponent of each. */
function checkAllReads(t: ExecutionContext, m: Hl7Message, segs: Seg[], d: Delimiters, where: string): void {
  const seen = new Map<string, number>();
  for (let k = 0; k < segs.length; k++) {
    const segment = segs[k]!.fields[0]!;
    const occurrence = (seen.get(segment) ?? 0) + 1;
    seen.set(segment, occurrence);
    if (segment === 'MSH' && k > 0) continue;
    const count = segs[k]!.fields.length + (segment === 'MSH' ? 2 : 1);
    for (let field = 1; field <= count; field++) {
      for (const extra of [{}, { component: 2 }, { repetition: 2, component: 1, subcomponent: 2 }]) {
        const p: Path = { segment, occurrence, field, ...extra };
        t.is(m.get(pathText(p), { raw: true }), modelGet(segs, p, true, d), `${where}: get ${pathText(p)}`);
      }
    }
  }
}

/** Apply a random sequence of operations to a message and its model, comparing after each. */
function exercise(t: ExecutionContext, text: string, seed: number, steps: number): void {
  const r = rng(seed);
  let m = Hl7Message.parse(text);
  const d = m.delimiters;
  let segs = model(text);
  t.is(textOf(segs, d.field), text, `seed ${seed}: the model reads the text`);
  const log: string[] = [];
  const where = (): string => `seed ${seed} after ${log.join('; ')}`;
  for (let i = 0; i < steps; i++) {
    const op = r(20);
    if (op < 11) {
      const p = randomPath(segs, r);
      const raw = r(3) === 0;
      const value = raw ? RAW_VALUES[r(RAW_VALUES.length)]! : VALUES[r(VALUES.length)]!;
      log.push(`set ${pathText(p)} ${JSON.stringify(value)}${raw ? ' raw' : ''}`);
      const want = modelSet(segs, p, value, raw, d);
      let got: string | null = null;
      try {
        m.set(pathText(p), value, { raw });
      } catch (e) {
        if (!(e instanceof Hl7Error)) throw e;
        got = e.code;
      }
      t.is(got, want, where());
    } else if (op < 15) {
      for (let j = 0; j < 4; j++) {
        const p = randomPath(segs, r);
        const raw = r(2) === 0;
        t.is(m.get(pathText(p), { raw }), modelGet(segs, p, raw, d), `${where()}: get ${pathText(p)}`);
      }
    } else if (op < 18) {
      // Drop a segment id the message has (sometimes one it lacks).
      const id = r(6) === 0 ? 'ZZZ' : segs[1 + r(segs.length - 1)]!.fields[0]!;
      log.push(`withoutSegments ${id}`);
      const kept = segs.filter((s, k) => k === 0 || s.fields[0] !== id);
      if (kept.length === 1) {
        const e = t.throws(() => m.withoutSegments(id), { instanceOf: Hl7Error });
        t.is(e?.code, 'HL7_BAD_SEGMENT', where());
        continue;
      }
      const out = m.withoutSegments(id);
      if (kept.length === segs.length) t.is(out, m, `${where()}: nothing to drop, the same message`);
      m = out;
      segs = copyOf(kept);
    } else if (op < 19) {
      log.push('clone');
      m = m.clone();
    } else {
      t.is(m.encode({ rebuild: true }), textOf(segs, d.field), `${where()}: rebuild`);
    }
    t.is(m.toString(), textOf(segs, d.field), where());
  }
  checkAllReads(t, m, segs, d, where());
  // The text reads back as the same message.
  checkAllReads(t, Hl7Message.parse(m.toString()), segs, d, `${where()}, parsed again`);
}

test('set and withoutSegments on every corpus message: text, errors and reads as the split/join model', (t) => {
  const messages = corpusMessages();
  t.true(messages.length > 500, `${messages.length} corpus messages`);
  messages.forEach((text, i) => exercise(t, text, i + 1, 30));
});

test('set and withoutSegments on edge cases, many sequences each', (t) => {
  EDGE_CASES.forEach((text, i) => {
    for (let run = 0; run < 200; run++) exercise(t, text, 100_000 + i * 1000 + run, 25);
  });
});

test('set writes through the offsets: fields after the written one, missing fields and a segment written twice', (t) => {
  const text = 'MSH|^~\\&|APP|FAC|||20250101||ADT^A01|C1|P|2.5\rPID|1||123^^^MRN||DOE^JO|||F\rPV1|1|I|W^B\rDG1|1\r';
  const m = Hl7Message.parse(text);
  t.is(m.get('PID-8'), 'F', 'offsets read before the write');
  m.set('PID-3.4', 'NHS_NUMBER');
  t.is(m.get('PID-5.1'), 'DOE', 'a field after a longer write');
  t.is(m.get('PID-8'), 'F');
  m.set('PID-3', '');
  t.is(m.get('PID-5.2'), 'JO', 'a field after a shorter write');
  m.set('PID-12[2].2.3', 'S');
  t.deepEqual(m.getAll('PID-12', { raw: true }), ['', '^&&S']);
  t.is(m.get('PID-11'), '');
  t.is(m.get('PID-13'), undefined);
  m.set('PV1-3.2', 'BED&7');
  t.is(m.toString(), text.replace('123^^^MRN', '').replace('F\r', 'F||||~^&&S\r').replace('W^B', 'W^BED\\T\\7'));
  const out = m.withoutSegments('DG1');
  t.is(out.toString(), m.toString().replace('DG1|1\r', ''));
  t.is(out.get('PV1-3.2'), 'BED&7', 'a written segment in the copy');
  out.set('PV1-2', 'O');
  t.is(out.get('PV1-3.1'), 'W');
  t.is(m.get('PV1-2'), 'I', 'the original is not the copy');
  t.is(out.toString(), m.toString().replace('DG1|1\r', '').replace('PV1|1|I|', 'PV1|1|O|'));
});
