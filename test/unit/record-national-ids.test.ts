// SPDX-License-Identifier: Apache-2.0
/**
 * CHI (Scotland) and H&C (Northern Ireland) numbers beside the NHS number: PKB's authority / type
 * code pairs, validation with a precise AR and location, separate types (systems), matching, review,
 * auto-create, merges, the migration that admits them, and the FHIR Patient. Synthetic numbers
 * only: computed here, independently of src/record/identifiers.ts.
 */
import test from 'ava';
import Database from 'better-sqlite3';
import type { Patient } from '@medplum/fhirtypes';
import { TributaryError } from '../../src/errors.js';
import { exportInputFromStore, patientBundle } from '../../src/fhir/index.js';
import { Hl7Error, Hl7Message, formatLocation } from '../../src/hl7/index.js';
import {
  CHI_NUMBER_SYSTEM,
  HC_NUMBER_SYSTEM,
  NHS_NUMBER_SYSTEM,
  chiNumberProblem,
  hcNumberProblem,
  readIdentifiers,
} from '../../src/record/identifiers.js';
import { attachIdentifiers } from '../../src/record/patients.js';
import { ReviewQueue } from '../../src/record/review.js';
import { RECORD_MIGRATIONS } from '../../src/record/schema.js';
import { SqliteRecordStore } from '../../src/record/store.js';
import type { MessageHandler } from '../../src/record/types.js';
import { ORG, applyProv, hl7, msh, nhsNumber, recordFixture, recordService } from '../helpers/record.js';

/** Ten digits: nine, then the modulus 11 check digit (weights 10…2); undefined when none exists. */
function withCheck(nine: string): string | undefined {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(nine[i]) * (10 - i);
  const c = 11 - (sum % 11);
  return c === 10 ? undefined : nine + String(c === 11 ? 0 : c);
}
const CHI = withCheck('140375012')!; // 14/03/75
const CHI_2 = withCheck('010170123')!; // 01/01/70
const HC = withCheck('350123456')!;
const NHS = nhsNumber(40);
const CHI_PAIR = 'NHS Scotland^NH';
const HC_PAIR = 'DHSSPS^NH';

const scope = { organisationId: ORG, teamId: null, localTypes: [] };
const pid = (field3: string) => Hl7Message.parse(hl7(msh('ADT^A28'), `PID|||${field3}||Testperson^Alex`));

test('the check digits of the synthetic numbers are what the tests expect', (t) => {
  t.is(CHI, '1403750122');
  t.is(HC, '3501234562');
});

test('CHI numbers: ten digits, a DDMMYY date, the modulus 11 check digit', (t) => {
  t.is(chiNumberProblem(CHI), undefined);
  t.is(chiNumberProblem(CHI_2), undefined);
  t.is(chiNumberProblem(withCheck('290200456')!), undefined, '29 February 2000 (or 1900: the century is not in the number)');
  t.is(chiNumberProblem('14037501'), '8 digits, expected 10');
  t.is(chiNumberProblem('14O3750122'), 'not all digits');
  t.is(chiNumberProblem('1403750123'), 'wrong check digit');
  // Each with a valid check digit, so the date is what is wrong (a case without one would test the check digit instead).
  for (const nine of ['320375012', '001275012', '141375012', '140075012', '310475012', '290299013']) {
    const n = withCheck(nine);
    t.not(n, undefined, `${nine}: no valid check digit`);
    t.is(chiNumberProblem(n!), 'first six digits are not a date (DDMMYY)', n);
  }
  t.is(withCheck('290299013'), '2902990138', '29 February 1999 (or 1899): not a leap year either way');
  t.is(chiNumberProblem(withCheck('310175012')!), undefined, '31 January');
  t.is(chiNumberProblem(withCheck('290296012')!), undefined, '29 February 1996');
});

test('H&C numbers: ten digits from 320 000 0000 to 399 999 9999, the modulus 11 check digit', (t) => {
  t.is(hcNumberProblem(HC), undefined);
  t.is(hcNumberProblem(withCheck('320000001')!), undefined);
  t.is(hcNumberProblem('3501234563'), 'wrong check digit');
  t.is(hcNumberProblem(nhsNumber(1)), 'not in the H&C range 320 000 0000 to 399 999 9999');
  t.is(hcNumberProblem(CHI), 'not in the H&C range 320 000 0000 to 399 999 9999');
  t.is(hcNumberProblem('35012345'), '8 digits, expected 10');
});

