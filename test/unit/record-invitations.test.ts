// SPDX-License-Identifier: Apache-2.0
/**
 * Emails in PID-13 / PID-14 of ADT A28/A31 and the registration invitations they queue (domain §1
 * "An email in PID-13/PID-14 (at most one from each) is added to the record and triggers a
 * registration invitation. An email can belong to only one record"), through RecordService on a
 * real SQLite record. Synthetic patients and addresses (example.invalid) only.
 */
import test from 'ava';
import { TributaryError } from '../../src/errors.js';
import { Hl7Error, Hl7Message } from '../../src/hl7/index.js';
import { closeInvitation } from '../../src/record/invitations.js';
import { unmerge } from '../../src/record/merge.js';
import type { MessageHandler } from '../../src/record/types.js';
import { ORG, applyProv, hl7, msh, nhsNumber, recordFixture, recordService } from '../helpers/record.js';

const NHS = nhsNumber(300);
const OTHER_NHS = nhsNumber(301);

/** An A28/A31 for a synthetic patient with PID-13 (home) and PID-14 (work) as given. */
function adt(options: { type?: string; control?: string; time?: string; nhs?: string; pid3?: string; home?: string; work?: string; extra?: string[] } = {}): Hl7Message {
  const ids = [`${options.nhs ?? NHS}^^^NHS^NH`, ...(options.pid3 === undefined ? [] : [options.pid3])].join('~');
  const pid = `PID|||${ids}||Testperson^Alex||19800101|F|||1 Test Street^^Testville^^TE1 1ST^GBR^H||${options.home ?? ''}|${options.work ?? ''}`;
  return Hl7Message.parse(hl7(msh(options.type ?? 'ADT^A28', options.control ?? 'MSG0001', options.time ?? '20240501120000'), pid, ...(options.extra ?? [])));
}

const emailsOf = (f: ReturnType<typeof recordFixture>, patientId: string) =>
  f.store.identifiers(patientId, true).filter((x) => x.kind === 'email').map((x) => [x.value, x.active]);
const invitationsOf = (f: ReturnType<typeof recordFixture>) => f.store.listInvitations().map((i) => [i.id, i.patientId, i.email, i.status]);

test('a new email in PID-13 is the record\'s email and queues one pending invitation with the message\'s provenance', (t) => {
  const f = recordFixture(t);
  const out = recordService(f).apply(adt({ home: '01000 000001^PRN^PH~Alex.Q@Example.invalid^NET^Internet^Alex.Q@Example.invalid' }), {
    provenance: applyProv({ journalId: 7, controlId: 'REG-1', teamId: 'org-a-renal' }),
  });
  t.is(out.status, 'applied');
  t.is(out.summary, 'record created; demographics updated; email added from PID-13[2].4; invitation queued');
  t.false(out.summary.includes('@'), 'the summary (logged) holds no address');
  const id = out.patientId!;
  // Stored as the PID-3 email is (lower case: one namespace), and kept as sent in the demographics.
  t.deepEqual(emailsOf(f, id), [['alex.q@example.invalid', true]]);
  t.deepEqual(f.store.getPatient(id)!.demographics!.telecom.filter((x) => x.system === 'email').map((x) => x.value), ['Alex.Q@Example.invalid']);
  const [inv, ...more] = f.store.listInvitations();
  t.is(more.length, 0);
  t.like(inv, {
    patientId: id,
    email: 'alex.q@example.invalid',
    source: 'PID-13[2].4',
    organisationId: ORG,
    teamId: 'org-a-renal',
    journalId: 7,
    controlId: 'REG-1',
    status: 'pending',
    closedAt: null,
    closedBy: null,
    closedJournalId: null,
  });
  t.regex(inv!.createdAt, /^\d{4}-\d\d-\d\dT/);
});

