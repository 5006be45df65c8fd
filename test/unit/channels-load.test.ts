// SPDX-License-Identifier: Apache-2.0
/** Channel folders: every problem reported at once, shipped channels valid and tested, reload, CLI. */
import test from 'ava';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ChannelRegistry, compileChannels, formatIssue, loadChannels, runChannelTests, validateChannels } from '../../src/channels/index.js';
import { runListChannels, runTestChannels, runValidate } from '../../src/cli/channels.js';
import { isTributaryError } from '../../src/errors.js';
import { Hl7Message } from '../../src/hl7/index.js';
import { ROOT, tempDir } from '../helpers/engine.js';

const BROKEN = join('test', 'fixtures', 'channels', 'broken');

test('validateChannels reports every problem of every file at once, with file and key path', (t) => {
  process.chdir(ROOT);
  const lines = validateChannels(BROKEN).map(formatIssue);
  const f = (name: string) => join(BROKEN, name);
  const expected = [
    `${f('adt.yaml')}: enabled: Expected boolean`,
    `${f('adt.yaml')}: source.interfaces[1]: expected one of "mllp", "http", "soap", "replay"`,
    `${f('adt.yaml')}: source.types[1]: invalid message type pattern "adt^a01"`,
    `${f('adt.yaml')}: filter: a field condition needs exactly one of equals, in, matches, exists (got equals, in)`,
    `${f('adt.yaml')}: transform[1].to: invalid path "PID-99x"`,
    `${f('adt.yaml')}: transform[2].path: unknown segment "PIX"`,
    `${f('adt.yaml')}: transform[3].type: unknown step type "sett"`,
    `${f('adt.yaml')}: transform[4].file: script file "missing.ts" not found`,
    `${f('adt.yaml')}: transform[5].file: script broken.js: does not compile: line 3:1`,
    `${f('adt.yaml')}: transform[6].table: no table "nosuch" in tables`,
    `${f('adt.yaml')}: destinations[0].port: required, missing`,
    `${f('adt.yaml')}: destinations[1].type: unknown destination type "ftp"`,
    `${f('imports.yaml')}: transform[0].file: script imports.js: scripts cannot import modules`,
    `${f('oru.json')}: limits.scriptTimeoutMs: Expected integer to be greater or equal to 1`,
    `${f('oru.json')}: name: duplicate channel name "adt" (also in ${f('adt.yaml')})`,
    `${f('unparsable.yml')}: (file): not valid YAML`,
  ];
  t.is(lines.length, expected.length, lines.join('\n'));
  expected.forEach((e, i) => t.true(lines[i]!.startsWith(e), `line ${i + 1}: ${lines[i]}\n  expected: ${e}…`));
});

test('loadChannels throws one CHANNEL_INVALID listing all problems', (t) => {
  process.chdir(ROOT);
  const e = t.throws(() => loadChannels(BROKEN));
  t.true(isTributaryError(e, 'CHANNEL_INVALID'));
  t.regex(e!.message, /^invalid channels \(16 problems\):\n {2}test\/fixtures\/channels\/broken\/adt\.yaml: enabled:/);
  t.is(e!.message.split('\n').length, 17);
});

test('a missing folder is one problem, not a crash', (t) => {
  t.deepEqual(validateChannels('/nonexistent/channels').map(formatIssue), ['/nonexistent/channels: (folder): cannot read the channel folder: ENOENT']);
});

test('the shipped channels validate, load with defaults and pass their test cases', (t) => {
  process.chdir(ROOT);
  const { channels, issues } = compileChannels('channels');
  t.deepEqual(issues.map(formatIssue), []);
  t.deepEqual(channels.map((c) => [c.name, c.enabled]), [['record', true], ['forward-mllp', false], ['privacy-labels', false]]);
  const record = channels[0]!;
  t.like(record.definition, { ack: { mode: 'auto' }, limits: { scriptTimeoutMs: 50, maxMessageBytes: 16 * 1024 * 1024 }, destinations: [{ type: 'record' }] });
  t.regex(record.version, /^[0-9a-f]{12}$/);
  const results = runChannelTests(channels);
  t.true(results.length >= 12);
  t.deepEqual(results.filter((r) => !r.ok).map((r) => `${r.file}: ${r.problems.join('; ')}`), []);
  for (const name of ['record', 'forward-mllp', 'privacy-labels']) t.true(results.some((r) => r.channel === name), `${name} has test cases`);
});

