// SPDX-License-Identifier: Apache-2.0
/** The sender store: migrations beside the journal, validation, removal rules, audit, declared config. */
import test from 'ava';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SenderDirectory, SenderStore, applyDeclaredConfig, hashSecret, migrateSenders } from '../../src/authentication/index.js';
import { isTributaryError } from '../../src/errors.js';
import { Journal } from '../../src/journal/journal.js';

const memStore = () => new SenderStore(new Database(':memory:'), { actor: 'alice' });

test('migrations: own row in schema_migrations, idempotent, and the journal keeps PRAGMA user_version', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-auth-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'tributary.db');
  // Admin first (before the engine ever ran), then the journal opens the same file.
  const db = new Database(file);
  new SenderStore(db, { actor: 'a' }).addOrganisation({ id: 'rxx', name: 'Leeds' });
  migrateSenders(db);
  t.deepEqual(db.prepare('SELECT * FROM schema_migrations').all(), [{ component: 'senders', version: 1 }]);
  t.is(db.pragma('user_version', { simple: true }), 0);
  db.close();
  const journal = Journal.open({ file });
  t.is(journal.database.pragma('user_version', { simple: true }), 4);
  const store = new SenderStore(journal.database, { actor: 'a' });
  t.is(store.listOrganisations().length, 1);
  journal.close();
});

test('a customer gets a Patient Record Team; a partner does not', (t) => {
  const s = memStore();
  s.addOrganisation({ id: 'rxx', name: 'Leeds', autoCreate: true });
  s.addOrganisation({ id: 'acme', name: 'Acme', kind: 'partner' });
  t.deepEqual(
    s.listTeams('rxx').map((x) => [x.id, x.name, x.isRecordTeam, x.defaultLabel]),
    [['rxx-prt', 'Patient Record Team', true, 'GENERAL_HEALTH']],
  );
  t.deepEqual(s.listTeams('acme'), []);
  t.true(s.getOrganisation('rxx')!.autoCreate);
});

test('validation: ids, names, kinds, labels, aliases, user names, unknown references, duplicates', (t) => {
  const s = memStore();
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (e) {
      return isTributaryError(e) ? `${e.code} ${e.message}` : String(e);
    }
  };
  t.regex(code(() => s.addOrganisation({ id: 'Bad Id', name: 'x' }))!, /^ADMIN_INVALID id: "Bad Id" is not an id/);
  t.regex(code(() => s.addOrganisation({ id: 'x', name: ' ' }))!, /^ADMIN_INVALID name:/);
  t.regex(code(() => s.addOrganisation({ id: 'x', name: 'X', kind: 'vendor' as 'partner' }))!, /^ADMIN_INVALID kind: "vendor" is not one of customer, partner/);
  s.addOrganisation({ id: 'rxx', name: 'Leeds' });
  t.regex(code(() => s.addOrganisation({ id: 'rxx', name: 'Again' }))!, /^ADMIN_DUPLICATE organisation "rxx" already exists/);
  t.regex(code(() => s.addTeam({ id: 't', organisationId: 'nope', name: 'T' }))!, /^ADMIN_NOT_FOUND no organisation "nope"/);
  t.regex(code(() => s.addTeam({ id: 't', organisationId: 'rxx', name: 'T', defaultLabel: 'PRIVATE' as 'SOCIAL_CARE' }))!, /^ADMIN_INVALID defaultLabel: "PRIVATE" is not one of GENERAL_HEALTH/);
  t.regex(code(() => s.addAlias({ value: 'A^B', organisationId: 'rxx' }))!, /^ADMIN_INVALID value:/);
  t.regex(code(() => s.addAlias({ value: 'RXX', organisationId: 'rxx', teamId: 'nope' }))!, /^ADMIN_NOT_FOUND no team "nope"/);
  s.addSender({ id: 'pas', organisationId: 'rxx', name: 'PAS', allowCidrs: ['::1'] });
  t.regex(code(() => s.addCredential({ senderId: 'pas', username: 'a:b' }))!, /^ADMIN_INVALID username:/);
  t.regex(code(() => s.addCredential({ senderId: 'nope' }))!, /^ADMIN_NOT_FOUND no sender "nope"/);
  t.regex(code(() => s.rotateCredential({ senderId: 'pas' }))!, /^ADMIN_NOT_FOUND/);
});