test('the same email again (A31, A28) queues nothing; a message without one keeps the email', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const home = '^NET^Internet^alex@example.invalid';
  const a = svc.apply(adt({ home }), { provenance: applyProv() });
  const again = svc.apply(adt({ type: 'ADT^A31', control: 'MSG0002', time: '20240502120000', home }), { provenance: applyProv({ journalId: 2, controlId: 'MSG0002', enteredAt: '2024-05-02T12:00:00.000Z' }) });
  t.is(again.status, 'skipped', 'nothing changed');
  t.false(again.summary.includes('invitation'));
  // An upper-case spelling is the same address.
  svc.apply(adt({ type: 'ADT^A31', control: 'MSG0003', time: '20240503120000', home: '^NET^Internet^ALEX@EXAMPLE.INVALID' }), { provenance: applyProv({ journalId: 3, enteredAt: '2024-05-03T12:00:00.000Z' }) });
  svc.apply(adt({ type: 'ADT^A31', control: 'MSG0004', time: '20240504120000' }), { provenance: applyProv({ journalId: 4, enteredAt: '2024-05-04T12:00:00.000Z' }) });
  t.deepEqual(invitationsOf(f), [[1, a.patientId, 'alex@example.invalid', 'pending']]);
  t.deepEqual(emailsOf(f, a.patientId!), [['alex@example.invalid', true]]);
});

test('a changed email: the old one inactive and its pending invitation cancelled by the message, the new one pending', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const a = svc.apply(adt({ home: '^NET^Internet^old@example.invalid' }), { provenance: applyProv() });
  const b = svc.apply(adt({ type: 'ADT^A31', control: 'MSG0002', time: '20240502120000', work: 'new@example.invalid^NET' }), {
    provenance: applyProv({ journalId: 2, controlId: 'MSG0002', enteredAt: '2024-05-02T12:00:00.000Z' }),
  });
  t.is(b.summary, 'demographics updated; email replaced from PID-14[1].1; invitation queued; 1 pending invitation cancelled');
  t.deepEqual(emailsOf(f, a.patientId!), [['old@example.invalid', false], ['new@example.invalid', true]]);
  t.deepEqual(invitationsOf(f), [[1, a.patientId, 'old@example.invalid', 'cancelled'], [2, a.patientId, 'new@example.invalid', 'pending']]);
  t.like(f.store.getInvitation(1), { closedJournalId: 2, closedBy: null });
  t.truthy(f.store.getInvitation(1)!.closedAt);
  // A sent invitation stays sent when the email changes again (only pending ones are withdrawn;
  // a registered address is replaced by a PID-3 email only).
  closeInvitation(f.store, 2, 'sent', 'ops');
  svc.apply(adt({ type: 'ADT^A31', control: 'MSG0003', time: '20240503120000', pid3: 'third@example.invalid^^^EMAIL^EMAIL' }), { provenance: applyProv({ journalId: 3, enteredAt: '2024-05-03T12:00:00.000Z' }) });
  t.deepEqual(emailsOf(f, a.patientId!).at(-1), ['third@example.invalid', true]);
  t.deepEqual(invitationsOf(f).slice(1), [[2, a.patientId, 'new@example.invalid', 'sent']]);
});

test('a PID-3 email replacing the record\'s cancels the old pending invitation and invites nobody (PKB matches it to an account)', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const a = svc.apply(adt({ home: '^NET^Internet^old@example.invalid' }), { provenance: applyProv() });
  const oru: MessageHandler = () => ({ summary: 'probe', changed: false });
  const out = recordService(f, { handlers: { 'ORU^R01': oru } }).apply(
    Hl7Message.parse(hl7(msh('ORU^R01', 'O1'), `PID|||${NHS}^^^NHS^NH~pid3@example.invalid^^^EMAIL^EMAIL`)),
    { provenance: applyProv({ journalId: 2 }) },
  );
  t.is(out.summary, 'probe; email replaced; 1 pending invitation cancelled');
  t.is(out.status, 'applied');
  t.deepEqual(invitationsOf(f), [[1, a.patientId, 'old@example.invalid', 'cancelled']]);
});

