// SPDX-License-Identifier: Apache-2.0
// Hl7Message.rawField and rawComponent against what splitting gives: the whole field as
// componentsOf/getAll see it, and component n (first subcomponent) of each repetition as
// split(component)[n].split(subcomponent)[0].
import test from 'ava';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { type Delimiters, Hl7Error, Hl7Message, rawComponent } from '../../src/hl7/index.js';

const RUNS = Number(process.env.HL7_PROPERTY_RUNS ?? 300);

test('rawField: the whole raw field, every repetition; MSH-1/MSH-2 as they are; undefined when absent', (t) => {
  const m = Hl7Message.parse('MSH|^~\\&|APP|FAC|||20250101||ADT^A01|1|P|2.5.1\rPID|1||A\\S\\1^^^X&Y^MR~B^^^Z^NH||\rPID|2|\r');
  t.is(m.rawField('PID-3'), 'A\\S\\1^^^X&Y^MR~B^^^Z^NH');
  t.is(m.rawField('PID-3[2].4.1'), 'A\\S\\1^^^X&Y^MR~B^^^Z^NH', 'only segment, occurrence and field count');
  t.is(m.rawField('PID-4'), '');
  t.is(m.rawField('PID-5'), '');
  t.is(m.rawField('PID-6'), undefined);
  t.is(m.rawField('PID[2]-2'), '');
  t.is(m.rawField('PID[2]-3'), undefined);
  t.is(m.rawField('PID[3]-1'), undefined);
  t.is(m.rawField('PV1-1'), undefined);
  t.is(m.rawField('MSH-1'), '|');
  t.is(m.rawField('MSH-2'), '^~\\&');
  t.is(m.rawField('MSH[2]-1'), undefined, 'as get: there is no second MSH');
  t.is(m.rawField('MSH-9'), 'ADT^A01');
  t.is(m.rawField({ segment: 'PID', occurrence: 1, field: 3 }), 'A\\S\\1^^^X&Y^MR~B^^^Z^NH');
  t.is(m.rawField({ segment: 'PIDX', occurrence: 1, field: 3 }), undefined, 'a hand-made path with a 4-character id finds nothing');
  m.set('PID-3[2].1', 'C');
  t.is(m.rawField('PID-3'), 'A\\S\\1^^^X&Y^MR~C^^^Z^NH', 'after set');
  t.throws(() => m.rawField('PID'), { instanceOf: Hl7Error });
});

test('reading a field of two million repetitions stays linear (each search ends at its repetition)', (t) => {
  // A guard against complexity, not a speed target: searches that ran on past each repetition
  // took over 30 s for this field (4 MB, no component or subcomponent separator), linear ones
  // under a second. The test runs synchronously, so it measures its own time (ava's timeout cannot
  // interrupt it).
  const started = performance.now();
  const reps = 2_000_000;
  const field = Array.from({ length: reps }, () => 'X').join('~');
  const d: Delimiters = Hl7Message.parse('MSH|^~\\&|A\rPID|1\r').delimiters;
  let from = 0;
  let found = 0;
  while (from <= field.length) {
    let to = field.indexOf('~', from);
    if (to < 0) to = field.length;
    if (rawComponent(field, from, to, 0, d) === 'X' && rawComponent(field, from, to, 1, d, true) === '' && rawComponent(field, from, to, 3, d, true) === '') found++;
    from = to + 1;
  }
  t.is(found, reps);
  const seconds = (performance.now() - started) / 1000;
  t.true(seconds < 10, `${seconds.toFixed(1)} s`);
});

test('rawComponent: examples', (t) => {
  const d: Delimiters = Hl7Message.parse('MSH|^~\\&|A\rPID|1\r').delimiters;
  const f = 'U1^PATEL&X^PRIYA^^^DR~U2^OKAFOR';
  const first = f.indexOf('~');
  t.is(rawComponent(f, 0, first, 0, d), 'U1');
  t.is(rawComponent(f, 0, first, 1, d), 'PATEL&X');
  t.is(rawComponent(f, 0, first, 1, d, true), 'PATEL');
  t.is(rawComponent(f, 0, first, 5, d), 'DR');
  t.is(rawComponent(f, 0, first, 6, d), '');
  t.is(rawComponent(f, first + 1, f.length, 1, d), 'OKAFOR');
  t.is(rawComponent(f, first + 1, f.length, 2, d), '', 'not read from beyond the repetition');
  t.is(rawComponent('X', 0, 1, 0, d), 'X');
  t.is(rawComponent('', 0, 0, 0, d), '');
});

/** Random fields over the delimiters, escapes, spaces and text. */
const fieldArb = fc.string({ unit: fc.constantFrom('A', 'b', '1', ' ', '^', '~', '&', '\\', '"', 'é'), maxLength: 40 });

test('rawComponent equals split of the repetition, for every repetition and component', (t) => {
  const d: Delimiters = Hl7Message.parse('MSH|^~\\&|A\rPID|1\r').delimiters;
  fc.assert(
    fc.property(fieldArb, fc.integer({ min: 0, max: 8 }), fc.boolean(), (field, n, sub) => {
      let from = 0;
      for (const rep of field.split('~')) {
        const to = from + rep.length;
        let want = rep.split('^')[n] ?? '';
        if (sub) want = want.split('&')[0] as string;
        if (rawComponent(field, from, to, n, d, sub) !== want) return false;
        from = to + 1;
      }
      return true;
    }),
    { numRuns: RUNS * 10 },
  );
  t.pass();
});

test('rawField equals the repetitions componentsOf and getAll read', (t) => {
  fc.assert(
    fc.property(fc.array(fieldArb, { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 8 }), (fields, n) => {
      const text = `MSH|^~\\&|A|B|||20250101||ADT^A01|1|P|2.5.1\rPV1|${fields.join('|')}\r`;
      const m = Hl7Message.parse(text);
      const raw = m.rawField(`PV1-${n}`);
      if (n > fields.length) return raw === undefined && m.componentsOf(`PV1-${n}`).length === 0;
      return raw !== undefined && raw === fields[n - 1]
        && JSON.stringify(m.getAll(`PV1-${n}`, { raw: true })) === JSON.stringify(raw === '' ? [] : raw.split('~'));
    }),
    { numRuns: RUNS * 3 },
  );
  t.pass();
});

test('segment lookup: short messages (scanned) and long ones (indexed) find every occurrence and nothing else', (t) => {
  for (const count of [1, 3, 14, 15, 16, 30]) {
    const obx = Array.from({ length: count }, (_, i) => `OBX|${i + 1}|NM|C${i + 1}`);
    const m = Hl7Message.parse(`MSH|^~\\&|A|B|||20250101||ORU^R01|1|P|2.5.1\rPID|1\r${obx.join('\r')}\rNTE|1|x\r`);
    for (let i = 1; i <= count; i++) t.is(m.get(`OBX[${i}]-3`), `C${i}`, `${count} OBX: OBX[${i}]`);
    t.is(m.get(`OBX[${count + 1}]-1`), undefined);
    t.is(m.get('NTE-2'), 'x');
    t.is(m.get('PID-1'), '1');
    t.is(m.get('MSH[2]-1'), undefined);
    t.is(m.get('ZZZ-1'), undefined);
    t.is(m.get({ segment: 'OB', occurrence: 1, field: 1 }), undefined);
    t.is(m.get({ segment: 'OBXX', occurrence: 1, field: 1 }), undefined);
    t.is(m.get({ segment: 'OBX', occurrence: 0, field: 1 }), undefined);
  }
});