test('PKB\'s pairs: NHS Scotland/NH is a CHI number, DHSSPS/NH an H&C number, each its own system', (t) => {
  const ids = readIdentifiers(pid(`${NHS}^^^NHS^NH{status:01}~${CHI}^^^${CHI_PAIR}{status:02}~${HC}^^^${HC_PAIR}~X1^^^NHS SCOTLAND^NH`), scope);
  t.deepEqual(
    ids.map((x) => [x.kind, x.system, x.value, x.status, formatLocation(x.location)]),
    [
      ['nhs', NHS_NUMBER_SYSTEM, NHS, '01', 'PID-3.1'],
      // A status suffix is the NHS number's: on a CHI number it is ignored.
      ['national', CHI_NUMBER_SYSTEM, CHI, null, 'PID-3[2].1'],
      ['national', HC_NUMBER_SYSTEM, HC, null, 'PID-3[3].1'],
      // The authority is compared exactly: another spelling is an unknown pair, ignored.
    ],
  );
});

test('an invalid CHI or H&C number is an AR naming the type, with its location', (t) => {
  const chi = t.throws(() => readIdentifiers(pid(`H1^^^RXX^MRN~3203750120^^^${CHI_PAIR}`), scope), { instanceOf: Hl7Error }) as Hl7Error;
  t.is(chi.code, 'RECORD_INVALID_NATIONAL_ID');
  t.is(chi.hl7Code, 102);
  t.is(chi.message, 'invalid CHI number in PID-3[2].1: first six digits are not a date (DDMMYY)');
  t.deepEqual(chi.location, { segment: 'PID', sequence: 1, field: 3, repetition: 2, component: 1 });
  const hc = t.throws(() => readIdentifiers(pid(`${nhsNumber(1)}^^^${HC_PAIR}`), scope), { instanceOf: Hl7Error }) as Hl7Error;
  t.is(hc.message, 'invalid H&C number in PID-3[1].1: not in the H&C range 320 000 0000 to 399 999 9999');
  // In PID-2 and MRG-1 alike.
  const mrg = Hl7Message.parse(hl7(msh('ADT^A40'), `PID|||${CHI}^^^${CHI_PAIR}`, `MRG|1403750123^^^${CHI_PAIR}`));
  t.is((t.throws(() => readIdentifiers(mrg, scope, { segment: 'MRG', fields: [1] })) as Hl7Error).message, 'invalid CHI number in MRG-1[1].1: wrong check digit');
});

test('one number per national type: two CHI numbers conflict, an NHS and a CHI number do not', (t) => {
  const e = t.throws(() => readIdentifiers(pid(`${CHI}^^^${CHI_PAIR}~${CHI_2}^^^${CHI_PAIR}`), scope)) as Hl7Error;
  t.is(e.code, 'RECORD_CONFLICTING_IDENTIFIERS');
  t.is(e.message, 'conflicting patient identifiers: two different CHI numbers');
  t.is((t.throws(() => readIdentifiers(pid(`${NHS}^^^NHS^NH~${nhsNumber(41)}^^^NHS^NH`), scope)) as Hl7Error).message, 'conflicting patient identifiers: two different NHS numbers');
  t.is(readIdentifiers(pid(`${CHI}^^^${CHI_PAIR}~${CHI}^^^${CHI_PAIR}`), scope).length, 1, 'the same number twice counts once');
  // Same digits under two types: two identifiers (the ranges do not overlap, but the pairs decide).
  t.is(readIdentifiers(pid(`${NHS}^^^NHS^NH~${CHI}^^^${CHI_PAIR}`), scope).length, 2);
});

// ---------------------------------------------------------------------------------------------
// Matching, creation, review, merges
// ---------------------------------------------------------------------------------------------

