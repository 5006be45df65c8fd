// SPDX-License-Identifier: Apache-2.0
/** The CLI's numeric option table and how errors map to exit codes (README "CLI"). */
import test from 'ava';
import { Writable } from 'node:stream';
import { CliUsageError, NUMERIC_OPTIONS, numericProblem, reportError } from '../../src/cli/main.js';
import { EXIT, type CliIO } from '../../src/cli/common.js';
import { TributaryError } from '../../src/errors.js';

test('numericProblem accepts the documented ranges and refuses everything else', (t) => {
  const ok: Array<[string, number]> = [
    ['port', 1],
    ['port', 65535],
    ['mllp-port', 0],
    ['http-port', 0],
    ['timeout-ms', 1],
    ['rate', 0],
    ['rate', 0.5],
    ['window', 1],
    ['limit', 0],
    ['id', 1],
    ['overlap-hours', 0],
  ];
  for (const [k, v] of ok) t.is(numericProblem(k, v), null, `${k}=${v}`);
  const bad: Array<[string, number]> = [
    ['port', 0],
    ['port', 65536],
    ['port', 80.5],
    ['port', NaN],
    ['mllp-port', -1],
    ['timeout-ms', 0],
    ['timeout-ms', 2 ** 31],
    ['rate', -1],
    ['rate', Infinity],
    ['window', 0],
    ['limit', -1],
    ['limit', 1.5],
    ['id', 0],
    ['overlap-hours', -1],
  ];
  for (const [k, v] of bad) t.truthy(numericProblem(k, v), `${k}=${v}`);
  t.is(numericProblem('port', NaN), '--port must be a port number from 1 to 65535');
  t.is(numericProblem('port', [1, 2]), '--port given more than once');
  t.is(numericProblem('id', 'rxx'), null, 'string ids (admin) are not numeric options');
  t.is(numericProblem('port', undefined), null);
  t.is(numericProblem('unknown', NaN), null);
  t.true(Object.keys(NUMERIC_OPTIONS).length >= 9);
});

function capture(): { io: CliIO; err: () => string } {
  let err = '';
  const w = new Writable({
    write(c: Buffer | string, _e, cb) {
      err += c.toString();
      cb();
    },
  });
  return { io: { stdout: w, stderr: w }, err: () => err };
}

test('reportError: transport failures exit 3, user errors 2, yargs failures 2, the rest 1', (t) => {
  const cases: Array<[unknown, number, RegExp]> = [
    [new TributaryError('NET_CONNECT_FAILED', { host: 'h', port: 1, reason: 'ECONNREFUSED' }), EXIT.transport, /^tributary: cannot connect to h:1: ECONNREFUSED\n$/],
    [new TributaryError('NET_ACK_TIMEOUT', { host: 'h', port: 1, timeoutMs: 5 }), EXIT.transport, /no ACK from h:1 within 5 ms\n$/],
    [new TributaryError('NET_CONNECTION_CLOSED', { host: 'h', port: 1 }), EXIT.transport, /closed before the ACK arrived\n$/],
    [new TributaryError('CLI_BAD_ADDRESS', { value: 'x' }), EXIT.usage, /^tributary: invalid address "x": expected HOST:PORT\n$/],
    [new CliUsageError('Unknown argument: x'), EXIT.usage, /^tributary: Unknown argument: x \(see tributary --help\)\n$/],
    [new Error('boom'), 1, /^tributary: internal error: boom\n$/],
  ];
  for (const [e, code, re] of cases) {
    const c = capture();
    t.is(reportError(e, c.io), code);
    t.regex(c.err(), re);
  }
});
