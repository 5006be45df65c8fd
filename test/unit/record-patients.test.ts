// SPDX-License-Identifier: Apache-2.0
/** Patient resolution and creation through RecordService: unknown patients, auto-create, email, dispatch, unsupported types. */
import test from 'ava';
import { Hl7Error, Hl7Message } from '../../src/hl7/index.js';
import type { HandlerContext, MessageHandler } from '../../src/record/types.js';
import { ORG, applyProv, hl7, msh, nhsNumber, recordFixture, recordService } from '../helpers/record.js';

const NHS = nhsNumber(10);
const a28 = (pid: string, control = 'A1') => Hl7Message.parse(hl7(msh('ADT^A28', control), pid));
const seen: { patientId: string; org: string; label: string | null }[] = [];
const probe: MessageHandler = (_m, c: HandlerContext) => {
  seen.push({ patientId: c.patientId, org: c.provenance.organisationId, label: c.labelFor('OBR-4', 'GUM') });
  return { summary: 'probe', changed: true };
};

test('a message type without a handler is an AR (200) and touches nothing', (t) => {
  const f = recordFixture(t);
  const e = t.throws(() => recordService(f).apply(Hl7Message.parse(hl7(msh('ORM^O01'), `PID|||${NHS}^^^NHS^NH||Testperson^Alex`)), { provenance: applyProv() }), { instanceOf: Hl7Error }) as Hl7Error;
  t.is(e.code, 'RECORD_UNSUPPORTED_TYPE');
  t.is(e.hl7Code, 200);
  t.is(e.message, 'unsupported message type ORM^O01');
  t.deepEqual(e.location, { segment: 'MSH', field: 9 });
});

test('handlers are found by TYPE^TRIGGER, then TYPE^*, and get the resolved patient and labels', (t) => {
  const f = recordFixture(t, { labels: { 'OBR-4|GUM': 'SEXUAL_HEALTH' } });
  const svc = recordService(f, { handlers: { 'ORU^*': probe } });
  const created = svc.apply(a28(`PID|||${NHS}^^^NHS^NH||Testperson^Alex`), { provenance: applyProv() });
  seen.length = 0;
  const out = svc.apply(Hl7Message.parse(hl7(msh('ORU^R01', 'O1'), `PID|||${NHS}^^^NHS^NH`)), { provenance: applyProv({ journalId: 2 }) });
  t.deepEqual(out, { status: 'applied', patientId: created.patientId, summary: 'probe' });
  t.deepEqual(seen, [{ patientId: created.patientId!, org: ORG, label: 'SEXUAL_HEALTH' }]);
});

test('other messages for an unknown patient are an AR (204); A28 needs names', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f, { handlers: { 'ORU^R01': probe } });
  const e = t.throws(() => svc.apply(Hl7Message.parse(hl7(msh('ORU^R01'), `PID|||${NHS}^^^NHS^NH||Testperson^Alex||19800101|F`)), { provenance: applyProv() })) as Hl7Error;
  t.is(e.code, 'RECORD_UNKNOWN_PATIENT');
  t.is(e.hl7Code, 204);
  t.is(e.message, 'no record matches the patient identifiers, and ORU^R01 does not create records');
  const n = t.throws(() => svc.apply(a28(`PID|||${NHS}^^^NHS^NH||Testperson`), { provenance: applyProv() })) as Hl7Error;
  t.is(n.code, 'RECORD_CREATE_INSUFFICIENT');
  t.is(n.message, 'cannot create a record: a given name (PID-5.2) missing');
  const none = t.throws(() => svc.apply(a28('PID|||H1^^^UNKNOWN^MRN||Testperson^Alex'), { provenance: applyProv() })) as Hl7Error;
  t.is(none.code, 'RECORD_NO_IDENTIFIER');
});

