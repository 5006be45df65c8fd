// SPDX-License-Identifier: Apache-2.0
/** Message files for `send` and `replay`: plain files, batches, and MLLP captures (VT ... FS CR). */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { countMessages, isFramedCapture, readMessageFile, unwrapFrames } from '../../src/ingest/message-files.js';
import { tempDir } from '../helpers/engine.js';
import { adtA01 } from '../helpers/messages.js';

const frame = (s: string | Buffer): Buffer => Buffer.concat([Buffer.from([0x0b]), Buffer.from(s), Buffer.from([0x1c, 0x0d])]);

test('isFramedCapture looks at the first non-white-space byte only', (t) => {
  t.true(isFramedCapture(frame('MSH|')));
  t.true(isFramedCapture(Buffer.concat([Buffer.from('\r\n  '), frame('MSH|')])));
  t.false(isFramedCapture(Buffer.from('MSH|^~\\&|\r')));
  t.false(isFramedCapture(Buffer.from('  \n')));
  t.false(isFramedCapture(Buffer.alloc(0)));
});

test('unwrapFrames: frame bodies in order; white space between frames skipped; a cut-off last frame and stray bytes kept', (t) => {
  const bytes = Buffer.concat([frame('A'), Buffer.from('\r\n'), frame('B'), frame('C'), Buffer.from('junk'), Buffer.from([0x0b]), Buffer.from('D-cut')]);
  t.deepEqual(unwrapFrames(bytes).map((b) => b.toString()), ['A', 'B', 'C', 'junk', 'D-cut']);
  // FS without a CR after it is accepted too.
  t.deepEqual(unwrapFrames(Buffer.from('\x0bX\x1c\x0bY\x1c')).map((b) => b.toString()), ['X', 'Y']);
});

test('a capture file is unwrapped into its messages, byte for byte; countMessages agrees', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'capture.hl7');
  const latin1 = Buffer.from(adtA01('CAP-L').replace('UNICODE UTF-8', '8859/1').replace('TESTPATIENT', 'MÜLLER'), 'latin1');
  // a batch inside one frame is split too
  writeFileSync(file, Buffer.concat([frame(adtA01('CAP-1')), Buffer.from('\n'), frame(latin1), frame(adtA01('CAP-2') + adtA01('CAP-3'))]));
  const mf = readMessageFile(file);
  t.is(mf.problem, undefined);
  t.deepEqual(mf.messages.map((m) => m.index), [0, 1, 2, 3]);
  t.deepEqual(mf.messages.map((m) => /\|ADT\^A01\^ADT_A01\|([^|]+)\|/.exec(m.text)![1]), ['CAP-1', 'CAP-L', 'CAP-2', 'CAP-3']);
  t.deepEqual(mf.messages[1]!.bytes, latin1, 'an 8859/1 frame is sent as it was captured');
  t.is(mf.messages[0]!.bytes.toString(), adtA01('CAP-1'));
  t.false(mf.messages.some((m) => m.bytes.includes(0x0b) || m.bytes.includes(0x1c)), 'no framing bytes left');
  t.is(countMessages(file), 4);
});

test('plain files are unchanged: one message keeps its bytes, a multi-message file is split; counts agree', (t) => {
  const dir = tempDir(t);
  const one = join(dir, 'one.hl7');
  writeFileSync(one, adtA01('P-1'));
  t.is(readMessageFile(one).messages[0]!.bytes.toString(), adtA01('P-1'));
  t.is(countMessages(one), 1);
  const many = join(dir, 'many.txt');
  writeFileSync(many, adtA01('P-1') + '\n' + adtA01('P-2'));
  t.is(readMessageFile(many).messages.length, 2);
  t.is(countMessages(many), 2);
  const junk = join(dir, 'junk.hl7');
  writeFileSync(junk, 'not hl7 at all');
  const mf = readMessageFile(junk);
  t.is(mf.messages.length, 1, 'sent whole; the engine answers it');
  t.is(countMessages(junk), 1);
});