const reports: MessageHandler = (m, c) => {
  c.store.putItem({ patientId: c.patientId, kind: 'report', key: m.get('OBR-3') ?? '', label: null, payload: {} }, c.provenance);
  return { summary: 'report', changed: true };
};
const a28 = (pidSegment: string, control = 'A1') => Hl7Message.parse(hl7(msh('ADT^A28', control), pidSegment));
const oru = (pidSegment: string, filler = 'F1') => Hl7Message.parse(hl7(msh('ORU^R01', filler), pidSegment, `OBR|1||${filler}`));

function setup(t: Parameters<typeof recordFixture>[0], settings: { autoCreate?: boolean; nhsStatusCheck?: boolean } = {}) {
  const f = recordFixture(t);
  f.store.addLocalIdType({ organisationId: ORG, authority: 'RXX', typeCode: 'MRN' });
  const svc = recordService(f, { settings, handlers: { 'ORU^R01': reports, 'ADT^A40': reports } });
  return { f, svc, queue: new ReviewQueue({ service: svc }) };
}

test('a CHI number creates (A28) and finds the record; an H&C number added later finds it too', (t) => {
  const { f, svc } = setup(t);
  const a = svc.apply(a28(`PID|||${CHI}^^^${CHI_PAIR}~H1^^^RXX^MRN||Testperson^Alex`), { provenance: applyProv() });
  t.is(a.status, 'applied');
  t.deepEqual(f.store.identifiers(a.patientId!).map((x) => [x.kind, x.system, x.value]), [
    ['national', CHI_NUMBER_SYSTEM, CHI],
    ['local', 'local:org-a:RXX:MRN', 'H1'],
  ]);
  t.is(svc.apply(oru(`PID|||${CHI}^^^${CHI_PAIR}`), { provenance: applyProv({ journalId: 2 }) }).patientId, a.patientId);
  // The record learns an H&C number (another type: added, not a conflict) and an NHS number.
  svc.apply(oru(`PID|||${CHI}^^^${CHI_PAIR}~${HC}^^^${HC_PAIR}~${NHS}^^^NHS^NH`, 'F2'), { provenance: applyProv({ journalId: 3 }) });
  t.is(svc.apply(oru(`PID|||${HC}^^^${HC_PAIR}`, 'F3'), { provenance: applyProv({ journalId: 4 }) }).patientId, a.patientId);
  t.deepEqual(f.store.identifiers(a.patientId!).filter((x) => x.kind !== 'local').map((x) => x.system), [CHI_NUMBER_SYSTEM, HC_NUMBER_SYSTEM, NHS_NUMBER_SYSTEM]);
  // A different CHI number for the record matched by its NHS number is not added: one per type.
  svc.apply(oru(`PID|||${NHS}^^^NHS^NH~${CHI_2}^^^${CHI_PAIR}`, 'F4'), { provenance: applyProv({ journalId: 5 }) });
  t.deepEqual(f.store.identifiers(a.patientId!).filter((x) => x.system === CHI_NUMBER_SYSTEM).map((x) => x.value), [CHI]);
  // The same digits as an NHS number would be another type (and system): no match.
  t.is(f.store.findIdentifier('nhs', NHS_NUMBER_SYSTEM, CHI), undefined);
});

test('a local id never overrides a CHI number: local-id-only and mismatch go to review', (t) => {
  const { f, svc, queue } = setup(t);
  const a = svc.apply(a28(`PID|||${CHI}^^^${CHI_PAIR}~H1^^^RXX^MRN||Testperson^Alex`), { provenance: applyProv() });
  const only = svc.apply(oru('PID|||H1^^^RXX^MRN'), { provenance: applyProv({ journalId: 2 }) });
  t.is(only.status, 'review');
  t.deepEqual([queue.get(only.reviewId!)!.reason, queue.get(only.reviewId!)!.detail], ['local-id-only', 'only local ids, matching a record that holds a national number (CHI number)']);
  const other = svc.apply(oru(`PID|||H1^^^RXX^MRN~${CHI_2}^^^${CHI_PAIR}`, 'F2'), { provenance: applyProv({ journalId: 3 }) });
  t.is(other.status, 'review');
  t.deepEqual([queue.get(other.reviewId!)!.reason, queue.get(other.reviewId!)!.detail], ['nhs-mismatch', 'a local id matches a record holding a different CHI number']);
  // Applied as sent, the new CHI number replaces the record's (the old one is kept, inactive).
  queue.resolve(other.reviewId!, { action: 'apply', by: 'admin', note: 'CHI re-issued' });
  t.deepEqual(f.store.identifiers(a.patientId!, true).filter((x) => x.system === CHI_NUMBER_SYSTEM).map((x) => [x.value, x.active]), [
    [CHI, false],
    [CHI_2, true],
  ]);
  // A local id with an H&C number (a type the record does not hold) is no mismatch: applied, H&C learnt.
  const hc = svc.apply(oru(`PID|||H1^^^RXX^MRN~${HC}^^^${HC_PAIR}`, 'F3'), { provenance: applyProv({ journalId: 4 }) });
  t.is(hc.status, 'applied');
  t.truthy(f.store.findIdentifier('national', HC_NUMBER_SYSTEM, HC));
});