test('an email another record holds is an AR at its PID-13/PID-14 location; nothing of the message stays, no invitation', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const a = svc.apply(adt({ home: '^NET^Internet^taken@example.invalid' }), { provenance: applyProv() });
  // A new person (another NHS number) with the address in PID-14, component 4.
  const e = t.throws(() => svc.apply(adt({ nhs: OTHER_NHS, control: 'MSG0002', work: '01000 000009^WPN^PH~^NET^Internet^Taken@example.invalid' }), { provenance: applyProv({ journalId: 2 }) }), {
    instanceOf: Hl7Error,
  }) as Hl7Error;
  t.is(e.code, 'RECORD_EMAIL_IN_USE');
  t.is(e.hl7Code, 205);
  t.is(e.message, 'the email address in PID-14[2].4 belongs to another record');
  t.deepEqual(e.location, { segment: 'PID', field: 14, repetition: 2, component: 4 });
  t.is(f.store.findIdentifier('nhs', 'https://fhir.nhs.uk/Id/nhs-number', OTHER_NHS), undefined, 'no second record');
  t.deepEqual(invitationsOf(f), [[1, a.patientId, 'taken@example.invalid', 'pending']]);
  // The owner itself may send it again (an update of its own record).
  t.is(svc.apply(adt({ type: 'ADT^A31', control: 'MSG0003', home: '^NET^Internet^taken@example.invalid' }), { provenance: applyProv({ journalId: 3 }) }).patientId, a.patientId);
  // PID-13 XTN-1 location when the address is only there.
  const one = t.throws(() => svc.apply(adt({ nhs: OTHER_NHS, control: 'MSG0004', home: 'taken@example.invalid^NET' }), { provenance: applyProv({ journalId: 4 }) })) as Hl7Error;
  t.is(one.message, 'the email address in PID-13[1].1 belongs to another record');
});

test('a message refused for another reason (duplicate AL1) leaves no email and no invitation', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const allergy = 'AL1|1|DA|PEN^Penicillin^L|SV|Rash|20200101';
  const e = t.throws(() => svc.apply(adt({ home: '^NET^Internet^alex@example.invalid', extra: [allergy, allergy.replace('AL1|1', 'AL1|2')] }), { provenance: applyProv() })) as Hl7Error;
  t.is(e.code, 'RECORD_DUPLICATE_ALLERGY');
  t.deepEqual(invitationsOf(f), []);
  t.is(f.store.findIdentifier('email', 'email', 'alex@example.invalid'), undefined);
  // The corrected message goes through and invites.
  svc.apply(adt({ home: '^NET^Internet^alex@example.invalid', extra: [allergy] }), { provenance: applyProv({ journalId: 2 }) });
  t.is(f.store.listInvitations().length, 1);
});

test('at most one email per field: the first is taken, a second is not added and the summary says so', (t) => {
  const f = recordFixture(t);
  const out = recordService(f).apply(adt({ home: 'first@example.invalid^NET~second@example.invalid^NET' }), { provenance: applyProv() });
  t.is(out.summary, 'record created; demographics updated; email added from PID-13[1].1; invitation queued; PID-13[2].1: a second email in PID-13, not added (one per field)');
  t.deepEqual(emailsOf(f, out.patientId!), [['first@example.invalid', true]]);
  t.deepEqual(f.store.listInvitations().map((i) => i.email), ['first@example.invalid']);
  // Both stay in the demographics, as sent.
  t.is(f.store.getPatient(out.patientId!)!.demographics!.telecom.length, 2);
});

