// SPDX-License-Identifier: Apache-2.0
import test from 'ava';
import { Hl7Error, decodeHl7Bytes } from '../../src/hl7/index.js';

const mshWith = (msh18: string): string => `MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5|||||GBR|${msh18}|EN\rPID|1||||`;
const bytes = (...parts: (string | number[])[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

test('UTF-8 by default, and a UTF-8 BOM is stripped', (t) => {
  const text = `${mshWith('')}Zoë\r`;
  t.deepEqual(decodeHl7Bytes(Buffer.from(text, 'utf8')), { text, charset: 'UNICODE UTF-8', bom: false, fallback: false });
  t.deepEqual(decodeHl7Bytes(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')])), {
    text, charset: 'UNICODE UTF-8', bom: true, fallback: false,
  });
  // A plain Uint8Array works too.
  t.is(decodeHl7Bytes(new Uint8Array(Buffer.from(text, 'utf8'))).text, text);
});

test('MSH-18 absent and invalid UTF-8: Latin-1 fallback, said so', (t) => {
  const r = decodeHl7Bytes(bytes(mshWith(''), 'Zo', [0xeb], '\r'));
  t.is(r.text, `${mshWith('')}Zoë\r`);
  t.is(r.charset, '8859/1');
  t.true(r.fallback);
});

test('MSH-18 8859/1: Latin-1 bytes decoded as Latin-1', (t) => {
  const r = decodeHl7Bytes(bytes(mshWith('8859/1'), 'M', [0xfc], 'ller \u00a3', '\r'));
  t.is(r.text, `${mshWith('8859/1')}Müller £\r`);
  t.is(r.charset, '8859/1');
  t.false(r.fallback);
});

test('MSH-18 8859/1 with valid UTF-8 bytes: read as UTF-8, flagged (a common sender mistake)', (t) => {
  const r = decodeHl7Bytes(Buffer.from(`${mshWith('8859/1')}Zoë\r`, 'utf8'));
  t.is(r.text, `${mshWith('8859/1')}Zoë\r`);
  t.is(r.charset, 'UNICODE UTF-8');
  t.true(r.fallback);
});

test('MSH-18 UTF-8 (either spelling) with invalid bytes: HL7_BAD_CHARSET at MSH-18', (t) => {
  for (const name of ['UNICODE UTF-8', 'UTF-8']) {
    const e = t.throws(() => decodeHl7Bytes(bytes(mshWith(name), [0xff, 0xfe], '\r')));
    t.true(e instanceof Hl7Error);
    t.is((e as Hl7Error).code, 'HL7_BAD_CHARSET');
    t.deepEqual((e as Hl7Error).location, { segment: 'MSH', field: 18 });
    t.is(decodeHl7Bytes(Buffer.from(`${mshWith(name)}Zoë\r`, 'utf8')).text, `${mshWith(name)}Zoë\r`);
  }
});

test('MSH-18 ASCII, other 8859 parts, repetitions, and unknown values', (t) => {
  t.deepEqual(decodeHl7Bytes(Buffer.from(`${mshWith('ASCII')}x\r`)), { text: `${mshWith('ASCII')}x\r`, charset: 'ASCII', bom: false, fallback: false });
  const asciiLie = decodeHl7Bytes(Buffer.from(`${mshWith('ASCII')}—\r`, 'utf8'));
  t.is(asciiLie.text, `${mshWith('ASCII')}—\r`);
  t.true(asciiLie.fallback);
  const pl = decodeHl7Bytes(bytes(mshWith('8859/2'), [0xb1], '\r'));
  t.is(pl.text, `${mshWith('8859/2')}ą\r`);
  t.is(pl.charset, '8859/2');
  t.is(decodeHl7Bytes(bytes(mshWith('8859/1~UNICODE UTF-8'), [0xe9], '\r')).text, `${mshWith('8859/1~UNICODE UTF-8')}é\r`);
  const unknown = decodeHl7Bytes(Buffer.from(`${mshWith('KLINGON')}Zoë\r`, 'utf8'));
  t.is(unknown.text, `${mshWith('KLINGON')}Zoë\r`);
  t.true(unknown.fallback);
});

test('MSH-18 is read from the first segment only, whatever the terminator and delimiters', (t) => {
  const text = 'MSH#!$/*#A#B#C#D#2025##ADT!A01#1#P#2.5######8859/1\nPID#1#é\n';
  const r = decodeHl7Bytes(Buffer.from(text, 'latin1'));
  t.is(r.text, text);
  t.is(r.charset, '8859/1');
  t.false(r.fallback);
  // PID-18 must not be mistaken for MSH-18.
  const t2 = `MSH|^~\\&|A\rPID|||||||||||||||||UNICODE UTF-8|\u00e9\r`;
  t.is(decodeHl7Bytes(Buffer.from(t2, 'latin1')).charset, '8859/1');
});