test('a CHI number another record holds is never moved: RECORD_NATIONAL_ID_IN_USE when replacing as sent', (t) => {
  const { f, svc, queue } = setup(t);
  const a = svc.apply(a28(`PID|||${CHI}^^^${CHI_PAIR}~H1^^^RXX^MRN||Testperson^Alex`), { provenance: applyProv() });
  const out = svc.apply(oru(`PID|||H1^^^RXX^MRN~${CHI_2}^^^${CHI_PAIR}`), { provenance: applyProv({ journalId: 2 }) });
  t.is(out.status, 'review', 'a different CHI number');
  // Meanwhile another record gets that CHI number: applied as sent, the CHI number decides.
  const b = svc.apply(a28(`PID|||${CHI_2}^^^${CHI_PAIR}||Otherperson^Bo`, 'A2'), { provenance: applyProv({ journalId: 3 }) });
  t.is(queue.resolve(out.reviewId!, { action: 'apply', by: 'admin', note: 'as sent' }).outcome!.patientId, b.patientId);
  t.deepEqual(f.store.identifiers(a.patientId!).filter((x) => x.system === CHI_NUMBER_SYSTEM).map((x) => x.value), [CHI]);
  // The store-level guard behind it: replacing with a number another record holds is an AR.
  const [chi2] = readIdentifiers(pid(`${CHI_2}^^^${CHI_PAIR}`), scope);
  const e = t.throws(() => attachIdentifiers(f.store, a.patientId!, [chi2!], { organisationId: ORG, journalId: 9 }, { replaceNational: true }), { instanceOf: Hl7Error }) as Hl7Error;
  t.is(e.code, 'RECORD_NATIONAL_ID_IN_USE');
  t.is(e.hl7Code, 205);
  t.is(e.message, 'the CHI number in PID-3[1].1 belongs to another record');
});

test('NHS-only rules stay NHS-only: status review needs an NHS number; auto-create takes a CHI or H&C number', (t) => {
  const { f, svc } = setup(t, { autoCreate: true, nhsStatusCheck: true });
  // A CHI number has no status: with status checking on, it is applied (and auto-creates).
  const created = svc.apply(oru(`PID|||${CHI}^^^${CHI_PAIR}{status:03}||Testperson^Alex||19750314|F`), { provenance: applyProv() });
  t.is(created.status, 'applied');
  t.is(f.store.getPatient(created.patientId!)!.demographics!.birthDate, '1975-03-14');
  const byHc = svc.apply(oru(`PID|||${HC}^^^${HC_PAIR}||Otherperson^Bo||19800101|M`, 'F2'), { provenance: applyProv({ journalId: 2 }) });
  t.is(byHc.status, 'applied');
  t.not(byHc.patientId, created.patientId);
  // The NHS number's status still goes to review, whatever other numbers come with it.
  const review = svc.apply(oru(`PID|||${CHI}^^^${CHI_PAIR}~${NHS}^^^NHS^NH{status:02}`, 'F3'), { provenance: applyProv({ journalId: 3 }) });
  t.is(review.status, 'review');
  // An unverified NHS number with a CHI number: the CHI number is a verified national number.
  const both = svc.apply(oru(`PID|||${CHI_2}^^^${CHI_PAIR}~${nhsNumber(42)}^^^NHS^NH{status:02}||Thirdperson^Cy||19700101|F`, 'F4'), {
    provenance: applyProv({ journalId: 4 }),
    reviewed: {},
  });
  t.is(both.status, 'applied');
  // Without any national number, auto-create says what it needs.
  const none = t.throws(() => svc.apply(oru('PID|||H9^^^RXX^MRN||Fourthperson^Di||19700101|F', 'F5'), { provenance: applyProv({ journalId: 5 }) })) as Hl7Error;
  t.is(none.message, 'no record matches the patient identifiers, and ORU^R01 does not create records (auto-create needs a national number (NHS, CHI or H&C number))');
});

