// SPDX-License-Identifier: Apache-2.0
/** Channels at run time: each declarative step, filters, scripts in their sandbox, routing, ACK mode. */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ackModeFor, loadChannels, route, runChannel, type Channel, type ChannelOutcome } from '../../src/channels/index.js';
import { Hl7Message } from '../../src/hl7/index.js';
import { tempDir } from '../helpers/engine.js';
import type { ExecutionContext } from 'ava';

const ADT =
  'MSH|^~\\&|PAS|RXX|TRIBUTARY|TRIBUTARY|20250314081530||ADT^A01^ADT_A01|C1|P|2.5.1\r' +
  'EVN|A01|20250314081500\r' +
  'PID|1||H123^^^RXX^MR~9434765919^^^NHS^NH||DOE^ALEX||19800101|U\r' +
  'PV1|1|I|WARD7^BED1|EM||||||PSY\r' +
  'ZXX|internal\r';
const MLLP = { interface: 'mllp' };

/** Write files into a fresh channel folder and load it. */
function channels(t: ExecutionContext, files: Record<string, string>): Channel[] {
  const dir = tempDir(t, 'tributary-channels-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return loadChannels(dir);
}

function one(t: ExecutionContext, yaml: string, extra: Record<string, string> = {}): Channel {
  return channels(t, { 'c.yaml': yaml, ...extra })[0]!;
}

function pass(t: ExecutionContext, out: ChannelOutcome): Hl7Message {
  if (out.result !== 'pass') t.fail(`expected pass, got ${JSON.stringify(out)}`);
  return (out as { message: Hl7Message }).message;
}

const head = "name: c\nsource: { types: ['ADT^A0*'] }\n";

test('set, copy, delete, map and drop-segment change a copy, in order', (t) => {
  const c = one(
    t,
    head +
      `tables:
  services: { PSY: MENTAL_HEALTH }
transform:
  - { type: set, path: PID-3.4, value: 'A&B' }
  - { type: copy, from: 'PID-3[2].1', to: PID-2 }
  - { type: delete, path: PID-8 }
  - { type: map, path: PV1-10, to: ZPL-1, table: services, create: true }
  - { type: drop-segment, segment: ZXX }
`,
  );
  const input = Hl7Message.parse(ADT);
  const m = pass(t, runChannel(c, input, { sender: MLLP }));
  t.is(m.get('PID-3.4'), 'A&B');
  t.is(m.get('PID-3.4', { raw: true }), 'A\\T\\B');
  t.is(m.get('PID-2'), '9434765919');
  t.is(m.get('PID-8'), '');
  t.is(m.get('ZPL-1'), 'MENTAL_HEALTH');
  t.deepEqual(m.segmentNames(), ['MSH', 'EVN', 'PID', 'PV1', 'ZPL']);
  t.is(input.toString(), ADT, 'the input message is not changed');
});

test('map: onMissing keep, default, clear and reject', (t) => {
  const mk = (onMissing: string, extra = '') =>
    one(t, head + `tables: { t: { X: Y } }\ntransform:\n  - { type: map, path: PV1-10, table: t, onMissing: ${onMissing}${extra} }\n`);
  t.is(pass(t, runChannel(mk('keep'), ADT, { sender: MLLP })).get('PV1-10'), 'PSY');
  t.is(pass(t, runChannel(mk('default', ', default: GEN'), ADT, { sender: MLLP })).get('PV1-10'), 'GEN');
  t.is(pass(t, runChannel(mk('clear'), ADT, { sender: MLLP })).get('PV1-10'), '');
  const out = runChannel(mk('reject'), ADT, { sender: MLLP });
  t.like(out, { result: 'rejected', step: 'transform[0]', code: 'CHANNEL_REJECTED' });
  t.regex((out as { reason: string }).reason, /^channel c, step transform\[0\]: rejected: PV1-10 has no entry in table t$/);
});

test('map reads a CSV table file next to the channel', (t) => {
  const c = one(t, head + 'tables: { t: codes.csv }\ntransform:\n  - { type: map, path: PV1-10, table: t }\n', { 'codes.csv': '# comment\nPSY,MENTAL_HEALTH\n' });
  t.is(pass(t, runChannel(c, ADT, { sender: MLLP })).get('PV1-10'), 'MENTAL_HEALTH');
});

test('reject with when: rejects only the messages the condition holds for', (t) => {
  const c = one(t, head + 'transform:\n  - type: reject\n    reason: test patients go elsewhere\n    when: { path: PID-5.1, matches: "^TEST" }\n');
  t.is(runChannel(c, ADT, { sender: MLLP }).result, 'pass');
  const out = runChannel(c, ADT.replace('DOE^ALEX', 'TESTPATIENT^ALEX'), { sender: MLLP });
  t.like(out, { result: 'rejected', step: 'transform[0]', code: 'CHANNEL_REJECTED' });
});

test('set on a segment the message lacks is an error at that step; with create it appends', (t) => {
  const c = one(t, head + 'transform:\n  - { type: set, path: PV2-3, value: x }\n');
  t.like(runChannel(c, ADT, { sender: MLLP }), { result: 'error', step: 'transform[0]', code: 'CHANNEL_STEP_FAILED' });
  const c2 = one(t, head + 'transform:\n  - { type: set, path: PV2-3, value: x, create: true }\n');
  t.is(pass(t, runChannel(c2, ADT, { sender: MLLP })).get('PV2-3'), 'x');
});

test('filter: all/any/not/in/exists decide between pass and filtered', (t) => {
  const c = one(t, head + `filter:
  all:
    - { path: PV1-2, in: [I, O] }
    - not: { path: PID-5.1, equals: SMITH }
    - any:
        - { path: PID-19, exists: true }
        - { path: PV1-10, equals: PSY }
`);
  t.is(runChannel(c, ADT, { sender: MLLP }).result, 'pass');
  t.is(runChannel(c, ADT.replace('|I|WARD7', '|E|WARD7'), { sender: MLLP }).result, 'filtered');
  t.is(runChannel(c, ADT.replace('DOE^', 'SMITH^'), { sender: MLLP }).result, 'filtered');
  t.is(runChannel(c, ADT.replace('|PSY', '|MED'), { sender: MLLP }).result, 'filtered');
});

test('maxMessageBytes rejects a larger message', (t) => {
  const c = one(t, head + 'limits: { maxMessageBytes: 1024 }\n');
  t.is(runChannel(c, ADT, { sender: MLLP }).result, 'pass');
  const big = ADT + `NTE|1||${'é'.repeat(600)}\r`;
  t.like(runChannel(c, big, { sender: MLLP }), { result: 'rejected', step: 'limits.maxMessageBytes', code: 'CHANNEL_MESSAGE_TOO_LARGE' });
});

// --- scripts ---

const scriptChannel = (t: ExecutionContext, body: string, timeoutMs = 50, file = 's.ts') =>
  one(t, head + `limits: { scriptTimeoutMs: ${timeoutMs} }\ntransform:\n  - { type: set, path: PID-8, value: F }\n  - { type: script, file: ${file} }\n`, { [file]: body });

test('a script reads and writes through the message API and sees sender, tables and channel', (t) => {
  const c = one(
    t,
    head + 'tables: { labels: { PSY: MENTAL_HEALTH } }\ntransform:\n  - { type: script, file: s.ts }\n',
    {
      's.ts': `import type { TransformScript } from '../src/channels/script-api.js';
const s: TransformScript = (msg, ctx) => {
  const ids: string[] = msg.getAll('PID-3.1');
  msg.set('PID-2', ids.join('+'));
  msg.set('ZPL-1', ctx.lookup('labels', msg.get('PV1-10')) ?? 'NONE', { create: true });
  msg.set('ZPL-2', ctx.sender.senderId + '/' + ctx.sender.organisationId + '/' + ctx.channel + '/' + msg.type);
  msg.dropSegment('ZXX');
  msg.delete('PID-7');
  ctx.log.info('label set for ' + msg.controlId);
};
export default s;
`,
    },
  );
  const lines: string[] = [];
  const logger = { bodies: true, error() {}, warn() {}, info() {}, debug() {}, body: (m: string, b: string) => lines.push(`${m}: ${b}`) };
  const m = pass(t, runChannel(c, ADT, { sender: { interface: 'mllp', senderId: 's1', organisationId: 'rxx' }, logger }));
  t.is(m.get('PID-2'), 'H123+9434765919');
  t.is(m.get('ZPL-1'), 'MENTAL_HEALTH');
  t.is(m.get('ZPL-2'), 's1/rxx/c/ADT^A01');
  t.is(m.get('PID-7'), '');
  t.deepEqual(m.segmentNames(), ['MSH', 'EVN', 'PID', 'PV1', 'ZPL']);
  t.deepEqual(lines, ['channel script log: label set for C1']);
});

test('a looping script is interrupted: error at its step, and the next message on the channel passes', (t) => {
  const c = scriptChannel(t, `export default function (msg) { if (msg.get('PID-5.1') === 'LOOP') { while (true) {} } msg.set('PID-9', 'ok'); }`, 30);
  const started = Date.now();
  const out = runChannel(c, ADT.replace('DOE^', 'LOOP^'), { sender: MLLP });
  t.true(Date.now() - started < 2000);
  t.like(out, { result: 'error', step: 'transform[1]', code: 'CHANNEL_SCRIPT_TIMEOUT' });
  t.is((out as { reason: string }).reason, 'channel c, step transform[1]: script exceeded its time limit of 30 ms');
  const next = pass(t, runChannel(c, ADT, { sender: MLLP }));
  t.is(next.get('PID-9'), 'ok');
  t.is(next.get('PID-8'), 'F');
});

test('a throwing script gives error with the step and the message; ctx.reject and { reject } give rejected', (t) => {
  const c = scriptChannel(t, `export default function (msg, ctx) {
  const n = msg.get('PID-5.1');
  if (n === 'THROW') throw new TypeError('bad name');
  if (n === 'REJ') ctx.reject('not for us');
  if (n === 'REJ2') return { reject: 'also not' };
}`);
  const out = runChannel(c, ADT.replace('DOE^', 'THROW^'), { sender: MLLP });
  t.like(out, { result: 'error', step: 'transform[1]', code: 'CHANNEL_SCRIPT_FAILED' });
  t.is((out as { reason: string }).reason, 'channel c, step transform[1]: script failed: TypeError: bad name');
  t.like(runChannel(c, ADT.replace('DOE^', 'REJ^'), { sender: MLLP }), { result: 'rejected', step: 'transform[1]', reason: 'channel c, step transform[1]: rejected: not for us' });
  t.like(runChannel(c, ADT.replace('DOE^', 'REJ2^'), { sender: MLLP }), { result: 'rejected', step: 'transform[1]' });
  t.is(runChannel(c, ADT, { sender: MLLP }).result, 'pass');
});

test('scripts have no require, process, import(), eval, Function, Promise or timers', (t) => {
  const probes: Record<string, string> = {
    require: `globalThis['req' + 'uire']('fs')`,
    process: `process.exit(3)`,
    constructorEscape: `(msg.get).constructor('return process')().exit(3)`,
    prototypeEscape: `Object.getPrototypeOf(msg).constructor.constructor('return process')()`,
    eval: `eval('1 + 1')`,
    promise: `Promise.resolve(1)`,
    async: `(async () => { throw new Error('late') })()`,
    timers: `setTimeout(() => {}, 1)`,
    console: `console.log('x')`,
  };
  for (const [name, code] of Object.entries(probes)) {
    const c = scriptChannel(t, `export default function (msg) { ${code}; }`, 50, `${name}.js`);
    const out = runChannel(c, ADT, { sender: MLLP });
    t.like(out, { result: 'error', step: 'transform[1]', code: 'CHANNEL_SCRIPT_FAILED' }, name);
  }
  t.pass('the process is still here');
});

test('import and import() are refused when the channel loads', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'c.yaml'), head + 'transform:\n  - { type: script, file: a.ts }\n  - { type: script, file: b.js }\n');
  writeFileSync(join(dir, 'a.ts'), `import { readFileSync } from 'node:fs';\nexport default function (msg: any) { msg.set('PID-5', readFileSync('/etc/hostname', 'utf8')); }\n`);
  writeFileSync(join(dir, 'b.js'), `export default function () { return import('node:fs'); }\n`);
  const e = t.throws(() => loadChannels(dir));
  t.regex(e!.message, /transform\[0\]\.file: script a\.ts: scripts cannot import modules/);
  t.regex(e!.message, /transform\[1\]\.file: script b\.js: scripts cannot import modules/);
});

