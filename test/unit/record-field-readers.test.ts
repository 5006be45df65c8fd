// SPDX-License-Identifier: Apache-2.0
// The record's field readers (clinicians, locations, identifiers, timestamps) read repetitions and
// components in place. Each is compared here with a simple reference that splits the field with
// componentsOf and reads it with get, as the readers once did, over random fields: escapes, `""`,
// spaces, empty repetitions and components, subcomponents, and two delimiter sets.
import test from 'ava';
import fc from 'fast-check';
import { type Delimiters, Hl7Error, type Hl7Location, Hl7Message, parseHl7Timestamp, unescapeValue } from '../../src/hl7/index.js';
import { type Clinician, sentClinicians, sentLocation, sentTime } from '../../src/record/appointments.js';
import {
  EMAIL_SYSTEM, type IdentifierScope, type MessageIdentifier, localSystem, matchLocalType, nationalTypeOf, parseTypeCode, readIdentifiers,
} from '../../src/record/identifiers.js';
import type { LocalIdType } from '../../src/record/store.js';
import { nhsNumber } from '../helpers/record.js';

const RUNS = Number(process.env.HL7_PROPERTY_RUNS ?? 300);

// ----------------------------------------------------------------------------------------------
// References: split and read through get
// ----------------------------------------------------------------------------------------------

function refSentValue(v: string | undefined): string | null | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  if (t === '') return undefined;
  if (t === '""') return null;
  return t;
}

function refPiece(components: readonly string[], n: number, d: Delimiters, sub = false): string {
  let v = components[n];
  if (v === undefined || v === '') return '';
  if (sub) {
    const i = v.indexOf(d.subcomponent);
    if (i >= 0) v = v.slice(0, i);
  }
  return unescapeValue(v, d).trim();
}

function refClinicians(msg: Hl7Message, path: string): Clinician[] | undefined {
  const whole = refSentValue(msg.get(path));
  if (whole === undefined) return undefined;
  if (whole === null) return [];
  const d = msg.delimiters;
  const out: Clinician[] = [];
  for (const c of msg.componentsOf(path)) {
    const id = refPiece(c, 0, d) || null;
    const family = refPiece(c, 1, d, true) || null;
    const given = refPiece(c, 2, d) || null;
    const prefix = refPiece(c, 5, d) || null;
    if (id === null && family === null && given === null) continue;
    const name = [prefix, given, family].filter((x) => x !== null).join(' ');
    out.push({ id, family, given, prefix, display: family !== null || given !== null ? name : (id ?? '') });
  }
  return out;
}

function refLocation(msg: Hl7Message, path: string): string | null | undefined {
  const whole = refSentValue(msg.get(path));
  if (whole === undefined || whole === null) return whole;
  const c = msg.componentsOf(path)[0] ?? [];
  const d = msg.delimiters;
  const description = refSentValue(refPiece(c, 8, d));
  if (typeof description === 'string') return description;
  const parts = [0, 1, 2].map((n) => refSentValue(refPiece(c, n, d))).filter((v): v is string => typeof v === 'string');
  const facility = refSentValue(refPiece(c, 3, d, true));
  const base = parts.join(' ');
  if (typeof facility === 'string') return base === '' ? facility : `${base} (${facility})`;
  return base === '' ? undefined : base;
}

function refTime(msg: Hl7Message, path: string): string | null | undefined {
  const v = refSentValue(msg.get(path));
  if (v === undefined || v === null) return v;
  const d = msg.delimiters;
  let ts = v;
  const c = ts.indexOf(d.component);
  if (c >= 0) ts = ts.slice(0, c);
  const s = ts.indexOf(d.subcomponent);
  if (s >= 0) ts = ts.slice(0, s);
  const date = parseHl7Timestamp(ts);
  if (date === undefined) throw new Error(`bad time at ${path}`);
  return date.toISOString();
}

/** The result of `fn`, or its error as code, message and location (errors must match too). */
function outcome(fn: () => unknown): string {
  try {
    return JSON.stringify({ ok: fn() ?? 'undefined' });
  } catch (e) {
    return JSON.stringify({ error: e instanceof Hl7Error ? [e.code, e.message, e.location] : String(e) });
  }
}

// ----------------------------------------------------------------------------------------------
// Random messages
// ----------------------------------------------------------------------------------------------

/** Two delimiter sets: the usual one, and one with other characters (and an escape). */
const DELIMS = [
  { msh2: '^~\\&', c: '^', r: '~', s: '&', e: '\\' },
  { msh2: '#*!$', c: '#', r: '*', s: '$', e: '!' },
];

type Set = (typeof DELIMS)[number];

