// SPDX-License-Identifier: Apache-2.0
/** ADT A28/A31: demographics upsert, replace-all lists per organisation, older MSH-7, duplicate AL1, labels. */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hl7Error, Hl7Message } from '../../src/hl7/index.js';
import type { AllergyPayload, GpPayload, MedicationPayload, NextOfKinPayload } from '../../src/record/adt.js';
import { ROOT } from '../helpers/engine.js';
import { ORG, OTHER_ORG, applyProv, hl7, msh, nhsNumber, recordFixture, recordService } from '../helpers/record.js';

const full = readFileSync(join(ROOT, 'test/fixtures/record/adt/a28-full.hl7'), 'utf8').trim().split('\n').join('\r');
const NHS = nhsNumber(1);
const pid = `PID|||${NHS}^^^NHS^NH||Testperson^Alex||19800101|F`;

test('A28 creates the record with demographics and every list', (t) => {
  const f = recordFixture(t, { labels: { 'AL1-3|PEN': 'SEXUAL_HEALTH' } });
  f.store.addLocalIdType({ organisationId: ORG, authority: 'RXX', typeCode: 'MRN' });
  const out = recordService(f).apply(Hl7Message.parse(full), { provenance: applyProv({ journalId: 7, controlId: 'ADT0001' }) });
  t.is(out.status, 'applied');
  t.is(out.summary, 'record created; demographics updated; allergies 2; conditions 1; medications 2; next of kin 1; gp 1; email added from PID-13[2].4; invitation queued');
  const id = out.patientId!;
  const p = f.store.getPatient(id)!;
  t.is(p.enteredAt, '2024-05-01T12:00:00.000Z');
  t.deepEqual(p.demographics, {
    names: [{ family: 'Testperson', given: ['Alex', 'Quinn'], prefix: 'Mx', suffix: null, use: 'L' }],
    birthDate: '1980-01-01',
    sex: 'F',
    addresses: [{ lines: ['1 Test Street', 'Flat 2'], city: 'Testville', district: 'Testshire', postcode: 'TE1 1ST', country: 'GBR', use: 'H' }],
    telecom: [
      { system: 'phone', value: '01000 000001', use: 'PRN', where: 'home' },
      { system: 'email', value: 'alex@example.invalid', use: 'NET', where: 'home' },
      { system: 'phone', value: '01000 000002', use: 'WPN', where: 'work' },
    ],
    deceasedAt: null,
    deceased: null,
    maritalStatus: 'M',
    language: null,
    ethnicGroup: null,
  });
  t.deepEqual(
    f.store.identifiers(id).map((x) => [x.kind, x.value, x.status]),
    [
      ['nhs', '9990000018', '01'],
      ['local', 'H100001', null],
      // PID-13[2] alex@example.invalid^NET^Internet^alex@example.invalid: the record's email (test/unit/record-invitations.test.ts).
      ['email', 'alex@example.invalid', null],
    ],
  );
  const allergies = f.store.listItems(id, { kind: 'allergy' });
  t.deepEqual(allergies.map((a) => [a.key, a.label, a.effectiveAt]), [
    ['PEN|2020-01-01', 'SEXUAL_HEALTH', '2020-01-01'],
    ['Peanut|2021-03-15', 'GENERAL_HEALTH', '2021-03-15'],
  ]);
  t.deepEqual(allergies[0]!.payload as AllergyPayload, {
    type: 'DA',
    allergen: { code: 'PEN', text: 'Penicillin', system: 'L' },
    severity: 'SV',
    reactions: ['Rash', 'Wheeze'],
    identifiedOn: '2020-01-01',
  });
  t.is(allergies[0]!.provenance.journalId, 7);
  t.is(allergies[0]!.provenance.controlId, 'ADT0001');
  const meds = f.store.listItems(id, { kind: 'medication' });
  t.deepEqual(meds.map((m) => m.key), ['MET', 'MET#2']);
  t.deepEqual(meds[1]!.payload as MedicationPayload, { product: { code: 'MET', text: 'Metformin 500mg tablets', system: 'L' }, timing: 'in the evening', dose: '2', units: 'tablet' });
  t.deepEqual(f.store.listItems(id, { kind: 'condition' }).map((c) => [c.key, c.effectiveAt]), [['E11|2019-01-01T00:00:00.000Z', '2019-01-01T00:00:00.000Z']]);
  const nok = f.store.listItems(id, { kind: 'next-of-kin' })[0]!.payload as NextOfKinPayload;
  t.deepEqual([nok.name?.family, nok.relationship.code, nok.telecom[0]?.value, nok.contactRole.code], ['Testperson', 'SPO', '01000 000003', 'NOK']);
  t.deepEqual(f.store.listItems(id, { kind: 'gp' })[0]!.payload as GpPayload, {
    practice: { odsCode: 'T99999', name: 'Test Surgery' },
    practitioner: { code: 'G9999998', family: 'Doctor', given: 'Dana' },
  });
});