test('a filter script decides, and cannot change the message', (t) => {
  const c = one(t, head + 'filter: { script: f.js }\n', {
    'f.js': `export default (msg) => { if (msg.get('PID-5.1') === 'SET') msg.set('PID-5.1', 'x'); return msg.get('PV1-2') === 'I'; }`,
  });
  t.is(runChannel(c, ADT, { sender: MLLP }).result, 'pass');
  t.is(runChannel(c, ADT.replace('|I|WARD7', '|O|WARD7'), { sender: MLLP }).result, 'filtered');
  const out = runChannel(c, ADT.replace('DOE^', 'SET^'), { sender: MLLP });
  t.like(out, { result: 'error', step: 'filter', code: 'CHANNEL_SCRIPT_FAILED' });
  t.regex((out as { reason: string }).reason, /a filter script cannot change the message/);
});

test('a script whose top level loops or throws is a load problem', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'c.yaml'), head + 'limits: { scriptTimeoutMs: 20 }\ntransform:\n  - { type: script, file: a.js }\n  - { type: script, file: b.js }\n  - { type: script, file: c.js }\n');
  writeFileSync(join(dir, 'a.js'), 'while (true) {}\nexport default () => {};\n');
  writeFileSync(join(dir, 'b.js'), 'throw new Error("nope");\n');
  writeFileSync(join(dir, 'c.js'), 'export const x = 1;\n');
  const e = t.throws(() => loadChannels(dir));
  t.regex(e!.message, /transform\[0\]\.file: script a\.js: its top-level code ran longer than 1000 ms/);
  t.regex(e!.message, /transform\[1\]\.file: script b\.js: fails when loaded: nope/);
  t.regex(e!.message, /transform\[2\]\.file: script c\.js: fails when loaded: the script has no default export function/);
});