/** A text unit in terms of a delimiter set: letters, spaces, `""`, delimiters and escape sequences. */
function unitArb(words: readonly string[]): fc.Arbitrary<(x: Set) => string> {
  return fc.constantFrom<(x: Set) => string>(
    ...words.map((w) => () => w),
    () => ' ',
    () => '""',
    (x) => x.c,
    (x) => x.c,
    (x) => x.r,
    (x) => x.s,
    (x) => `${x.e}S${x.e}`,
    (x) => `${x.e}T${x.e}`,
    (x) => `${x.e}X41${x.e}`,
    (x) => x.e,
  );
}

const fieldArb = (words: readonly string[]): fc.Arbitrary<(x: Set) => string> =>
  fc.array(unitArb(words), { maxLength: 14 }).map((units) => (x: Set) => units.map((u) => u(x)).join(''));

function message(x: Set, pv1: Record<number, string>, pid: Record<number, string>): Hl7Message {
  const fields = (seg: string, values: Record<number, string>): string => {
    const max = Math.max(0, ...Object.keys(values).map(Number));
    const out = [seg];
    for (let i = 1; i <= max; i++) out.push(values[i] ?? '');
    return out.join('|');
  };
  return Hl7Message.parse(`MSH|${x.msh2}|A|B|||20250101||ADT${x.c}A01|1|P|2.5.1\rEVN|A01\r${fields('PID', pid)}\r${fields('PV1', pv1)}\r`);
}

test('sentClinicians and sentLocation equal the split reference', (t) => {
  const names = ['U44', 'PATEL', 'PRIYA', 'DR', 'WARD3', 'BED5'];
  fc.assert(
    fc.property(fc.constantFrom(...DELIMS), fieldArb(names), fieldArb(names), fieldArb(names), fc.boolean(), (x, f3, f7, f8, absent) => {
      const pv1: Record<number, string> = { 1: '1', 3: f3(x), 7: f7(x) };
      if (!absent) pv1[8] = f8(x);
      const m = message(x, pv1, { 1: '1' });
      for (const path of ['PV1-7', 'PV1-8', 'PV1-3', 'PV1-9', 'PV1-20']) {
        if (outcome(() => sentClinicians(m, path)) !== outcome(() => refClinicians(m, path))) return false;
        if (outcome(() => sentLocation(m, path)) !== outcome(() => refLocation(m, path))) return false;
      }
      return true;
    }),
    { numRuns: RUNS * 10 },
  );
  t.pass();
});

test('sentClinicians and sentLocation: examples', (t) => {
  const m = message(DELIMS[0]!, {
    3: 'WARD3^BAY2^BED5^RIVERSIDE&X',
    7: 'U4411^PATEL^PRIYA^^^DR^MD~^OKAFOR~U9~~""',
    8: '""~U1^A',
    9: ' ',
  }, { 1: '1' });
  t.deepEqual(sentClinicians(m, 'PV1-7'), [
    { id: 'U4411', family: 'PATEL', given: 'PRIYA', prefix: 'DR', display: 'DR PRIYA PATEL' },
    { id: null, family: 'OKAFOR', given: null, prefix: null, display: 'OKAFOR' },
    { id: 'U9', family: null, given: null, prefix: null, display: 'U9' },
    { id: '""', family: null, given: null, prefix: null, display: '""' },
  ]);
  t.deepEqual(sentClinicians(m, 'PV1-8'), []);
  t.is(sentClinicians(m, 'PV1-9'), undefined);
  t.is(sentLocation(m, 'PV1-3'), 'WARD3 BAY2 BED5 (RIVERSIDE)');
});

test('sentTime equals the Date reference, errors included', (t) => {
  const stamp = fc
    .tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 31 }), fc.integer({ min: 0, max: 23 }),
      fc.constantFrom('', '+0100', '-1459', '+1400', '-0030', '.5', '.1234+0100'))
    .map(([y, mo, d, h, tail]) => `${String(y).padStart(4, '0')}${String(mo).padStart(2, '0')}${String(d).padStart(2, '0')}${String(h).padStart(2, '0')}3000${tail}`);
  const value = fc.oneof(stamp, stamp.map((s) => `${s}^S`), stamp.map((s) => ` ${s}&X`), fc.constantFrom('', '""', ' ', 'soon', '2025\\S\\1'));
  fc.assert(
    fc.property(value, (v) => {
      const m = message(DELIMS[0]!, { 1: '1', 44: v }, { 1: '1' });
      const got = outcome(() => sentTime(m, 'PV1-44', 'RECORD_ENCOUNTER_TIME_INVALID'));
      const want = outcome(() => refTime(m, 'PV1-44'));
      // The reference throws a plain error where sentTime throws the Hl7Error: compare the outcome kind.
      return want.startsWith('{"error"') ? got.startsWith('{"error":["RECORD_ENCOUNTER_TIME_INVALID"') : got === want;
    }),
    { numRuns: RUNS * 10 },
  );
  t.pass();
});

