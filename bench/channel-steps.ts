// SPDX-License-Identifier: Apache-2.0
/**
 * Cost of channel steps per message, wall time and process CPU (all threads: the script worker's
 * CPU is server CPU too):
 *   - parse only;
 *   - parse + 5 declarative steps + encode;
 *   - the same + 1 script step in the script worker (the default executor), waiting in the thread
 *     (`runChannel`, as CLI channel tests do), and on the live path (`runChannelLive`: the calls of
 *     one turn go to the worker as one batch) with 1, 8 and 32 messages per turn;
 *   - the same + 1 script step inline under vm's `timeout` (the previous way);
 * then the cost of a timeout: how long the looping message takes beyond its limit, and the next
 * message (which may wait for the replacement worker). Prints a markdown table. Run:
 *   node --import=tsx bench/channel-steps.ts            (N=50000 messages per row by default)
 * or, against the compiled code: npm run build && node --import=tsx bench/channel-steps.ts --dist
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as ChannelsApi from '../src/channels/index.js';
import type * as Hl7Api from '../src/hl7/index.js';

const dist = process.argv.includes('--dist');
const channels = (await import(dist ? '../dist/channels/index.js' : '../src/channels/index.js')) as typeof ChannelsApi;
const { Hl7Message } = (await import(dist ? '../dist/hl7/index.js' : '../src/hl7/index.js')) as typeof Hl7Api;
const { InlineScriptExecutor, WorkerScriptExecutor, loadChannels, runChannel, runChannelLive } = channels;
type Channel = ChannelsApi.Channel;
type ScriptExecutor = ChannelsApi.ScriptExecutor;

const MESSAGE =
  'MSH|^~\\&|PAS|RXX|TRIBUTARY|TRIBUTARY|20250314081530||ADT^A01^ADT_A01|C1|P|2.5.1\r' +
  'EVN|A01|20250314081500\r' +
  'PID|1||H123^^^RXX^MR~9434765919^^^NHS^NH||DOE^ALEX||19800101|U|||1 TEST STREET^^LEEDS^^LS1 1AA\r' +
  'PV1|1|I|WARD7^BED1|EM||||||PSY\r' +
  'ZXX|internal\r';

const STEPS = `  - { type: set, path: PID-3.4, value: NHS }
  - { type: copy, from: 'PID-3[2].1', to: PID-2 }
  - { type: delete, path: PID-8 }
  - { type: map, path: PV1-10, table: services }
  - { type: drop-segment, segment: ZXX }
`;

const SCRIPT = "export default function (msg, ctx) { if (msg.get('PID-5.1') === 'LOOP') { while (true) {} } msg.set('PV1-3.2', ctx.lookup('services', msg.get('PV1-10'), 'GEN')); }\n";

function channel(dir: string, name: string, steps: string, executor?: ScriptExecutor): Channel {
  writeFileSync(join(dir, 's.js'), SCRIPT);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\nsource: { types: ['ADT^*'] }\ntables: { services: { PSY: MENTAL_HEALTH } }\ntransform:\n${steps}`);
  const [c] = loadChannels(dir, executor ? { executor } : {}).filter((x) => x.name === name);
  rmSync(file);
  return c!;
}

interface Row {
  label: string;
  wall: number;
  cpu: number;
}

function measure(label: string, fn: () => void, n: number): Row {
  for (let i = 0; i < Math.min(n, 5_000); i++) fn(); // warm up
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / n;
  const c = process.cpuUsage(c0);
  return { label, wall, cpu: (c.user + c.system) / n };
}

/** `batch` messages started in one turn, awaited together, n messages in all. */
async function measureLive(label: string, c: Channel, batch: number, n: number): Promise<Row> {
  const sender = { interface: 'mllp' };
  const turn = async (): Promise<void> => {
    const outs = await Promise.all(Array.from({ length: batch }, () => runChannelLive(c, Hl7Message.parse(MESSAGE), { sender })));
    for (const out of outs) if (out.result === 'pass') out.message.toString();
  };
  for (let i = 0; i < Math.min(n, 5_000) / batch; i++) await turn(); // warm up
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n / batch; i++) await turn();
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / n;
  const u = process.cpuUsage(c0);
  return { label, wall, cpu: (u.user + u.system) / n };
}

const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-channels-'));
const worker = new WorkerScriptExecutor();
try {
  const sender = { interface: 'mllp' };
  const declarative = channel(dir, 'declarative', STEPS);
  const scripted = channel(dir, 'scripted', STEPS + '  - { type: script, file: s.js }\n', worker);
  const inline = channel(dir, 'inline', STEPS + '  - { type: script, file: s.js }\n', new InlineScriptExecutor());
  for (const c of [scripted, inline]) {
    const check = runChannel(c, Hl7Message.parse(MESSAGE), { sender });
    if (check.result !== 'pass' || check.message.get('PV1-3.2') !== 'GEN') throw new Error(`bench channel broken: ${JSON.stringify(check)}`);
  }
  const n = Number(process.env.N ?? 50_000);
  const run = (c: Channel) => () => {
    const out = runChannel(c, Hl7Message.parse(MESSAGE), { sender });
    if (out.result === 'pass') out.message.toString();
  };
  const rows = [
    measure('parse only', () => void Hl7Message.parse(MESSAGE).messageType, n),
    measure('parse + 5 declarative steps + encode', run(declarative), n),
    measure('+ 1 script step, script worker, waiting in the thread', run(scripted), n),
    await measureLive('+ 1 script step, script worker, live, 1 message per turn', scripted, 1, n),
    await measureLive('+ 1 script step, script worker, live, 8 messages per turn', scripted, 8, n),
    await measureLive('+ 1 script step, script worker, live, 32 messages per turn', scripted, 32, n),
    measure('+ 1 script step, inline vm `timeout` (before)', run(inline), Math.max(1000, Math.floor(n / 10))),
  ];
  // A timeout: the looping message is answered after its limit plus the stop; the next message
  // waits for whatever is left of the replacement's start.
  const loop = Hl7Message.parse(MESSAGE.replace('DOE^', 'LOOP^'));
  const limit = scripted.definition.limits.scriptTimeoutMs;
  const timeouts: Array<{ looping: number; next: number }> = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const out = runChannel(scripted, loop, { sender });
    const t1 = performance.now();
    if (out.result !== 'error' || out.code !== 'CHANNEL_SCRIPT_TIMEOUT') throw new Error(`expected a timeout: ${JSON.stringify(out)}`);
    const next = runChannel(scripted, Hl7Message.parse(MESSAGE), { sender });
    const t2 = performance.now();
    if (next.result !== 'pass') throw new Error(`the message after a timeout: ${JSON.stringify(next)}`);
    timeouts.push({ looping: t1 - t0, next: t2 - t1 });
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${MESSAGE.length}-byte ADT^A01, N=${n}${dist ? ', dist/' : ', src/ under tsx'}\n`);
  console.log('| Variant | wall µs/msg | CPU µs/msg (all threads) |');
  console.log('|---|---:|---:|');
  for (const r of rows) console.log(`| ${r.label} | ${r.wall.toFixed(2)} | ${r.cpu.toFixed(2)} |`);
  console.log(
    `\nTimeout (limit ${limit} ms, median of 5): the looping message takes ${med(timeouts.map((t) => t.looping)).toFixed(1)} ms, ` +
      `the next one ${med(timeouts.map((t) => t.next)).toFixed(1)} ms (waits for the replacement worker); ${JSON.stringify(worker.stats())}`,
  );
} finally {
  await worker.close();
  rmSync(dir, { recursive: true, force: true });
}
