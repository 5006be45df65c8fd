// SPDX-License-Identifier: Apache-2.0
/**
 * Folders are layers and imports point inward. This test reads every import in src/ and fails when
 * a layer imports one it may not (the table is the architecture; change it deliberately).
 */
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/engine.js';

const SRC = join(ROOT, 'src');
/** Files at the top of src/ that every layer may use. */
const SHARED = new Set(['errors.ts', 'log.ts']);
/** layer → the layers it may import (besides itself and SHARED). */
const ALLOWED: Record<string, string[]> = {
  hl7: [],
  mllp: [],
  config: [],
  journal: [],
  record: ['hl7'],
  authentication: ['hl7'],
  authorisation: ['hl7', 'authentication', 'record'],
  channels: ['hl7', 'record'],
  fhir: ['hl7', 'record', 'authorisation'],
  ingest: ['hl7', 'journal', 'authentication', 'authorisation', 'record', 'channels'],
  interfaces: ['hl7', 'mllp', 'journal', 'ingest', 'authentication', 'authorisation', 'record', 'fhir', 'channels'],
  engine: ['config', 'hl7', 'mllp', 'journal', 'ingest', 'interfaces', 'authentication', 'authorisation', 'record', 'channels', 'fhir'],
  cli: ['config', 'hl7', 'mllp', 'journal', 'ingest', 'interfaces', 'engine', 'authentication', 'authorisation', 'record', 'channels', 'fhir'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every src file lives in a known layer', (t) => {
  for (const f of files(SRC)) {
    const rel = relative(SRC, f);
    const layer = rel.includes('/') ? rel.split('/')[0]! : null;
    t.true(layer === null ? SHARED.has(rel) : layer in ALLOWED, `${rel} is outside the layer table`);
  }
});

test('imports point inward', (t) => {
  const problems: string[] = [];
  for (const f of files(SRC)) {
    const rel = relative(SRC, f);
    const layer = rel.includes('/') ? rel.split('/')[0]! : null;
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
      const target = relative(SRC, resolve(dirname(f), m[1]!));
      if (target.startsWith('..')) {
        problems.push(`${rel} imports ${m[1]} outside src/`);
        continue;
      }
      const targetLayer = target.includes('/') ? target.split('/')[0]! : null;
      if (targetLayer === null) {
        if (!SHARED.has(target.replace(/\.js$/, '.ts'))) problems.push(`${rel} imports ${target}`);
        continue;
      }
      if (layer === null) {
        problems.push(`shared file ${rel} imports the ${targetLayer} layer`);
      } else if (targetLayer !== layer && !ALLOWED[layer]!.includes(targetLayer)) {
        problems.push(`${rel}: layer ${layer} may not import ${targetLayer} (${m[1]})`);
      }
    }
  }
  t.deepEqual(problems, []);
});

test('the checker catches an outward import', (t) => {
  // Guard against a regex that silently matches nothing.
  const sample = "import { startEngine } from '../engine/engine.js';";
  const m = [...sample.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g)];
  t.is(m.length, 1);
  t.false(ALLOWED.hl7!.includes('engine'));
});
