// SPDX-License-Identifier: Apache-2.0
/** `messages list` and `replay`, run in-process through the real parser (runCli) with captured output. */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runCli } from '../../src/cli/main.js';
import type { CliIO } from '../../src/cli/common.js';
import { Journal, type ListFilter } from '../../src/journal/journal.js';
import { tempDir } from '../helpers/engine.js';
import { adtA01 } from '../helpers/messages.js';

function memoryIO(): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        add(chunk.toString());
        cb();
      },
    });
  return { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)), out: () => out, err: () => err };
}

test.serial('messages list reads metadata only (withRaw: false), in text and JSON', async (t) => {
  const data = tempDir(t);
  const dir = tempDir(t);
  writeFileSync(join(dir, 'a.hl7'), adtA01('LIST-1') + adtA01('LIST-2'));
  const replay = memoryIO();
  t.is(await runCli(['replay', dir, '--data', data, '--state', join(dir, 'state.log')], replay), 0, replay.err());

  const filters: ListFilter[] = [];
  const original = Journal.prototype.list;
  Journal.prototype.list = function (this: Journal, filter?: ListFilter) {
    filters.push({ ...filter });
    return original.call(this, filter);
  };
  t.teardown(() => {
    Journal.prototype.list = original;
  });
  const json = memoryIO();
  t.is(await runCli(['messages', 'list', '--data', data, '--json', '--limit', '5'], json), 0, json.err());
  t.deepEqual(json.out().trim().split('\n').map((l) => (JSON.parse(l) as { controlId: string }).controlId), ['LIST-1', 'LIST-2']);
  const text = memoryIO();
  t.is(await runCli(['messages', 'list', '--data', data], text), 0, text.err());
  t.regex(text.out(), /^ID +RECEIVED .*\n1 .*LIST-1 +accepted +AA/);
  t.is(filters.length, 2);
  for (const f of filters) t.is(f.withRaw, false, 'the listing never asks for raw bytes');
  t.is(filters[0]!.limit, 5);
});

test.serial('replay resumes inside a multi-message file and keeps the summary format', async (t) => {
  const data = tempDir(t);
  const dir = tempDir(t);
  const file = join(dir, 'batch.hl7');
  writeFileSync(file, adtA01('RES-0') + adtA01('RES-1') + adtA01('RES-2'));
  const state = join(dir, 'state.log');
  writeFileSync(state, `${file}\t1\n${join(dir, 'elsewhere.hl7')}\t0\n`);
  const io = memoryIO();
  t.is(await runCli(['replay', dir, '--data', data, '--state', state, '--window', '1'], io), 0, io.err());
  t.regex(io.out(), /^replayed 2 of 3 messages from 1 files \(1 skipped, already replayed\): AA 2, AR 0, AE 0, duplicates 0, failed 0; [\d.]+ s, \d+ msg\/s\n$/);
  t.regex(io.err(), /resuming: 1 messages already replayed/);
  const list = memoryIO();
  t.is(await runCli(['messages', 'list', '--data', data, '--json'], list), 0);
  t.deepEqual(list.out().trim().split('\n').map((l) => (JSON.parse(l) as { controlId: string }).controlId), ['RES-0', 'RES-2']);
});

test.serial('a yargs failure resolves with 2 and one stderr line; the handler never runs', async (t) => {
  const dir = tempDir(t);
  const io = memoryIO();
  t.is(await runCli(['replay', dir], io), 2);
  t.is(io.err(), 'tributary: replay needs --to HOST:PORT or --data DIR (see tributary --help)\n');
  t.is(io.out(), '');
  const bad = memoryIO();
  t.is(await runCli(['messages', 'show', 'x', '--data', dir], bad), 2);
  t.is(bad.err(), 'tributary: id must be a positive whole number (see tributary --help)\n');
});
