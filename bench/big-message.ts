// SPDX-License-Identifier: Apache-2.0
/**
 * Memory cost of one big message: spawn the engine, warm it up with small messages, then send an
 * ORU^R01 whose OBX carries ~5 MB of base64 (an inline PDF), wait for its ACK, and compare the
 * engine's peak RSS (VmHWM) growth with the message size. Target: growth < 4× the message size.
 *
 *   node --import=tsx bench/big-message.ts [--size-mb 5] [--count 3] [--engine-node-arg=--expose-gc] [--json]
 */
import { parseArgs } from 'node:util';
import { spawnEngine } from './lib/engine.js';
import { FrameTemplate, adtA01, bigOru } from './lib/messages.js';
import { readProc } from './lib/proc.js';
import { SingleConnection } from './lib/single-conn.js';
import { r3 } from './lib/stats.js';

const { values: v } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '5' },
    count: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '500' },
    'timeout-ms': { type: 'string', default: '30000' },
    'engine-node-arg': { type: 'string', multiple: true, default: [] },
    json: { type: 'boolean', default: false },
  },
});
const sizeBytes = Math.round(Number(v['size-mb']) * 1024 * 1024);
const count = Math.min(20, Math.max(1, Number(v.count)));
const warmup = Math.min(100_000, Math.max(0, Number(v.warmup)));
const timeoutMs = Number(v['timeout-ms']);
if (!Number.isFinite(sizeBytes) || sizeBytes < 1024 || sizeBytes > 15 * 1024 * 1024) {
  process.stderr.write('--size-mb: expected 0.001..15 (the engine default maxFrameBytes is 16 MiB)\n');
  process.exit(2);
}
const MB = 1024 * 1024;
const mb = (kb: number): number => r3(kb / 1024)!;

async function health(port: number): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as Record<string, unknown>;
}

async function main(): Promise<number> {
  const engine = await spawnEngine({ nodeArgs: v['engine-node-arg'] });
  const hardStop = setTimeout(() => void engine.stop(2000).finally(() => process.exit(3)), count * timeoutMs + 120_000);
  hardStop.unref();
  let conn: SingleConnection | undefined;
  try {
    conn = await SingleConnection.open('127.0.0.1', engine.mllpPort);
    const small = new FrameTemplate('ADT^A01', adtA01());
    for (let i = 0; i < warmup; i++) {
      const r = await conn.request(small.frame(`W${i}`), `W${i}`, 5000);
      if (r.verdict !== 'ok') throw new Error(`warm-up message ${i}: ${r.verdict} ${r.detail}`);
    }
    await new Promise((r) => setTimeout(r, 500));
    const before = readProc(engine.pid);
    if (!before) throw new Error('cannot read /proc of the engine');
    const big = new FrameTemplate('ORU^R01 big', bigOru(sizeBytes));
    const runs: Array<{ ms: number; verdict: string; hwmMb: number; rssMb: number; growthMb: number; ratio: number }> = [];
    for (let i = 0; i < count; i++) {
      const id = `BIG${i}`;
      const frame = big.frame(id);
      const r = await conn.request(frame, id, timeoutMs);
      const after = readProc(engine.pid);
      if (!after) throw new Error('engine gone after the big message');
      const growth = after.hwmKb - before.rssKb;
      runs.push({ ms: r3(r.ms)!, verdict: r.verdict === 'ok' ? 'ok' : `${r.verdict}: ${r.detail}`, hwmMb: mb(after.hwmKb), rssMb: mb(after.rssKb), growthMb: mb(growth), ratio: r3(growth / 1024 / (big.messageBytes(id.length) / MB))! });
      if (r.verdict !== 'ok') break;
    }
    const h = await health(engine.httpPort);
    const journal = h.journal as { rows?: number } | undefined;
    const result = {
      tool: 'tributary-big-message',
      message_mb: r3(big.messageBytes(4) / MB),
      warmup_messages: warmup,
      rss_before_mb: mb(before.rssKb),
      hwm_before_mb: mb(before.hwmKb),
      runs,
      peak_growth_mb: Math.max(...runs.map((x) => x.growthMb)),
      peak_growth_ratio: Math.max(...runs.map((x) => x.ratio)),
      journal_rows: journal?.rows ?? null,
      expected_journal_rows: warmup + runs.filter((x) => x.verdict === 'ok').length,
    };
    if (v.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      process.stdout.write(`message ${result.message_mb} MB; engine RSS before ${result.rss_before_mb} MB (peak so far ${result.hwm_before_mb} MB)\n`);
      for (const [i, x] of runs.entries()) {
        process.stdout.write(`  #${i + 1}: ${x.verdict} in ${x.ms} ms; peak RSS ${x.hwmMb} MB (+${x.growthMb} MB = ${x.ratio}× the message), RSS now ${x.rssMb} MB\n`);
      }
      process.stdout.write(`journal rows ${result.journal_rows} (expected ${result.expected_journal_rows}); peak growth ${result.peak_growth_ratio}× the message size (target < 4×)\n`);
    }
    return runs.every((x) => x.verdict === 'ok') && result.journal_rows === result.expected_journal_rows ? 0 : 1;
  } finally {
    conn?.close();
    const exit = await engine.stop();
    if (exit.code !== 0) process.stderr.write(`engine exited with ${exit.code}/${exit.signal}\n${engine.stderrTail().slice(-2000)}\n`);
  }
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`big-message: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
