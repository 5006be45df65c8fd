// SPDX-License-Identifier: Apache-2.0
/** Credentials: scrypt hashing, verification, rotation overlap, revocation, lockout, cache, MSH-8. */
import test from 'ava';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SenderDirectory,
  SenderStore,
  generateSecret,
  hashSecret,
  maskMsh8,
  parseHash,
  parseMsh8Credential,
  verifySecret,
  type LockoutOptions,
} from '../../src/authentication/index.js';

const HOUR = 3_600_000;

function setup(lockout?: Partial<LockoutOptions>) {
  const clock = { t: 1_700_000_000_000 };
  const now = () => clock.t;
  const db = new Database(':memory:');
  const store = new SenderStore(db, { actor: 'test', now });
  store.addOrganisation({ id: 'rxx', name: 'Leeds' });
  store.addSender({ id: 'pas', organisationId: 'rxx', name: 'PAS', allowCidrs: ['127.0.0.1', '10.0.0.0/8'] });
  store.addSender({ id: 'lab', organisationId: 'rxx', name: 'Lab', allowCidrs: ['127.0.0.2'] });
  const dir = new SenderDirectory(db, { now, lockout });
  return { clock, db, store, dir };
}

test('secrets are random base64url, hashed with scrypt N=16384 r=8 p=1, 16-byte salt, 32-byte key', (t) => {
  const s = generateSecret();
  t.regex(s, /^[A-Za-z0-9_-]{43}$/);
  t.not(generateSecret(), s);
  const h = hashSecret(s);
  t.regex(h, /^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
  const parsed = parseHash(h);
  if ('error' in parsed) return t.fail(parsed.error);
  t.is(parsed.salt.length, 16);
  t.is(parsed.key.length, 32);
  t.true(verifySecret(s, parsed));
  t.false(verifySecret(s + 'x', parsed));
  t.not(hashSecret(s), h, 'a fresh salt every time');
  t.true('error' in parseHash('scrypt$1048577$8$1$AAAA$BBBB'), 'absurd parameters are refused');
  t.true('error' in parseHash(s), 'a clear secret is not a hash');
});

test('the store keeps only the hash; the secret is returned once', (t) => {
  const { db, store } = setup();
  const issued = store.addCredential({ senderId: 'pas' });
  t.is(issued.username, 'pas');
  const dump = JSON.stringify(db.prepare('SELECT * FROM credential_secret').all()) + JSON.stringify(db.prepare('SELECT * FROM audit').all());
  t.false(dump.includes(issued.secret));
  t.false(JSON.stringify(store.listCredentials()).includes('scrypt$'), 'listings never carry hashes');
  t.is(store.addCredential({ senderId: 'pas' }).username, 'pas-2', 'default user names do not collide');
});

test('verifyCredential: right secret from an allowed address only; failures are generic null', (t) => {
  const { store, dir } = setup();
  const { username, secret } = store.addCredential({ senderId: 'pas' });
  t.is(dir.verifyCredential(username, secret, '127.0.0.1')?.id, 'pas');
  t.is(dir.verifyCredential(username, secret, '::ffff:10.9.8.7')?.id, 'pas');
  t.is(dir.verifyCredential(username, secret, '127.0.0.2'), null, "another sender's address");
  t.is(dir.verifyCredential(username, 'wrong', '127.0.0.1'), null);
  t.is(dir.verifyCredential('nobody', secret, '127.0.0.1'), null);
  store.updateSender('pas', { enabled: false });
  t.is(dir.verifyCredential(username, secret, '127.0.0.1'), null, 'disabled sender');
});

test('verifyCredentialAsync gives the same answers', async (t) => {
  const { store, dir } = setup();
  const { username, secret } = store.addCredential({ senderId: 'pas' });
  t.is((await dir.verifyCredentialAsync(username, secret, '127.0.0.1'))?.id, 'pas');
  t.is(await dir.verifyCredentialAsync(username, 'nope', '127.0.0.1'), null);
  t.is(await dir.verifyCredentialAsync(username, secret, '127.0.0.2'), null);
});

test('rotation: old and new secrets both work during the overlap, then only the new one', (t) => {
  const { clock, store, dir } = setup();
  const first = store.addCredential({ senderId: 'pas' });
  t.truthy(dir.verifyCredential('pas', first.secret, '127.0.0.1'));
  const rotated = store.rotateCredential({ senderId: 'pas' }, 2 * HOUR);
  t.is(rotated.username, 'pas', 'same user name, new secret');
  t.not(rotated.secret, first.secret);
  t.is(rotated.previousExpiresAt, clock.t + 2 * HOUR);
  t.truthy(dir.verifyCredential('pas', first.secret, '127.0.0.1'), 'old secret in the overlap');
  t.truthy(dir.verifyCredential('pas', rotated.secret, '127.0.0.1'));
  clock.t += 2 * HOUR - 1;
  t.truthy(dir.verifyCredential('pas', first.secret, '127.0.0.1'), 'cached success still bounded by the expiry');
  clock.t += 1;
  t.is(dir.verifyCredential('pas', first.secret, '127.0.0.1'), null, 'old secret expired');
  t.truthy(dir.verifyCredential('pas', rotated.secret, '127.0.0.1'));
  // A second rotation never extends the first secret.
  const again = store.rotateCredential({ username: 'pas' }, 0);
  t.is(dir.verifyCredential('pas', rotated.secret, '127.0.0.1'), null, 'overlap 0 ends it at once');
  t.truthy(dir.verifyCredential('pas', again.secret, '127.0.0.1'));
});

test('revocation takes effect at once, also for a cached success; user names stay reserved', (t) => {
  const { store, dir } = setup();
  const { secret } = store.addCredential({ senderId: 'pas' });
  t.truthy(dir.verifyCredential('pas', secret, '127.0.0.1'));
  store.revokeCredential('pas');
  t.is(dir.verifyCredential('pas', secret, '127.0.0.1'), null);
  t.throws(() => store.addCredential({ senderId: 'pas', username: 'pas' }), { message: /already exists/ });
  t.throws(() => store.revokeCredential('pas'), { message: /revoked/ });
});

test('cache: a stream of messages pays scrypt once; removing the sender drops it', (t) => {
  const { store, dir } = setup();
  const { secret } = store.addCredential({ senderId: 'pas' });
  const t0 = performance.now();
  t.truthy(dir.verifyCredential('pas', secret, '127.0.0.1'));
  const first = performance.now() - t0;
  const t1 = performance.now();
  for (let i = 0; i < 200; i++) t.truthy(dir.verifyCredential('pas', secret, '127.0.0.1'));
  const perHit = (performance.now() - t1) / 200;
  t.true(perHit < first / 5, `cached ${perHit.toFixed(3)} ms vs first ${first.toFixed(1)} ms`);
  store.removeSender('pas');
  t.is(dir.verifyCredential('pas', secret, '127.0.0.1'), null);
});

test('a change made through another connection (the CLI) is seen at the next check', (t) => {
  const dir0 = mkdtempSync(join(tmpdir(), 'tributary-auth-'));
  t.teardown(() => rmSync(dir0, { recursive: true, force: true }));
  const file = join(dir0, 'tributary.db');
  const engineDb = new Database(file);
  engineDb.pragma('journal_mode = WAL');
  const clock = { t: 1_700_000_000_000 };
  const store = new SenderStore(engineDb, { actor: 'test', now: () => clock.t });
  store.addOrganisation({ id: 'rxx', name: 'Leeds' });
  store.addSender({ id: 'pas', organisationId: 'rxx', name: 'PAS', allowCidrs: ['127.0.0.1'] });
  const { secret } = store.addCredential({ senderId: 'pas' });
  const dir = new SenderDirectory(engineDb, { now: () => clock.t });
  t.truthy(dir.verifyCredential('pas', secret, '127.0.0.1'));
  const cliDb = new Database(file);
  new SenderStore(cliDb, { actor: 'admin', now: () => clock.t }).rotateCredential({ username: 'pas' }, 0);
  cliDb.close();
  t.is(dir.verifyCredential('pas', secret, '127.0.0.1'), null);
  engineDb.close();
});

test('lockout: N failures from one address lock it; other addresses unaffected; recovery after lockMs', (t) => {
  const { clock, store, dir } = setup({ maxFailures: 3, windowMs: 60_000, lockMs: 300_000 });
  const { secret } = store.addCredential({ senderId: 'pas' });
  const lab = store.addCredential({ senderId: 'lab' });
  for (let i = 0; i < 3; i++) t.is(dir.verifyCredential('pas', `guess-${i}`, '10.0.0.66'), null);
  t.true(dir.isLockedOut('10.0.0.66'));
  t.true(dir.isLockedOut('::ffff:10.0.0.66'), 'same address in mapped form');
  t.is(dir.verifyCredential('pas', secret, '10.0.0.66'), null, 'even the right secret while locked (not cached yet)');
  t.false(dir.isLockedOut('127.0.0.2'));
  t.is(dir.verifyCredential(lab.username, lab.secret, '127.0.0.2')?.id, 'lab', 'another address keeps working');
  clock.t += 300_000;
  t.false(dir.isLockedOut('10.0.0.66'));
  t.is(dir.verifyCredential('pas', secret, '10.0.0.66')?.id, 'pas', 'recovered');
});

test('lockout: failures outside the window do not add up; a success resets the count', (t) => {
  const { clock, store, dir } = setup({ maxFailures: 3, windowMs: 60_000, lockMs: 300_000 });
  const { secret } = store.addCredential({ senderId: 'pas' });
  dir.verifyCredential('pas', 'x', '127.0.0.1');
  dir.verifyCredential('pas', 'x', '127.0.0.1');
  clock.t += 61_000;
  dir.verifyCredential('pas', 'x', '127.0.0.1');
  t.false(dir.isLockedOut('127.0.0.1'));
  t.truthy(dir.verifyCredential('pas', secret, '127.0.0.1'));
  dir.verifyCredential('pas', 'x', '127.0.0.1');
  dir.recordFailure('127.0.0.1'); // a message without any credential counts too
  t.false(dir.isLockedOut('127.0.0.1'));
  dir.verifyCredential('pas', 'x', '127.0.0.1');
  t.true(dir.isLockedOut('127.0.0.1'));
});

test('lockout: concurrent async guesses cannot exceed maxFailures scrypt runs', async (t) => {
  const { store, dir } = setup({ maxFailures: 4, windowMs: 60_000, lockMs: 300_000 });
  store.addCredential({ senderId: 'pas' });
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => dir.verifyCredentialAsync('pas', `g${i}`, '127.0.0.1')));
  t.true(results.every((r) => r === null));
  t.true(dir.isLockedOut('127.0.0.1'));
});

