// SPDX-License-Identifier: Apache-2.0
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hl7Error, Hl7Message, splitBatch } from '../../src/hl7/index.js';
import { isPlainMessage, splitSegments } from '../../src/hl7/batch.js';

const msg = (id: string, term = '\r'): string => `MSH|^~\\&|A|B|C|D|20250101||ADT^A04|${id}|P|2.5${term}PID|1||${id}${term}`;

function batchError(t: { throws: (fn: () => unknown) => unknown }, text: string): Hl7Error {
  const e = t.throws(() => splitBatch(text));
  if (!(e instanceof Hl7Error)) throw new Error('expected Hl7Error');
  return e;
}

test('one message: returned whole', (t) => {
  const m = msg('1');
  t.deepEqual(splitBatch(m), { messages: [m], envelope: {} });
  const noFinal = 'MSH|^~\\&|A\rPID|1';
  t.deepEqual(splitBatch(noFinal).messages, [noFinal]);
});

test('back-to-back messages and blank lines between them; each is an exact substring', (t) => {
  const a = msg('1', '\n');
  const b = msg('2', '\r\n');
  const c = msg('3');
  const text = `\r\n${a}\n\n${b}  \r\n\r\n${c}\r\n`;
  const { messages } = splitBatch(text);
  t.deepEqual(messages, [a, b, c]);
  for (const m of messages) t.true(text.includes(m));
  t.deepEqual(messages.map((m) => Hl7Message.parse(m).controlId), ['1', '2', '3']);
});

test('blank lines inside a message stay inside it', (t) => {
  const text = 'MSH|^~\\&|A\r\nEVN|A04\r\n\r\nPID|1\r\n \r\n';
  t.deepEqual(splitBatch(text).messages, ['MSH|^~\\&|A\r\nEVN|A04\r\n\r\nPID|1\r\n']);
});

test('FHS/BHS/BTS/FTS envelope: segments dropped from messages and returned', (t) => {
  const text = `FHS|^~\\&|F\rBHS|^~\\&|B\r${msg('1')}${msg('2')}BTS|2\rFTS|1\r`;
  const out = splitBatch(text);
  t.deepEqual(out.messages, [msg('1'), msg('2')]);
  t.deepEqual(out.envelope, { fhs: 'FHS|^~\\&|F', bhs: 'BHS|^~\\&|B', bts: 'BTS|2', fts: 'FTS|1' });
});

test('lenient envelopes: several batches, missing trailers, BTS without BHS, empty batch', (t) => {
  t.is(splitBatch(`FHS|^~\\&\rBHS|^~\\&|1\r${msg('1')}BTS|1\rBHS|^~\\&|2\r${msg('2')}BTS|1\rFTS|2\r`).messages.length, 2);
  t.is(splitBatch(`BHS|^~\\&\r${msg('1')}${msg('2')}BTS|2`).messages.length, 2);
  t.is(splitBatch(`${msg('1')}BTS|1\r`).messages.length, 1);
  t.is(splitBatch(`FHS|^~\\&\r${msg('1')}FTS|1`).messages.length, 1);
  t.is(splitBatch(`FHS|^~\\&\rBHS|^~\\&\r${msg('1')}FTS|1`).messages.length, 1);
  t.deepEqual(splitBatch('BHS|^~\\&\rBTS|0\r').messages, []);
});

test('malformed envelopes and stray segments are refused with a location', (t) => {
  let e = batchError(t, `BHS|^~\\&\r${msg('1')}BHS|^~\\&\r${msg('2')}`);
  t.is(e.code, 'HL7_BAD_BATCH');
  t.deepEqual(e.location, { segment: 'BHS', sequence: 2 });
  e = batchError(t, `FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A\rFHS|^~\\&\rPID|1\r`);
  t.is(e.code, 'HL7_BAD_BATCH');
  t.deepEqual(e.location, { segment: 'FHS', sequence: 2 });
  e = batchError(t, 'BHS|^~\\&\rEVN|A04\rPID|1\rBTS|1\r');
  t.is(e.code, 'HL7_BAD_BATCH');
  t.deepEqual(e.location, { segment: '', sequence: 2 });
  e = batchError(t, `FHS|^~\\&\r${msg('1')}FTS|1\r${msg('2')}`);
  t.is(e.code, 'HL7_BAD_BATCH');
  e = batchError(t, `${msg('1')}BTS|1\rBTS|1\r`);
  t.is(e.code, 'HL7_BAD_BATCH');
  t.is(batchError(t, `[SOM]${msg('1')}[EOM]`).code, 'HL7_NO_MSH');
  t.is(batchError(t, 'PID|1\r').code, 'HL7_NO_MSH');
  t.is(batchError(t, '').code, 'HL7_EMPTY');
  t.is(batchError(t, '\r\n \r\n').code, 'HL7_EMPTY');
});

test('the shortcut for a plain message gives what walking every segment gives, over the corpus and its variants', (t) => {
  const dir = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.hl7'));
  t.true(files.length > 380);
  const outcome = (fn: () => unknown): unknown => {
    try {
      return fn();
    } catch (e) {
      return e instanceof Hl7Error ? { code: e.code, message: e.message } : String(e);
    }
  };
  let checked = 0;
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'latin1');
    const first = text.startsWith('MSH') ? text.slice(0, text.search(/[\r\n]/) + 1 || text.length) : text;
    // The file, and variants around the shortcut's conditions: a trailing blank line, a space-led
    // line, LF ends, a second message, an envelope segment, a lone MSH segment.
    for (const v of [text, `${text}\r`, `${text}\r \r`, text.replace(/\r/g, '\n'), `${text}${text}`, `${text}\rBTS|1\r`, first, ` ${text}`]) {
      t.deepEqual(outcome(() => splitBatch(v)), outcome(() => splitSegments(v)), f);
      checked++;
    }
  }
  t.true(checked > 3000);
});

test('isPlainMessage is the substring searches it replaced', (t) => {
  // The definition it replaced, one search per pattern.
  const reference = (text: string): boolean =>
    text.startsWith('MSH') && !['\n', '\r\r', '\r ', '\r\t', '\rMSH', '\rFHS', '\rBHS', '\rBTS', '\rFTS'].some((p) => text.includes(p));
  const base = msg('1');
  const pieces = ['\r', '\n', ' ', '\t', 'M', 'MS', 'MSH', 'F', 'FHS', 'FTS', 'FH', 'B', 'BHS', 'BTS', 'BT', 'PID|1', 'X'];
  let checked = 0;
  for (const a of pieces) {
    for (const b of pieces) {
      for (let at = 0; at <= base.length; at++) {
        const v = base.slice(0, at) + a + b + base.slice(at);
        t.is(isPlainMessage(v), reference(v), JSON.stringify(v));
        checked++;
      }
    }
  }
  for (const v of ['', 'MSH', 'MSH\r', 'MSH|^~\\&\r', '\rMSH', 'MS', base, `${base}\r`, `${base}${base}`]) t.is(isPlainMessage(v), reference(v), JSON.stringify(v));
  t.true(checked > 10_000);
});
