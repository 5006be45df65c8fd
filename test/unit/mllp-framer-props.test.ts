// SPDX-License-Identifier: Apache-2.0
// Properties of the MLLP decoder: round trips under random splits, robustness on arbitrary bytes,
// zero-copy delivery and linear work on large frames (structural counts, not wall-clock).
import test from 'ava';
import fc from 'fast-check';
import { CR, FS, MllpDecoder, VT, encodeFrame, type MllpEvent } from '../../src/mllp/index.js';
import { decodeChunks, fixedChunks, splitAt } from '../helpers/splits.js';

/** Bytes that may appear in a payload: anything but VT and FS (MLLP Release 2 forbids them in data). */
const payloadBytes = fc
  .uint8Array({ maxLength: 300 })
  .map((a) => Buffer.from(a.map((b) => (b === VT || b === FS ? 0x41 : b))));
/** Junk between frames: anything but VT (a VT would start a frame). */
const junkBytes = fc
  .uint8Array({ maxLength: 12 })
  .map((a) => Buffer.from(a.map((b) => (b === VT ? 0x20 : b))));

const segment = fc.record({ junk: junkBytes, payload: payloadBytes, omitCr: fc.boolean() });

test('property: payloads survive random junk, missing CRs and random splits', (t) => {
  fc.assert(
    fc.property(
      fc.array(segment, { maxLength: 8 }),
      junkBytes,
      fc.array(fc.nat(), { maxLength: 10 }),
      (segments, trailing, rawCuts) => {
        const parts: Buffer[] = [];
        let stray = 0;
        let fsWithoutCr = 0;
        segments.forEach((s, i) => {
          parts.push(s.junk);
          stray += s.junk.length;
          // A junk byte right after a CR-less FS that happens to be CR is taken as the terminator.
          const prevOmitted = i > 0 && segments[i - 1]?.omitCr === true;
          if (prevOmitted) {
            if (s.junk[0] === CR) stray -= 1;
            else fsWithoutCr += 1;
          }
          const framed = encodeFrame(s.payload);
          parts.push(s.omitCr ? framed.subarray(0, framed.length - 1) : framed);
        });
        parts.push(trailing);
        stray += trailing.length;
        const last = segments[segments.length - 1];
        if (last?.omitCr === true) {
          if (trailing[0] === CR) stray -= 1;
          else fsWithoutCr += 1; // counted by the next byte or by end()
        }
        const input = Buffer.concat(parts);
        const cuts = [...new Set(rawCuts.map((c) => (input.length > 1 ? 1 + (c % (input.length - 1)) : 0)))]
          .filter((c) => c > 0)
          .sort((a, b) => a - b);
        const run = decodeChunks('fast-check', splitAt(input, cuts));
        const got = run.events.map((e) => (e.kind === 'frame' ? e.payload.toString('hex') : 'oversize'));
        const want = segments.map((s) => s.payload.toString('hex'));
        return (
          JSON.stringify(got) === JSON.stringify(want) &&
          run.strayBytes === stray &&
          run.fsWithoutCr === fsWithoutCr &&
          run.discardedAtEnd === 0
        );
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: arbitrary bytes never throw, memory stays under the limit, splits agree', (t) => {
  fc.assert(
    fc.property(
      // Bias towards the interesting bytes so that VT/FS/CR are common.
      fc.array(fc.oneof(fc.constantFrom(VT, FS, CR), fc.integer({ min: 0, max: 255 })), { maxLength: 400 }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 40 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (bytes, maxFrameBytes, oversizePrefixBytes, rawCuts) => {
        const input = Buffer.from(bytes);
        const options = { maxFrameBytes, oversizePrefixBytes };
        const cuts = [...new Set(rawCuts.map((c) => (input.length > 1 ? 1 + (c % (input.length - 1)) : 0)))]
          .filter((c) => c > 0)
          .sort((a, b) => a - b);
        const whole = decodeChunks('whole', [input], options);
        const split = decodeChunks('split', splitAt(input, cuts), options);
        const norm = (events: MllpEvent[]): string[] =>
          events.map((e) => (e.kind === 'frame' ? `f:${e.payload.toString('hex')}` : `o:${e.prefix.toString('hex')}`));
        const prefixOk = [...whole.events, ...split.events].every(
          (e) =>
            e.kind === 'frame' ||
            (e.bytesSeen > maxFrameBytes && e.prefix.length === Math.min(maxFrameBytes, oversizePrefixBytes)),
        );
        const framesOk = whole.events.every((e) => e.kind !== 'frame' || e.payload.length <= maxFrameBytes);
        return (
          JSON.stringify(norm(whole.events)) === JSON.stringify(norm(split.events)) &&
          whole.strayBytes === split.strayBytes &&
          whole.fsWithoutCr === split.fsWithoutCr &&
          whole.discardedAtEnd === split.discardedAtEnd &&
          split.maxBufferedBytes <= maxFrameBytes &&
          prefixOk &&
          framesOk
        );
      },
    ),
    { numRuns: 1000 },
  );
  t.pass();
});

test('a frame within one chunk is returned without copying', (t) => {
  // A chunk with its own ArrayBuffer, frames at odd offsets, like a socket read.
  const frames = ['MSH|1\r', 'MSH|22\r', '', 'MSH|333\r'].map((p) => encodeFrame(p));
  const chunk = Buffer.alloc(3 + frames.reduce((n, b) => n + b.length, 0));
  chunk.write('\r\nx', 0, 'latin1');
  let at = 3;
  const starts: number[] = [];
  for (const fr of frames) {
    starts.push(at + 1);
    fr.copy(chunk, at);
    at += fr.length;
  }
  const events = new MllpDecoder().push(chunk);
  t.is(events.length, 4);
  events.forEach((e, i) => {
    if (e.kind !== 'frame') return t.fail('expected frames');
    t.is(e.payload.buffer, chunk.buffer, `frame ${i} shares the chunk's memory`);
    t.is(e.payload.byteOffset, chunk.byteOffset + (starts[i] ?? -1), `frame ${i} offset`);
  });
});

test('a frame split as [VT] [body FS CR] is still zero-copy; [body1][body2 FS] is one join', (t) => {
  const d = new MllpDecoder();
  d.push(Buffer.from([VT]));
  const body = Buffer.from('MSH|abc\x1c\r', 'latin1');
  const [e] = d.push(body);
  t.true(e?.kind === 'frame' && e.payload.buffer === body.buffer);

  d.push(Buffer.from('\x0bhello ', 'latin1'));
  const [e2] = d.push(Buffer.from('world\x1c\r', 'latin1'));
  t.true(e2?.kind === 'frame' && e2.payload.toString('latin1') === 'hello world');
});

/** Run `fn` while counting the bytes Buffer#indexOf examines and the Buffer.concat calls. */
function withScanCounters<T>(fn: () => T): { result: T; scanned: number; indexOfCalls: number; concatCalls: number } {
  const proto = Buffer.prototype as unknown as { indexOf: (this: Buffer, ...args: unknown[]) => number };
  const realIndexOf = proto.indexOf;
  const realConcat = Buffer.concat;
  let scanned = 0;
  let indexOfCalls = 0;
  let concatCalls = 0;
  proto.indexOf = function (this: Buffer, ...args: unknown[]): number {
    const r = realIndexOf.apply(this, args);
    const from = typeof args[1] === 'number' ? args[1] : 0;
    scanned += r < 0 ? this.length - from : r - from + 1;
    indexOfCalls++;
    return r;
  };
  Buffer.concat = (...args: Parameters<typeof Buffer.concat>) => {
    concatCalls++;
    return realConcat(...args);
  };
  try {
    return { result: fn(), scanned, indexOfCalls, concatCalls };
  } finally {
    proto.indexOf = realIndexOf;
    Buffer.concat = realConcat;
  }
}

test('a 5 MB frame in 64 KiB chunks: each byte scanned at most twice, one join', (t) => {
  const payload = Buffer.alloc(5 * 1024 * 1024, 'OBX|1|ST|NOTE||lorem ipsum\r', 'latin1');
  const input = Buffer.concat([encodeFrame(payload), encodeFrame('tail')]);
  const chunks = [...fixedChunks(input, 64 * 1024)];
  const { result: run, scanned, indexOfCalls, concatCalls } = withScanCounters(() =>
    decodeChunks('64 KiB chunks', chunks),
  );
  t.deepEqual(
    run.events.map((e) => (e.kind === 'frame' ? e.payload.length : -1)),
    [payload.length, 4],
  );
  const first = run.events[0];
  t.true(first?.kind === 'frame' && first.payload.equals(payload));
  // One pass for VT and one for FS per chunk at most: linear, whatever the chunking.
  t.true(scanned <= 2 * input.length, `scanned ${scanned} bytes for ${input.length} input bytes`);
  t.true(indexOfCalls <= 4 * chunks.length + 8, `indexOf called ${indexOfCalls} times for ${chunks.length} chunks`);
  t.is(concatCalls, 1, 'the body is joined once');
  // Everything but the last chunk of the body is held, nothing more.
  t.true(run.maxBufferedBytes < payload.length && run.maxBufferedBytes > payload.length - 2 * 64 * 1024);
});

test('many tiny frames in one chunk are scanned linearly', (t) => {
  const input = Buffer.concat(Array.from({ length: 20000 }, (_, i) => encodeFrame(`M${i}`)));
  const { result: events, scanned } = withScanCounters(() => new MllpDecoder().push(input));
  t.is(events.length, 20000);
  t.true(scanned <= 2 * input.length, `scanned ${scanned} bytes for ${input.length} input bytes`);
});

test('a frame trickled one byte per push is coalesced into 16 KiB blocks, not a million pieces', (t) => {
  const payload = Buffer.alloc(200 * 1024, 'x');
  const input = encodeFrame(payload);
  const realAllocUnsafe = Buffer.allocUnsafe;
  let blocks = 0;
  Buffer.allocUnsafe = (size: number) => {
    if (size === 16 * 1024) blocks++;
    return realAllocUnsafe(size);
  };
  let events: MllpEvent[] = [];
  let concatCalls = 0;
  try {
    ({ result: events, concatCalls } = withScanCounters(() => {
      const d = new MllpDecoder();
      const out: MllpEvent[] = [];
      for (let i = 0; i < input.length; i++) out.push(...d.push(input.subarray(i, i + 1)));
      return out;
    }));
  } finally {
    Buffer.allocUnsafe = realAllocUnsafe;
  }
  const first = events[0];
  t.true(first?.kind === 'frame' && first.payload.equals(payload));
  t.is(blocks, Math.ceil(payload.length / (16 * 1024)), 'one block per 16 KiB of body');
  t.is(concatCalls, 1, 'the blocks are joined once');
});