test('a recently verified credential still works from a locked-out address (same NAT as an attacker)', (t) => {
  const { store, dir } = setup({ maxFailures: 2, windowMs: 60_000, lockMs: 300_000 });
  const { secret } = store.addCredential({ senderId: 'pas' });
  t.truthy(dir.verifyCredential('pas', secret, '10.0.0.5'));
  dir.verifyCredential('pas', 'a', '10.0.0.5');
  dir.verifyCredential('pas', 'b', '10.0.0.5');
  t.true(dir.isLockedOut('10.0.0.5'));
  t.is(dir.verifyCredential('pas', secret, '10.0.0.5')?.id, 'pas');
  t.is(dir.verifyCredential('pas', 'c', '10.0.0.5'), null);
});

test('TLS identities: CN, SAN, fingerprint (with or without colons); address still checked', (t) => {
  const { store, dir } = setup();
  const fp = 'AB:'.repeat(31) + 'CD';
  store.updateSender('pas', { tlsIdentities: ['CN=pas.rxx.nhs.uk', 'DNS:PAS2.rxx.nhs.uk'] });
  store.updateSender('lab', { tlsIdentities: [fp.replace(/:/g, '').toLowerCase()] });
  t.deepEqual(store.getSender('lab')!.tlsIdentities, [`sha256:${'ab'.repeat(31)}cd`]);
  t.is(dir.senderForTlsIdentity({ subjectCN: 'pas.rxx.nhs.uk' }, '127.0.0.1')?.id, 'pas');
  t.is(dir.senderForTlsIdentity({ san: ['DNS:other.example, DNS:pas2.rxx.nhs.uk'] }, '127.0.0.1')?.id, 'pas');
  t.is(dir.senderForTlsIdentity({ subjectCN: 'pas.rxx.nhs.uk' }, '127.0.0.2'), null, 'not from its allowlist');
  t.is(dir.senderForTlsIdentity({ subjectCN: 'pas.rxx.nhs.uk', authorized: false }, '127.0.0.1'), null, 'CN of an unverified certificate is not trusted');
  t.is(dir.senderForTlsIdentity({ fingerprint256: fp, authorized: false }, '127.0.0.2')?.id, 'lab', 'a fingerprint pins the certificate');
  t.is(dir.senderForTlsIdentity({ subjectCN: 'someone.else' }, '127.0.0.1'), null);
  t.throws(() => store.updateSender('lab', { tlsIdentities: ['cn=PAS.rxx.nhs.uk'] }), { message: /of sender "pas"/ }, 'one identity, one sender');
  t.throws(() => store.updateSender('lab', { tlsIdentities: ['pas.rxx.nhs.uk'] }), { message: /tlsIdentities\[0\]: .* is not a TLS identity/ });
});