test('removal rules: in-use objects are refused, the Patient Record Team goes only with its organisation', (t) => {
  const s = memStore();
  s.addOrganisation({ id: 'rxx', name: 'Leeds' });
  s.addOrganisation({ id: 'acme', name: 'Acme', kind: 'partner' });
  s.addTeam({ id: 'cardio', organisationId: 'rxx', name: 'Cardiology' });
  s.addAlias({ value: 'RXX-C', organisationId: 'rxx', teamId: 'cardio' });
  s.addSender({ id: 'pas', organisationId: 'rxx', name: 'PAS', allowCidrs: ['::1'] });
  const g = s.addGrant({ customerOrganisationId: 'rxx', partnerOrganisationId: 'acme', teamId: 'cardio' });
  t.throws(() => s.removeOrganisation('rxx'), { message: 'organisation "rxx" is still used by 1 sender, 1 team, 1 alias, 1 partner grant; remove those first' });
  t.throws(() => s.removeTeam('cardio'), { message: /still used by 1 alias, 1 partner grant/ });
  t.throws(() => s.removeTeam('rxx-prt'), { message: /Patient Record Team/ });
  s.removeAlias('RXX-C');
  s.revokeGrant(g.id);
  s.removeTeam('cardio');
  s.addCredential({ senderId: 'pas' });
  s.removeSender('pas');
  t.deepEqual(s.listCredentials(), []);
  s.removeOrganisation('rxx');
  t.deepEqual(s.listTeams(), []);
  t.is(s.getOrganisation('rxx'), undefined);
});

test('every change writes one audit row with the actor; none holds a secret or a hash', (t) => {
  const clock = { t: 1_000 };
  const db = new Database(':memory:');
  const s = new SenderStore(db, { actor: 'alice', now: () => clock.t++ });
  const g0 = s.generation();
  s.addOrganisation({ id: 'rxx', name: 'Leeds' });
  s.addOrganisation({ id: 'acme', name: 'Acme', kind: 'partner' });
  s.updateOrganisation('rxx', { nhsStatusCheck: true });
  s.addTeam({ id: 'cardio', organisationId: 'rxx', name: 'Cardiology' });
  s.updateTeam('cardio', { defaultLabel: 'MENTAL_HEALTH' });
  s.addAlias({ value: 'RXX', organisationId: 'rxx' });
  s.updateAlias('RXX', { teamId: 'cardio' });
  s.addSender({ id: 'pas', organisationId: 'rxx', name: 'PAS', allowCidrs: ['::1'] });
  s.updateSender('pas', { allowCidrs: ['127.0.0.1'] });
  const a = s.addCredential({ senderId: 'pas' });
  const b = s.rotateCredential({ username: 'pas' });
  const g = s.addGrant({ customerOrganisationId: 'rxx', partnerOrganisationId: 'acme' });
  s.revokeGrant(g.id);
  s.revokeCredential('pas');
  const rows = s.listAudit();
  t.deepEqual(
    rows.map((r) => `${r.action} ${r.objectType} ${r.objectId}`),
    [
      'add organisation rxx',
      'add organisation acme',
      'update organisation rxx',
      'add team cardio',
      'update team cardio',
      'add alias RXX',
      'update alias RXX',
      'add sender pas',
      'update sender pas',
      'add credential pas',
      'rotate credential pas',
      'add partner-grant 1',
      'revoke partner-grant 1',
      'revoke credential pas',
    ],
  );
  t.true(rows.every((r) => r.actor === 'alice'));
  t.deepEqual(rows[2]!.detail, { nhsStatusCheck: true });
  const all = JSON.stringify(db.prepare('SELECT * FROM audit').all());
  t.false(all.includes(a.secret) || all.includes(b.secret) || all.includes('scrypt$'));
  t.is(s.generation(), g0 + rows.length, 'each change bumps the generation once');
  t.is(s.listAudit({ limit: 2 }).map((r) => r.id).join(','), `${rows.length - 1},${rows.length}`);
  // A refused change leaves no audit row.
  t.throws(() => s.addOrganisation({ id: 'rxx', name: 'Dup' }));
  t.is(s.listAudit().length, rows.length);
});

