// SPDX-License-Identifier: Apache-2.0
/**
 * The README's "Connect a hospital" walkthrough, command for command, against a real engine
 * process: add an organisation, a sender with an allowlist and a credential, remove the demo
 * sender, then see the right credential accepted and a wrong (or missing) one refused and audited.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runCli, spawnEngine, tempDir } from '../helpers/engine.js';

test('README: Connect a hospital', async (t) => {
  const data = tempDir(t);
  const engine = await spawnEngine(data);
  t.teardown(() => engine.proc.kill('SIGKILL'));
  t.regex(engine.stderr(), /first run: created the demo organisation/);
  const admin = (...args: string[]) => runCli(['admin', ...args, '--data', data]);
  const port = String(engine.mllpPort);
  const file = join(ROOT, 'test', 'fixtures', 'messages', 'adt-a01.hl7');

  // The commands as the README gives them (with --data, since the test's engine is not ./data).
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const cmd of [
    './bin/tributary admin org add --id rxx --name "Leeds General"',
    './bin/tributary admin sender add --id rxx-pas --org rxx --name "Leeds PAS" --allow 127.0.0.1',
    './bin/tributary admin credential add --sender rxx-pas',
    './bin/tributary admin sender remove --id demo-loopback',
    "./bin/tributary send test/fixtures/messages/adt-a01.hl7 --security 'rxx-pas:wrong'",
  ]) {
    t.true(readme.includes(cmd), `README still says: ${cmd}`);
  }
  t.is((await admin('org', 'add', '--id', 'rxx', '--name', 'Leeds General')).code, 0);
  t.is((await admin('sender', 'add', '--id', 'rxx-pas', '--org', 'rxx', '--name', 'Leeds PAS', '--allow', '127.0.0.1')).code, 0);
  const cred = await admin('credential', 'add', '--sender', 'rxx-pas');
  t.is(cred.code, 0, cred.stderr);
  const secret = /secret\s+(\S+)/.exec(cred.stdout)?.[1];
  t.truthy(secret);

  // Before removing the demo sender, loopback without a credential is still taken (by the demo sender).
  const before = await runCli(['send', file, '--port', port]);
  t.regex(before.stdout, /^DEMO0001\tAA/);
  t.is((await admin('sender', 'remove', '--id', 'demo-loopback')).code, 0);

  const right = await runCli(['send', file, '--port', port, '--security', `rxx-pas:${secret!}`]);
  t.is(right.code, 0, right.stderr);
  t.regex(right.stdout, /^DEMO0001\tAA/, 'AA (a duplicate of nothing: the sender is now rxx-pas)');
  const wrong = await runCli(['send', file, '--port', port, '--security', 'rxx-pas:wrong']);
  t.is(wrong.code, 1);
  t.is(wrong.stdout, 'DEMO0001\tAR\tauthentication failed\n');
  const none = await runCli(['send', file, '--port', port]);
  t.is(none.stdout, 'DEMO0001\tAR\tauthentication failed\n', 'no credential: refused now the demo sender is gone');

  const auditRows = await admin('audit', '--json');
  const rows = auditRows.stdout.trim().split('\n').map((l) => JSON.parse(l) as { action: string; objectId: string | null; detail: Record<string, unknown> });
  const failed = rows.filter((r) => r.action === 'auth.failed');
  t.deepEqual(failed.map((r) => [r.objectId, r.detail.reason]), [['rxx-pas', 'credential'], [null, 'no-credential']]);
  t.false(auditRows.stdout.includes(secret!), 'the secret is in no audit row');

  const list = await runCli(['messages', 'list', '--json', '--data', data]);
  const msgs = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { status: string; ackCode: string });
  t.deepEqual(msgs.map((m) => m.ackCode), ['AA', 'AA', 'AR', 'AR']);
  engine.proc.kill('SIGTERM');
  t.deepEqual(await engine.exited, { code: 0, signal: null });
});
