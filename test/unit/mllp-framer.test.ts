// SPDX-License-Identifier: Apache-2.0
// Framing cases of the MLLP decoder, each run whole, byte by byte and at seeded random splits.
import test from 'ava';
import {
  CR,
  FS,
  MllpDecoder,
  MllpPayloadDecoder,
  VT,
  encodeFrame,
  type MllpEvent,
} from '../../src/mllp/index.js';
import { isTributaryError } from '../../src/errors.js';
import { decodeAcrossSplits, framesAcrossSplits } from '../helpers/splits.js';

/** A frame as a latin1 string: VT payload FS CR. */
const f = (payload: string): string => `\x0b${payload}\x1c\r`;
const ADT = 'MSH|^~\\&|LAB|HOSP|TRIB|HOSP|20240101120000||ADT^A01|MSG0001|P|2.5.1\rPID|1||12345^^^HOSP^MR||Doe^Jane\r';
const frames = (n: number): string[] => Array.from({ length: n }, (_, i) => ADT.replace('MSG0001', `MSG${i}`));

// --- the cases of the brief, each across all splits ---

test('one frame', framesAcrossSplits, f(ADT), [ADT], { strayBytes: 0, fsWithoutCr: 0 });

test('two frames in one chunk', framesAcrossSplits, frames(2).map(f).join(''), frames(2), { strayBytes: 0 });

test('five frames in one chunk', framesAcrossSplits, frames(5).map(f).join(''), frames(5), { strayBytes: 0 });

test('frame and a half: the half is discarded at end() (VT counted)', framesAcrossSplits,
  f('A1') + '\x0bB2B2', ['A1'], { discardedAtEnd: 5, strayBytes: 0 });

test('junk before, between and after frames is counted as stray', framesAcrossSplits,
  'xx' + f('A') + 'yyy' + f('B') + 'zzzz', ['A', 'B'], { strayBytes: 9, fsWithoutCr: 0 });

test('"\\r\\n" between frames is stray', framesAcrossSplits,
  f('A') + '\r\n' + f('B') + '\r\n', ['A', 'B'], { strayBytes: 4, fsWithoutCr: 0 });

test('FS without CR followed by VT and a new frame', framesAcrossSplits,
  '\x0bA\x1c\x0bB\x1c\r', ['A', 'B'], { strayBytes: 0, fsWithoutCr: 1 });

test('FS without CR then junk', framesAcrossSplits,
  '\x0bA\x1cjunk' + f('B'), ['A', 'B'], { strayBytes: 4, fsWithoutCr: 1 });

test('FS without CR at the end of the stream is counted at end()', framesAcrossSplits,
  '\x0bA\x1c', ['A'], { strayBytes: 0, fsWithoutCr: 1, discardedAtEnd: 0 });

test('CR inside the body is data (segment terminator)', framesAcrossSplits,
  f('MSH|1\rPID|2\r'), ['MSH|1\rPID|2\r'], { strayBytes: 0 });

test('VT alone', framesAcrossSplits, '\x0b', [], { discardedAtEnd: 1, strayBytes: 0 });

test('empty frame is emitted with an empty payload', framesAcrossSplits,
  f('') + f('A'), ['', 'A'], { strayBytes: 0, fsWithoutCr: 0 });

test('VT inside a body restarts the frame; the partial frame is stray', framesAcrossSplits,
  '\x0bAB\x0bCD\x1c\r', ['CD'], { strayBytes: 3, fsWithoutCr: 0 });

test('VT VT: an empty partial frame is one stray byte', framesAcrossSplits,
  '\x0b\x0bX\x1c\r', ['X'], { strayBytes: 1 });

test('stray FS and CR outside frames are skipped', framesAcrossSplits,
  '\x1c\r' + f('A') + '\x1c', ['A'], { strayBytes: 3, fsWithoutCr: 0 });

const LIMIT = { maxFrameBytes: 100, oversizePrefixBytes: 10 };

test('frame over maxFrameBytes, then a normal frame', framesAcrossSplits,
  f('x'.repeat(150)) + f('ok'), [{ oversize: 'x'.repeat(10) }, 'ok'],
  { decoder: LIMIT, strayBytes: 0, fsWithoutCr: 0 });

test('frame of exactly maxFrameBytes is accepted, one more byte is oversize', framesAcrossSplits,
  f('a'.repeat(100)) + f('b'.repeat(101)) + f('c'), ['a'.repeat(100), { oversize: 'b'.repeat(10) }, 'c'],
  { decoder: LIMIT });