test('auto-create: any message creates with a verified NHS number, names, birth date and sex', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f, { settings: { autoCreate: true }, handlers: { 'ORU^R01': probe } });
  const oru = (pid: string) => Hl7Message.parse(hl7(msh('ORU^R01'), pid));
  const noSex = t.throws(() => svc.apply(oru(`PID|||${NHS}^^^NHS^NH||Testperson^Alex||19800101`), { provenance: applyProv() })) as Hl7Error;
  t.is(noSex.message, 'no record matches the patient identifiers, and ORU^R01 does not create records (auto-create needs sex (PID-8))');
  const unverified = t.throws(() => svc.apply(oru(`PID|||${NHS}^^^NHS^NH{status:02}||Testperson^Alex||19800101|F`), { provenance: applyProv() })) as Hl7Error;
  t.is(unverified.message, 'no record matches the patient identifiers, and ORU^R01 does not create records (auto-create needs a verified NHS number (status 01))');
  f.store.addLocalIdType({ organisationId: ORG, authority: '*', typeCode: 'MRN' });
  const localOnly = t.throws(() => svc.apply(oru('PID|||H1^^^RXX^MRN||Testperson^Alex||19800101|F'), { provenance: applyProv() })) as Hl7Error;
  t.is(localOnly.code, 'RECORD_UNKNOWN_PATIENT');
  const ok = svc.apply(oru(`PID|||${NHS}^^^NHS^NH{status:01}||Testperson^Alex||19800101|F`), { provenance: applyProv() });
  t.is(ok.status, 'applied');
  t.is(ok.summary, 'record created; probe');
  const p = f.store.getPatient(ok.patientId!)!;
  t.deepEqual([p.demographics?.names[0]?.family, p.demographics?.birthDate, p.demographics?.sex], ['Testperson', '1980-01-01', 'F']);
});

test('an email belongs to one record: reuse is an AR, a new one replaces the old', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const a = svc.apply(a28(`PID|||${NHS}^^^NHS^NH~one@example.invalid^^^EMAIL^EMAIL||Testperson^Alex`), { provenance: applyProv() });
  const e = t.throws(() => svc.apply(a28(`PID|||${nhsNumber(11)}^^^NHS^NH~ONE@example.invalid^^^EMAIL^EMAIL||Otherperson^Bo`, 'A2'), { provenance: applyProv({ journalId: 2 }) })) as Hl7Error;
  t.is(e.code, 'RECORD_EMAIL_IN_USE');
  t.is(e.message, 'the email address in PID-3[2].1 belongs to another record');
  t.is(e.hl7Code, 205);
  // Nothing of the rejected message stayed (no second record with that NHS number).
  t.is(f.store.findIdentifier('nhs', 'https://fhir.nhs.uk/Id/nhs-number', nhsNumber(11)), undefined);
  // The email alone finds its record; a new email replaces the old one.
  svc.apply(a28('PID|||one@example.invalid^^^EMAIL^EMAIL||Testperson^Alex', 'A3'), { provenance: applyProv({ journalId: 3, enteredAt: '2024-05-02T00:00:00.000Z' }) });
  svc.apply(a28(`PID|||${NHS}^^^NHS^NH~two@example.invalid^^^EMAIL^EMAIL||Testperson^Alex`, 'A4'), { provenance: applyProv({ journalId: 4, enteredAt: '2024-05-03T00:00:00.000Z' }) });
  t.deepEqual(f.store.identifiers(a.patientId!).filter((x) => x.kind === 'email').map((x) => x.value), ['two@example.invalid']);
  t.deepEqual(f.store.identifiers(a.patientId!, true).filter((x) => x.kind === 'email').map((x) => [x.value, x.active]), [['one@example.invalid', false], ['two@example.invalid', true]]);
});

test('local ids are learned from A28 and then find the record; PKB id is the record id', (t) => {
  const f = recordFixture(t);
  f.store.addLocalIdType({ organisationId: ORG, authority: 'RXX', typeCode: 'MRN' });
  const svc = recordService(f, { handlers: { 'ORU^R01': probe } });
  const a = svc.apply(a28('PID|||H7^^^RXX^MRN||Testperson^Alex'), { provenance: applyProv() });
  const b = svc.apply(Hl7Message.parse(hl7(msh('ORU^R01'), 'PID|||H7^^^RXX^MRN')), { provenance: applyProv({ journalId: 2 }) });
  t.is(b.patientId, a.patientId);
  const c = svc.apply(Hl7Message.parse(hl7(msh('ORU^R01'), `PID||${a.patientId}^^^PKB^PI`)), { provenance: applyProv({ journalId: 3 }) });
  t.is(c.patientId, a.patientId);
  // Another organisation's MRN namespace does not match.
  const e = t.throws(() => svc.apply(Hl7Message.parse(hl7(msh('ORU^R01'), 'PID|||H7^^^RXX^MRN')), { provenance: applyProv({ organisationId: 'org-b' }) })) as Hl7Error;
  t.is(e.code, 'RECORD_NO_IDENTIFIER');
});
