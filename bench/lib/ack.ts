// SPDX-License-Identifier: Apache-2.0
/**
 * Verify an ACK payload against the MSH-10 that was sent, byte by byte and without building
 * strings on the success path (the load generator shares the machine with the server, so its own
 * cost per message matters).
 */

/** Outcome of {@link checkAck}. */
export type AckVerdict = 'ok' | 'unparseable' | 'wrong_code' | 'msa2_mismatch';

const M = 0x4d;
const S = 0x53;
const H = 0x48;
const A = 0x41;
const C = 0x43;
const CR = 0x0d;
const LF = 0x0a;

/** Offset of the `MSA` segment (its `M`), or -1. Segments may be separated by CR or, sloppily, LF. */
function findMsa(p: Buffer, sep: number): number {
  let from = 0;
  // Bounded: each iteration moves `from` forward.
  while (from < p.length) {
    const i = p.indexOf('MSA', from, 'latin1');
    if (i < 0) return -1;
    if (i > 0 && (p[i - 1] === CR || p[i - 1] === LF) && p[i + 3] === sep) return i;
    from = i + 3;
  }
  return -1;
}

function fieldEnd(p: Buffer, from: number, sep: number): number {
  let e = from;
  while (e < p.length) {
    const b = p[e];
    if (b === sep || b === CR || b === LF) break;
    e++;
  }
  return e;
}

/**
 * Check an ACK: MSA-1 must be `AA` or `CA` and MSA-2 must equal `expectedId`.
 *
 * @param payload - the ACK frame body
 * @param expectedId - the MSH-10 of the message this ACK answers (ASCII)
 */
export function checkAck(payload: Buffer, expectedId: string): AckVerdict {
  if (payload.length < 8 || payload[0] !== M || payload[1] !== S || payload[2] !== H) return 'unparseable';
  const sep = payload[3]!;
  const msa = findMsa(payload, sep);
  if (msa < 0) return 'unparseable';
  const f1 = msa + 4;
  const e1 = fieldEnd(payload, f1, sep);
  if (e1 - f1 !== 2 || payload[f1 + 1] !== A || (payload[f1] !== A && payload[f1] !== C)) return 'wrong_code';
  if (payload[e1] !== sep) return 'msa2_mismatch';
  const f2 = e1 + 1;
  const e2 = fieldEnd(payload, f2, sep);
  if (e2 - f2 !== expectedId.length) return 'msa2_mismatch';
  for (let j = 0; j < expectedId.length; j++) {
    if (payload[f2 + j] !== expectedId.charCodeAt(j)) return 'msa2_mismatch';
  }
  return 'ok';
}

/** MSA-1 and MSA-2 as text, for error samples (slow path). */
export function describeAck(payload: Buffer): string {
  const s = payload.toString('latin1');
  const m = /(?:^|[\r\n])MSA(.)([^\r\n]*)/.exec(s);
  if (!m) return `no MSA segment: ${JSON.stringify(s.slice(0, 120))}`;
  const fields = (m[2] ?? '').split(m[1] ?? '|');
  return `MSA-1=${fields[0] ?? ''} MSA-2=${fields[1] ?? ''}`;
}