test('PID-13 and PID-14 with different addresses: one email per record, PID-13\'s; the same address in both is one', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const a = svc.apply(adt({ home: '^NET^Internet^home@example.invalid', work: '^NET^Internet^work@example.invalid' }), { provenance: applyProv() });
  t.is(a.summary, 'record created; demographics updated; email added from PID-13[1].4; invitation queued; PID-14[1].4 not added: the record holds one email, PID-13[1].4 is taken');
  t.deepEqual(emailsOf(f, a.patientId!), [['home@example.invalid', true]]);
  const b = svc.apply(adt({ nhs: OTHER_NHS, home: '^NET^Internet^same@example.invalid', work: 'SAME@example.invalid^^Internet' }), { provenance: applyProv({ journalId: 2 }) });
  t.is(b.summary, 'record created; demographics updated; email added from PID-13[1].4; invitation queued');
  // PID-14 alone is taken.
  const c = svc.apply(adt({ nhs: nhsNumber(302), work: 'work2@example.invalid^^X.400' }), { provenance: applyProv({ journalId: 3 }) });
  t.regex(c.summary, /email added from PID-14\[1\]\.1; invitation queued$/);
  t.deepEqual(f.store.listInvitations().map((i) => [i.email, i.source]), [
    ['home@example.invalid', 'PID-13[1].4'],
    ['same@example.invalid', 'PID-13[1].4'],
    ['work2@example.invalid', 'PID-14[1].1'],
  ]);
});

test('XTN-3 Internet / X.400 with the address in XTN-1 is an email in the demographics too; a value that is not an address is not added', (t) => {
  const f = recordFixture(t);
  const out = recordService(f).apply(adt({ home: 'not-an-address^NET~alex@example.invalid^^Internet' }), { provenance: applyProv() });
  t.is(out.summary, 'record created; demographics updated; email added from PID-13[2].1; invitation queued; PID-13[1].1 is not an email address: not added');
  t.deepEqual(f.store.getPatient(out.patientId!)!.demographics!.telecom.map((x) => [x.system, x.value]), [
    ['email', 'not-an-address'],
    ['email', 'alex@example.invalid'],
  ]);
  t.deepEqual(emailsOf(f, out.patientId!), [['alex@example.invalid', true]]);
});

test('PID-3 and PID-13: the same address invites (it came in PID-13); a different one keeps PID-3\'s and invites nobody', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const same = svc.apply(adt({ pid3: 'alex@example.invalid^^^EMAIL^EMAIL', home: '^NET^Internet^alex@example.invalid' }), { provenance: applyProv() });
  t.is(same.summary, 'record created; demographics updated; email added from PID-13[1].4; invitation queued');
  const differs = svc.apply(adt({ nhs: OTHER_NHS, pid3: 'login@example.invalid^^^EMAIL^EMAIL', home: '^NET^Internet^contact@example.invalid' }), { provenance: applyProv({ journalId: 2 }) });
  t.is(differs.summary, 'record created; demographics updated; email added; PID-13[1].4 not added: PID-3 names the record\'s email');
  t.deepEqual(emailsOf(f, differs.patientId!), [['login@example.invalid', true]]);
  t.deepEqual(f.store.listInvitations().map((i) => i.email), ['alex@example.invalid']);
});

test('an operator\'s cancel is final: the address coming back later does not invite again', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const at = (n: number) => ({ provenance: applyProv({ journalId: n, enteredAt: `2024-05-0${n}T12:00:00.000Z` }) });
  const a31 = (n: number, address: string) => adt({ type: 'ADT^A31', control: `MSG000${n}`, time: `2024050${n}120000`, home: `^NET^Internet^${address}` });
  const a = svc.apply(a31(1, 'a@example.invalid'), at(1));
  closeInvitation(f.store, 1, 'cancelled', 'ops');
  svc.apply(a31(2, 'b@example.invalid'), at(2));
  const back = svc.apply(a31(3, 'a@example.invalid'), at(3));
  t.is(back.summary, 'demographics updated; email replaced from PID-13[1].4; invited before: no new invitation; 1 pending invitation cancelled');
  t.deepEqual(invitationsOf(f), [[1, a.patientId, 'a@example.invalid', 'cancelled'], [2, a.patientId, 'b@example.invalid', 'cancelled']]);
  t.like(f.store.getInvitation(1), { closedBy: 'ops', closedJournalId: null });
});

