// SPDX-License-Identifier: Apache-2.0
/**
 * Feed the same bytes to fresh MLLP decoders split in different ways — whole, byte by byte, and
 * at seeded random cut points — so that no framing test can skip the split paths (the node-redis
 * decoder spec wrapper and nats `byByteTest` idea).
 *
 * The random cuts come from a seeded PRNG. The seed is printed in every assertion message;
 * rerun with `MLLP_SPLIT_SEED=<seed>` to get the same cuts again.
 */
import test from 'ava';
import {
  DEFAULT_MAX_FRAME_BYTES,
  MllpDecoder,
  type MllpDecoderOptions,
  type MllpEvent,
} from '../../src/mllp/index.js';

/**
 * mulberry32: a tiny seeded PRNG, good enough to pick cut points.
 *
 * @param seed - any 32-bit integer
 * @returns a function giving floats in [0, 1)
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed to use: `MLLP_SPLIT_SEED` from the environment when set, otherwise a fresh random one. */
export function splitSeed(): number {
  const fromEnv = process.env['MLLP_SPLIT_SEED'];
  if (fromEnv !== undefined && fromEnv !== '') return Number(fromEnv) >>> 0;
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}

/**
 * Distinct cut offsets in `1 .. length-1`, ascending.
 *
 * @param length - input length in bytes
 * @param count - wanted number of cuts (fewer when the input is too short)
 * @param rand - PRNG, e.g. {@link mulberry32}
 */
export function randomCuts(length: number, count: number, rand: () => number): number[] {
  const n = Math.min(count, Math.max(0, length - 1));
  const cuts = new Set<number>();
  while (cuts.size < n) cuts.add(1 + Math.floor(rand() * (length - 1)));
  return [...cuts].sort((a, b) => a - b);
}

/** Split `input` at the given ascending offsets (subarrays, no copies). */
export function splitAt(input: Buffer, cuts: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    chunks.push(input.subarray(from, cut));
    from = cut;
  }
  chunks.push(input.subarray(from));
  return chunks;
}

/** Yield `input` one byte at a time (lazily, so a 1 MB input does not need a million-element list). */
export function* byteByByte(input: Buffer): Generator<Buffer> {
  for (let i = 0; i < input.length; i++) yield input.subarray(i, i + 1);
}

/** Yield `input` in chunks of `size` bytes. */
export function* fixedChunks(input: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < input.length; i += size) yield input.subarray(i, i + size);
}

/** The outcome of feeding one split of the input to a fresh decoder, then calling `end()`. */
export interface DecodeRun {
  /** How the input was split; names the seed for random splits. */
  readonly mode: string;
  /** Every event, in order. */
  readonly events: MllpEvent[];
  readonly strayBytes: number;
  readonly fsWithoutCr: number;
  readonly framesDecoded: number;
  /** What `end()` returned. */
  readonly discardedAtEnd: number;
  /** The largest `bufferedBytes` seen after any push. */
  readonly maxBufferedBytes: number;
  /** Number of `push()` calls. */
  readonly pushes: number;
}

/**
 * Feed chunks to a fresh decoder, then end the stream.
 *
 * @param mode - label for assertion messages
 * @param chunks - the chunks, in order
 * @param options - decoder options
 */
export function decodeChunks(mode: string, chunks: Iterable<Buffer>, options?: MllpDecoderOptions): DecodeRun {
  const decoder = new MllpDecoder(options);
  const events: MllpEvent[] = [];
  let maxBufferedBytes = 0;
  let pushes = 0;
  for (const chunk of chunks) {
    for (const event of decoder.push(chunk)) events.push(event);
    pushes++;
    if (decoder.bufferedBytes > maxBufferedBytes) maxBufferedBytes = decoder.bufferedBytes;
  }
  const discardedAtEnd = decoder.end();
  return {
    mode,
    events,
    strayBytes: decoder.strayBytes,
    fsWithoutCr: decoder.fsWithoutCr,
    framesDecoded: decoder.framesDecoded,
    discardedAtEnd,
    maxBufferedBytes,
    pushes,
  };
}

/** Options of {@link decodeAcrossSplits}. */
export interface SplitOptions {
  /** Decoder options for every run. */
  decoder?: MllpDecoderOptions;
  /** PRNG seed; default {@link splitSeed}. */
  seed?: number;
  /** Number of random-split runs (default 3). */
  randomRuns?: number;
  /** Cut points per random run (default 8). */
  cutsPerRun?: number;
}