test('declared config: every problem with its key path, nothing applied', (t) => {
  const db = new Database(':memory:');
  const declared = {
    organisations: [{ id: 'rxx', name: 'Leeds' }, { id: 'BAD', name: 'x' }, { id: 'rxx', name: 'Twice' }],
    teams: [{ id: 'cardio', organisation: 'rxx', name: 'Cardiology', defaultLabel: 'PRIVATE' }],
    aliases: [{ value: 'RXX', organisation: 'nope' }],
    senders: [
      { id: 'pas', organisation: 'rxx', name: 'PAS', allowCidrs: ['10.0.0.0/8'], credentials: [{ username: 'pas', secretHash: 'plain-secret' }] },
      { id: 'lab', organisation: 'rxx', name: 'Lab', allowCidrs: ['10.0.0.0/8', '10.0.0.300/8'], colour: 'red' },
    ],
    partnerGrants: [{ customer: 'rxx', partner: 'rxx' }],
    extra: true,
  };
  const e = t.throws(() => applyDeclaredConfig(db, declared, 'ci'));
  t.true(isTributaryError(e, 'ADMIN_CONFIG_INVALID'));
  const lines = e!.message.split('\n').slice(1).map((l) => l.trim());
  t.deepEqual(lines, [
    'extra: unknown key',
    'organisations[1].id: "BAD" is not an id (lowercase letters, digits, ".", "_", "-"; at most 63; starts with a letter or digit)',
    'organisations[2]: organisation "rxx" is declared twice (first at organisations[0])',
    'teams[0].defaultLabel: "PRIVATE" is not one of GENERAL_HEALTH, MENTAL_HEALTH, SEXUAL_HEALTH, SOCIAL_CARE',
    'aliases[0].organisation: no organisation "nope"',
    'senders[1].colour: unknown key',
    'senders[1].allowCidrs[1]: "10.0.0.300/8" is not a CIDR or address',
    'senders[0].credentials[0].secretHash: expected scrypt$N$r$p$salt$key (see `tributary admin credential hash`)',
    'partnerGrants[0].partner: an organisation does not need a grant to send for itself',
  ]);
  const store = new SenderStore(db, { actor: 'x' });
  t.deepEqual(store.listOrganisations(), [], 'nothing applied');
  t.deepEqual(store.listAudit(), []);
});

test('declared config: applies, is idempotent, updates, and rotates by listing hashes', (t) => {
  const db = new Database(':memory:');
  const secret1 = 'first-secret-0123456789';
  const secret2 = 'second-secret-0123456789';
  const h1 = hashSecret(secret1);
  const h2 = hashSecret(secret2);
  const base = {
    organisations: [{ id: 'rxx', name: 'Leeds' }, { id: 'acme', name: 'Acme', kind: 'partner' }],
    teams: [{ id: 'cardio', organisation: 'rxx', name: 'Cardiology', defaultLabel: 'GENERAL_HEALTH' }],
    aliases: [{ value: 'RXX-C', organisation: 'rxx', team: 'cardio' }],
    senders: [{ id: 'pas', organisation: 'rxx', name: 'PAS', allowCidrs: ['127.0.0.1'], credentials: [{ username: 'pas', secretHash: h1 }] }],
    partnerGrants: [{ customer: 'rxx', partner: 'acme', team: 'cardio' }],
  };
  const first = applyDeclaredConfig(db, base, 'ci');
  t.deepEqual(first.changes, [
    'added organisation rxx',
    'added organisation acme',
    'added team cardio',
    'added alias RXX-C',
    'added sender pas',
    'added credential pas',
    'added partner grant rxx to acme (team cardio)',
  ]);
  const store = new SenderStore(db, { actor: 'x' });
  const auditCount = store.listAudit().length;
  t.deepEqual(applyDeclaredConfig(db, base, 'ci').changes, [], 'idempotent');
  t.is(store.listAudit().length, auditCount, 'a no-op apply writes no audit row');
  const dir = new SenderDirectory(db);
  t.truthy(dir.verifyCredential('pas', secret1, '127.0.0.1'));
  // Rotation in a file: list both hashes, then only the new one.
  const both = { ...base, senders: [{ ...base.senders[0]!, allowCidrs: ['127.0.0.0/8'], credentials: [{ username: 'pas', secretHashes: [h1, h2] }] }] };
  t.deepEqual(applyDeclaredConfig(db, both, 'ci').changes, ['updated sender pas', 'updated credential pas']);
  t.truthy(dir.verifyCredential('pas', secret1, '127.0.0.1'));
  t.truthy(dir.verifyCredential('pas', secret2, '127.0.0.2'));
  const onlyNew = { ...both, senders: [{ ...both.senders[0]!, credentials: [{ username: 'pas', secretHashes: [h2] }] }] };
  t.deepEqual(applyDeclaredConfig(db, onlyNew, 'ci').changes, ['updated credential pas']);
  t.is(dir.verifyCredential('pas', secret1, '127.0.0.1'), null);
  t.truthy(dir.verifyCredential('pas', secret2, '127.0.0.1'));
  t.true(store.listAudit().every((r) => !JSON.stringify(r).includes('scrypt$')));
  t.is(store.listAudit().at(-1)!.actor, 'ci');
});
