// SPDX-License-Identifier: Apache-2.0
/**
 * The channel format as a JSON Schema for editors (`tributary channels schema`): every channel file
 * the project ships validates against it with a standard validator (ajv, draft-07), mistakes an
 * editor should flag are flagged at the right place, and the CLI prints the same schema.
 */
import test from 'ava';
import { Ajv } from 'ajv';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { channelJsonSchema } from '../../src/channels/index.js';
import { ROOT, runCli } from '../helpers/engine.js';

function validator() {
  return new Ajv({ allErrors: true, strict: false }).compile(channelJsonSchema());
}

/** Every channel file under a folder (not its tests/ cases). */
function channelFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() && e.name !== 'tests') out.push(...channelFiles(join(dir, e.name)));
    else if (e.isFile() && /\.(ya?ml|json)$/.test(e.name) && !/\.expect\.ya?ml$/.test(e.name)) out.push(join(dir, e.name));
  }
  return out;
}

test('every channel file the project ships validates against the exported schema', (t) => {
  const validate = validator();
  const files = [
    ...channelFiles(join(ROOT, 'channels')),
    ...channelFiles(join(ROOT, 'bench', 'channels')),
    ...channelFiles(join(ROOT, 'test', 'fixtures', 'channels', 'ingest')),
  ];
  t.true(files.length >= 8, files.join(', '));
  for (const file of files) {
    const ok = validate(parse(readFileSync(file, 'utf8')));
    t.true(ok, `${file}: ${JSON.stringify(validate.errors)}`);
  }
});

test('mistakes an editor should show are refused where they are', (t) => {
  const validate = validator();
  const base = { name: 'adt', source: { types: ['ADT^*'] } };
  const errorsOf = (doc: unknown): string[] => (validate(doc) ? [] : (validate.errors ?? []).map((e) => e.instancePath));
  t.deepEqual(errorsOf(base), [], 'defaults (enabled, transform, destinations, limits) need not be written');
  t.true(errorsOf({ ...base, transform: [{ type: 'sett', path: 'PID-3', value: 'x' }] }).some((p) => p.startsWith('/transform/0')));
  t.true(errorsOf({ ...base, transform: [{ type: 'set', path: 'PID-3' }] }).some((p) => p.startsWith('/transform/0')), 'set needs a value');
  t.true(errorsOf({ ...base, destinations: [{ type: 'mllp', host: 'h', port: 0 }] }).some((p) => p.startsWith('/destinations/0')));
  t.true(errorsOf({ ...base, filter: { not: { pathh: 'PID-3', exists: true } } }).some((p) => p.startsWith('/filter')), 'nested conditions are checked');
  t.true(errorsOf({ ...base, colour: 'blue' }).length > 0, 'unknown keys are refused');
  t.deepEqual(errorsOf({ ...base, filter: { all: [{ path: 'PV1-2', equals: 'I' }, { not: { script: 'keep.ts' } }] } }), []);
});

test('tributary channels schema prints the same schema', async (t) => {
  const r = await runCli(['channels', 'schema']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), channelJsonSchema());
});
