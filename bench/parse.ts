// SPDX-License-Identifier: Apache-2.0
/**
 * Parser microbenchmark: Tributary's Hl7Message against @medplum/core's, on a synthetic ADT^A01
 * (~1.1 KB) and ORU^R01 (~3 KB, 20 OBX). Same method as /work/shared/bench/parse-bench.mjs:
 * median of 3 interleaved rounds of 0.4 s, 64 distinct fresh copies of each message, "parse" and
 * "parse+read" (MSH-10, PID-3.1, PID-5.1), plus a lossless check and the full ingest hot path
 * (decode bytes + parse + MSH-10 + ackRequest + buildAck) for ours.
 *
 *   node --import=tsx bench/parse.ts [--seconds 0.4] [--rounds 3]
 */
import { Hl7Message as MedplumMessage } from '@medplum/core';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { Hl7Message, buildAck, decodeHl7Bytes } from '../src/hl7/index.js';
import { adtA01, oruR01 } from './messages.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SECONDS = arg('seconds', 0.4);
const ROUNDS = arg('rounds', 3);
const POOL = 64;

/** A new, non-internalised string (so V8 cannot reuse split caches across iterations). */
const fresh = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

function bench(fn: (x: string) => unknown, msgs: string[]): number {
  const n = msgs.length;
  for (let i = 0; i < 300; i++) fn(msgs[i % n] as string);
  let iters = 0;
  let sink = 0;
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  let now = t0;
  while (iters < 5_000_000) {
    for (let k = 0; k < 32; k++) if (fn(msgs[(iters + k) % n] as string)) sink++;
    iters += 32;
    now = performance.now();
    if (now > deadline) break;
  }
  if (sink < 0) console.log(sink);
  return iters / ((now - t0) / 1000);
}

interface Case { name: string; parse: (s: string) => unknown; read: (s: string) => unknown }
const cases: Case[] = [
  {
    name: 'tributary Hl7Message',
    parse: (s) => Hl7Message.parse(s),
    read: (s) => {
      const m = Hl7Message.parse(s);
      return m.controlId + (m.get('PID-3.1') ?? '') + (m.get('PID-5.1') ?? '');
    },
  },
  {
    name: '@medplum/core Hl7Message 4.5.2',
    parse: (s) => MedplumMessage.parse(s),
    read: (s) => {
      const m = MedplumMessage.parse(s);
      const pid = m.getSegment('PID');
      return (m.getSegment('MSH')?.getField(10).toString() ?? '') + (pid?.getField(3).getComponent(1) ?? '') + (pid?.getField(5).getComponent(1) ?? '');
    },
  },
];

const messages: Record<string, (id: string) => string> = { ADT: adtA01, ORU: oruR01 };
const pools: Record<string, string[]> = {};
const bytePools: Record<string, Buffer[]> = {};
for (const [k, make] of Object.entries(messages)) {
  pools[k] = Array.from({ length: POOL }, (_, i) => fresh(make(`PB${String(i).padStart(6, '0')}`)));
  bytePools[k] = (pools[k] as string[]).map((s) => Buffer.from(s, 'utf8'));
}

// The whole per-message ingest hot path of ours, from bytes to ACK text.
const now = new Date();
let ackSeq = 0;
const hotPath = (bytes: Buffer): unknown => {
  const { text } = decodeHl7Bytes(bytes);
  const m = Hl7Message.parse(text);
  return m.msh(10) && buildAck(m.ackRequest(), { code: 'AA', controlId: `A${ackSeq++}`, timestamp: now });
};

const samples = new Map<string, number[]>();
const push = (key: string, v: number): void => {
  const arr = samples.get(key) ?? [];
  arr.push(v);
  samples.set(key, arr);
};
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) {
    for (const mname of Object.keys(messages)) {
      push(`${c.name}|${mname}|parse`, bench(c.parse, pools[mname] as string[]));
      push(`${c.name}|${mname}|read`, bench(c.read, pools[mname] as string[]));
    }
  }
  for (const mname of Object.keys(messages)) {
    const bp = bytePools[mname] as Buffer[];
    let i = 0;
    push(`hot|${mname}`, bench(() => hotPath(bp[i++ % bp.length] as Buffer), pools[mname] as string[]));
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const us = (x: number): string => (1e6 / x).toFixed(2);

const lossless = (c: Case, s: string): string => {
  const m = c.parse(s) as { toString(): string };
  return m.toString() === s ? '✔' : '✘';
};

const lines: string[] = [];
lines.push(`Date: ${new Date().toISOString().slice(0, 10)}; machine: ${os.cpus().length} CPU (nproc), ${os.cpus()[0]?.model ?? '?'}; node ${process.version}; command: \`node --import=tsx bench/parse.ts\` (median of ${ROUNDS} rounds × ${SECONDS} s, ${POOL} fresh copies).`);
lines.push('');
lines.push(`Messages: ADT^A01 ${Buffer.byteLength(pools.ADT?.[0] as string)} bytes, ORU^R01 ${Buffer.byteLength(pools.ORU?.[0] as string)} bytes (bench/messages.ts). "parse+read" = parse, then MSH-10, PID-3.1 and PID-5.1.`);
lines.push('');
lines.push('| parser | ADT parse msg/s | ADT parse+read msg/s (µs) | ORU parse msg/s | ORU parse+read msg/s (µs) | lossless ADT / ORU |');
lines.push('|---|---:|---:|---:|---:|:-:|');
const res: Record<string, Record<string, number>> = {};
for (const c of cases) {
  const r: Record<string, number> = {};
  for (const mname of Object.keys(messages)) {
    r[`${mname}p`] = median(samples.get(`${c.name}|${mname}|parse`) as number[]);
    r[`${mname}r`] = median(samples.get(`${c.name}|${mname}|read`) as number[]);
  }
  res[c.name] = r;
  const adt = pools.ADT?.[0] as string;
  const oru = pools.ORU?.[0] as string;
  lines.push(`| ${c.name} | ${fmt(r.ADTp as number)} | ${fmt(r.ADTr as number)} (${us(r.ADTr as number)}) | ${fmt(r.ORUp as number)} | ${fmt(r.ORUr as number)} (${us(r.ORUr as number)}) | ${lossless(c, adt)} / ${lossless(c, oru)} |`);
}
const ours = res[cases[0]?.name as string] as Record<string, number>;
const theirs = res[cases[1]?.name as string] as Record<string, number>;
lines.push('');
lines.push(`Speed-up on parse+read: ADT ${((ours.ADTr as number) / (theirs.ADTr as number)).toFixed(1)}×, ORU ${((ours.ORUr as number) / (theirs.ORUr as number)).toFixed(1)}× (goal ≥ 1.5×).`);
const hotAdt = median(samples.get('hot|ADT') as number[]);
const hotOru = median(samples.get('hot|ORU') as number[]);
lines.push(`Ingest hot path (decodeHl7Bytes + parse + msh(10) + ackRequest + buildAck): ADT ${fmt(hotAdt)} msg/s (${us(hotAdt)} µs), ORU ${fmt(hotOru)} msg/s (${us(hotOru)} µs).`);
console.log(lines.join('\n'));
