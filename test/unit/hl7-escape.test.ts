// SPDX-License-Identifier: Apache-2.0
import test from 'ava';
import {
  DEFAULT_DELIMITERS, type Delimiters, Hl7Error, escapeValue, formatHl7Timestamp, parseHl7Timestamp, parsePath, unescapeValue,
} from '../../src/hl7/index.js';

const D = DEFAULT_DELIMITERS;
const D27: Delimiters = { ...D, truncation: '#' };

test('unescape: delimiter sequences', (t) => {
  t.is(unescapeValue('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f', D), 'a|b^c&d~e\\f');
  t.is(unescapeValue('x\\P\\y', D27), 'x#y');
  t.is(unescapeValue('x\\P\\y', D), 'x\\P\\y', '\\P\\ means nothing without a truncation character');
  t.is(unescapeValue('plain', D), 'plain');
  // Other delimiters: the sequences are symbolic, the result uses this message's characters.
  const odd: Delimiters = { field: '#', component: '!', repetition: '$', escape: '/', subcomponent: '*', truncation: '' };
  t.is(unescapeValue('a/F/b/S/c/E/d', odd), 'a#b!c/d');
});

test('unescape: hex sequences as UTF-8 when valid, else Latin-1', (t) => {
  t.is(unescapeValue('a\\X0D\\\\X0A\\b', D), 'a\r\nb');
  t.is(unescapeValue('\\X0d0a\\', D), '\r\n');
  t.is(unescapeValue('caf\\XC3A9\\', D), 'café');
  t.is(unescapeValue('caf\\XC3\\\\XA9\\', D), 'café', 'adjacent sequences are decoded together');
  t.is(unescapeValue('caf\\XE9\\', D), 'café', 'not valid UTF-8: Latin-1');
  t.is(unescapeValue('\\XZZ\\', D), '\\XZZ\\', 'not hex: verbatim');
  t.is(unescapeValue('\\X0\\', D), '\\X0\\', 'odd number of digits: verbatim');
});

test('unescape: \\.br\\ is a line break; other formatting and unknown sequences stay verbatim', (t) => {
  t.is(unescapeValue('one\\.br\\two', D), 'one\ntwo');
  t.is(unescapeValue('\\H\\bold\\N\\ \\.sp2\\ \\.in+4\\', D), '\\H\\bold\\N\\ \\.sp2\\ \\.in+4\\');
  t.is(unescapeValue('\\Cxxyy\\ \\Zlocal\\ \\Q\\', D), '\\Cxxyy\\ \\Zlocal\\ \\Q\\');
  t.is(unescapeValue('C:\\temp', D), 'C:\\temp', 'unterminated: verbatim');
  t.is(unescapeValue('a\\', D), 'a\\');
  t.is(unescapeValue('\\\\', D), '\\\\');
  t.is(unescapeValue('x\\H\\y\\F\\z', D), 'x\\H\\y|z');
});

test('escape: delimiters, truncation, CR/LF and control characters; round trip', (t) => {
  t.is(escapeValue('a|b^c&d~e\\f', D), 'a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f');
  t.is(escapeValue('x#y', D27), 'x\\P\\y');
  t.is(escapeValue('x#y', D), 'x#y');
  t.is(escapeValue('a\r\nb\u0001\tc', D), 'a\\X0D\\\\X0A\\b\\X01\\\tc');
  t.is(escapeValue('plain text', D), 'plain text');
  for (const v of ['a|b^c&d~e\\f#', 'line\r\nline', 'é ü 中文', '\\.br\\ literal', '']) {
    t.is(unescapeValue(escapeValue(v, D27), D27), v);
  }
});

test('escape: without an escape character only plain values can be written', (t) => {
  const d3: Delimiters = { ...D, escape: '', subcomponent: '}' };
  t.is(escapeValue('plain', d3), 'plain');
  const e = t.throws(() => escapeValue('a^b', d3));
  t.true(e instanceof Hl7Error);
  t.is((e as Hl7Error).code, 'HL7_BAD_ESCAPE');
  t.is(unescapeValue('a\\F\\b', d3), 'a\\F\\b');
});

