// SPDX-License-Identifier: Apache-2.0
/** Source-address allowlists: IPv4, IPv6, IPv4-mapped IPv6, CIDR edges, invalid entries. */
import test from 'ava';
import Database from 'better-sqlite3';
import { SenderDirectory, SenderStore, allowlistContains, normaliseAddress, parseCidr, type Cidr } from '../../src/authentication/index.js';
import { isTributaryError } from '../../src/errors.js';

const cidrs = (...list: string[]): Cidr[] =>
  list.map((c) => {
    const p = parseCidr(c);
    if ('error' in p) throw new Error(p.error);
    return p;
  });

test('IPv4 CIDR edges: /24 boundaries, /32 exact, /0 everything v4', (t) => {
  const l24 = cidrs('10.1.2.0/24');
  t.true(allowlistContains(l24, '10.1.2.0'));
  t.true(allowlistContains(l24, '10.1.2.255'));
  t.false(allowlistContains(l24, '10.1.1.255'));
  t.false(allowlistContains(l24, '10.1.3.0'));
  const l32 = cidrs('127.0.0.1/32');
  t.true(allowlistContains(l32, '127.0.0.1'));
  t.false(allowlistContains(l32, '127.0.0.2'));
  const l0 = cidrs('0.0.0.0/0');
  t.true(allowlistContains(l0, '203.0.113.9'));
  t.false(allowlistContains(l0, '2001:db8::1'), 'an IPv4 range never matches IPv6');
});

test('IPv6 ranges, bare addresses and ::/0', (t) => {
  const l = cidrs('2001:db8::/32', '::1');
  t.is(l[1]!.text, '::1/128');
  t.true(allowlistContains(l, '2001:db8:ffff::1'));
  t.false(allowlistContains(l, '2001:db9::1'));
  t.true(allowlistContains(l, '::1'));
  t.true(allowlistContains(l, '0:0:0:0:0:0:0:1'), 'non-canonical text of the same address');
  t.true(allowlistContains(cidrs('::/0'), 'fe80::1%eth0'), 'zone id dropped');
  t.false(allowlistContains(cidrs('::/0'), '10.0.0.1'));
});

test('IPv4-mapped IPv6 peers are matched as IPv4, and mapped ranges become IPv4 ranges', (t) => {
  t.is(normaliseAddress('::ffff:127.0.0.2'), '127.0.0.2');
  const l = cidrs('127.0.0.2/32');
  t.true(allowlistContains(l, '::ffff:127.0.0.2'));
  t.false(allowlistContains(l, '::ffff:127.0.0.1'));
  const mapped = parseCidr('::ffff:10.0.0.0/104');
  t.false('error' in mapped);
  if (!('error' in mapped)) t.is(mapped.text, '10.0.0.0/8');
  t.true(allowlistContains(cidrs('::ffff:10.0.0.0/104'), '10.200.1.1'));
});

test('invalid CIDRs are refused with a reason', (t) => {
  for (const bad of ['10.0.0.300/8', '10.1/16', '010.1.2.3', 'host.example', '10.0.0.0/33', '::/129', '10.0.0.0/x', '', '10.1.2.3/24', '::ffff:10.0.0.0/90']) {
    const r = parseCidr(bad);
    t.true('error' in r, bad);
  }
  const r = parseCidr('10.1.2.3/24');
  t.regex('error' in r ? r.error : '', /did you mean 10\.1\.2\.0\/24/);
});

test('sendersForAddress: only enabled senders whose list holds the address; unknown or junk address = none', (t) => {
  const db = new Database(':memory:');
  const store = new SenderStore(db, { actor: 'test' });
  store.addOrganisation({ id: 'rxx', name: 'Leeds' });
  store.addSender({ id: 'a', organisationId: 'rxx', name: 'A', allowCidrs: ['127.0.0.1'] });
  store.addSender({ id: 'b', organisationId: 'rxx', name: 'B', allowCidrs: ['127.0.0.2/32', '::1'] });
  store.addSender({ id: 'c', organisationId: 'rxx', name: 'C', allowCidrs: ['127.0.0.0/8'], enabled: false });
  const dir = new SenderDirectory(db);
  t.deepEqual(dir.sendersForAddress('127.0.0.1').map((s) => s.id), ['a']);
  t.deepEqual(dir.sendersForAddress('::ffff:127.0.0.2').map((s) => s.id), ['b']);
  t.deepEqual(dir.sendersForAddress('::1').map((s) => s.id), ['b']);
  t.deepEqual(dir.sendersForAddress('127.0.0.3'), []);
  t.deepEqual(dir.sendersForAddress('not-an-ip'), []);
  // An allowlist change in the database is seen at the next check.
  store.updateSender('a', { allowCidrs: ['127.0.0.3'] });
  t.deepEqual(dir.sendersForAddress('127.0.0.1'), []);
  t.deepEqual(dir.sendersForAddress('127.0.0.3').map((s) => s.id), ['a']);
});

test('addressOnlySender: the narrowest allowlist wins; its answer per address follows every change of the senders', (t) => {
  const db = new Database(':memory:');
  const store = new SenderStore(db, { actor: 'test' });
  store.addOrganisation({ id: 'rxx', name: 'Leeds' });
  store.addSender({ id: 'wide', organisationId: 'rxx', name: 'Wide', allowCidrs: ['127.0.0.0/8'] });
  store.addSender({ id: 'narrow', organisationId: 'rxx', name: 'Narrow', allowCidrs: ['127.0.0.5/32'] });
  const dir = new SenderDirectory(db);
  t.is(dir.addressOnlySender('127.0.0.5')?.id, 'narrow');
  t.is(dir.addressOnlySender('127.0.0.5')?.id, 'narrow', 'asked again (answered from memory)');
  t.is(dir.addressOnlySender('127.0.0.6')?.id, 'wide');
  t.is(dir.addressOnlySender('10.0.0.1'), undefined);
  t.is(dir.addressOnlySender('10.0.0.1'), undefined, 'an address with no sender, asked again');
  // A credential makes a sender unknown by address alone; disabling removes it; both seen at once.
  store.addCredential({ senderId: 'narrow' });
  t.is(dir.addressOnlySender('127.0.0.5')?.id, 'wide');
  store.updateSender('wide', { enabled: false });
  t.is(dir.addressOnlySender('127.0.0.5'), undefined);
  store.updateSender('wide', { enabled: true, allowCidrs: ['10.0.0.0/8'] });
  t.is(dir.addressOnlySender('10.0.0.1')?.id, 'wide');
  t.is(dir.addressOnlySender('127.0.0.6'), undefined);
});

test('the store refuses a bad CIDR naming the entry, and an empty allowlist', (t) => {
  const store = new SenderStore(new Database(':memory:'), { actor: 'test' });
  store.addOrganisation({ id: 'rxx', name: 'Leeds' });
  const e = t.throws(() => store.addSender({ id: 's', organisationId: 'rxx', name: 'S', allowCidrs: ['10.0.0.0/8', 'nope'] }));
  t.true(isTributaryError(e, 'ADMIN_INVALID'));
  t.regex(e!.message, /^allowCidrs\[1\]: "nope" is not a CIDR/);
  t.throws(() => store.addSender({ id: 's', organisationId: 'rxx', name: 'S', allowCidrs: [] }), { message: /at least one/ });
});
