// SPDX-License-Identifier: Apache-2.0
/**
 * CPU per message of the engine's message path without sockets: the journal (as the engine opens
 * it), the senders gate, the channels and the record, driven through `Ingestor.submitFrame` with a
 * fixed number of frames in flight. No load generator shares the machine, so paired runs of two
 * builds differ by a few percent where the MLLP benchmark differs by ten: the tool for deciding
 * whether a change to the path is worth keeping (the MLLP benchmark stays the figure of record).
 *
 *   npm run build && node --import=tsx bench/pipeline.ts [--messages 60000] [--inflight 64] [--mix adt|oru|mixed] [--channels DIR]
 *     [--before MIX:N] [--profile FILE]
 *
 * `--before oru:20000` sends N messages of another mix after the warm-up and before the measured
 * run, as the reference harness sends its ORU run before the pipelined one (a process that has
 * taken ORUs costs more per ADT: docs/benchmarks.md §0). `--profile FILE` writes a CPU profile of
 * the measured run only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
// The built engine (`npm run build` first), as `bench/load.ts --spawn` runs it: under tsx the
// source carries helpers of its own that distort a profile.
import { Journal } from '../dist/journal/journal.js';
import { createPipeline, databasePath, openChannels } from '../dist/engine/engine.js';
import { silentLogger } from '../dist/log.js';
import { templatesFor, type Mix } from './lib/messages.js';

const { values: v } = parseArgs({
  options: {
    messages: { type: 'string', default: '60000' },
    warmup: { type: 'string', default: '5000' },
    inflight: { type: 'string', default: '64' },
    mix: { type: 'string', default: 'adt' },
    channels: { type: 'string', default: 'channels' },
    json: { type: 'boolean', default: false },
    before: { type: 'string' },
    profile: { type: 'string' },
  },
});

/** Main-thread CPU ms from /proc (Linux), else null. */
function mainThreadMs(): number | null {
  try {
    const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'trib-pipeline-'));
const journal = Journal.open({ file: databasePath(dir), backgroundCheckpoints: true });
const channels = openChannels(v.channels!, silentLogger);
const { ingestor } = createPipeline({ journal, logger: silentLogger, channels });
const templates = templatesFor(v.mix as Mix);
const [beforeMix, beforeCount] = (v.before ?? ':0').split(':');
const beforeTemplates = beforeMix ? templatesFor(beforeMix as Mix) : templates;
const meta = { interface: 'mllp', connectionId: 'bench', remoteAddress: '127.0.0.1', remotePort: 40000 };

let seq = 0;
/** Run `n` frames with `inflight` outstanding; resolves with the count of accepted answers. */
function run(n: number, inflight: number, list = templates): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    let done = 0;
    let ok = 0;
    const next = (): void => {
      if (sent >= n) return;
      sent++;
      const t = list[seq % list.length]!;
      // The frame without MLLP bytes: the template's text with a fresh MSH-10.
      const frame = t.frame(`P${(++seq).toString(36).padStart(9, '0')}`);
      ingestor.submitFrame(frame.subarray(1, frame.length - 2), meta, (r) => {
        // AA, or CA when the message asks for enhanced acknowledgement (the benchmark's do).
        if (r.ackCode === 'AA' || r.ackCode === 'CA') ok++;
        if (++done === n) resolve(ok);
        else next();
      });
    };
    for (let i = 0; i < inflight; i++) next();
  });
}

const inflight = Number(v.inflight);
await run(Number(v.warmup), inflight);
if (Number(beforeCount) > 0) await run(Number(beforeCount), inflight, beforeTemplates);
const session = v.profile ? new Session() : null;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
const n = Number(v.messages);
const cpu0 = process.cpuUsage();
const main0 = mainThreadMs();
const t0 = process.hrtime.bigint();
const ok = await run(n, inflight);
const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const main1 = mainThreadMs();
if (session) writeFileSync(v.profile!, JSON.stringify((await session.post('Profiler.stop')).profile));
journal.close();
rmSync(dir, { recursive: true, force: true });
const result = {
  tool: 'tributary-pipeline',
  mix: v.mix,
  ...(v.before ? { before: v.before } : {}),
  inflight,
  messages: n,
  ok,
  msgs_per_s: Math.round(n / wallS),
  cpu_us_per_msg: Math.round(((cpu.user + cpu.system) / n) * 10) / 10,
  main_thread_cpu_us_per_msg: main0 === null || main1 === null ? null : Math.round((((main1 - main0) * 1000) / n) * 10) / 10,
};
if (v.json) process.stdout.write(`${JSON.stringify(result)}\n`);
else for (const [k, val] of Object.entries(result)) process.stdout.write(`${k.padEnd(28)} ${val}\n`);
process.exit(ok === n ? 0 : 1);
