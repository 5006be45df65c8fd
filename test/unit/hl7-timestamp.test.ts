// SPDX-License-Identifier: Apache-2.0
// hl7TimestampToIso must give exactly what parseHl7Timestamp(ts)?.toISOString() gives, for every
// input: the reference here is that expression, over edge cases and many random timestamps.
import test from 'ava';
import fc from 'fast-check';
import { hl7TimestampToIso, parseHl7Timestamp } from '../../src/hl7/index.js';

const RUNS = Number(process.env.HL7_PROPERTY_RUNS ?? 300);

/** The reference: build the Date and format it. */
const reference = (ts: string): string | undefined => parseHl7Timestamp(ts)?.toISOString();

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

test('hl7TimestampToIso: examples', (t) => {
  t.is(hl7TimestampToIso('2025'), '2025-01-01T00:00:00.000Z');
  t.is(hl7TimestampToIso('20250314081530.1234'), '2025-03-14T08:15:30.123Z');
  t.is(hl7TimestampToIso('20250314081530+0100'), '2025-03-14T07:15:30.000Z');
  t.is(hl7TimestampToIso('20250314081530.5-0230'), '2025-03-14T10:45:30.500Z');
  t.is(hl7TimestampToIso('20250314081530.007'), '2025-03-14T08:15:30.007Z');
  t.is(hl7TimestampToIso(' 20250314 '), '2025-03-14T00:00:00.000Z');
  t.is(hl7TimestampToIso('20230229'), undefined);
  t.is(hl7TimestampToIso('not a time'), undefined);
});

test('hl7TimestampToIso: edge cases equal the Date reference', (t) => {
  const cases = [
    // Offsets that cross a day, a month, a year, and leap days.
    '20250101000000+0100', '20250101003000+1459', '20241231230000-0100', '20241231235959.999-1459',
    '20240229230000-0200', '20240301003000+0100', '20230301003000+0100', '20000301000000+0001',
    '19000301000000+0001', '21000228230000-0100', '20240229', '20000229', '19000229', '20230229',
    '20250331233000-0100', '20250430233000-0100', '20250401000000+0100', '20250501003000+0100',
    // Partial precision, with and without an offset.
    '2025', '202503', '20250314', '2025031408', '202503140815', '2025031408+0100', '2025+1400', '202501-0030',
    // Fractions of every length, and invalid ones.
    '20250314081530.1', '20250314081530.12', '20250314081530.123', '20250314081530.0999', '20250314081530.',
    '20250314081530.12345', '2025031408153.1', '20250314081530.1a',
    // Years at the ends of Date's special ranges: 0–99 (read as 1900–1999), 100, 9999.
    '0000', '00000101000000+0100', '00000229', '0099', '00991231230000-0100', '0100', '01000101000000+0100',
    '01000101003000+0100', '9999', '99991231230000-0100', '99991231235959.999-1459', '99991231',
    // Invalid offsets and values.
    '20250314081530+1500', '20250314081530+0160', '20250314081530+01', '20250314081530+01000', '2025-03-14',
    '20251301', '20250100', '20250132', '2025031424', '202503140860', '20250314081560', '', '   ', '+0100',
    '20250314081530+-100', '２０２５', '20250314081530.123+0100',
  ];
  for (const ts of cases) t.is(hl7TimestampToIso(ts), reference(ts), ts);
});

test('hl7TimestampToIso: every day of a leap and a common year, at both ends of the day, with offsets', (t) => {
  for (const year of [1900, 2000, 2023, 2024, 100, 9999]) {
    for (let month = 1; month <= 12; month++) {
      for (let day = 1; day <= 31; day++) {
        for (const time of ['000000', '003000.5', '235959.999', '233000']) {
          for (const offset of ['', '+0000', '+0100', '-0100', '+1459', '-1459', '-0030', '+0530']) {
            const ts = `${pad(year, 4)}${pad(month, 2)}${pad(day, 2)}${time}${offset}`;
            t.is(hl7TimestampToIso(ts), reference(ts), ts);
          }
        }
      }
    }
  }
});

test('hl7TimestampToIso: random timestamps equal the Date reference', (t) => {
  const valid = fc
    .record({
      year: fc.integer({ min: 0, max: 9999 }),
      month: fc.integer({ min: 0, max: 13 }),
      day: fc.integer({ min: 0, max: 32 }),
      hour: fc.integer({ min: 0, max: 24 }),
      minute: fc.integer({ min: 0, max: 60 }),
      second: fc.integer({ min: 0, max: 60 }),
      frac: fc.option(fc.stringMatching(/^[0-9]{0,5}$/)),
      offset: fc.option(fc.tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 60 }))),
      precision: fc.integer({ min: 2, max: 7 }),
    })
    .map((r) => {
      const parts = [pad(r.year, 4), pad(r.month, 2), pad(r.day, 2), pad(r.hour, 2), pad(r.minute, 2), pad(r.second, 2)];
      let ts = parts.slice(0, r.precision - 1).join('');
      if (r.frac !== null) ts += `.${r.frac}`;
      if (r.offset !== null) ts += `${r.offset[0]}${pad(r.offset[1], 2)}${pad(r.offset[2], 2)}`;
      return ts;
    });
  const anything = fc.string({ unit: fc.constantFrom(...'0123456789+-. x'), maxLength: 24 });
  fc.assert(
    fc.property(fc.oneof(valid, anything), (ts) => hl7TimestampToIso(ts) === reference(ts)),
    { numRuns: RUNS * 30 },
  );
  t.pass();
});
