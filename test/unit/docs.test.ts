// SPDX-License-Identifier: Apache-2.0
/** The README's two commands exist, and CI runs exactly the README's test command. */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/engine.js';

test('README shows the start and test commands, and .ci/run runs the test command', (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  t.regex(readme, /^npm ci && npm start\b/m);
  t.regex(readme, /^npm ci && npm test\b/m);
  const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
  t.regex(ci, /^npm ci$/m);
  t.regex(ci, /^npm test$/m);
});

test('README names every CLI command the CLI has', (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const cmd of ['start', 'send', 'replay', 'messages list', 'messages show']) {
    t.true(readme.includes(`tributary ${cmd}`), `README documents "tributary ${cmd}"`);
  }
});