test('email a -> b -> a: the invitation a message cancelled is pending again with the new provenance', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const at = (n: number) => ({ provenance: applyProv({ journalId: n, controlId: `MSG000${n}`, enteredAt: `2024-05-0${n}T12:00:00.000Z` }) });
  const a31 = (n: number, address: string) => adt({ type: 'ADT^A31', control: `MSG000${n}`, time: `2024050${n}120000`, home: `^NET^Internet^${address}` });
  const a = svc.apply(a31(1, 'a@example.invalid'), at(1));
  svc.apply(a31(2, 'b@example.invalid'), at(2));
  t.like(f.store.getInvitation(1), { status: 'cancelled', closedJournalId: 2, closedBy: null });
  const back = svc.apply(a31(3, 'a@example.invalid'), at(3));
  t.is(back.summary, 'demographics updated; email replaced from PID-13[1].4; invitation queued; 1 pending invitation cancelled');
  t.deepEqual(invitationsOf(f), [[1, a.patientId, 'a@example.invalid', 'pending'], [2, a.patientId, 'b@example.invalid', 'cancelled']]);
  t.like(f.store.getInvitation(1), { journalId: 3, controlId: 'MSG0003', closedAt: null, closedBy: null, closedJournalId: null });
});

test('a PID-13/14 address does not replace an email from PID-3 nor a registered one (invitation sent); the summary says so', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const at = (n: number) => ({ provenance: applyProv({ journalId: n, controlId: `MSG000${n}`, enteredAt: `2024-05-0${n}T12:00:00.000Z` }) });
  const a = svc.apply(adt({ pid3: 'login@example.invalid^^^EMAIL^EMAIL' }), at(1));
  const contact = svc.apply(adt({ type: 'ADT^A31', control: 'MSG0002', time: '20240502120000', home: '^NET^Internet^contact@example.invalid' }), at(2));
  t.is(contact.summary, "demographics updated; PID-13[1].4 not added: the record's email came from PID-3");
  t.deepEqual(emailsOf(f, a.patientId!), [['login@example.invalid', true]]);
  t.deepEqual(invitationsOf(f), []);

  const b = svc.apply(adt({ nhs: OTHER_NHS, home: '^NET^Internet^first@example.invalid' }), at(3));
  closeInvitation(f.store, 1, 'sent', 'ops');
  const later = svc.apply(adt({ nhs: OTHER_NHS, type: 'ADT^A31', control: 'MSG0004', time: '20240504120000', work: '^NET^Internet^second@example.invalid' }), at(4));
  t.is(later.summary, "demographics updated; PID-14[1].4 not added: the record's email is registered (invitation sent)");
  t.false(later.summary.includes('@'));
  t.deepEqual(emailsOf(f, b.patientId!), [['first@example.invalid', true]]);
  t.deepEqual(invitationsOf(f), [[1, b.patientId, 'first@example.invalid', 'sent']]);
});

test('a PID-13 contact email does not find its record for a later PID-3 email; it stays that record\'s (RECORD_EMAIL_IN_USE)', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f, { handlers: { 'ORU^R01': () => ({ summary: 'probe', changed: true }) } });
  const child = svc.apply(adt({ home: '^NET^Internet^family@example.invalid' }), { provenance: applyProv() });
  const oru = Hl7Message.parse(hl7(msh('ORU^R01', 'O1', '20240502120000'), 'PID|||family@example.invalid^^^EMAIL^EMAIL||Parent^Pat||19800101|M'));
  const err = t.throws(() => svc.apply(oru, { provenance: applyProv({ journalId: 2 }) }), { instanceOf: Hl7Error });
  t.is(err!.code, 'RECORD_EMAIL_IN_USE');
  t.like(err!.location, { segment: 'PID', field: 3, repetition: 1, component: 1 });
  const a28 = adt({ nhs: OTHER_NHS, control: 'MSG0003', pid3: 'family@example.invalid^^^EMAIL^EMAIL' });
  t.like(t.throws(() => svc.apply(a28, { provenance: applyProv({ journalId: 3 }) }), { instanceOf: Hl7Error }), { code: 'RECORD_EMAIL_IN_USE' });
  t.deepEqual(emailsOf(f, child.patientId!), [['family@example.invalid', true]]);
  // A PID-3 email (no invitation) still finds its record.
  const login = svc.apply(adt({ nhs: OTHER_NHS, control: 'MSG0004', pid3: 'login@example.invalid^^^EMAIL^EMAIL' }), { provenance: applyProv({ journalId: 4 }) });
  const byLogin = svc.apply(Hl7Message.parse(hl7(msh('ORU^R01', 'O2', '20240502120000'), 'PID|||login@example.invalid^^^EMAIL^EMAIL||Testperson^Alex||19800101|F')), { provenance: applyProv({ journalId: 5 }) });
  t.is(byLogin.patientId, login.patientId);
});

