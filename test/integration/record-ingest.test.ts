// SPDX-License-Identifier: Apache-2.0
/**
 * The record behind the ACK, end to end over MLLP: an admitted message is applied to the record in
 * the journal's transaction (AA = journaled and in the record); what the record refuses is AR,
 * journaled as rejected, and leaves the record untouched; duplicates have no second effect; the
 * acting organisation and partner chain become the items' provenance.
 */
import test from 'ava';
import type { Engine } from '../../src/engine/engine.js';
import { MllpClient } from '../../src/interfaces/mllp-client.js';
import { SqliteRecordStore } from '../../src/record/index.js';
import { inProcessEngine } from '../helpers/engine.js';
import { adtA01, msa } from '../helpers/messages.js';
import { addSender, adminStore } from '../helpers/senders.js';
import { recordFixtureText, withMsh } from '../helpers/record.js';

const fixture = recordFixtureText;

async function hospital(t: Parameters<typeof inProcessEngine>[0]): Promise<{ engine: Engine; send: (m: string) => Promise<ReturnType<typeof msa>>; msh8: string }> {
  const engine = await inProcessEngine(t);
  const store = adminStore(engine);
  store.removeSender('demo-loopback');
  store.removeOrganisation('demo');
  const pas = addSender(engine, { id: 'pas', organisationId: 'st-elsewhere', credential: true, autoCreate: false });
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort });
  t.teardown(() => client.close());
  return { engine, msh8: pas.msh8, send: async (m) => msa(await client.send(m)) };
}

test('A28 creates the record, ORU adds results; provenance names the sender, organisation and message', async (t) => {
  const { engine, send, msh8 } = await hospital(t);
  t.is((await send(withMsh(fixture('adt/a28-full.hl7'), msh8, 'A28-1'))).code, 'AA');
  t.is((await send(withMsh(fixture('oru/lab-panel.hl7'), msh8, 'ORU-1'))).code, 'AA');
  const record = new SqliteRecordStore(engine.journal.database);
  const id = record.findIdentifier('nhs', 'https://fhir.nhs.uk/Id/nhs-number', '9990000018');
  t.truthy(id);
  const patientId = id!.patientId;
  const results = record.listItems(patientId, { kind: 'result' });
  t.is(results.length, 4);
  const journal = engine.journal.list();
  const potassium = results.find((r) => r.key.includes('2823-3'))!;
  t.like(potassium.provenance, { organisationId: 'st-elsewhere', senderId: 'pas', controlId: 'ORU-1', messageType: 'ORU^R01', journalId: journal[1]!.id, chain: 'Org st-elsewhere' });
  t.is(potassium.provenance.enteredAt, '2024-05-01T12:00:00.000Z');
  t.is(record.listItems(patientId, { kind: 'next-of-kin' }).length, 1);
});

test('what the record refuses is AR, journaled as rejected, and leaves nothing in the record', async (t) => {
  const { engine, send, msh8 } = await hospital(t);
  // Unknown patient, and this organisation has no auto-create.
  const unknown = await send(adtA01('A01-UNKNOWN', { security: msh8 }));
  t.is(unknown.code, 'AR');
  t.regex(unknown.text, /no record matches the patient identifiers/);
  // Invalid NHS number (bad check digit), with its location.
  const badNhs = withMsh(fixture('adt/a28-full.hl7'), msh8, 'A28-BAD').replace('9990000018', '9990000019');
  const bad = await send(badNhs);
  t.is(bad.code, 'AR');
  t.regex(bad.text, /invalid NHS number/);
  // Unsupported type.
  const a04 = await send(adtA01('A04-1', { security: msh8 }).replace('ADT^A01^ADT_A01', 'ADT^A04^ADT_A01'));
  t.is(a04.code, 'AR');
  t.regex(a04.text, /unsupported message type/);
  // A result without any observation time: AR, and the record keeps nothing of it.
  t.is((await send(withMsh(fixture('adt/a28-full.hl7'), msh8, 'A28-OK'))).code, 'AA');
  const noTime = withMsh(fixture('oru/lab-panel.hl7'), msh8, 'ORU-NOTIME').replace('|||20240501093000|', '||||').replace('|||20240501094500|', '||||');
  const refused = await send(noTime);
  t.is(refused.code, 'AR');
  t.regex(refused.text, /No observation timestamp/);

  const rows = engine.journal.list();
  t.deepEqual(rows.map((r) => [r.controlId, r.status, r.reasonCode]), [
    ['A01-UNKNOWN', 'rejected', 'RECORD_UNKNOWN_PATIENT'],
    ['A28-BAD', 'rejected', 'RECORD_INVALID_NHS_NUMBER'],
    ['A04-1', 'rejected', 'RECORD_UNSUPPORTED_TYPE'],
    ['A28-OK', 'accepted', null],
    ['ORU-NOTIME', 'rejected', 'RECORD_OBSERVATION_TIME_MISSING'],
  ]);
  t.regex(rows[1]!.errorLocation ?? '', /^PID-3/);
  t.is(rows[4]!.ack!.split('\r').find((s) => s.startsWith('MSA'))!.split('|')[1], 'AR', 'the stored ACK is the AR that was sent');
  const db = engine.journal.database;
  t.is(db.prepare('SELECT count(*) FROM record_patient').pluck().get(), 1, 'only A28-OK made a record');
  t.is(db.prepare("SELECT count(*) FROM record_item WHERE kind IN ('report', 'result')").pluck().get(), 0);
  // A corrected resend with the same MSH-10 is not a duplicate of the refused one.
  const fixed = await send(withMsh(fixture('oru/lab-panel.hl7'), msh8, 'ORU-NOTIME'));
  t.is(fixed.code, 'AA');
});