test('merges: a CHI number names the surviving record and the merged one', (t) => {
  const { f, svc } = setup(t);
  const keep = svc.apply(a28(`PID|||${CHI}^^^${CHI_PAIR}||Testperson^Alex`), { provenance: applyProv() });
  const old = svc.apply(a28(`PID|||${HC}^^^${HC_PAIR}||Testperson^Alex`, 'A2'), { provenance: applyProv({ journalId: 2 }) });
  const out = svc.apply(Hl7Message.parse(hl7(msh('ADT^A40', 'M1'), `PID|||${CHI}^^^${CHI_PAIR}`, `MRG|${HC}^^^${HC_PAIR}`)), { provenance: applyProv({ journalId: 3 }) });
  t.deepEqual([out.status, out.patientId], ['applied', keep.patientId]);
  t.is(f.store.getPatient(old.patientId!)!.mergedInto, keep.patientId!);
  // The H&C number now finds the survivor.
  t.is(svc.apply(oru(`PID|||${HC}^^^${HC_PAIR}`), { provenance: applyProv({ journalId: 4 }) }).patientId, keep.patientId);
});

test('FHIR: each national number in its own system, official; the NHS status extension only on the NHS number', (t) => {
  const { f, svc } = setup(t);
  const a = svc.apply(a28(`PID|||${NHS}^^^NHS^NH{status:01}~${CHI}^^^${CHI_PAIR}~${HC}^^^${HC_PAIR}||Testperson^Alex`), { provenance: applyProv() });
  const patient = patientBundle(exportInputFromStore(f.store, a.patientId!)!).entry![0]!.resource as Patient;
  t.deepEqual(patient.identifier, [
    {
      extension: [
        {
          url: 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus',
          valueCodeableConcept: { coding: [{ system: 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland', code: '01' }] },
        },
      ],
      use: 'official',
      system: 'https://fhir.nhs.uk/Id/nhs-number',
      value: NHS,
    },
    { use: 'official', system: 'urn:oid:2.16.840.1.113883.2.1.3.2.4.16.53', value: CHI },
    { use: 'official', system: 'urn:uuid:1479257a-ce8f-482a-89fa-429ac066c158', value: HC },
  ]);
});

// ---------------------------------------------------------------------------------------------
// Migration 5
// ---------------------------------------------------------------------------------------------

test('migration 5 widens the identifier kinds, keeping every row, id and index', (t) => {
  const db = new Database(':memory:');
  t.teardown(() => db.close());
  // A database as migration 4 left it, with identifiers in it.
  db.exec('CREATE TABLE schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  for (const sql of RECORD_MIGRATIONS.slice(0, 4)) db.exec(sql);
  db.prepare("INSERT INTO schema_migrations VALUES ('record', 4)").run();
  db.prepare("INSERT INTO record_patient (id, created_at) VALUES ('p1', '2024-01-01T00:00:00.000Z')").run();
  const insert = db.prepare('INSERT INTO record_identifier (id, patient_id, kind, system, value, status, active, organisation_id, journal_id, created_at, deactivated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  insert.run(7, 'p1', 'nhs', NHS_NUMBER_SYSTEM, NHS, '01', 1, 'org-a', 3, '2024-01-01T00:00:00.000Z', null);
  insert.run(9, 'p1', 'email', 'email', 'old@example.invalid', null, 0, 'org-a', 4, '2024-01-01T00:00:00.000Z', '2024-02-01T00:00:00.000Z');
  t.throws(() => insert.run(10, 'p1', 'national', CHI_NUMBER_SYSTEM, CHI, null, 1, null, null, '2024-01-01T00:00:00.000Z', null), { any: true, code: 'SQLITE_CONSTRAINT_CHECK' });
  const before = db.prepare('SELECT * FROM record_identifier ORDER BY id').all();

  const store = new SqliteRecordStore(db);
  t.is(db.prepare("SELECT version FROM schema_migrations WHERE component = 'record'").pluck().get(), RECORD_MIGRATIONS.length);
  t.deepEqual(db.prepare('SELECT * FROM record_identifier ORDER BY id').all(), before);
  store.addIdentifier('p1', { kind: 'national', system: CHI_NUMBER_SYSTEM, value: CHI });
  t.is(store.findIdentifier('national', CHI_NUMBER_SYSTEM, CHI)!.patientId, 'p1');
  t.is(store.findIdentifier('nhs', NHS_NUMBER_SYSTEM, NHS)!.id, 7);
  // The indexes are back: active values unique, and a lookup by patient.
  t.throws(() => store.addIdentifier('p1', { kind: 'national', system: CHI_NUMBER_SYSTEM, value: CHI }), { any: true, code: 'SQLITE_CONSTRAINT_UNIQUE' });
  const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'record_identifier' ORDER BY name").pluck().all();
  t.deepEqual(indexes, ['record_identifier_active', 'record_identifier_patient']);
  t.throws(() => db.prepare("INSERT INTO record_identifier (patient_id, kind, system, value, created_at) VALUES ('p1', 'passport', 'x', 'y', 'z')").run(), { any: true, code: 'SQLITE_CONSTRAINT_CHECK' });
});

/** A database at record schema version 3 (what the last release ships): only the first three migrations. */
function databaseAtVersion3(): Database.Database {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  for (const sql of RECORD_MIGRATIONS.slice(0, 3)) db.exec(sql);
  db.prepare("INSERT INTO schema_migrations VALUES ('record', 3)").run();
  return db;
}

const recordVersion = (db: Database.Database): unknown => db.prepare("SELECT version FROM schema_migrations WHERE component = 'record'").pluck().get();

test('upgrading from record schema version 3 keeps every patient and identifier row and id, inactive ones included', (t) => {
  const db = databaseAtVersion3();
  t.teardown(() => db.close());
  const patient = db.prepare('INSERT INTO record_patient (id, created_at, entered_at, version, demographics, merged_into, created_by_org, created_journal_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  patient.run('p1', '2024-01-01T00:00:00.000Z', '2024-01-02T00:00:00.000Z', 2, '{"names":[]}', null, 'org-a', 1);
  patient.run('p2', '2024-01-03T00:00:00.000Z', null, 0, '{}', 'p1', 'org-b', 2);
  patient.run('p3', '2024-01-04T00:00:00.000Z', null, 0, '{}', null, null, null);
  const insert = db.prepare('INSERT INTO record_identifier (id, patient_id, kind, system, value, status, active, organisation_id, journal_id, created_at, deactivated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  insert.run(3, 'p1', 'nhs', NHS_NUMBER_SYSTEM, NHS, '01', 1, 'org-a', 1, '2024-01-01T00:00:00.000Z', null);
  insert.run(4, 'p1', 'email', 'email', 'old@example.invalid', null, 0, 'org-a', 1, '2024-01-01T00:00:00.000Z', '2024-02-01T00:00:00.000Z');
  insert.run(8, 'p1', 'email', 'email', 'new@example.invalid', null, 1, 'org-a', 5, '2024-02-01T00:00:00.000Z', null);
  insert.run(12, 'p2', 'local', 'local:org-b:RXX:MRN', 'H2', null, 1, 'org-b', 2, '2024-01-03T00:00:00.000Z', null);
  insert.run(13, 'p2', 'nhs', NHS_NUMBER_SYSTEM, nhsNumber(41), '02', 0, 'org-b', 2, '2024-01-03T00:00:00.000Z', '2024-03-01T00:00:00.000Z');
  insert.run(40, 'p3', 'local', 'local:org-a/team-x:*:RIS', 'R-9', null, 1, null, null, '2024-01-04T00:00:00.000Z', null);
  const identifiers = (): unknown[] => db.prepare('SELECT * FROM record_identifier ORDER BY id').all();
  const patients = (): unknown[] => db.prepare('SELECT * FROM record_patient ORDER BY id').all();
  const [identifiersBefore, patientsBefore] = [identifiers(), patients()];

  const store = new SqliteRecordStore(db);
  t.is(recordVersion(db), RECORD_MIGRATIONS.length);
  t.deepEqual(identifiers(), identifiersBefore, 'every identifier row, id and column as it was');
  t.deepEqual(patients(), patientsBefore);
  t.deepEqual(store.identifiers('p1', true).map((i) => [i.id, i.kind, i.active]), [[3, 'nhs', true], [4, 'email', false], [8, 'email', true]]);
  t.is(store.findIdentifier('nhs', NHS_NUMBER_SYSTEM, NHS)!.patientId, 'p1');
  t.is(store.findIdentifier('nhs', NHS_NUMBER_SYSTEM, nhsNumber(41)), undefined, 'inactive: kept, not matched');
  t.is(store.findIdentifier('local', 'local:org-b:RXX:MRN', 'H2')!.id, 12);
  t.is(store.survivorOf('p2'), 'p1');
  // New rows continue after the copied ids; the new kinds and tables are there and empty.
  t.is(store.addIdentifier('p3', { kind: 'national', system: CHI_NUMBER_SYSTEM, value: CHI }).id, 41);
  t.deepEqual(store.teamMemberships('p1', true), []);
  t.deepEqual(store.listRadiologyApplications(), []);
  t.deepEqual(db.prepare('PRAGMA foreign_key_check').all(), []);
  t.deepEqual(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'record_identifier' ORDER BY name").pluck().all(), ['record_identifier_active', 'record_identifier_patient']);
});

test('migration 5 refuses identifiers of missing patients with a message naming them, and changes nothing', (t) => {
  const db = databaseAtVersion3();
  t.teardown(() => db.close());
  db.prepare("INSERT INTO record_patient (id, created_at) VALUES ('p1', '2024-01-01T00:00:00.000Z')").run();
  const insert = db.prepare("INSERT INTO record_identifier (id, patient_id, kind, system, value, active, created_at) VALUES (?, ?, ?, ?, ?, ?, '2024-01-01T00:00:00.000Z')");
  insert.run(5, 'p1', 'nhs', NHS_NUMBER_SYSTEM, NHS, 1);
  // Orphans can only come from outside Tributary (foreign keys off): a manual delete, a partial restore.
  db.pragma('foreign_keys = OFF');
  insert.run(8, 'gone-1', 'email', 'email', 'a@example.invalid', 0);
  insert.run(9, 'gone-2', 'local', 'local:org-a:RXX:MRN', 'H9', 1);
  db.pragma('foreign_keys = ON');
  const before = db.prepare('SELECT * FROM record_identifier ORDER BY id').all();

  const e = t.throws(() => new SqliteRecordStore(db), { instanceOf: TributaryError }) as TributaryError;
  t.is(e.code, 'RECORD_MIGRATION_FAILED');
  t.true(e.isUserError, 'one line from the CLI and the engine, no stack');
  t.is(
    e.message,
    'cannot upgrade the record tables to version 5: 2 record_identifier rows (id 8, 9) name a patient missing from record_patient (gone-1, gone-2); ' +
      'restore those patients or delete those identifier rows, then start again',
  );
  t.is(recordVersion(db), 4, 'the steps before it are kept; migration 5 left nothing behind');
  t.deepEqual(db.prepare('SELECT * FROM record_identifier ORDER BY id').all(), before);
  t.deepEqual(db.prepare("SELECT name FROM sqlite_master WHERE name LIKE 'record_identifier_v5%'").all(), []);

  // Fixed as the message says: the upgrade goes through.
  db.prepare('DELETE FROM record_identifier WHERE id IN (8, 9)').run();
  new SqliteRecordStore(db);
  t.is(recordVersion(db), RECORD_MIGRATIONS.length);
  t.is(db.prepare('SELECT count(*) FROM record_identifier').pluck().get(), 1);
});