test('runChannelTests reports a case whose expectation does not hold', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'c.yaml'), "name: c\nsource: { types: ['ADT^*'] }\ntransform:\n  - { type: set, path: PID-8, value: F }\n");
  mkdirSync(join(dir, 'tests', 'c'), { recursive: true });
  writeFileSync(join(dir, 'tests', 'c', 'a.hl7'), 'MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5.1\rPID|1||X\r');
  writeFileSync(join(dir, 'tests', 'c', 'a.expect.yaml'), 'fields:\n  PID-8: M\n');
  writeFileSync(join(dir, 'tests', 'c', 'b.hl7'), 'MSH|^~\\&|A|B|C|D|20250101||ADT^A01|2|P|2.5.1\rPID|1||X\r');
  writeFileSync(join(dir, 'tests', 'c', 'b.expect.yaml'), 'result: rejected\n');
  const r = runChannelTests(loadChannels(dir));
  t.deepEqual(r.map((x) => x.problems), [['PID-8: expected "M", got "F"'], ['expected rejected, got pass']]);
});

test('reload keeps the previous channels when an edit is invalid, and takes a valid one', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'c.yaml');
  writeFileSync(file, "name: c\nsource: { types: ['ADT^*'] }\ntransform:\n  - { type: set, path: PID-8, value: F }\n");
  const reg = new ChannelRegistry({ dir });
  const [v1] = reg.load();
  const msg = Hl7Message.parse('MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5.1\rPID|1||X\r');
  writeFileSync(file, "name: c\nsource: { types: ['ADT^*'] }\ntransform:\n  - { type: set, path: PIX-8, value: M }\n");
  const bad = reg.reload();
  t.false(bad.ok);
  t.deepEqual(bad.ok ? [] : bad.issues.map((i) => i.path), ['transform[0].path']);
  t.is(reg.get('c')!.version, v1!.version);
  const [c] = reg.route(msg, { interface: 'mllp' });
  t.like(reg.run(c!, msg, { sender: { interface: 'mllp' } }), { result: 'pass' });
  writeFileSync(file, "name: c\nsource: { types: ['ADT^*'] }\ntransform:\n  - { type: set, path: PID-8, value: M }\n  - { type: reject, reason: no, when: { path: PID-3, equals: Y } }\n");
  const good = reg.reload();
  t.like(good, { ok: true, changed: ['c'], added: [], removed: [] });
  t.not(reg.get('c')!.version, v1!.version);
  // No script: the outcome is there at once (a channel with a script gives a promise).
  const out = await reg.run(reg.get('c')!, msg, { sender: { interface: 'mllp' } });
  t.is(out.result === 'pass' ? out.message.get('PID-8') : out.result, 'M');
  reg.run(reg.get('c')!, msg.toString().replace('||X', '||Y'), { sender: { interface: 'mllp' } });
  reg.countQueued('c');
  t.deepEqual(reg.counters(), { c: { received: 3, filtered: 0, accepted: 2, rejected: 1, errored: 0, queued: 1 } });
});

test('watch reloads after a change, debounced', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'c.yaml'), "name: c\nsource: { types: ['ADT^*'] }\n");
  const reg = new ChannelRegistry({ dir, debounceMs: 50 });
  reg.load();
  // The watcher and its timer do not keep a process alive (the engine's servers do): hold it here.
  const keepAlive = setTimeout(() => {}, 10_000);
  t.teardown(() => clearTimeout(keepAlive));
  const done = new Promise<string[]>((resolve) => {
    const stop = reg.watch((r) => {
      stop();
      resolve(r.ok ? r.added : ['failed']);
    });
  });
  writeFileSync(join(dir, 'd.yaml'), "name: d\nsource: { types: ['ORU^*'] }\n");
  t.deepEqual(await done, ['d']);
  t.deepEqual(reg.channels().map((c) => c.name), ['c', 'd']);
});

function io() {
  const out = new PassThrough();
  const err = new PassThrough();
  const text = { out: '', err: '' };
  out.on('data', (d: Buffer) => (text.out += d.toString()));
  err.on('data', (d: Buffer) => (text.err += d.toString()));
  return { io: { stdout: out, stderr: err }, text };
}

test('CLI: channels validate prints OK or every problem; list and test', async (t) => {
  process.chdir(ROOT);
  const a = io();
  t.is(runValidate('channels', a.io), 0);
  t.is(a.text.out, 'OK: 3 channels (1 enabled) in channels\n');
  const b = io();
  t.is(runValidate(BROKEN, b.io), 1);
  t.is(b.text.out.trim().split('\n').length, 16);
  t.is(b.text.err, `tributary: 16 problems in ${BROKEN}\n`);
  const c = io();
  t.is(runListChannels('channels', false, c.io), 0, c.text.err);
  t.regex(c.text.out, /^NAME +ENABLED +VERSION +TYPES/);
  t.regex(c.text.out, /\nrecord +yes +[0-9a-f]{12} +ADT\^\*,ORU\^\*,MDM\^\*,SIU\^\* +record +0 +0 +0 +0 +0 +0 +channels\/record\.yaml\n/);
  const d = io();
  t.is(await runTestChannels('channels', d.io), 0, d.text.out);
  t.regex(d.text.out, /^OK: (\d+) of \1 channel test cases passed\n$/);
});