test('a duplicate has no second effect; a correction is a new version', async (t) => {
  const { engine, send, msh8 } = await hospital(t);
  t.is((await send(withMsh(fixture('adt/a28-full.hl7'), msh8, 'A28-1'))).code, 'AA');
  t.is((await send(withMsh(fixture('oru/lab-panel.hl7'), msh8, 'ORU-1'))).code, 'AA');
  t.is((await send(withMsh(fixture('oru/lab-panel.hl7'), msh8, 'ORU-1'))).code, 'AA');
  const corrected = withMsh(fixture('oru/lab-panel.hl7'), msh8, 'ORU-2').replace('||4.6|', '||4.9|');
  t.is((await send(corrected)).code, 'AA');
  t.deepEqual(engine.journal.list().map((r) => r.status), ['accepted', 'accepted', 'duplicate', 'accepted']);
  const record = new SqliteRecordStore(engine.journal.database);
  const patientId = record.findIdentifier('nhs', 'https://fhir.nhs.uk/Id/nhs-number', '9990000018')!.patientId;
  const potassium = record.listItems(patientId, { kind: 'result' }).find((r) => r.key.includes('2823-3'))!;
  t.deepEqual(record.history(potassium.id).map((v) => [v.version, v.provenance.controlId]), [
    [1, 'ORU-1'],
    [2, 'ORU-2'],
  ]);
});

test('a partner sending for a customer: the chain is the provenance of what it wrote', async (t) => {
  const { engine, send, msh8 } = await hospital(t);
  const store = adminStore(engine);
  store.addAlias({ value: 'LAB_ALIAS', organisationId: 'st-elsewhere' });
  const partner = addSender(engine, { id: 'acme-feed', organisationId: 'acme', kind: 'partner', credential: true });
  store.addGrant({ customerOrganisationId: 'st-elsewhere', partnerOrganisationId: 'acme' });
  t.is((await send(withMsh(fixture('adt/a28-full.hl7'), msh8, 'A28-1').replace('|RXX|TRIBUTARY|', '|LAB_ALIAS|TRIBUTARY|'))).code, 'AA');
  t.is((await send(withMsh(fixture('oru/lab-panel.hl7'), partner.msh8, 'ORU-P'))).code, 'AA');
  const row = engine.journal.database.prepare("SELECT organisation_id, on_behalf_of, chain, sender_id FROM record_item WHERE kind = 'report'").get() as Record<string, string>;
  t.deepEqual(row, { organisation_id: 'st-elsewhere', on_behalf_of: '["acme"]', chain: 'Org acme on behalf of Org st-elsewhere', sender_id: 'acme-feed' });
});

test('a batch frame whose second message the record refuses: one ACK naming that message, its reason and location', async (t) => {
  const { engine, send, msh8 } = await hospital(t);
  const good = withMsh(recordFixtureText('adt/a28-full.hl7'), msh8, 'B-1');
  const bad = withMsh(recordFixtureText('adt/a28-full.hl7'), msh8, 'B-2').replace('9990000018', '9990000019');
  const ack = await send(good.replace(/\r?$/, '\r') + bad);
  t.is(ack.code, 'AR');
  t.regex(ack.text, /^message 2 of 2 \(MSH-10 B-2\): invalid NHS number/);
  t.regex(ack.text, /at PID-3/);
  t.deepEqual(engine.journal.list({ withRaw: false }).map((r) => [r.controlId, r.status]), [
    ['B-1', 'accepted'],
    ['B-2', 'rejected'],
  ]);
});