test('A31 replaces this organisation\'s lists only; another organisation\'s stay', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const a = svc.apply(Hl7Message.parse(hl7(msh('ADT^A28'), pid, 'AL1|1|DA|PEN^Penicillin', 'AL1|2|DA|ASP^Aspirin')), { provenance: applyProv() });
  svc.apply(Hl7Message.parse(hl7(msh('ADT^A31', 'B1', '20240502120000'), pid, 'AL1|1|FA|EGG^Egg')), { provenance: applyProv({ organisationId: OTHER_ORG, journalId: 2 }) });
  const c = svc.apply(Hl7Message.parse(hl7(msh('ADT^A31', 'A2', '20240503120000'), pid, 'AL1|1|DA|ASP^Aspirin', 'AL1|2|DA|LAT^Latex')), { provenance: applyProv({ journalId: 3 }) });
  t.is(c.status, 'applied');
  const id = a.patientId!;
  t.deepEqual(
    f.store.listItems(id, { kind: 'allergy' }).map((x) => `${x.provenance.organisationId}:${x.key}:v${x.version}`),
    [`${ORG}:ASP|:v1`, `${OTHER_ORG}:EGG|:v1`, `${ORG}:LAT|:v1`],
  );
  const pen = f.store.getItem(id, 'allergy', ORG, 'PEN|')!;
  t.true(pen.deleted);
  t.deepEqual(f.store.history(pen.id).map((v) => [v.version, v.deleted, v.provenance.journalId]), [[1, false, 1], [2, true, 3]]);
  // A message without AL1 leaves the list; an empty AL1 clears it.
  svc.apply(Hl7Message.parse(hl7(msh('ADT^A31', 'A3', '20240504120000'), pid)), { provenance: applyProv({ journalId: 4 }) });
  t.is(f.store.listItems(id, { kind: 'allergy', organisationId: ORG }).length, 2);
  svc.apply(Hl7Message.parse(hl7(msh('ADT^A31', 'A4', '20240505120000'), pid, 'AL1|1')), { provenance: applyProv({ journalId: 5 }) });
  t.deepEqual(f.store.listItems(id, { kind: 'allergy' }).map((x) => x.key), ['EGG|']);
});

test('an A31 older than the record changes nothing', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const a = svc.apply(Hl7Message.parse(hl7(msh('ADT^A28', 'A1', '20240501120000'), pid, 'AL1|1|DA|PEN^Penicillin')), { provenance: applyProv({ enteredAt: '2024-05-01T12:00:00.000Z' }) });
  const old = svc.apply(Hl7Message.parse(hl7(msh('ADT^A31', 'A0', '20240401120000'), `PID|||${NHS}^^^NHS^NH||Oldname^Alex||19800101|F`, 'AL1|1|DA|ASP^Aspirin')), {
    provenance: applyProv({ enteredAt: '2024-04-01T12:00:00.000Z', journalId: 2 }),
  });
  t.deepEqual(old, { status: 'skipped', patientId: a.patientId, summary: 'older than the record (MSH-7): skipped' });
  const p = f.store.getPatient(a.patientId!)!;
  t.is(p.demographics!.names[0]!.family, 'Testperson');
  t.is(p.version, 1);
  t.deepEqual(f.store.listItems(a.patientId!, { kind: 'allergy' }).map((x) => x.key), ['PEN|']);
});

