// SPDX-License-Identifier: Apache-2.0
/** The script worker: loops stopped within the limit plus a restart, recovery, two channels, memory, large messages, batches. */
import test, { type ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InlineScriptExecutor, WorkerScriptExecutor, loadChannels, runChannel, runChannelLive, type Channel, type ChannelOutcome, type ScriptExecutor } from '../../src/channels/index.js';
import type { Logger } from '../../src/log.js';
import { tempDir } from '../helpers/engine.js';

const ADT =
  'MSH|^~\\&|PAS|RXX|TRIBUTARY|TRIBUTARY|20250314081530||ADT^A01^ADT_A01|C1|P|2.5.1\r' +
  'PID|1||H123^^^RXX^MR||DOE^ALEX||19800101|U\r' +
  'PV1|1|I|WARD7^BED1|EM||||||PSY\r';
const MLLP = { interface: 'mllp' };

function executor(t: ExecutionContext, options: ConstructorParameters<typeof WorkerScriptExecutor>[0] = {}): WorkerScriptExecutor {
  const x = new WorkerScriptExecutor(options);
  t.teardown(() => x.close());
  return x;
}

/** One channel per entry (name → script body), all loaded with `executor`. */
function load(t: ExecutionContext, x: ScriptExecutor, scripts: Record<string, string>, timeoutMs = 50): Channel[] {
  const dir = tempDir(t, 'tributary-executor-');
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(dir, `${name}.js`), body);
    writeFileSync(join(dir, `${name}.yaml`), `name: ${name}\nsource: { types: ['ADT^*'] }\nlimits: { scriptTimeoutMs: ${timeoutMs} }\ntransform:\n  - { type: script, file: ${name}.js }\n`);
  }
  return loadChannels(dir, { executor: x });
}

const LOOPS_ON_LOOP = `let n = 0;
export default function (msg) {
  if (msg.get('PID-5.1') === 'LOOP') { while (true) {} }
  msg.set('PID-9', 'call ' + (++n));
}`;

test('a loop is stopped within the limit plus the stop; the worker is replaced and the next message passes', (t) => {
  const x = executor(t);
  const [c] = load(t, x, { a: LOOPS_ON_LOOP }, 100);
  t.like(runChannel(c!, ADT, { sender: MLLP }), { result: 'pass' });
  const started = performance.now();
  const out = runChannel(c!, ADT.replace('DOE^', 'LOOP^'), { sender: MLLP });
  const took = performance.now() - started;
  t.like(out, { result: 'error', step: 'transform[0]', code: 'CHANNEL_SCRIPT_TIMEOUT', reason: 'channel a, step transform[0]: script exceeded its time limit of 100 ms' });
  t.true(took >= 99 && took < 1000, `answered after ${took} ms`);
  const next = runChannel(c!, ADT, { sender: MLLP });
  // A new worker: the module's state starts again (docs: do not rely on it).
  t.is(next.result === 'pass' ? next.message.get('PID-9') : next.result, 'call 1');
  t.like(x.stats(), { started: 2, stoppedForTime: 1, scripts: 1 });
});

test('two channels with scripts: a loop in one does not change the other’s answers', (t) => {
  const x = executor(t);
  const [a, b] = load(t, x, { a: LOOPS_ON_LOOP, b: `export default function (msg, ctx) { msg.set('PID-8', ctx.channel); }` });
  const loop = ADT.replace('DOE^', 'LOOP^');
  for (let i = 0; i < 3; i++) {
    t.like(runChannel(a!, loop, { sender: MLLP }), { result: 'error', code: 'CHANNEL_SCRIPT_TIMEOUT' });
    const out = runChannel(b!, loop, { sender: MLLP });
    t.is(out.result === 'pass' ? out.message.get('PID-8') : out.result, 'b');
  }
  t.like(runChannel(a!, ADT, { sender: MLLP }), { result: 'pass' });
  t.like(x.stats(), { stoppedForTime: 3, scripts: 2 });
});