test('parsePath: grammar', (t) => {
  t.deepEqual({ ...parsePath('PID-3') }, { segment: 'PID', occurrence: 1, field: 3 });
  t.deepEqual({ ...parsePath('PID-3[2].1') }, { segment: 'PID', occurrence: 1, field: 3, repetition: 2, component: 1 });
  t.deepEqual({ ...parsePath('OBX[3]-5.1.2') }, { segment: 'OBX', occurrence: 3, field: 5, component: 1, subcomponent: 2 });
  t.deepEqual({ ...parsePath('MSH-9.2') }, { segment: 'MSH', occurrence: 1, field: 9, component: 2 });
  t.deepEqual({ ...parsePath('ZX1-12') }, { segment: 'ZX1', occurrence: 1, field: 12 });
  t.is(parsePath('PID-3'), parsePath('PID-3'), 'cached');
  for (const bad of ['', 'PID', 'PID-', 'pid-3', 'PID-0', 'PID-3.0', 'PID[0]-1', 'PID-3[', 'PID-3[2', 'PID-3.1.2.3', 'PID.3', 'PID-3-1', 'PID-3(1)', 'PID-x', 'PIDS-1', 'PID-3 ']) {
    const e = t.throws(() => parsePath(bad), undefined, bad);
    t.true(e instanceof Hl7Error && e.code === 'HL7_BAD_PATH', bad);
  }
});

test('timestamps: parse every precision and offsets; refuse nonsense', (t) => {
  t.is(parseHl7Timestamp('2025')?.toISOString(), '2025-01-01T00:00:00.000Z');
  t.is(parseHl7Timestamp('202503')?.toISOString(), '2025-03-01T00:00:00.000Z');
  t.is(parseHl7Timestamp('20250314')?.toISOString(), '2025-03-14T00:00:00.000Z');
  t.is(parseHl7Timestamp('2025031408')?.toISOString(), '2025-03-14T08:00:00.000Z');
  t.is(parseHl7Timestamp('202503140815')?.toISOString(), '2025-03-14T08:15:00.000Z');
  t.is(parseHl7Timestamp('20250314081530')?.toISOString(), '2025-03-14T08:15:30.000Z');
  t.is(parseHl7Timestamp('20250314081530.1234')?.toISOString(), '2025-03-14T08:15:30.123Z');
  t.is(parseHl7Timestamp('20250314081530+0100')?.toISOString(), '2025-03-14T07:15:30.000Z');
  t.is(parseHl7Timestamp('20230501102531-0400')?.toISOString(), '2023-05-01T14:25:31.000Z');
  t.is(parseHl7Timestamp('20250314081530.5-0230')?.toISOString(), '2025-03-14T10:45:30.500Z');
  for (const bad of ['', '196203520', '19620352', '20250230', '2025131', '20251301', '202503142561', 'Aug 15, 1942', '20250314+01', '20250314081530.', '20250314081530.12345', '2025031408153']) {
    t.is(parseHl7Timestamp(bad), undefined, bad);
  }
  // Leap years of the Gregorian calendar, and every fraction length.
  t.is(parseHl7Timestamp('20240229')?.toISOString(), '2024-02-29T00:00:00.000Z');
  t.is(parseHl7Timestamp('20000229')?.toISOString(), '2000-02-29T00:00:00.000Z');
  for (const bad of ['20230229', '19000229', '20250431', '20251131']) t.is(parseHl7Timestamp(bad), undefined, bad);
  t.is(parseHl7Timestamp('20251231235959.12')?.toISOString(), '2025-12-31T23:59:59.120Z');
  t.is(parseHl7Timestamp('20250314081530.123')?.toISOString(), '2025-03-14T08:15:30.123Z');
  t.is(parseHl7Timestamp('20250314081530.0999')?.toISOString(), '2025-03-14T08:15:30.099Z');
  t.is(formatHl7Timestamp(new Date('2025-03-14T08:15:30.007Z')), '20250314081530.007+0000');
  t.is(parseHl7Timestamp(formatHl7Timestamp(new Date(1_700_000_000_123)))?.getTime(), 1_700_000_000_123);
});