/**
 * Decode `input` (1) whole, (2) byte by byte, (3) at N seeded random cut points, each on a fresh
 * decoder.
 *
 * @returns one {@link DecodeRun} per split, whole first
 */
export function decodeAcrossSplits(input: Buffer, options: SplitOptions = {}): DecodeRun[] {
  const seed = options.seed ?? splitSeed();
  const rand = mulberry32(seed);
  const runs = [
    decodeChunks('whole', [input], options.decoder),
    decodeChunks('byte by byte', byteByByte(input), options.decoder),
  ];
  const randomRuns = options.randomRuns ?? 3;
  for (let i = 0; i < randomRuns; i++) {
    const cuts = randomCuts(input.length, options.cutsPerRun ?? 8, rand);
    const shown = cuts.length > 12 ? `${cuts.slice(0, 12).join(',')},…` : cuts.join(',');
    const mode = `random split #${i + 1}, seed ${seed} (rerun with MLLP_SPLIT_SEED=${seed}), cuts [${shown}]`;
    runs.push(decodeChunks(mode, splitAt(input, cuts), options.decoder));
  }
  return runs;
}

/** A comparable, printable form of an event (payloads as latin1, so every byte shows). */
export type EventSummary =
  | { frame: string }
  | { oversize: string; bytesSeenOverLimit: boolean };

/**
 * Summarise events for `deepEqual`. `bytesSeen` of an oversize event depends on where the chunk
 * that crossed the limit ended, so only "is it over the limit" is compared.
 */
export function summarize(events: readonly MllpEvent[], maxFrameBytes: number): EventSummary[] {
  return events.map((e) =>
    e.kind === 'frame'
      ? { frame: e.payload.toString('latin1') }
      : { oversize: e.prefix.toString('latin1'), bytesSeenOverLimit: e.bytesSeen > maxFrameBytes },
  );
}

/** An expected event: a frame payload (string is latin1), or an oversize frame with its prefix. */
export type ExpectedEvent = string | Buffer | { oversize: string | Buffer };

function expectedSummary(e: ExpectedEvent): EventSummary {
  if (typeof e === 'string') return { frame: e };
  if (Buffer.isBuffer(e)) return { frame: e.toString('latin1') };
  const prefix = typeof e.oversize === 'string' ? e.oversize : e.oversize.toString('latin1');
  return { oversize: prefix, bytesSeenOverLimit: true };
}

/** Counters a {@link framesAcrossSplits} case may pin down (all must agree across splits anyway). */
export interface SplitExpectations {
  decoder?: MllpDecoderOptions;
  strayBytes?: number;
  fsWithoutCr?: number;
  /** What `end()` returns after the input (default 0). */
  discardedAtEnd?: number;
}

/**
 * ava macro: `test('title', framesAcrossSplits, input, expectedEvents, expectations?)`.
 * Decodes `input` (a string is taken as latin1 bytes) across all splits and asserts that every
 * split gives exactly `expectedEvents`, the same counters, and never buffers more than the limit.
 */
export const framesAcrossSplits = test.macro<
  [input: Buffer | string, expected: readonly ExpectedEvent[], expectations?: SplitExpectations]
>({
  exec(t, input, expected, expectations = {}) {
    const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
    const maxFrameBytes = expectations.decoder?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    const runs = decodeAcrossSplits(bytes, expectations.decoder ? { decoder: expectations.decoder } : {});
    const want = expected.map(expectedSummary);
    const wantFrames = want.filter((e) => 'frame' in e).length;
    const first = runs[0];
    if (first === undefined) return t.fail('no runs');
    for (const run of runs) {
      t.deepEqual(summarize(run.events, maxFrameBytes), want, `events (${run.mode})`);
      t.is(run.framesDecoded, wantFrames, `framesDecoded (${run.mode})`);
      t.is(run.strayBytes, expectations.strayBytes ?? first.strayBytes, `strayBytes (${run.mode})`);
      t.is(run.fsWithoutCr, expectations.fsWithoutCr ?? first.fsWithoutCr, `fsWithoutCr (${run.mode})`);
      t.is(run.discardedAtEnd, expectations.discardedAtEnd ?? 0, `end() (${run.mode})`);
      t.true(run.maxBufferedBytes <= maxFrameBytes, `bufferedBytes ${run.maxBufferedBytes} > limit (${run.mode})`);
    }
  },
  title: (provided = '') => `${provided} [whole, byte by byte, random splits]`,
});
