// SPDX-License-Identifier: Apache-2.0
/** `tributary admin` as a user runs it: real processes against a temporary data directory. */
import test from 'ava';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/engine.js';

test('org, team, alias, sender, credential, rotate, partner grant, audit; secrets shown once', async (t) => {
  const data = tempDir(t);
  const admin = async (...args: string[]) => {
    const r = await runCli(['admin', ...args, '--data', data, '--actor', 'it-admin']);
    t.is(r.code, 0, `admin ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await admin('org', 'add', '--id', 'rxx', '--name', 'Leeds General');
  await admin('org', 'add', '--id', 'acme', '--name', 'Acme', '--kind', 'partner');
  await admin('team', 'add', '--id', 'rxx-cardio', '--org', 'rxx', '--name', 'Cardiology', '--default-label', 'GENERAL_HEALTH');
  await admin('alias', 'add', '--value', 'RXX', '--org', 'rxx', '--team', 'rxx-cardio');
  await admin('sender', 'add', '--id', 'rxx-pas', '--org', 'rxx', '--name', 'PAS', '--allow', '10.1.2.0/24', '--allow', '::1', '--application', 'PAS');
  const added = await admin('credential', 'add', '--sender', 'rxx-pas', '--json');
  const { username, secret } = JSON.parse(added) as { username: string; secret: string };
  t.is(username, 'rxx-pas');
  t.regex(secret, /^[A-Za-z0-9_-]{43}$/);
  const human = await admin('credential', 'add', '--sender', 'rxx-pas', '--username', 'rxx-pas-backup');
  t.regex(human, /secret\s+[A-Za-z0-9_-]{43}/);
  t.regex(human, /MSH-8 as\s+rxx-pas-backup:<secret>/);

  const lists = [
    await admin('org', 'list'),
    await admin('team', 'list', '--org', 'rxx'),
    await admin('alias', 'list', '--json'),
    await admin('sender', 'show', '--id', 'rxx-pas'),
    await admin('credential', 'list'),
    await admin('credential', 'list', '--json'),
  ];
  t.regex(lists[0]!, /rxx\s+customer\s+Leeds General/);
  t.regex(lists[1]!, /rxx-prt .*Patient Record Team/);
  t.deepEqual(JSON.parse(lists[2]!.trim()), { value: 'RXX', organisationId: 'rxx', teamId: 'rxx-cardio', createdAt: JSON.parse(lists[2]!.trim()).createdAt });
  t.regex(lists[3]!, /allow\s+10\.1\.2\.0\/24, ::1\/128/);
  for (const out of lists) {
    t.false(out.includes(secret), 'list/show never print a secret');
    t.false(out.includes('scrypt$'), 'nor a hash');
  }

  const rotated = JSON.parse(await admin('credential', 'rotate', '--sender', 'rxx-pas', '--username', 'rxx-pas', '--overlap-hours', '2', '--json')) as { secret: string; previousExpiresAt: string };
  t.not(rotated.secret, secret);
  t.true(Date.parse(rotated.previousExpiresAt) > Date.now() + 1.9 * 3_600_000);
  t.regex(await admin('credential', 'show', '--username', 'rxx-pas'), /rotating \(old secret valid until/);

  await admin('partner-grant', 'add', '--customer', 'rxx', '--partner', 'acme', '--team', 'rxx-cardio');
  t.regex(await admin('partner-grant', 'list'), /1\s+rxx\s+acme\s+rxx-cardio/);
  await admin('partner-grant', 'remove', '--id', '1');
  t.regex(await admin('partner-grant', 'list'), /no partner grants/);
  await admin('credential', 'remove', '--username', 'rxx-pas-backup');

  const audit = (await admin('audit', '--json')).trim().split('\n').map((l) => JSON.parse(l) as { actor: string; action: string; objectType: string; objectId: string });
  t.deepEqual(
    audit.map((r) => `${r.action} ${r.objectType} ${r.objectId}`),
    [
      'add organisation rxx',
      'add organisation acme',
      'add team rxx-cardio',
      'add alias RXX',
      'add sender rxx-pas',
      'add credential rxx-pas',
      'add credential rxx-pas-backup',
      'rotate credential rxx-pas',
      'add partner-grant 1',
      'revoke partner-grant 1',
      'revoke credential rxx-pas-backup',
    ],
  );
  t.true(audit.every((r) => r.actor === 'it-admin'));

  // Nothing in the database holds a clear secret.
  const db = new Database(join(data, 'tributary.db'), { readonly: true });
  const everything = ['audit', 'credential', 'credential_secret', 'sender'].map((tb) => JSON.stringify(db.prepare(`SELECT * FROM ${tb}`).all())).join('');
  db.close();
  t.false(everything.includes(secret) || everything.includes(rotated.secret));
});

test('user errors are one line on stderr with exit code 2', async (t) => {
  const data = tempDir(t);
  const admin = (...args: string[]) => runCli(['admin', ...args, '--data', data]);
  t.is((await admin('org', 'add', '--id', 'rxx', '--name', 'Leeds')).code, 0);
  const cases: Array<[string[], RegExp]> = [
    [['org', 'add', '--id', 'rxx', '--name', 'Again'], /^tributary: organisation "rxx" already exists$/],
    [['org', 'add', '--id', 'Bad Id', '--name', 'X'], /^tributary: --id: "Bad Id" is not an id/],
    [['team', 'add', '--id', 't1', '--org', 'nope', '--name', 'T'], /^tributary: no organisation "nope"$/],
    [['team', 'add', '--id', 't1', '--org', 'rxx', '--name', 'T', '--default-label', 'PRIVATE'], /^tributary: --default-label: "PRIVATE" is not one of/],
    [['sender', 'add', '--id', 's1', '--org', 'rxx', '--name', 'S', '--allow', '10.1.2.3/24'], /^tributary: --allow: "10\.1\.2\.3\/24" has host bits set; did you mean 10\.1\.2\.0\/24\?$/],
    [['sender', 'add', '--id', 's1', '--org', 'rxx', '--name', 'S', '--allow', 'nope'], /^tributary: --allow: "nope" is not a CIDR or address$/],
    [['credential', 'add', '--sender', 'ghost'], /^tributary: no sender "ghost"$/],
    [['partner-grant', 'remove', '--id', '99'], /^tributary: no partner grant "99"$/],
  ];
  for (const [args, expected] of cases) {
    const r = await admin(...args);
    t.is(r.code, 2, args.join(' '));
    t.is(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
    t.regex(r.stderr.trimEnd(), expected);
  }
});
