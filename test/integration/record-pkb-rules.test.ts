// SPDX-License-Identifier: Apache-2.0
/**
 * PKB rules of issue 4 through the real ingest path (MLLP → channels → record, in the journal's
 * transaction): radiology decided by the organisation's declared sending applications (MSH-3);
 * SNOMED CT measurements; CHI and H&C numbers; ZTM team membership (aliases from the senders model);
 * PID-13/PID-14 emails and their registration invitations. Synthetic patients only.
 */
import test, { type ExecutionContext } from 'ava';
import type { DiagnosticReport, Observation, Patient } from '@medplum/fhirtypes';
import type { Engine } from '../../src/engine/engine.js';
import { exportInputFromStore, patientBundle } from '../../src/fhir/index.js';
import { MllpClient } from '../../src/interfaces/mllp-client.js';
import { CHI_NUMBER_SYSTEM, HC_NUMBER_SYSTEM, type MeasurementPayload, NHS_NUMBER_SYSTEM, SqliteRecordStore, type ReportPayload } from '../../src/record/index.js';
import { loadConfig, mergeConfig } from '../../src/config/config.js';
import { startEngine } from '../../src/engine/engine.js';
import type { Logger } from '../../src/log.js';
import { inProcessEngine, tempDir } from '../helpers/engine.js';
import { msa } from '../helpers/messages.js';
import { nhsNumber, recordFixtureText, withMsh } from '../helpers/record.js';
import { addSender } from '../helpers/senders.js';

const ORG = 'st-elsewhere';

interface Hospital {
  engine: Engine;
  send(text: string, controlId: string): Promise<ReturnType<typeof msa>>;
  record: SqliteRecordStore;
}

/** An engine whose config file declares the organisation and its record configuration; a sender with a credential. */
async function hospital(t: ExecutionContext, access: Record<string, unknown> = {}): Promise<Hospital> {
  const engine = await inProcessEngine(t, { access: { organisations: [{ id: ORG, name: 'St Elsewhere', kind: 'customer' }], ...access } });
  const pas = addSender(engine, { id: 'pas', organisationId: ORG, credential: true });
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort });
  t.teardown(() => client.close());
  return { engine, record: new SqliteRecordStore(engine.journal.database), send: async (text, controlId) => msa(await client.send(withMsh(text, pas.msh8, controlId))) };
}

test('radiology by MSH-3: a declared sending application makes its reports radiology, in the record and in FHIR', async (t) => {
  const h = await hospital(t, { radiologyApplications: [{ organisation: ORG, application: 'kestrel_ris' }] });
  for (const [file, id] of [
    ['adt/a28-full.hl7', 'A28-1'],
    ['oru/radiology-by-application.hl7', 'RIS-1'],
    ['oru/lab-panel.hl7', 'LAB-1'],
  ] as const) {
    const ack = await h.send(recordFixtureText(file), id);
    t.is(ack.code, 'AA', `${file}: ${ack.text}`);
  }
  const patientId = h.record.findIdentifier('nhs', NHS_NUMBER_SYSTEM, '9990000018')!.patientId;
  const category = (key: string) => (h.record.getItem(patientId, 'report', ORG, key)!.payload as unknown as ReportPayload).category;
  t.is(category('U88001'), 'radiology', 'MSH-3.1 KESTREL_RIS matches the declared kestrel_ris; OBR-24 is OTH');
  t.is(category('F55001'), 'laboratory', 'WINPATH is not declared; OBR-24 CH');
  const bundle = patientBundle(exportInputFromStore(h.record, patientId)!);
  const reports = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is DiagnosticReport => r?.resourceType === 'DiagnosticReport');
  t.deepEqual(
    reports.map((r) => [r.identifier?.[0]?.value, r.category?.[0]?.coding?.[0]?.code]),
    [
      ['U88001', 'RAD'],
      ['F55001', 'LAB'],
    ],
  );
});

test('radiology by MSH-3: without the declaration the same report is laboratory (OBR-24 decides)', async (t) => {
  const h = await hospital(t);
  t.is((await h.send(recordFixtureText('adt/a28-full.hl7'), 'A28-1')).code, 'AA');
  t.is((await h.send(recordFixtureText('oru/radiology-by-application.hl7'), 'RIS-1')).code, 'AA');
  const patientId = h.record.findIdentifier('nhs', NHS_NUMBER_SYSTEM, '9990000018')!.patientId;
  t.is((h.record.getItem(patientId, 'report', ORG, 'U88001')!.payload as unknown as ReportPayload).category, 'laboratory');
});