test('demographics: blank fields keep, "" clears, a change is a new version with its provenance', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const a = svc.apply(Hl7Message.parse(hl7(msh('ADT^A28'), `${pid}|||1 Test Street^^Testville`)), { provenance: applyProv() });
  svc.apply(Hl7Message.parse(hl7(msh('ADT^A31', 'A2', '20240502120000'), `PID|||${NHS}^^^NHS^NH||Newname^Alex||||||""`)), { provenance: applyProv({ journalId: 2, enteredAt: '2024-05-02T12:00:00.000Z' }) });
  const p = f.store.getPatient(a.patientId!)!;
  t.is(p.version, 2);
  t.is(p.demographics!.names[0]!.family, 'Newname');
  t.is(p.demographics!.birthDate, '1980-01-01');
  t.is(p.demographics!.sex, 'F');
  t.deepEqual(p.demographics!.addresses, []);
  t.deepEqual(f.store.demographicsHistory(a.patientId!).map((v) => [v.version, v.demographics.names[0]!.family, v.provenance.journalId]), [[1, 'Testperson', 1], [2, 'Newname', 2]]);
  // Same content again: no new version, status skipped.
  const same = svc.apply(Hl7Message.parse(hl7(msh('ADT^A31', 'A3', '20240503120000'), `PID|||${NHS}^^^NHS^NH||Newname^Alex`)), { provenance: applyProv({ journalId: 3, enteredAt: '2024-05-03T12:00:00.000Z' }) });
  t.is(same.status, 'skipped');
  t.is(f.store.getPatient(a.patientId!)!.version, 2);
});

test('duplicate AL1 (same allergen and date) rejects the whole message', (t) => {
  const f = recordFixture(t);
  const svc = recordService(f);
  const msg = hl7(msh('ADT^A28'), pid, 'AL1|1|DA|PEN^Penicillin||Rash|20200101', 'AL1|2|DA|PEN^Penicillin (again)||Hives|20200101');
  const e = t.throws(() => svc.apply(Hl7Message.parse(msg), { provenance: applyProv() }), { instanceOf: Hl7Error }) as Hl7Error;
  t.is(e.code, 'RECORD_DUPLICATE_ALLERGY');
  t.is(e.message, 'AL1[2] repeats AL1[1] (same allergen and date)');
  t.is(e.hl7Code, 205);
  t.deepEqual(e.location, { segment: 'AL1', sequence: 2, field: 3 });
  // Nothing was kept: no record was created (the savepoint rolled back).
  t.is(f.store.findIdentifier('nhs', 'https://fhir.nhs.uk/Id/nhs-number', NHS), undefined);
  // Same allergen on different dates is fine.
  const ok = svc.apply(Hl7Message.parse(hl7(msh('ADT^A28'), pid, 'AL1|1|DA|PEN||Rash|20200101', 'AL1|2|DA|PEN||Rash|20210101')), { provenance: applyProv() });
  t.is(f.store.listItems(ok.patientId!, { kind: 'allergy' }).length, 2);
});

test('a bad birth date is an AR with its location', (t) => {
  const f = recordFixture(t);
  const e = t.throws(() => recordService(f).apply(Hl7Message.parse(hl7(msh('ADT^A28'), `PID|||${NHS}^^^NHS^NH||Testperson^Alex||1980AB01|F`)), { provenance: applyProv() })) as Hl7Error;
  t.is(e.code, 'RECORD_BAD_FIELD');
  t.is(e.message, 'PID-7: not a date');
});

test('the handler on its own, through the fixture context', (t) => {
  const f = recordFixture(t, { labels: { 'AL1-3|LAT': 'SOCIAL_CARE' } });
  const svc = recordService(f);
  const r = svc['adt'](Hl7Message.parse(hl7(msh('ADT^A31'), pid, 'AL1|1|EA|LAT^Latex', 'ROL|1|AD|PP|G1234567^Practitioner^Pat')), f.context());
  t.true(r.changed);
  t.is(f.store.listItems(f.patientId, { kind: 'allergy' })[0]!.label, 'SOCIAL_CARE');
  t.deepEqual(f.store.listItems(f.patientId, { kind: 'gp' })[0]!.payload as GpPayload, { practice: null, practitioner: { code: 'G1234567', family: 'Practitioner', given: 'Pat' } });
});