test('applicationAllowed: any when the list is empty, else MSH-3 or its first component', (t) => {
  const { store, dir } = setup();
  t.true(dir.applicationAllowed(store.getSender('pas')!, 'ANYTHING'));
  const s = store.updateSender('pas', { applications: ['PAS'] });
  t.true(dir.applicationAllowed(s, 'PAS'));
  t.true(dir.applicationAllowed(s, 'PAS^1.2.3^ISO'));
  t.false(dir.applicationAllowed(s, 'LAB'));
});

test('parseMsh8Credential: user:secret (secret may hold ":"), Basic token, junk', (t) => {
  t.deepEqual(parseMsh8Credential('rxx-pas:abc'), { username: 'rxx-pas', secret: 'abc' });
  t.deepEqual(parseMsh8Credential(' u:a:b:c '), { username: 'u', secret: 'a:b:c' });
  t.deepEqual(parseMsh8Credential(`Basic ${Buffer.from('u:s3cr:t').toString('base64')}`), { username: 'u', secret: 's3cr:t' });
  t.deepEqual(parseMsh8Credential(`basic ${Buffer.from('u:x').toString('base64')}`), { username: 'u', secret: 'x' });
  for (const bad of ['', 'nocolon', ':secret', 'user:', 'us er:x', 'Basic !!!']) t.is(parseMsh8Credential(bad), null, bad);
});