// --- routing and ACK mode ---

test('route: type patterns, interfaces, senders, organisations, MSH-4; every match runs, disabled never', (t) => {
  const cs = channels(t, {
    'a.yaml': "name: a\nsource: { types: ['ADT^A0*'] }\n",
    'b.yaml': "name: b\nsource: { types: ['ADT'], interfaces: [http] }\n",
    'c.yaml': "name: c\nsource: { types: ['*'], senders: [s1], organisations: [rxx] }\n",
    'd.yaml': "name: d\nsource: { types: ['ORU^R01', 'ADT^A?1'], facilities: ['R*'] }\n",
    'e.yaml': "name: e\nenabled: false\nsource: { types: ['*'] }\n",
  });
  const names = (text: string, sender: Parameters<typeof route>[1]) => route(Hl7Message.parse(text), sender, cs).map((c) => c.name);
  t.deepEqual(names(ADT, MLLP), ['a', 'd']);
  t.deepEqual(names(ADT, { interface: 'http' }), ['a', 'b', 'd']);
  t.deepEqual(names(ADT, { interface: 'mllp', senderId: 's1', organisationId: 'rxx' }), ['a', 'c', 'd']);
  t.deepEqual(names(ADT, { interface: 'mllp', senderId: 's1', organisationId: 'other' }), ['a', 'd']);
  t.deepEqual(names(ADT.replace('ADT^A01', 'ADT^A11'), MLLP), ['d']);
  t.deepEqual(names(ADT.replace('ADT^A01', 'ADT^A10'), MLLP), []);
  t.deepEqual(names(ADT.replace('|RXX|TRIBUTARY', '|XYZ|TRIBUTARY'), MLLP), ['a']);
  t.deepEqual(names(ADT.replace('ADT^A01^ADT_A01', 'ORM^O01'), MLLP), []);
  t.deepEqual(names(ADT.replace('ADT^A01^ADT_A01', 'ADT'), { interface: 'http' }), ['b']);
});

test('ackModeFor: auto is enhanced only when MSH-15/16 ask', (t) => {
  const [auto, orig] = channels(t, { 'a.yaml': head.replace('name: c', 'name: a'), 'b.yaml': head.replace('name: c', 'name: b') + 'ack: { mode: original }\n' });
  t.is(ackModeFor(auto!, Hl7Message.parse(ADT)), 'original');
  const enhanced = Hl7Message.parse(ADT.replace('|2.5.1\r', '|2.5.1|||AL|NE\r'));
  t.is(ackModeFor(auto!, enhanced), 'enhanced');
  t.is(ackModeFor(orig!, enhanced), 'original');
});