test('SNOMED CT measurements: an observations panel is split into measurement and result items, exported as vital signs', async (t) => {
  const h = await hospital(t);
  t.is((await h.send(recordFixtureText('adt/a28-full.hl7'), 'A28-1')).code, 'AA');
  const ack = await h.send(recordFixtureText('oru/vital-signs.hl7'), 'OBS-1');
  t.is(ack.code, 'AA', ack.text);
  const patientId = h.record.findIdentifier('nhs', NHS_NUMBER_SYSTEM, '9990000018')!.patientId;
  t.deepEqual(
    h.record.listItems(patientId, { kind: 'measurement' }).map((i) => (i.payload as unknown as MeasurementPayload).measurement.name),
    ['Body weight', 'Body height', 'Systolic blood pressure', 'Heart rate', 'Body temperature', 'Peripheral oxygen saturation'],
  );
  t.deepEqual(
    h.record.listItems(patientId, { kind: 'result' }).map((i) => i.key),
    ['VS1001|271650006|SNOMED', 'VS1001|60621009|SCT', 'VS1001|29463-7|LN'],
  );
  const row = h.engine.journal.list().at(-1)!;
  t.is(row.status, 'accepted');
  const observations = (patientBundle(exportInputFromStore(h.record, patientId)!).entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is Observation => r?.resourceType === 'Observation');
  t.deepEqual(observations.map((o) => o.category?.[0]?.coding?.[0]?.code).sort(), [...Array(6).fill('vital-signs'), ...Array(3).fill('laboratory')].sort());
  // A correction over MLLP is a new version of the measurement.
  t.is((await h.send(recordFixtureText('oru/vital-signs.hl7').replace('||72.4|kg^kilogram^UCUM|||||F', '||73.0|kg^kilogram^UCUM|||||C'), 'OBS-2')).code, 'AA');
  const weight = h.record.getItem(patientId, 'measurement', ORG, 'VS1001|27113001|SCT')!;
  t.deepEqual(h.record.history(weight.id).map((v) => [v.version, v.provenance.controlId, (v.payload as unknown as MeasurementPayload).measurement.value]), [
    [1, 'OBS-1', 72.4],
    [2, 'OBS-2', 73],
  ]);
});

test('CHI and H&C numbers: a record created and found by each; an invalid one is an AR with its location, journaled', async (t) => {
  const h = await hospital(t);
  const a28 = recordFixtureText('adt/a28-chi-hc.hl7');
  t.is((await h.send(a28, 'A28-SCT')).code, 'AA');
  const chi = h.record.findIdentifier('national', CHI_NUMBER_SYSTEM, '1403750122');
  const hc = h.record.findIdentifier('national', HC_NUMBER_SYSTEM, '3501234562');
  t.truthy(chi);
  t.is(hc?.patientId, chi?.patientId);
  // A result for the patient by the H&C number alone lands on the same record.
  const oru = recordFixtureText('oru/lab-panel.hl7').replace('9990000018^^^NHS^NH', '3501234562^^^DHSSPS^NH');
  t.is((await h.send(oru, 'ORU-NI')).code, 'AA');
  t.is(h.record.listItems(chi!.patientId, { kind: 'result' }).length, 4);
  // A CHI number whose first six digits are not a date: AR, nothing stored, the reason journaled.
  const bad = await h.send(a28.replace('1403750122^^^NHS Scotland', '3203750120^^^NHS Scotland'), 'A28-BAD');
  t.is(bad.code, 'AR');
  t.regex(bad.text, /invalid CHI number in PID-3\[1\]\.1: first six digits are not a date \(DDMMYY\)/);
  const row = h.engine.journal.list().at(-1)!;
  t.deepEqual([row.controlId, row.status, row.reasonCode], ['A28-BAD', 'rejected', 'RECORD_INVALID_NATIONAL_ID']);
  t.regex(row.errorLocation ?? '', /^PID-3/);
  // Exported as separate identifier systems.
  const patient = patientBundle(exportInputFromStore(h.record, chi!.patientId)!).entry![0]!.resource as Patient;
  t.deepEqual(patient.identifier?.map((i) => [i.system, i.value, i.use]), [
    ['urn:oid:2.16.840.1.113883.2.1.3.2.4.16.53', '1403750122', 'official'],
    ['urn:uuid:1479257a-ce8f-482a-89fa-429ac066c158', '3501234562', 'official'],
  ]);
});