test('maskMsh8: replaces MSH-8 in every MSH segment, keeps every other byte', (t) => {
  const msg = 'MSH|^~\\&|PAS|RXX|TRIB|PKB|20240101||ADT^A01|1|P|2.4\rPID|1||123\r';
  t.is(maskMsh8(Buffer.from(msg)).toString(), msg, 'empty MSH-8 stays empty');
  const withCred = 'MSH|^~\\&|PAS|RXX|TRIB|PKB|20240101|pas:S3cret:x|ADT^A01|1|P|2.4\rPID|1||MSH|a|b|c|d|e|f|g\r';
  t.is(maskMsh8(Buffer.from(withCred)).toString(), 'MSH|^~\\&|PAS|RXX|TRIB|PKB|20240101|****|ADT^A01|1|P|2.4\rPID|1||MSH|a|b|c|d|e|f|g\r');
  const batch = 'BHS|^~\\&\rMSH#^~\\&#A#B#C#D#T#u:p#ADT^A01#1#P#2.4\nPID#1\rMSH|^~\\&|A|B|C|D|T|Basic dTpw|ADT\rBTS|2\r';
  t.is(maskMsh8(Buffer.from(batch)).toString(), 'BHS|^~\\&\rMSH#^~\\&#A#B#C#D#T#****#ADT^A01#1#P#2.4\nPID#1\rMSH|^~\\&|A|B|C|D|T|****|ADT\rBTS|2\r');
  t.is(maskMsh8(Buffer.from('MSH|^~\\&|A|B|C|D|T|u:p')).toString(), 'MSH|^~\\&|A|B|C|D|T|****', 'MSH-8 as the last field');
  t.is(maskMsh8(Buffer.from('MSH|^~\\&|A|B')).toString(), 'MSH|^~\\&|A|B', 'short MSH untouched');
  const latin1 = Buffer.concat([Buffer.from('MSH|^~\\&|A|B|C|D|T|u:p|ADT\rPID|1||'), Buffer.from([0xe9, 0xff]), Buffer.from('\r')]);
  const masked = maskMsh8(latin1);
  t.deepEqual(masked.subarray(masked.length - 3), Buffer.from([0xe9, 0xff, 0x0d]), 'non-ASCII bytes elsewhere untouched');
  t.false(masked.includes('u:p'));
});

test('a failed check costs the same number of scrypt runs for an unknown user and for one mid-rotation', (t) => {
  const { store, dir } = setup();
  store.addCredential({ senderId: 'pas' });
  type Probe = { candidates(snap: unknown, username: string): { secrets: unknown[] }; snapshot(): unknown };
  const probe = dir as unknown as Probe;
  const count = (user: string): number => probe.candidates(probe.snapshot(), user).secrets.length;
  t.deepEqual([count('pas'), count('nobody')], [1, 1]);
  store.rotateCredential({ senderId: 'pas' }, 2 * HOUR);
  t.deepEqual([count('pas'), count('nobody')], [2, 2], 'an unknown user is checked against as many hashes as the rotating one');
});
