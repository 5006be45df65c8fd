// SPDX-License-Identifier: Apache-2.0
/** The error catalog is a contract: stable codes, each documented in docs/errors.md. */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CATALOG, TributaryError, isTributaryError, type ErrorCode } from '../../src/errors.js';
import { ROOT } from '../helpers/engine.js';

const codes = Object.keys(ERROR_CATALOG) as ErrorCode[];

test('every code is documented in docs/errors.md, and every documented code exists', (t) => {
  const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const headings = new Set([...doc.matchAll(/^### `([A-Z0-9_]+)`/gm)].map((m) => m[1]));
  for (const code of codes) t.true(headings.has(code), `${code} has no "### \`${code}\`" heading in docs/errors.md`);
  for (const h of headings) t.true(codes.includes(h as ErrorCode), `docs/errors.md documents unknown code ${h}`);
});

test('codes are AREA_WHAT in capitals', (t) => {
  for (const code of codes) t.regex(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
});

test('messages are filled from params and carry the code', (t) => {
  const e = new TributaryError('MLLP_FRAME_TOO_LARGE', { maxFrameBytes: 100 });
  t.is(e.code, 'MLLP_FRAME_TOO_LARGE');
  t.is(e.message, 'MLLP frame exceeds maxFrameBytes (100 bytes)');
  t.true(e.isUserError);
  t.true(isTributaryError(e, 'MLLP_FRAME_TOO_LARGE'));
  t.false(isTributaryError(e, 'INTERNAL'));
  t.false(new TributaryError('INTERNAL', { reason: 'x' }).isUserError);
});