test('ZTM through the engine: team aliases from the senders model; the creating team, adds, removals, an unknown alias AR', async (t) => {
  const h = await hospital(t, {
    teams: [{ id: 'diabetes', organisation: ORG, name: 'Diabetes' }],
    aliases: [
      { value: 'RXX', organisation: ORG },
      { value: 'RXX_PRT', organisation: ORG, team: `${ORG}-prt` },
      { value: 'RXX_DIABETES', organisation: ORG, team: 'diabetes' },
    ],
  });
  t.is((await h.send(recordFixtureText('adt/a28-full.hl7'), 'A28-1')).code, 'AA');
  const patientId = h.record.findIdentifier('nhs', NHS_NUMBER_SYSTEM, '9990000018')!.patientId;
  const teams = (): string[] => h.record.teamMemberships(patientId).map((m) => m.teamId).sort();
  t.deepEqual(teams(), [`${ORG}-prt`], 'MSH-4 RXX names the organisation: the record joins its Patient Record Team');
  const a31 = recordFixtureText('adt/a31-ztm.hl7');
  t.is((await h.send(a31.replace('ZTM|RXX_PRT~RXX_DIABETES|RXX_RENAL', 'ZTM|RXX_PRT~RXX_DIABETES'), 'A31-ADD')).code, 'AA');
  t.deepEqual(teams(), ['diabetes', `${ORG}-prt`]);
  const unknown = await h.send(a31, 'A31-RENAL');
  t.is(unknown.code, 'AR', 'RXX_RENAL is no alias here');
  t.regex(unknown.text, /RXX_RENAL/);
  t.deepEqual(teams(), ['diabetes', `${ORG}-prt`], 'an AR changes no team');
  t.is((await h.send(a31.replace('ZTM|RXX_PRT~RXX_DIABETES|RXX_RENAL', 'ZTM||RXX_DIABETES').replace('20240506120000', '20240507120000'), 'A31-REMOVE')).code, 'AA');
  t.deepEqual(teams(), [`${ORG}-prt`]);
  t.deepEqual(h.record.teamMemberships(patientId, true).filter((m) => m.teamId === 'diabetes').map((m) => m.removedJournalId !== null), [true], 'the removal is kept as history');
});

test('PID-13 email through the engine: an invitation in the message\'s transaction; a reused email is an AR with its location and no invitation; no address in the logs', async (t) => {
  // The engine with a logger that keeps every line, debug included (the ingest logs each record summary).
  const lines: string[] = [];
  const keep = (level: string) => (msg: string, meta?: Record<string, unknown>) => void lines.push(`${level} ${msg} ${JSON.stringify(meta ?? {})}`);
  const logger: Logger = { bodies: false, error: keep('error'), warn: keep('warn'), info: keep('info'), debug: keep('debug'), body: () => {} };
  const config = loadConfig(mergeConfig({ dataDir: tempDir(t), host: '127.0.0.1', mllp: { port: 0 }, http: { port: 0 } }, { access: { organisations: [{ id: ORG, name: 'St Elsewhere', kind: 'customer' }] } }));
  const engine = await startEngine(config, logger);
  t.teardown(() => engine.close());
  const pas = addSender(engine, { id: 'pas', organisationId: ORG, credential: true });
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort });
  t.teardown(() => client.close());
  const send = async (text: string, controlId: string) => msa(await client.send(withMsh(text, pas.msh8, controlId)));
  const record = new SqliteRecordStore(engine.journal.database);
  const a28 = recordFixtureText('adt/a28-full.hl7');

  t.is((await send(a28, 'A28-1')).code, 'AA');
  const patientId = record.findIdentifier('nhs', NHS_NUMBER_SYSTEM, '9990000018')!.patientId;
  const row = engine.journal.list().at(-1)!;
  t.deepEqual(
    record.listInvitations().map((i) => [i.patientId, i.email, i.source, i.organisationId, i.journalId, i.controlId, i.status]),
    [[patientId, 'alex@example.invalid', 'PID-13[2].4', ORG, row.id, 'A28-1', 'pending']],
  );

  // Another person (NHS number, MRN) with the same address: AR at PID-13[2].4, journaled; no record, no invitation.
  const other = nhsNumber(701);
  const reused = await send(a28.replaceAll('9990000018', other).replace('H100001', 'H100701'), 'A28-2');
  t.is(reused.code, 'AR');
  t.regex(reused.text, /the email address in PID-13\[2\]\.4 belongs to another record/);
  const rejected = engine.journal.list().at(-1)!;
  t.deepEqual([rejected.controlId, rejected.status, rejected.reasonCode], ['A28-2', 'rejected', 'RECORD_EMAIL_IN_USE']);
  t.regex(rejected.errorLocation ?? '', /^PID-13/);
  t.is(record.findIdentifier('nhs', NHS_NUMBER_SYSTEM, other), undefined);
  t.is(record.listInvitations().length, 1);

  // The same person's A31 with a new address: the old invitation cancelled by it, a new one pending.
  const a31 = a28.replace('||ADT^A28|', '||ADT^A31|').replace('20240501120000', '20240502120000').replaceAll('alex@example.invalid', 'alex.new@example.invalid');
  t.is((await send(a31, 'A31-1')).code, 'AA');
  const a31Row = engine.journal.list().at(-1)!;
  t.deepEqual(
    record.listInvitations().map((i) => [i.email, i.status, i.closedJournalId]),
    [
      ['alex@example.invalid', 'cancelled', a31Row.id],
      ['alex.new@example.invalid', 'pending', null],
    ],
  );
  // The record summaries are logged (debug): they name fields, never an address.
  t.true(lines.some((l) => l.includes('invitation queued')), 'the summary was logged');
  t.false(lines.some((l) => l.includes('@example.invalid')), lines.filter((l) => l.includes('@')).join('\n'));
});
