// SPDX-License-Identifier: Apache-2.0
/** Acting organisation: own organisation, aliases to teams, partner grants, "A on behalf of B". */
import test from 'ava';
import Database from 'better-sqlite3';
import { SenderDirectory, SenderStore, type ActingResult } from '../../src/authentication/index.js';

function world() {
  const db = new Database(':memory:');
  const store = new SenderStore(db, { actor: 'test' });
  store.addOrganisation({ id: 'rxx', name: 'Leeds General' });
  store.addOrganisation({ id: 'ryy', name: 'York Hospital' });
  store.addOrganisation({ id: 'rzz', name: 'Zed Trust' });
  store.addOrganisation({ id: 'acme', name: 'Acme Integration', kind: 'partner' });
  store.addTeam({ id: 'rxx-cardio', organisationId: 'rxx', name: 'Cardiology', defaultLabel: 'GENERAL_HEALTH' });
  store.addTeam({ id: 'rxx-mh', organisationId: 'rxx', name: 'Mental Health', defaultLabel: 'MENTAL_HEALTH' });
  store.addAlias({ value: 'RXX', organisationId: 'rxx' });
  store.addAlias({ value: 'RXX-CARDIO', organisationId: 'rxx', teamId: 'rxx-cardio' });
  store.addAlias({ value: 'RXX-MH', organisationId: 'rxx', teamId: 'rxx-mh' });
  store.addAlias({ value: 'RYY', organisationId: 'ryy' });
  store.addAlias({ value: 'ACME', organisationId: 'acme' });
  for (const [id, org] of [['rxx-pas', 'rxx'], ['ryy-pas', 'ryy'], ['rzz-pas', 'rzz'], ['acme-hub', 'acme']] as const) {
    store.addSender({ id, organisationId: org, name: id, allowCidrs: ['127.0.0.1'] });
  }
  const dir = new SenderDirectory(db);
  const resolve = (sender: string, ...msh4: string[]): ActingResult => dir.resolveActing(dir.sender(sender)!, msh4);
  return { store, dir, resolve };
}

test('a customer acts for itself with no MSH-4, its own alias, or a team alias', (t) => {
  const { resolve } = world();
  t.deepEqual(resolve('rxx-pas'), { ok: true, organisationId: 'rxx', chain: 'Leeds General' });
  t.deepEqual(resolve('rxx-pas', ''), { ok: true, organisationId: 'rxx', chain: 'Leeds General' }, 'empty component = none');
  t.deepEqual(resolve('rxx-pas', 'RXX'), { ok: true, organisationId: 'rxx', chain: 'Leeds General' });
  t.deepEqual(resolve('rxx-pas', 'RXX-CARDIO', '', ''), { ok: true, organisationId: 'rxx', teamId: 'rxx-cardio', chain: 'Leeds General (Cardiology)' });
});

test('a customer with aliases must send a known one; a customer without aliases may send anything', (t) => {
  const { resolve } = world();
  const r = resolve('rxx-pas', 'WHATEVER');
  t.false(r.ok);
  if (!r.ok) {
    t.is(r.code, 'AUTH_UNKNOWN_ALIAS');
    t.is(r.error.message, 'MSH-4 names an unknown organisation alias "WHATEVER"');
  }
  t.deepEqual(resolve('rzz-pas', 'ZZ-FACILITY'), { ok: true, organisationId: 'rzz', chain: 'Zed Trust' });
});

test("a customer naming another customer's alias needs that customer's grant", (t) => {
  const { store, resolve } = world();
  const r = resolve('ryy-pas', 'RXX');
  t.false(r.ok);
  if (!r.ok) t.is(r.code, 'AUTH_NO_GRANT');
  store.addGrant({ customerOrganisationId: 'rxx', partnerOrganisationId: 'ryy' });
  t.deepEqual(resolve('ryy-pas', 'RXX'), { ok: true, organisationId: 'rxx', onBehalfOf: ['ryy'], chain: 'York Hospital on behalf of Leeds General' });
});

test('a partner needs a grant; without MSH-4 or with its own alias it is refused', (t) => {
  const { store, resolve } = world();
  for (const msh4 of [[], ['ACME']]) {
    const r = resolve('acme-hub', ...msh4);
    t.false(r.ok);
    if (!r.ok) t.is(r.code, 'AUTH_ACTING_INVALID');
  }
  const no = resolve('acme-hub', 'RXX');
  t.false(no.ok);
  if (!no.ok) {
    t.is(no.code, 'AUTH_NO_GRANT');
    t.is(no.error.message, 'Leeds General has not granted Acme Integration the right to send for it');
  }
  const unknown = resolve('acme-hub', 'NOPE');
  t.false(unknown.ok);
  if (!unknown.ok) t.is(unknown.code, 'AUTH_UNKNOWN_ALIAS');
  store.addGrant({ customerOrganisationId: 'rxx', partnerOrganisationId: 'acme' });
  t.deepEqual(resolve('acme-hub', 'RXX'), { ok: true, organisationId: 'rxx', onBehalfOf: ['acme'], chain: 'Acme Integration on behalf of Leeds General' });
  t.deepEqual(resolve('acme-hub', 'RXX-MH'), { ok: true, organisationId: 'rxx', teamId: 'rxx-mh', onBehalfOf: ['acme'], chain: 'Acme Integration on behalf of Leeds General (Mental Health)' });
});

