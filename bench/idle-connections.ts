// SPDX-License-Identifier: Apache-2.0
/**
 * Memory cost of idle connections: spawn the engine, open N (default 1,000) MLLP connections and
 * hold them open, then read the engine's RSS; then send one message on every connection (each
 * must be ACKed) and read it again. Target: < 150 MB RSS with 1,000 connections.
 *
 * The engine refuses more than `mllp.maxConnectionsPerIp` (default 500) connections from one
 * address, and every connection here comes from 127.0.0.1, so the engine is started with that
 * limit raised to N unless `--default-limits` is given (which shows the refusals instead).
 *
 *   node --import=tsx bench/idle-connections.ts [--connections 1000] [--default-limits] [--json]
 */
import { parseArgs } from 'node:util';
import { spawnEngine } from './lib/engine.js';
import { FrameTemplate, adtA01 } from './lib/messages.js';
import { readProc, type ProcSample } from './lib/proc.js';
import { SingleConnection } from './lib/single-conn.js';
import { r3 } from './lib/stats.js';

const { values: v } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    'default-limits': { type: 'boolean', default: false },
    'settle-ms': { type: 'string', default: '2000' },
    json: { type: 'boolean', default: false },
  },
});
const N = Math.min(10_000, Math.max(1, Number(v.connections)));
const settleMs = Math.min(30_000, Math.max(0, Number(v['settle-ms'])));
const BATCH = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mem = (p: ProcSample | null): { rss_mb: number | null; peak_mb: number | null } => ({
  rss_mb: p ? r3(p.rssKb / 1024) : null,
  peak_mb: p ? r3(p.hwmKb / 1024) : null,
});

async function main(): Promise<number> {
  const config = v['default-limits'] ? undefined : { mllp: { maxConnectionsPerIp: N, maxConnections: Math.max(2000, N) } };
  const engine = await spawnEngine({ config });
  setTimeout(() => void engine.stop(2000).finally(() => process.exit(3)), 180_000).unref();
  const conns: SingleConnection[] = [];
  try {
    await sleep(settleMs);
    const base = readProc(engine.pid);
    let refused = 0;
    const openErrors: Record<string, number> = {};
    for (let i = 0; i < N; i += BATCH) {
      const batch = await Promise.allSettled(Array.from({ length: Math.min(BATCH, N - i) }, () => SingleConnection.open('127.0.0.1', engine.mllpPort)));
      for (const r of batch) {
        if (r.status === 'fulfilled') conns.push(r.value);
        else openErrors[(r.reason as Error).message] = (openErrors[(r.reason as Error).message] ?? 0) + 1;
      }
    }
    // The engine accepts and then destroys refused sockets: wait, then count what survived.
    await sleep(settleMs);
    const open = conns.filter((c) => !c.closed);
    refused = conns.length - open.length;
    const idle = readProc(engine.pid);

    const tpl = new FrameTemplate('ADT^A01', adtA01());
    const verdicts: Record<string, number> = {};
    for (let i = 0; i < open.length; i += BATCH) {
      const batch = await Promise.all(open.slice(i, i + BATCH).map((c, j) => c.request(tpl.frame(`I${i + j}`), `I${i + j}`, 10_000)));
      for (const r of batch) verdicts[r.verdict] = (verdicts[r.verdict] ?? 0) + 1;
    }
    await sleep(settleMs);
    const stillOpen = open.filter((c) => !c.closed).length;
    const used = readProc(engine.pid);
    const result = {
      tool: 'tributary-idle-connections',
      requested: N,
      limits: v['default-limits'] ? 'engine defaults' : `maxConnectionsPerIp=${N}`,
      opened: open.length,
      closed_by_engine_at_accept: refused,
      open_errors: openErrors,
      baseline: mem(base),
      idle_open: mem(idle),
      after_one_message_each: mem(used),
      ack_verdicts: verdicts,
      still_open_at_end: stillOpen,
      per_connection_kb: base && idle && open.length ? r3((idle.rssKb - base.rssKb) / open.length) : null,
    };
    if (v.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      process.stdout.write(
        [
          `requested ${N} connections (${result.limits}): ${open.length} held open, ${refused} closed by the engine at accept${Object.keys(openErrors).length ? `, connect errors ${JSON.stringify(openErrors)}` : ''}`,
          `engine RSS: baseline ${result.baseline.rss_mb} MB; with ${open.length} idle connections ${result.idle_open.rss_mb} MB (~${result.per_connection_kb} KB each); after one message on each ${result.after_one_message_each.rss_mb} MB; peak ${result.after_one_message_each.peak_mb} MB`,
          `ACKs: ${JSON.stringify(verdicts)}; still open at the end: ${stillOpen} (target: RSS < 150 MB)`,
        ].join('\n') + '\n',
      );
    }
    return verdicts.ok === open.length && open.length === N ? 0 : 1;
  } finally {
    for (const c of conns) c.close();
    const exit = await engine.stop();
    if (exit.code !== 0) process.stderr.write(`engine exited with ${exit.code}/${exit.signal}\n${engine.stderrTail().slice(-2000)}\n`);
  }
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`idle-connections: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
