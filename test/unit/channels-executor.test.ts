// SPDX-License-Identifier: Apache-2.0
/** The script worker: loops stopped within the limit plus a restart, recovery, two channels, memory, large messages. */
import test, { type ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InlineScriptExecutor, WorkerScriptExecutor, loadChannels, runChannel, type Channel, type ScriptExecutor } from '../../src/channels/index.js';
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

test('a script that allocates without end hits the worker heap limit: AE for that message, the next one passes', async (t) => {
  const warnings: string[] = [];
  const logger: Logger = { bodies: false, error() {}, warn: (m) => void warnings.push(m), info() {}, debug() {}, body() {} };
  const x = executor(t, { maxMemoryMb: 32 });
  const [c] = load(t, x, { m: `export default function (msg) { if (msg.get('PID-5.1') === 'HOG') { const a = []; for (;;) a.push(new Array(1024).fill(a.length)); } }` }, 3000);
  const out = runChannel(c!, ADT.replace('DOE^', 'HOG^'), { sender: MLLP, logger });
  // The engine thread cannot see the worker's death while it waits, so the answer comes at the limit.
  t.like(out, { result: 'error', step: 'transform[0]', code: 'CHANNEL_SCRIPT_TIMEOUT' });
  t.like(runChannel(c!, ADT, { sender: MLLP, logger }), { result: 'pass' });
  // The worker's own report arrives on the event loop.
  for (let i = 0; i < 50 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(warnings, ['channel script worker ran out of memory; restarted']);
});

test('a message larger than the shared buffer goes through the port, both ways', (t) => {
  const x = executor(t, { bufferBytes: 1024 });
  const [c] = load(t, x, { big: `export default function (msg, ctx) { msg.set('NTE-3', msg.get('NTE-3') + '!', { create: true }); ctx.log.info('x'.repeat(3000)); }` });
  const note = 'é'.repeat(5000);
  const lines: string[] = [];
  const logger: Logger = { bodies: true, error() {}, warn() {}, info() {}, debug() {}, body: (_m, b) => void lines.push(b) };
  const out = runChannel(c!, ADT + `NTE|1||${note}\r`, { sender: MLLP, logger });
  t.is(out.result === 'pass' ? out.message.get('NTE-3') : out.result, note + '!');
  t.deepEqual(lines.map((l) => l.length), [2000]);
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