test('oversize prefix is capped at maxFrameBytes (default prefix 64 KiB)', framesAcrossSplits,
  f('0123456789'.repeat(30)) + f('ok'), [{ oversize: '0123456789'.repeat(10) }, 'ok'],
  { decoder: { maxFrameBytes: 100 } });

test('VT inside an oversize frame restarts a frame; discarded bytes are not stray', framesAcrossSplits,
  '\x0b' + 'x'.repeat(150) + f('ok'), [{ oversize: 'x'.repeat(10) }, 'ok'],
  { decoder: LIMIT, strayBytes: 0 });

test('oversize frame cut by the end of the stream', framesAcrossSplits,
  '\x0b' + 'x'.repeat(150), [{ oversize: 'x'.repeat(10) }], { decoder: LIMIT, discardedAtEnd: 151 });

test('maxFrameBytes 0 accepts only empty frames', framesAcrossSplits,
  f('') + f('a') + f(''), ['', { oversize: '' }, ''], { decoder: { maxFrameBytes: 0 } });

const MB_PAYLOAD = Buffer.alloc(1024 * 1024, 'OBX|1|NM|GLU||5.4|mmol/L\r', 'latin1');

test('1 MB frame', framesAcrossSplits,
  Buffer.concat([encodeFrame(MB_PAYLOAD), encodeFrame('after')]), [MB_PAYLOAD, 'after'], { strayBytes: 0 });

// --- explicit step-by-step behaviour ---

test('a frame is emitted on FS, before its CR arrives in the next chunk', (t) => {
  const d = new MllpDecoder();
  const first = d.push(Buffer.from('\x0bA\x1c', 'latin1'));
  t.is(first.length, 1);
  t.is(first[0]?.kind, 'frame');
  t.false(d.inFrame);
  t.deepEqual(d.push(Buffer.from([CR])), []);
  t.is(d.strayBytes, 0);
  t.is(d.fsWithoutCr, 0);
  t.is(d.framesDecoded, 1);
});

test('end() in the middle of a frame returns the discarded count and resets', (t) => {
  const d = new MllpDecoder();
  t.deepEqual(d.push(Buffer.from('\x0babc', 'latin1')), []);
  t.true(d.inFrame);
  t.is(d.bufferedBytes, 3, 'the body bytes are held until FS');
  t.is(d.end(), 4);
  t.false(d.inFrame);
  t.is(d.bufferedBytes, 0);
  t.is(d.end(), 0, 'nothing in progress after a reset');
  const events = d.push(Buffer.from(f('next'), 'latin1'));
  t.deepEqual(events.map(payloadText), ['next']);
});

test('bufferedBytes and inFrame follow the frame in progress', (t) => {
  const d = new MllpDecoder();
  t.false(d.inFrame);
  d.push(Buffer.from('junk\x0b', 'latin1'));
  t.true(d.inFrame);
  t.is(d.bufferedBytes, 0);
  d.push(Buffer.from('x'.repeat(2000), 'latin1'));
  t.is(d.bufferedBytes, 2000);
  d.push(Buffer.from('yy', 'latin1'));
  t.is(d.bufferedBytes, 2002);
  const events = d.push(Buffer.from('z\x1c\r', 'latin1'));
  t.deepEqual(events.map(payloadText), ['x'.repeat(2000) + 'yyz']);
  t.is(d.bufferedBytes, 0);
  t.false(d.inFrame);
  t.is(d.strayBytes, 4);
});

test('oversize is emitted once, as soon as the limit is passed, with bytesSeen > limit', (t) => {
  const d = new MllpDecoder({ maxFrameBytes: 100, oversizePrefixBytes: 8 });
  t.deepEqual(d.push(Buffer.from('\x0b' + 'a'.repeat(60), 'latin1')), []);
  const events = d.push(Buffer.from('b'.repeat(60), 'latin1'));
  t.is(events.length, 1);
  const ev = events[0];
  if (ev?.kind !== 'oversize') return t.fail('expected an oversize event');
  t.is(ev.prefix.toString('latin1'), 'aaaaaaaa');
  t.is(ev.bytesSeen, 120);
  t.is(d.bufferedBytes, 0, 'nothing is held while discarding');
  t.true(d.inFrame);
  t.deepEqual(d.push(Buffer.from('c'.repeat(5000), 'latin1')), [], 'no second oversize event');
  t.deepEqual(d.push(Buffer.from('\x1c\r' + f('ok'), 'latin1')).map(payloadText), ['ok']);
  t.is(d.framesDecoded, 1);
});