test('a team-scoped grant allows only that team', (t) => {
  const { store, resolve } = world();
  store.addGrant({ customerOrganisationId: 'rxx', partnerOrganisationId: 'acme', teamId: 'rxx-cardio' });
  t.true(resolve('acme-hub', 'RXX-CARDIO').ok);
  for (const alias of ['RXX-MH', 'RXX']) {
    const r = resolve('acme-hub', alias);
    t.false(r.ok, alias);
    if (!r.ok) t.is(r.code, 'AUTH_NO_GRANT');
  }
  const r = resolve('acme-hub', 'RXX-MH');
  if (!r.ok) t.regex(r.error.message, /\(team Mental Health\)$/);
});

test('revoking a grant takes effect at the next message', (t) => {
  const { store, resolve } = world();
  const g = store.addGrant({ customerOrganisationId: 'rxx', partnerOrganisationId: 'acme' });
  t.true(resolve('acme-hub', 'RXX').ok);
  store.revokeGrant(g.id);
  const r = resolve('acme-hub', 'RXX');
  t.false(r.ok);
  if (!r.ok) t.is(r.code, 'AUTH_NO_GRANT');
});

test('"A on behalf of B": the data controller B granted A, and A granted the partner', (t) => {
  const { store, resolve } = world();
  // York (A) sends through Acme on behalf of Leeds (B): MSH-4 = RYY^RXX-CARDIO.
  const missingBoth = resolve('acme-hub', 'RYY', 'RXX-CARDIO');
  t.false(missingBoth.ok);
  if (!missingBoth.ok) t.regex(missingBoth.error.message, /^Leeds General has not granted York Hospital/);
  store.addGrant({ customerOrganisationId: 'rxx', partnerOrganisationId: 'ryy' });
  const missingPartner = resolve('acme-hub', 'RYY', 'RXX-CARDIO');
  t.false(missingPartner.ok);
  if (!missingPartner.ok) t.regex(missingPartner.error.message, /^York Hospital has not granted Acme Integration/);
  store.addGrant({ customerOrganisationId: 'ryy', partnerOrganisationId: 'acme' });
  t.deepEqual(resolve('acme-hub', 'RYY', 'RXX-CARDIO'), {
    ok: true,
    organisationId: 'rxx',
    teamId: 'rxx-cardio',
    onBehalfOf: ['acme', 'ryy'],
    chain: 'Acme Integration on behalf of York Hospital on behalf of Leeds General (Cardiology)',
  });
  // York connecting directly with both aliases needs only Leeds' grant.
  t.deepEqual(resolve('ryy-pas', 'RYY', 'RXX'), { ok: true, organisationId: 'rxx', onBehalfOf: ['ryy'], chain: 'York Hospital on behalf of Leeds General' });
});

test('malformed chains are refused', (t) => {
  const { resolve } = world();
  for (const msh4 of [['RXX', 'RYY', 'RZZ'], ['RXX', 'RXX-CARDIO'], ['ACME', 'RXX'], ['RXX', 'NOPE']]) {
    const r = resolve('acme-hub', ...msh4);
    t.false(r.ok, msh4.join('^'));
  }
  const three = resolve('rxx-pas', 'RXX', 'RYY', 'RZZ');
  t.false(three.ok);
  if (!three.ok) t.is(three.code, 'AUTH_ACTING_INVALID');
  // A full HD (namespace^OID^ISO) names one facility by its namespace.
  t.like(resolve('rxx-pas', 'RXX', '1.2.3', 'ISO'), { ok: true, organisationId: 'rxx' });
});

test('grants: only a customer grants; not to itself; team must be the customer\'s; duplicates refused', (t) => {
  const { store } = world();
  t.throws(() => store.addGrant({ customerOrganisationId: 'acme', partnerOrganisationId: 'rxx' }), { message: /only a customer grants/ });
  t.throws(() => store.addGrant({ customerOrganisationId: 'rxx', partnerOrganisationId: 'rxx' }), { message: /itself/ });
  t.throws(() => store.addGrant({ customerOrganisationId: 'ryy', partnerOrganisationId: 'acme', teamId: 'rxx-cardio' }), { message: /belongs to organisation "rxx"/ });
  store.addGrant({ customerOrganisationId: 'rxx', partnerOrganisationId: 'acme' });
  t.throws(() => store.addGrant({ customerOrganisationId: 'rxx', partnerOrganisationId: 'acme' }), { message: /already exists/ });
});
