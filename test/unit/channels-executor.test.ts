// SPDX-License-Identifier: Apache-2.0
/** The script worker: loops stopped within the limit plus a restart, recovery, two channels, memory, large messages, batches, writes sent back as a list, the limit timer. */
import test, { type ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InlineScriptExecutor, WorkerScriptExecutor, loadChannels, runChannel, runChannelLive, type Channel, type ChannelOutcome, type ScriptExecutor } from '../../src/channels/index.js';
import { replayEdits } from '../../src/channels/edit.js';
import { MAX_EDITS, ScriptSandbox } from '../../src/channels/sandbox.js';
import { Hl7Message } from '../../src/hl7/index.js';
import { silentLogger, type Logger } from '../../src/log.js';
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

// A script's changes come back from the worker as its writes (at most MAX_EDITS of them), which
// the engine applies again to its own copy: refused writes too, since a refused `set` with
// `create` has already appended its segment.
const WRITES = `export default function (msg) {
  msg.set('ZXT-1', 'made', { create: true });
  try { msg.set('ZZZ-1', 'x'); } catch (e) { msg.set('PID-8', 'refused'); }
  try { msg.set('ZQQ-1', 'a|b', { raw: true, create: true }); } catch (e) {}
  msg.delete('PID-7');
  msg.set('PV1-3.2', 'BED&2');
  msg.dropSegment('EVN');
  msg.addSegment('ZAA');
  msg.set('ZAA-1', String(msg.toString().length));
}`;

test('a script’s writes applied again in the engine give the worker’s message, refused writes and segment edits included', async (t) => {
  const [inline] = load(t, new InlineScriptExecutor(), { w: WRITES });
  const x = executor(t);
  const [worker] = load(t, x, { w: WRITES });
  const input = ADT.replace('PID|', 'EVN|A01\rPID|');
  const expected = runChannel(inline!, input, { sender: MLLP });
  if (expected.result !== 'pass') return t.fail(JSON.stringify(expected));
  const text = expected.message.toString();
  // The refused set with create appended ZQQ before it refused the value.
  t.regex(text, /\rZQQ\r/);
  t.regex(text, /\rZAA\|\d+\r$/);
  t.is(expected.message.get('PID-8'), 'refused');
  t.is(expected.message.countSegments('EVN'), 0);
  const blocking = runChannel(worker!, input, { sender: MLLP });
  t.is(blocking.result === 'pass' ? blocking.message.toString() : blocking.result, text);
  const outs = await live(worker!, [input, input]);
  t.deepEqual(outs.map((o) => (o.result === 'pass' ? o.message.toString() : o.result)), [text, text]);
});

test('more writes than are sent as a list: the changed message comes back whole', async (t) => {
  const x = executor(t);
  const many = `export default function (msg) { for (let i = 1; i <= ${MAX_EDITS + 4}; i++) msg.set('PID-13[' + i + ']', 'r' + i); }`;
  const [c] = load(t, x, { many });
  const [out] = await live(c!, [ADT]);
  t.deepEqual(out!.result === 'pass' ? out!.message.getAll('PID-13') : out!.result, Array.from({ length: MAX_EDITS + 4 }, (_, i) => `r${i + 1}`));
});

test('the sandbox lists a call’s writes, with whether each succeeded, up to MAX_EDITS', (t) => {
  const options = { file: 's.js', kind: 'transform' as const, tables: {}, channel: 'c', step: 'transform[0]', timeoutMs: 50 };
  const code = (n: number): string => `module.exports = function (msg) { try { msg.set('ZZZ-1', 'x'); } catch (e) {} for (let i = 1; i < ${n}; i++) msg.set('PID-8', 'v' + i); };`;
  const few = ScriptSandbox.load(code(3), options);
  t.like(few.run({ msg: Hl7Message.parse(ADT) }, MLLP, silentLogger), { kind: 'ok' });
  t.deepEqual(few.edits, [['set', 'ZZZ-1', 'x', '', 0], ['set', 'PID-8', 'v1', '', 1], ['set', 'PID-8', 'v2', '', 1]]);
  const lots = ScriptSandbox.load(code(MAX_EDITS + 1), options);
  lots.run({ msg: Hl7Message.parse(ADT) }, MLLP, silentLogger);
  t.is(lots.edits, null);
  t.true(lots.changed);
});

test('writes that do not end here as they did in the script are a reason, not a silently different message', (t) => {
  // Claimed applied, but the message has no ZZZ segment: the copies would differ.
  const box = { msg: Hl7Message.parse(ADT) };
  t.is(replayEdits(box, [['set', 'PID-8', 'F', '', 1], ['set', 'ZZZ-1', 'x', '', 1]]), "the script's set on ZZZ-1 succeeded in the script worker but not here");
  t.is(replayEdits({ msg: Hl7Message.parse(ADT) }, [['set', 'PID-8', 'F', '', 0]]), "the script's set on PID-8 was refused in the script worker but not here");
  t.is(replayEdits({ msg: Hl7Message.parse(ADT) }, [['set', 'ZZZ-1', 'x', '', 0], ['delete', 'PID-7', '', '', 1]]), null);
});

test.serial('a live batch keeps the process alive while it is out, and only then', async (t) => {
  const x = executor(t);
  const [c] = load(t, x, { slow: `export default function (msg) { const until = Date.now() + 150; while (Date.now() < until) {} msg.set('PID-8', 'S'); }` }, 2000);
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  await live(c!, [ADT]); // the worker is up and the limit timer exists
  const idle = timers();
  const pending = live(c!, [ADT]);
  await new Promise((r) => setTimeout(r, 50));
  t.is(timers(), idle + 1, 'the limit timer is ref’d while the batch is out');
  const [out] = await pending;
  t.is(out!.result === 'pass' ? out!.message.get('PID-8') : out!.result, 'S');
  t.is(timers(), idle, 'and unref’d once it is answered');
});

test('a small batch waits a few event-loop turns for more calls; gatherTurns 0 sends each turn’s calls', async (t) => {
  const inTurns = async (c: Channel, turns: number): Promise<ChannelOutcome[]> => {
    const outs: Array<Promise<ChannelOutcome>> = [];
    for (let i = 0; i < turns; i++) {
      outs.push(Promise.resolve(runChannelLive(c, ADT, { sender: MLLP })));
      await new Promise((r) => setImmediate(r));
    }
    return Promise.all(outs);
  };
  for (const gatherTurns of [undefined, 0]) {
    const x = executor(t, gatherTurns === undefined ? {} : { gatherTurns });
    const [c] = load(t, x, { a: LOOPS_ON_LOOP });
    const before = x.stats();
    t.deepEqual((await inTurns(c!, 3)).map(pid9), ['call 1', 'call 2', 'call 3']);
    const batches = x.stats().batches - before.batches;
    // Without gathering the first call goes alone (the others join whichever batch is next).
    if (gatherTurns === undefined) t.is(batches, 1);
    else t.true(batches >= 2, `${batches} batches`);
    // A lone call is still sent, after at most those turns.
    t.deepEqual((await inTurns(c!, 1)).map(pid9), ['call 4']);
  }
  // A full queue goes at once: eight calls in one turn, then one more in the next, are two batches.
  const x = executor(t, { gatherCalls: 8 });
  const [c] = load(t, x, { a: LOOPS_ON_LOOP });
  const before = x.stats();
  const first = live(c!, [ADT, ADT, ADT, ADT, ADT, ADT, ADT, ADT]);
  await new Promise((r) => setImmediate(r));
  const second = live(c!, [ADT]);
  t.is((await first).length + (await second).length, 9);
  t.is(x.stats().batches - before.batches, 2);
});