test('oversize prefix spans several buffered pieces', (t) => {
  const d = new MllpDecoder({ maxFrameBytes: 10, oversizePrefixBytes: 6 });
  d.push(Buffer.from('\x0bab', 'latin1'));
  d.push(Buffer.from('cd', 'latin1'));
  const events = d.push(Buffer.from('efghijklmn\x1c\r', 'latin1'));
  const ev = events[0];
  if (ev?.kind !== 'oversize') return t.fail('expected an oversize event');
  t.is(ev.prefix.toString('latin1'), 'abcdef');
  t.is(ev.bytesSeen, 14);
  t.is(events.length, 1);
});

test('counters accumulate across frames and survive end()', (t) => {
  const d = new MllpDecoder();
  d.push(Buffer.from('j' + f('A') + '\x0bB\x1cx', 'latin1'));
  t.is(d.framesDecoded, 2);
  t.is(d.strayBytes, 2);
  t.is(d.fsWithoutCr, 1);
  d.end();
  t.is(d.framesDecoded, 2);
  t.is(d.strayBytes, 2);
});

test('all split modes agree on a mixed stream (helper sanity)', (t) => {
  const input = Buffer.from('j' + f('A') + '\x0bB\x1c\x0bC\x0bD\x1c\r\r\n' + f(''), 'latin1');
  const runs = decodeAcrossSplits(input, { randomRuns: 5, cutsPerRun: 4 });
  t.is(runs.length, 7);
  for (const run of runs) {
    t.deepEqual(run.events.map(payloadText), ['A', 'B', 'D', ''], run.mode);
    t.is(run.strayBytes, 1 + 2 + 2, run.mode);
    t.is(run.fsWithoutCr, 1, run.mode);
  }
});

// --- options, encoder, payload decoder ---

test('invalid options throw CONFIG_INVALID', (t) => {
  for (const bad of [Number.NaN, -1, 1.5, Number.POSITIVE_INFINITY]) {
    const e1 = t.throws(() => new MllpDecoder({ maxFrameBytes: bad }));
    t.true(isTributaryError(e1, 'CONFIG_INVALID'), String(bad));
    t.regex(e1?.message ?? '', /maxFrameBytes/);
    const e2 = t.throws(() => new MllpDecoder({ oversizePrefixBytes: bad }));
    t.true(isTributaryError(e2, 'CONFIG_INVALID'), String(bad));
  }
});

test('encodeFrame wraps strings (UTF-8) and Buffers', (t) => {
  t.deepEqual(encodeFrame('é'), Buffer.from([VT, 0xc3, 0xa9, FS, CR]));
  t.deepEqual(encodeFrame(Buffer.from([1, 2])), Buffer.from([VT, 1, 2, FS, CR]));
  t.deepEqual(encodeFrame(''), Buffer.from([VT, FS, CR]));
  const round = new MllpDecoder().push(encodeFrame(ADT));
  t.deepEqual(round.map(payloadText), [ADT]);
});

test('encodeFrame refuses payloads containing VT or FS', (t) => {
  const e1 = t.throws(() => encodeFrame('ab\x1ccd'));
  t.true(isTributaryError(e1, 'HL7_CONTROL_BYTES'));
  t.deepEqual((e1 as { params?: unknown }).params, { byte: '1c', offset: 2 });
  const e2 = t.throws(() => encodeFrame(Buffer.from([0x41, 0x1c, 0x0b])));
  t.deepEqual((e2 as { params?: unknown }).params, { byte: '1c', offset: 1 });
  const e3 = t.throws(() => encodeFrame('\x0b'));
  t.deepEqual((e3 as { params?: unknown }).params, { byte: '0b', offset: 0 });
});

test('MllpPayloadDecoder returns payloads only and counts oversize frames', (t) => {
  const d = new MllpPayloadDecoder({ maxFrameBytes: 4 });
  const input = Buffer.from(f('ab') + f('toolong') + '\x0bcd', 'latin1');
  t.deepEqual(d.push(input).map((b) => b.toString('latin1')), ['ab']);
  t.deepEqual(d.push(Buffer.from('\x1c\r', 'latin1')).map((b) => b.toString('latin1')), ['cd']);
  t.is(d.oversizeFrames, 1);
  t.is(d.decoder.framesDecoded, 2);
  d.push(Buffer.from('\x0bxy', 'latin1'));
  t.is(d.end(), 3);
});

function payloadText(e: MllpEvent): string {
  return e.kind === 'frame' ? e.payload.toString('latin1') : `<oversize ${e.bytesSeen}>`;
}