// ----------------------------------------------------------------------------------------------
// Identifiers
// ----------------------------------------------------------------------------------------------

/** readIdentifiers as it was, reading the fields through componentsOf (PID-2 and PID-3). */
function refIdentifiers(message: Hl7Message, sc: IdentifierScope): MessageIdentifier[] {
  const segment = 'PID';
  const occurrence = 1;
  const out: MessageIdentifier[] = [];
  const d = message.delimiters;
  for (const field of [2, 3]) {
    const reps = message.componentsOf({ segment, occurrence, field });
    for (let i = 0; i < reps.length; i++) {
      const c = reps[i]!;
      const value = unescapeValue(c[0] ?? '', d).trim();
      if (value === '' || value === '""') continue;
      const aa = c[3] ?? '';
      const sub = aa.indexOf(d.subcomponent);
      const authority = unescapeValue(sub < 0 ? aa : aa.slice(0, sub), d);
      const { code, status } = parseTypeCode(unescapeValue(c[4] ?? '', d));
      const location: Hl7Location = { segment, sequence: occurrence, field, repetition: i + 1, component: 1 };
      const national = nationalTypeOf(authority, code);
      if (national !== undefined) {
        const problem = national.problem(value);
        if (problem !== undefined) throw new Error(`${national.name} ${segment}-${field}[${i + 1}].1 ${problem}`);
        out.push({ kind: national.kind, system: national.system, value, status: national.kind === 'nhs' && status !== '' ? status : null, location });
      } else if (authority === 'PKB' && code === 'PI') {
        out.push({ kind: 'pkb', system: 'pkb', value, status: null, location });
      } else if (authority === 'EMAIL' && code === 'EMAIL') {
        if (field === 3) out.push({ kind: 'email', system: EMAIL_SYSTEM, value: value.toLowerCase(), status: null, location });
      } else if (code !== '') {
        const type = matchLocalType(sc, authority, code);
        if (type !== undefined) out.push({ kind: 'local', system: localSystem(type), value, status: null, location });
      }
    }
  }
  return out;
}

const scope: IdentifierScope = {
  organisationId: 'org-a',
  teamId: null,
  localTypes: [{ organisationId: 'org-a', teamId: null, authority: '*', typeCode: 'MR' } as LocalIdType],
};

test('readIdentifiers reads what the split components give (before its checks for duplicates and conflicts)', (t) => {
  const cx = fc
    .tuple(
      fc.constantFrom(nhsNumber(1), nhsNumber(2), '1234567890', 'RV123', ' RV9 ', '""', '', ' ', 'A@B.example', 'X\\S\\Y', 'Z&1'),
      fc.constantFrom('NHS', 'PKB', 'EMAIL', 'RIVERSIDE', 'NHS Scotland', 'NHS&2.16&ISO', '', 'R\\T\\S'),
      fc.constantFrom('NH', 'NH{status:01}', 'PI', 'EMAIL', 'MR', '', 'M\\S\\R'),
      fc.constantFrom('', '^X'),
    )
    .map(([v, aa, tc, more]) => `${v}^^^${aa}^${tc}${more}`);
  const repsArb = fc.array(fc.oneof(cx, fc.constant('')), { maxLength: 4 });
  fc.assert(
    fc.property(repsArb, repsArb, (pid3, pid2) => {
      const m = message(DELIMS[0]!, { 1: '1' }, { 1: '1', 2: pid2.join('~'), 3: pid3.join('~') });
      let want: string;
      try {
        // readIdentifiers keeps the first of identical identifiers and refuses conflicts: the
        // reference's list, deduplicated the same way, or an error where the reference has one.
        const all = refIdentifiers(m, scope);
        const unique: MessageIdentifier[] = [];
        for (const x of all) if (!unique.some((u) => u.kind === x.kind && u.system === x.system && u.value === x.value)) unique.push(x);
        want = JSON.stringify(unique);
      } catch {
        want = 'error';
      }
      let got: string;
      try {
        got = JSON.stringify(readIdentifiers(m, scope));
      } catch (e) {
        if (!(e instanceof Hl7Error)) throw e;
        // A conflict (two NHS numbers, two emails) is refused after reading: no reference error then.
        if (e.code === 'RECORD_CONFLICTING_IDENTIFIERS') return want !== 'error';
        got = 'error';
      }
      return got === want;
    }),
    { numRuns: RUNS * 10 },
  );
  t.pass();
});