test('a script that allocates without end hits the worker heap limit: AE naming memory for that message, the next one passes', async (t) => {
  const warnings: string[] = [];
  const logger: Logger = { bodies: false, error() {}, warn: (m) => void warnings.push(m), info() {}, debug() {}, body() {} };
  const x = executor(t, { maxMemoryMb: 32 });
  const [c] = load(t, x, { m: `export default function (msg) { if (msg.get('PID-5.1') === 'HOG') { const a = []; for (;;) a.push(new Array(1024).fill(a.length)); } }` }, 10_000);
  const started = performance.now();
  const out = await runChannelLive(c!, ADT.replace('DOE^', 'HOG^'), { sender: MLLP, logger });
  // The engine thread waits on its event loop, where the worker's death is reported: no need to
  // wait for the time limit, and the reason is memory, not time.
  t.like(out, { result: 'error', step: 'transform[0]', code: 'CHANNEL_SCRIPT_FAILED' });
  t.regex(out.result === 'error' ? out.reason : '', /script failed: the script ran out of memory \(the script worker's heap limit is 32 MiB\)/);
  t.true(performance.now() - started < 9000);
  t.like(await runChannelLive(c!, ADT, { sender: MLLP, logger }), { result: 'pass' });
  t.deepEqual(warnings, ['channel script worker ran out of memory; restarted']);
  t.like(x.stats(), { died: 1, stoppedForTime: 0 });
});

test('a message larger than the shared buffer goes through the port, both ways', async (t) => {
  const x = executor(t, { bufferBytes: 1024 });
  const [c] = load(t, x, { big: `export default function (msg, ctx) { msg.set('NTE-3', msg.get('NTE-3') + '!', { create: true }); ctx.log.info('x'.repeat(3000)); }` });
  const note = 'é'.repeat(5000);
  const lines: string[] = [];
  const logger: Logger = { bodies: true, error() {}, warn() {}, info() {}, debug() {}, body: (_m, b) => void lines.push(b) };
  const out = runChannel(c!, ADT + `NTE|1||${note}\r`, { sender: MLLP, logger });
  t.is(out.result === 'pass' ? out.message.get('NTE-3') : out.result, note + '!');
  t.deepEqual(lines.map((l) => l.length), [2000]);
  // Live calls: large and small ones mixed in one turn (a large one goes alone or first in its batch).
  const outs = await Promise.all([note, 'a', note, 'b'].map((n) => runChannelLive(c!, ADT + `NTE|1||${n}\r`, { sender: MLLP, logger })));
  t.deepEqual(outs.map((o) => (o.result === 'pass' ? o.message.get('NTE-3') : o.result)), [note + '!', 'a!', note + '!', 'b!']);
  t.is(lines.length, 5);
});

test('a top level that loops is a load problem; scripts loaded before it still run', (t) => {
  const x = executor(t);
  const dir = tempDir(t);
  writeFileSync(join(dir, 'a.js'), `export default function (msg) { msg.set('PID-8', 'A'); }`);
  writeFileSync(join(dir, 'a.yaml'), "name: a\nsource: { types: ['ADT^*'] }\ntransform:\n  - { type: script, file: a.js }\n");
  const [a] = loadChannels(dir, { executor: x });
  const bad = tempDir(t);
  writeFileSync(join(bad, 'l.js'), 'while (true) {}\nexport default () => {};\n');
  writeFileSync(join(bad, 'l.yaml'), "name: l\nsource: { types: ['ADT^*'] }\ntransform:\n  - { type: script, file: l.js }\n");
  t.throws(() => loadChannels(bad, { executor: x }), { message: /script l\.js: its top-level code ran longer than 1000 ms/ });
  const out = runChannel(a!, ADT, { sender: MLLP });
  t.is(out.result === 'pass' ? out.message.get('PID-8') : out.result, 'A');
});

test('the inline executor (vm timeout in the engine thread) gives the same answers', (t) => {
  const [c] = load(t, new InlineScriptExecutor(), { a: LOOPS_ON_LOOP }, 30);
  t.like(runChannel(c!, ADT.replace('DOE^', 'LOOP^'), { sender: MLLP }), { result: 'error', code: 'CHANNEL_SCRIPT_TIMEOUT', reason: 'channel a, step transform[0]: script exceeded its time limit of 30 ms' });
  const next = runChannel(c!, ADT, { sender: MLLP });
  t.is(next.result === 'pass' ? next.message.get('PID-9') : next.result, 'call 1');
});

const live = (c: Channel, messages: string[]): Promise<ChannelOutcome[]> => Promise.all(messages.map((m) => runChannelLive(c, m, { sender: MLLP })));
const pid9 = (o: ChannelOutcome): string => (o.result === 'pass' ? o.message.get('PID-9')! : o.result);

test('calls made in one turn go to the worker as one batch, answered in order', async (t) => {
  const x = executor(t);
  const [c] = load(t, x, { a: LOOPS_ON_LOOP });
  const before = x.stats();
  const outs = await live(c!, [ADT, ADT, ADT, ADT, ADT]);
  t.deepEqual(outs.map(pid9), ['call 1', 'call 2', 'call 3', 'call 4', 'call 5']);
  const after = x.stats();
  t.is(after.calls - before.calls, 5);
  t.is(after.batches - before.batches, 1);
});

test('a timeout in the middle of a batch: earlier answers kept, later calls run again on the new worker; the event loop stays free', async (t) => {
  const x = executor(t);
  const [c] = load(t, x, { a: LOOPS_ON_LOOP }, 200);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  t.teardown(() => clearInterval(timer));
  const started = performance.now();
  const outs = await live(c!, [ADT, ADT, ADT.replace('DOE^', 'LOOP^'), ADT, ADT]);
  const took = performance.now() - started;
  // Calls 1 and 2 ran in the first worker; 3 overran; 4 and 5 ran in the replacement, whose module state is new.
  t.deepEqual(outs.map(pid9), ['call 1', 'call 2', 'error', 'call 1', 'call 2']);
  t.like(outs[2], { result: 'error', step: 'transform[0]', code: 'CHANNEL_SCRIPT_TIMEOUT', reason: 'channel a, step transform[0]: script exceeded its time limit of 200 ms' });
  t.true(took >= 199, `answered after ${took} ms`);
  t.true(ticks >= 5, `the event loop ran ${ticks} timer ticks while the script looped`);
  t.like(x.stats(), { started: 2, stoppedForTime: 1, batches: 3, calls: 1 + 5 + 2 });
});

test('a loaded script and calls waiting in this thread share the worker with queued live calls', async (t) => {
  const x = executor(t);
  const [c] = load(t, x, { a: LOOPS_ON_LOOP });
  const pending = live(c!, [ADT, ADT]);
  // A blocking call while live calls are queued: they go first, in the same batch.
  const now = runChannel(c!, ADT, { sender: MLLP });
  t.is(pid9(now), 'call 3');
  t.deepEqual((await pending).map(pid9), ['call 1', 'call 2']);
});

test('a restarted worker may take the start limit plus every script load limit: slow top levels do not keep it from starting', (t) => {
  // Four scripts whose top level takes about 300 ms: 1.2 s to load them all again, more than the
  // start limit alone. Before, every call after the restart failed with "did not start".
  const x = executor(t, { startTimeoutMs: 1000 });
  const slow = `const until = Date.now() + 300; while (Date.now() < until) {}\nexport default function (msg) { msg.set('PID-8', 'ok'); }`;
  const channels = load(t, x, { a: LOOPS_ON_LOOP, s1: slow, s2: slow, s3: slow, s4: slow }, 100);
  t.like(runChannel(channels[0]!, ADT.replace('DOE^', 'LOOP^'), { sender: MLLP }), { result: 'error', code: 'CHANNEL_SCRIPT_TIMEOUT' });
  const out = runChannel(channels[1]!, ADT, { sender: MLLP });
  t.is(out.result === 'pass' ? out.message.get('PID-8') : `${out.result}: ${'reason' in out ? out.reason : ''}`, 'ok');
  t.like(x.stats(), { started: 2, stoppedForTime: 1 });
});

test('live answers in one batch mixed between the shared buffer and the port keep their order and text', async (t) => {
  const x = executor(t, { bufferBytes: 2048 });
  const [c] = load(t, x, { tag: `export default function (msg) { msg.set('NTE-3', msg.get('NTE-3') + '!', { create: true }); }` });
  const big = 'é'.repeat(3000);
  const notes = ['a', 'b', big, 'c', 'd', big, 'e'];
  const before = x.stats();
  const outs = await Promise.all(notes.map((n) => runChannelLive(c!, ADT + `NTE|1||${n}\r`, { sender: MLLP })));
  t.deepEqual(
    outs.map((o) => (o.result === 'pass' ? o.message.get('NTE-3') : o.result)),
    notes.map((n) => n + '!'),
  );
  const after = x.stats();
  t.is(after.calls - before.calls, notes.length);
  // A large request starts a batch of its own (it goes through the port), so small answers (in the
  // buffer) follow a large one (through the port) in the same batch.
  t.true(after.batches - before.batches >= 2 && after.batches - before.batches <= 4, `${after.batches - before.batches} batches`);
});