test('a merge cancels the merged record\'s pending invitation (by the merge message); an unmerge does not reopen it', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const s = svc.apply(adt({ home: '^NET^Internet^s@example.invalid' }), { provenance: applyProv({ journalId: 1 }) });
  const m = svc.apply(adt({ nhs: OTHER_NHS, control: 'MSG0002', home: '^NET^Internet^m@example.invalid' }), { provenance: applyProv({ journalId: 2 }) });
  const a40 = Hl7Message.parse(hl7(msh('ADT^A40', 'MRG1', '20240601120000'), `PID|||${NHS}^^^NHS^NH`, `MRG|${OTHER_NHS}^^^NHS^NH`));
  svc.apply(a40, { provenance: applyProv({ journalId: 3 }) });
  t.deepEqual(invitationsOf(f), [[1, s.patientId, 's@example.invalid', 'pending'], [2, m.patientId, 'm@example.invalid', 'cancelled']]);
  t.like(f.store.getInvitation(2), { closedJournalId: 3, closedBy: null });
  t.truthy(f.store.getInvitation(2)!.closedAt);
  unmerge(f.store, { patientId: m.patientId!, by: 'admin', reason: 'different people' });
  t.is(f.store.getInvitation(2)!.status, 'cancelled');
});

test('an A31 older than the record and non-ADT messages read no PID-13/14 email', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f, { handlers: { 'ORU^R01': () => ({ summary: 'probe', changed: false }) } });
  const a = svc.apply(adt({ time: '20240502120000' }), { provenance: applyProv({ enteredAt: '2024-05-02T12:00:00.000Z' }) });
  const old = svc.apply(adt({ type: 'ADT^A31', control: 'MSG0002', time: '20240501120000', home: '^NET^Internet^alex@example.invalid' }), { provenance: applyProv({ journalId: 2 }) });
  t.is(old.status, 'skipped');
  const oru = Hl7Message.parse(hl7(msh('ORU^R01', 'O1'), `PID|||${NHS}^^^NHS^NH||Testperson^Alex||19800101|F|||||^NET^Internet^alex@example.invalid`));
  t.is(svc.apply(oru, { provenance: applyProv({ journalId: 3 }) }).summary, 'probe');
  t.deepEqual(emailsOf(f, a.patientId!), []);
  t.deepEqual(invitationsOf(f), []);
});

test('closeInvitation: pending to sent or cancelled once; unknown ids and closed invitations are refused', (t) => {
  const f = recordFixture(t);
  recordService(f).apply(adt({ home: '^NET^Internet^alex@example.invalid' }), { provenance: applyProv() });
  const sent = closeInvitation(f.store, 1, 'sent', 'ops');
  t.like(sent, { status: 'sent', closedBy: 'ops' });
  const again = t.throws(() => closeInvitation(f.store, 1, 'cancelled', 'ops'), { instanceOf: TributaryError }) as TributaryError;
  t.is(again.code, 'RECORD_INVITATION_CLOSED');
  t.is(again.message, 'invitation 1 is already sent: only a pending invitation can be marked sent or cancelled');
  t.is(f.store.getInvitation(1)!.status, 'sent');
  const missing = t.throws(() => closeInvitation(f.store, 9, 'sent', 'ops')) as TributaryError;
  t.is(missing.code, 'ADMIN_NOT_FOUND');
});
