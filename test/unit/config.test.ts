// SPDX-License-Identifier: Apache-2.0
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, mergeConfig, readConfigFile } from '../../src/config/config.js';
import { isTributaryError } from '../../src/errors.js';
import { tempDir } from '../helpers/engine.js';

test('defaults: embedded SQLite under ./data, MLLP 2575, HTTP 8080, loopback only', (t) => {
  const c = loadConfig({});
  t.is(c.dataDir, './data');
  t.is(c.host, '127.0.0.1');
  t.is(c.mllp.port, 2575);
  t.is(c.http.port, 8080);
  t.is(c.mllp.maxFrameBytes, 16 * 1024 * 1024);
  t.false(c.log.bodies);
  t.true(Object.isFrozen(c) && Object.isFrozen(c.mllp));
});

test('every problem is reported at once with its key path', (t) => {
  const e = t.throws(() =>
    loadConfig({ mllp: { port: 70000, bogus: 1, tls: { keyFile: 'k' } }, log: { level: 'loud' }, extra: true }),
  );
  t.true(isTributaryError(e, 'CONFIG_INVALID'));
  const lines = e!.message.split('\n').slice(1).map((l) => l.trim());
  t.deepEqual(lines.map((l) => l.split(':')[0]), ['extra', 'mllp.bogus', 'mllp.port', 'mllp.tls.certFile', 'log.level']);
  t.true(lines.includes('extra: unknown key'));
  t.true(lines.includes('log.level: expected one of "error", "warn", "info", "debug"'));
});

test('flags override the file, deeply', (t) => {
  const merged = mergeConfig({ mllp: { port: 1, idleTimeoutMs: 5 }, dataDir: '/a' }, { mllp: { port: 2 }, dataDir: undefined });
  t.deepEqual(merged, { mllp: { port: 2, idleTimeoutMs: 5 }, dataDir: '/a' });
});

test('config files: unreadable and invalid JSON are clear errors', (t) => {
  const dir = tempDir(t);
  t.true(isTributaryError(t.throws(() => readConfigFile(join(dir, 'none.json'))), 'CONFIG_UNREADABLE'));
  writeFileSync(join(dir, 'bad.json'), '{ nope');
  t.regex(t.throws(() => readConfigFile(join(dir, 'bad.json')))!.message, /not valid JSON/);
  writeFileSync(join(dir, 'ok.json'), JSON.stringify({ mllp: { port: 0 } }));
  t.is(loadConfig(readConfigFile(join(dir, 'ok.json'))).mllp.port, 0);
});
