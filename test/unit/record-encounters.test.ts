// SPDX-License-Identifier: Apache-2.0
/**
 * ADT encounter handlers (src/record/encounters.ts) against a real SQLite record: exact stored
 * payloads, versions, the A03 upsert, A08 with and without ZVN, cancels, the A05/A14 appointment,
 * ARs with their locations, and per-organisation keys. Synthetic patients only (fixtures under
 * test/fixtures/record/encounters).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hl7ErrorCode, Hl7Message, buildAck, parseHl7Timestamp } from '../../src/hl7/index.js';
import type { AppointmentPayload } from '../../src/record/appointments.js';
import { ENCOUNTER_HANDLERS, type EncounterPayload } from '../../src/record/encounters.js';
import type { HandlerResult, RecordItem } from '../../src/record/types.js';
import { ROOT } from '../helpers/engine.js';
import { ORG, OTHER_ORG, recordFixture, rejects, type RecordFixture } from '../helpers/record.js';

const DIR = join(ROOT, 'test', 'fixtures', 'record', 'encounters');

/** A fixture message, with raw field edits (`{ 'PV1-19': '' }`), parsed again after editing. */
function load(name: string, edits: Record<string, string> = {}, extra: string[] = []): Hl7Message {
  const msg = Hl7Message.parse(readFileSync(join(DIR, name), 'utf8'));
  for (const [path, value] of Object.entries(edits)) msg.set(path, value, { raw: true });
  return Hl7Message.parse(msg.toString() + extra.map((s) => `${s}\r`).join(''));
}

/** Run the handler MSH-9 names, with provenance taken from the message (as the dispatcher does). */
function apply(f: RecordFixture, name: string, opts: { edits?: Record<string, string>; extra?: string[]; org?: string } = {}): HandlerResult {
  const msg = load(name, opts.edits, opts.extra);
  const handler = ENCOUNTER_HANDLERS[msg.messageType];
  if (handler === undefined) throw new Error(`no handler for ${msg.messageType}`);
  const enteredAt = parseHl7Timestamp(msg.msh(7))?.toISOString() ?? '';
  const context = f.context({ provenance: { organisationId: opts.org ?? ORG, controlId: msg.controlId, messageType: msg.messageType, enteredAt } });
  return handler(msg, context);
}

function encounter(f: RecordFixture, key: string, org = ORG): RecordItem {
  const item = f.store.getItem(f.patientId, 'encounter', org, key);
  if (item === undefined) throw new Error(`no encounter ${key}`);
  return item;
}

const payloadOf = (item: RecordItem): EncounterPayload => item.payload as unknown as EncounterPayload;

function appointment(f: RecordFixture, key: string): RecordItem | undefined {
  return f.store.getItem(f.patientId, 'appointment', ORG, key);
}


const JO = { id: 'C1001', family: 'TESTDOC', given: 'JO', prefix: 'DR', display: 'DR JO TESTDOC' };
const ADMITTED: EncounterPayload = {
  visitNumber: 'V1001',
  status: 'in-progress',
  patientClass: 'INPATIENT',
  patientClassCode: 'I',
  location: 'Ward 7 bed 12',
  hospitalService: 'MED',
  attending: [JO],
  referring: [{ id: 'G2002', family: 'REFERRER', given: 'PAT', prefix: 'DR', display: 'DR PAT REFERRER' }],
  consulting: [
    { id: 'C3003', family: 'CONSULTANT', given: 'MO', prefix: 'DR', display: 'DR MO CONSULTANT' },
    { id: 'C3004', family: 'SECONDOPINION', given: 'LEE', prefix: 'DR', display: 'DR LEE SECONDOPINION' },
  ],
  admitTime: '2024-05-02T08:30:00.000Z',
  dischargeTime: null,
  events: [{ type: 'ADMIT', time: '2024-05-02T08:30:00.000Z', location: 'Ward 7 bed 12', cancelled: false }],
};
const TRANSFER = { type: 'TRANSFER', time: '2024-05-03T10:00:00.000Z', location: 'WARD9 BED3 (RXX)', cancelled: false } as const;

test('the handler table covers exactly the eleven encounter triggers', (t) => {
  t.deepEqual(Object.keys(ENCOUNTER_HANDLERS).sort(), ['A01', 'A02', 'A03', 'A05', 'A08', 'A11', 'A12', 'A13', 'A14', 'A27', 'A38'].map((e) => `ADT^${e}`));
});

test('A01 creates one encounter keyed by PV1-19.1 with the exact payload, label, time and provenance', (t) => {
  const f = recordFixture(t);
  const r = apply(f, 'a01-admit.hl7');
  t.deepEqual(r, { summary: 'encounter V1001 admit', changed: true });
  const item = encounter(f, 'V1001');
  t.deepEqual(item.payload, ADMITTED as unknown as Record<string, unknown>);
  t.is(item.kind, 'encounter');
  t.is(item.version, 1);
  t.false(item.deleted);
  t.is(item.label, 'GENERAL_HEALTH');
  t.is(item.effectiveAt, '2024-05-02T08:30:00.000Z');
  t.is(item.provenance.controlId, 'ENC0001');
  t.is(item.provenance.messageType, 'ADT^A01');
  t.is(f.store.listItems(f.patientId).length, 1);
});

test('the label comes from the PV1-10 mapping', (t) => {
  const f = recordFixture(t, { labels: { 'PV1-10|GUM': 'SEXUAL_HEALTH' } });
  apply(f, 'a01-admit.hl7', { edits: { 'PV1-10': 'GUM' } });
  t.is(encounter(f, 'V1001').label, 'SEXUAL_HEALTH');
  t.is(payloadOf(encounter(f, 'V1001')).hospitalService, 'GUM');
});

test('A01, A02, A03 make three versions; the status and current location follow the events', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  t.deepEqual(apply(f, 'a02-transfer.hl7'), { summary: 'encounter V1001 transfer', changed: true });
  t.deepEqual(apply(f, 'a03-discharge.hl7'), { summary: 'encounter V1001 discharge', changed: true });
  const item = encounter(f, 'V1001');
  t.is(item.version, 3);
  const discharge = { type: 'DISCHARGE', time: '2024-05-05T16:00:00.000Z', location: 'WARD9 BED3 (RXX)', cancelled: false };
  t.deepEqual(item.payload, {
    ...ADMITTED,
    status: 'finished',
    location: 'WARD9 BED3 (RXX)',
    dischargeTime: '2024-05-05T16:00:00.000Z',
    events: [...ADMITTED.events, TRANSFER, discharge],
  } as unknown as Record<string, unknown>);
  const history = f.store.history(item.id);
  t.deepEqual(history.map((v) => v.version), [1, 2, 3]);
  t.deepEqual(history.map((v) => (v.payload as unknown as EncounterPayload).status), ['in-progress', 'in-progress', 'finished']);
  t.deepEqual(history.map((v) => (v.payload as unknown as EncounterPayload).location), ['Ward 7 bed 12', 'WARD9 BED3 (RXX)', 'WARD9 BED3 (RXX)']);
  t.deepEqual(history.map((v) => v.provenance.controlId), ['ENC0001', 'ENC0002', 'ENC0003']);
});

test('A03 upserts the single discharge event; a replayed message makes no version', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  apply(f, 'a03-discharge.hl7');
  t.deepEqual(apply(f, 'a03-discharge.hl7'), { summary: 'encounter V1001 discharge (unchanged)', changed: false });
  t.is(encounter(f, 'V1001').version, 2);
  apply(f, 'a03-discharge.hl7', { edits: { 'EVN-6': '20240505180000', 'PV1-45': '20240505180000' } });
  const p = payloadOf(encounter(f, 'V1001'));
  t.is(encounter(f, 'V1001').version, 3);
  t.deepEqual(p.events.filter((e) => e.type === 'DISCHARGE'), [
    { type: 'DISCHARGE', time: '2024-05-05T18:00:00.000Z', location: 'WARD9 BED3 (RXX)', cancelled: false },
  ]);
  t.is(p.dischargeTime, '2024-05-05T18:00:00.000Z');
});

test('A02 adds a transfer per time; a replayed A02 adds nothing', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  apply(f, 'a02-transfer.hl7');
  t.false(apply(f, 'a02-transfer.hl7').changed);
  apply(f, 'a02-transfer.hl7', { edits: { 'EVN-6': '20240504090000', 'PV1-3': 'WARD11^^^RXX^^^^^Ward 11' } });
  const p = payloadOf(encounter(f, 'V1001'));
  t.deepEqual(p.events.map((e) => [e.type, e.time, e.location]), [
    ['ADMIT', '2024-05-02T08:30:00.000Z', 'Ward 7 bed 12'],
    ['TRANSFER', '2024-05-03T10:00:00.000Z', 'WARD9 BED3 (RXX)'],
    ['TRANSFER', '2024-05-04T09:00:00.000Z', 'Ward 11'],
  ]);
  t.is(p.location, 'Ward 11');
  t.is(encounter(f, 'V1001').version, 3);
});

test('event time: EVN-6, else EVN-2, else MSH-7', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7', { edits: { 'EVN-6': '', 'PV1-44': '' } });
  t.is(payloadOf(encounter(f, 'V1001')).events[0]?.time, '2024-05-02T09:00:00.000Z');
  t.is(encounter(f, 'V1001').effectiveAt, '2024-05-02T09:00:00.000Z', 'without PV1-44 the ADMIT event time');
  apply(f, 'a02-transfer.hl7', { edits: { 'EVN-6': '', 'EVN-2': '' } });
  t.is(payloadOf(encounter(f, 'V1001')).events[1]?.time, '2024-05-03T10:05:00.000Z');
});

test('PV1-2 patient class is mapped; unknown codes are OTHER and keep the code', (t) => {
  const expected: Record<string, string> = {
    I: 'INPATIENT', O: 'OUTPATIENT', E: 'EMERGENCY', P: 'PREADMIT', R: 'RECURRING', B: 'OBSTETRICS',
    C: 'COMMERCIAL', N: 'NOT_APPLICABLE', U: 'UNKNOWN', X: 'OTHER', DAY: 'OTHER',
  };
  for (const [code, cls] of Object.entries(expected)) {
    const f = recordFixture(t);
    apply(f, 'a01-admit.hl7', { edits: { 'PV1-2': code } });
    const p = payloadOf(encounter(f, 'V1001'));
    t.is(p.patientClass as string | null, cls, code);
    t.is(p.patientClassCode, code);
  }
});

test('A08 without ZVN updates the latest event and the visit details', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  apply(f, 'a02-transfer.hl7');
  t.deepEqual(apply(f, 'a08-update.hl7'), { summary: 'encounter V1001 update', changed: true });
  const item = encounter(f, 'V1001');
  t.is(item.version, 3);
  t.deepEqual(item.payload, {
    ...ADMITTED,
    location: 'Ward 9 side room 2',
    attending: [{ id: 'C1005', family: 'NEWDOC', given: 'RAE', prefix: 'DR', display: 'DR RAE NEWDOC' }],
    events: [...ADMITTED.events, { ...TRANSFER, location: 'Ward 9 side room 2' }],
  } as unknown as Record<string, unknown>);
});

test('A08 with ZVN-1 = A01 updates the admit event, not the later transfer', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  apply(f, 'a02-transfer.hl7');
  t.deepEqual(apply(f, 'a08-update.hl7', { extra: ['ZVN|A01'] }), { summary: 'encounter V1001 update admit', changed: true });
  const p = payloadOf(encounter(f, 'V1001'));
  t.deepEqual(p.events, [{ ...ADMITTED.events[0]!, location: 'Ward 9 side room 2' }, TRANSFER]);
  t.is(p.location, 'WARD9 BED3 (RXX)', 'the current location is still the transfer\'s');
});

test('A08 with ZVN-1 = A02 and ZVN-6 picks the transfer with that time', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  apply(f, 'a02-transfer.hl7');
  apply(f, 'a02-transfer.hl7', { edits: { 'EVN-6': '20240504090000', 'PV1-3': 'WARD11^^^RXX' } });
  apply(f, 'a08-zvn.hl7'); // ZVN-6 = 20240503100000: the first transfer
  const p = payloadOf(encounter(f, 'V1001'));
  t.deepEqual(p.events.map((e) => e.location), ['Ward 7 bed 12', 'Ward 9 side room 2', 'WARD11 (RXX)']);
});

test('A08 that matches nothing changes nothing (unknown visit, no such event, unknown ZVN-6 time)', (t) => {
  const f = recordFixture(t);
  t.deepEqual(apply(f, 'a08-update.hl7'), { summary: 'encounter V1001 update: no matching event (unchanged)', changed: false });
  t.is(f.store.listItems(f.patientId).length, 0, 'A08 does not create an encounter');
  apply(f, 'a01-admit.hl7');
  t.deepEqual(apply(f, 'a08-update.hl7', { extra: ['ZVN|A03'] }), { summary: 'encounter V1001 update discharge: no matching event (unchanged)', changed: false });
  t.false(apply(f, 'a08-zvn.hl7').changed, 'no transfer at all');
  apply(f, 'a02-transfer.hl7');
  t.false(apply(f, 'a08-zvn.hl7', { edits: { 'ZVN-6': '20240503100001' } }).changed, 'no transfer at that time');
  const item = encounter(f, 'V1001');
  t.is(item.version, 2);
  t.deepEqual(payloadOf(item).attending, [JO], 'the visit details are not touched either');
});

test('A08 ignores cancelled events', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  apply(f, 'a11-cancel-admit.hl7');
  t.false(apply(f, 'a08-update.hl7').changed);
});

test('A08 with an unknown ZVN-1 event is an AR at ZVN-1', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  rejects(t, () => apply(f, 'a08-update.hl7', { extra: ['ZVN|A04'] }), 'RECORD_ZVN_INVALID', Hl7ErrorCode.TableValueNotFound, 'ZVN-1');
  t.is(encounter(f, 'V1001').version, 1);
});

test('"" clears a visit detail; an empty field keeps it', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  apply(f, 'a08-update.hl7', { edits: { 'PV1-8': '""', 'PV1-7': '', 'PV1-10': '' } });
  const p = payloadOf(encounter(f, 'V1001'));
  t.deepEqual(p.referring, []);
  t.deepEqual(p.attending, [JO]);
  t.is(p.hospitalService, 'MED');
  t.deepEqual(p.consulting, ADMITTED.consulting);
});

test('A11 cancels the admission: the encounter is cancelled', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  t.deepEqual(apply(f, 'a11-cancel-admit.hl7'), { summary: 'encounter V1001 cancel admit', changed: true });
  const item = encounter(f, 'V1001');
  t.is(item.version, 2);
  t.deepEqual(item.payload, {
    ...ADMITTED,
    status: 'cancelled',
    location: null,
    events: [{ ...ADMITTED.events[0]!, cancelled: true }],
  } as unknown as Record<string, unknown>);
  t.is(item.effectiveAt, '2024-05-02T08:30:00.000Z', 'PV1-44 stays the admit time as sent');
  t.deepEqual(apply(f, 'a11-cancel-admit.hl7'), { summary: 'encounter V1001 cancel admit (unchanged)', changed: false });
  apply(f, 'a01-admit.hl7');
  t.is(payloadOf(encounter(f, 'V1001')).status, 'in-progress', 'a new A01 un-cancels the admission');
  t.is(encounter(f, 'V1001').version, 3);
});

test('A12 cancels the latest transfer: the location goes back', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  apply(f, 'a02-transfer.hl7');
  apply(f, 'a02-transfer.hl7', { edits: { 'EVN-6': '20240504090000', 'PV1-3': 'WARD11^^^RXX' } });
  apply(f, 'a12-cancel-transfer.hl7');
  let p = payloadOf(encounter(f, 'V1001'));
  t.deepEqual(p.events.map((e) => e.cancelled), [false, false, true]);
  t.is(p.location, 'WARD9 BED3 (RXX)');
  t.is(p.status, 'in-progress');
  apply(f, 'a12-cancel-transfer.hl7');
  p = payloadOf(encounter(f, 'V1001'));
  t.deepEqual(p.events.map((e) => e.cancelled), [false, true, true]);
  t.is(p.location, 'Ward 7 bed 12');
  t.false(apply(f, 'a12-cancel-transfer.hl7').changed, 'no transfer left to cancel');
  t.is(encounter(f, 'V1001').version, 5);
});

test('A13 cancels the discharge: the encounter is in progress again, without a discharge time', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  apply(f, 'a03-discharge.hl7');
  t.deepEqual(apply(f, 'a13-cancel-discharge.hl7'), { summary: 'encounter V1001 cancel discharge', changed: true });
  const p = payloadOf(encounter(f, 'V1001'));
  t.is(p.status, 'in-progress');
  t.is(p.dischargeTime, null);
  t.deepEqual(p.events[1], { type: 'DISCHARGE', time: '2024-05-05T16:00:00.000Z', location: 'WARD9 BED3 (RXX)', cancelled: true });
  t.is(p.location, 'Ward 7 bed 12');
  apply(f, 'a03-discharge.hl7');
  const again = payloadOf(encounter(f, 'V1001'));
  t.is(again.status, 'finished');
  t.is(again.events.length, 2, 'the discharge event is upserted, not added');
});

test('a cancel for a visit the organisation never sent is an AR at PV1-19', (t) => {
  const f = recordFixture(t);
  for (const name of ['a11-cancel-admit.hl7', 'a12-cancel-transfer.hl7', 'a13-cancel-discharge.hl7', 'a27-cancel-pending-admit.hl7', 'a38-cancel-pre-admit.hl7']) {
    rejects(t, () => apply(f, name), 'RECORD_VISIT_UNKNOWN', Hl7ErrorCode.UnknownKeyIdentifier, 'PV1-19');
  }
  t.is(f.store.listItems(f.patientId, { includeDeleted: true }).length, 0);
});

test('a missing PV1-19.1 is an AR at PV1-19 for every trigger, and nothing is written', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  for (const name of ['a01-admit.hl7', 'a02-transfer.hl7', 'a03-discharge.hl7', 'a05-pre-admit.hl7', 'a08-update.hl7', 'a11-cancel-admit.hl7', 'a14-pending-admit.hl7']) {
    const e = rejects(t, () => apply(f, name, { edits: { 'PV1-19': '' } }), 'RECORD_VISIT_NUMBER_MISSING', Hl7ErrorCode.RequiredFieldMissing, 'PV1-19');
    t.deepEqual(e.location, { segment: 'PV1', sequence: 1, field: 19 });
  }
  const e = rejects(t, () => apply(f, 'a01-admit.hl7', { edits: { 'PV1-19': '^^^RXX^VN' } }), 'RECORD_VISIT_NUMBER_MISSING', 101, 'PV1-19');
  const ack = buildAck(load('a01-admit.hl7').ackRequest(), { code: 'AR', error: e, controlId: 'ACK1', timestamp: new Date(0) });
  t.true(ack.includes('MSA|AR|ENC0001|PV1-19.1 (visit number) must be provided at PV1-19\r'));
  t.is(f.store.listItems(f.patientId).length, 1);
  t.is(encounter(f, 'V1001').version, 1);
});

test('a time field that is not an HL7 timestamp is an AR at that field', (t) => {
  const f = recordFixture(t);
  rejects(t, () => apply(f, 'a01-admit.hl7', { edits: { 'PV1-44': '2024-05-02' } }), 'RECORD_ENCOUNTER_TIME_INVALID', Hl7ErrorCode.DataType, 'PV1-44');
  rejects(t, () => apply(f, 'a01-admit.hl7', { edits: { 'EVN-6': '20241302' } }), 'RECORD_ENCOUNTER_TIME_INVALID', 102, 'EVN-6');
  apply(f, 'a01-admit.hl7');
  apply(f, 'a02-transfer.hl7');
  rejects(t, () => apply(f, 'a08-zvn.hl7', { edits: { 'ZVN-6': 'yesterday' } }), 'RECORD_ENCOUNTER_TIME_INVALID', 102, 'ZVN-6');
  t.is(encounter(f, 'V1001').version, 2);
});

test('another organisation\'s visit with the same number is a separate encounter', (t) => {
  const f = recordFixture(t);
  apply(f, 'a01-admit.hl7');
  apply(f, 'a01-admit.hl7', { org: OTHER_ORG, edits: { 'PV1-3': 'AMU^^^RYY' } });
  t.is(f.store.listItems(f.patientId, { kind: 'encounter' }).length, 2);
  t.is(payloadOf(encounter(f, 'V1001', OTHER_ORG)).location, 'AMU (RYY)');
  apply(f, 'a03-discharge.hl7', { org: OTHER_ORG });
  t.is(payloadOf(encounter(f, 'V1001', OTHER_ORG)).status, 'finished');
  t.is(payloadOf(encounter(f, 'V1001')).status, 'in-progress');
  t.is(encounter(f, 'V1001').version, 1);
  const f2 = recordFixture(t);
  apply(f2, 'a01-admit.hl7');
  rejects(t, () => apply(f2, 'a11-cancel-admit.hl7', { org: OTHER_ORG }), 'RECORD_VISIT_UNKNOWN', 204, 'PV1-19');
});

test('A05 creates a planned encounter and its appointment (start PV2-8)', (t) => {
  const f = recordFixture(t);
  t.deepEqual(apply(f, 'a05-pre-admit.hl7'), { summary: 'encounter V2002 pre-admit; appointment visit:V2002 created', changed: true });
  const enc = encounter(f, 'V2002');
  t.deepEqual(enc.payload, {
    visitNumber: 'V2002',
    status: 'planned',
    patientClass: 'PREADMIT',
    patientClassCode: 'P',
    location: 'Orthopaedic ward',
    hospitalService: 'TRO',
    attending: [{ id: 'C4004', family: 'SURGEON', given: 'KIT', prefix: 'MR', display: 'MR KIT SURGEON' }],
    referring: [],
    consulting: [],
    admitTime: null,
    dischargeTime: null,
    events: [{ type: 'PRE_ADMIT', time: '2024-05-20T09:00:00.000Z', location: 'Orthopaedic ward', cancelled: false }],
  });
  t.is(enc.effectiveAt, null, 'not admitted yet');
  const appt = appointment(f, 'visit:V2002');
  t.truthy(appt);
  const expected: AppointmentPayload = {
    placerId: null,
    fillerId: null,
    visitNumber: 'V2002',
    status: 'booked',
    subject: 'Hip replacement',
    reasonCode: 'HIPR',
    appointmentType: null,
    start: '2024-06-10T07:30:00.000Z',
    end: null,
    description: null,
    location: 'Orthopaedic ward',
    hospitalService: 'TRO',
    clinicians: [{ id: 'C4004', family: 'SURGEON', given: 'KIT', prefix: 'MR', display: 'MR KIT SURGEON' }],
  };
  t.deepEqual(appt?.payload, expected as unknown as Record<string, unknown>);
  t.is(appt?.effectiveAt, '2024-06-10T07:30:00.000Z');
  t.is(appt?.version, 1);
  t.false(apply(f, 'a05-pre-admit.hl7').changed, 'a replayed A05 changes neither item');
});

test('A05 then A01: the admission fulfils the appointment; A11 books it again', (t) => {
  const f = recordFixture(t);
  apply(f, 'a05-pre-admit.hl7');
  t.deepEqual(apply(f, 'a01-admit.hl7', { edits: { 'PV1-19': 'V2002' } }), {
    summary: 'encounter V2002 admit; appointment visit:V2002 updated',
    changed: true,
  });
  t.is(payloadOf(encounter(f, 'V2002')).status, 'in-progress');
  t.is((appointment(f, 'visit:V2002')?.payload as unknown as AppointmentPayload).status, 'fulfilled');
  apply(f, 'a11-cancel-admit.hl7', { edits: { 'PV1-19': 'V2002' } });
  t.is(payloadOf(encounter(f, 'V2002')).status, 'planned', 'the pre-admission is still there');
  t.is((appointment(f, 'visit:V2002')?.payload as unknown as AppointmentPayload).status, 'booked');
  t.is(appointment(f, 'visit:V2002')?.version, 3);
});

test('A38 cancels the pre-admission and its appointment', (t) => {
  const f = recordFixture(t);
  apply(f, 'a05-pre-admit.hl7');
  t.deepEqual(apply(f, 'a38-cancel-pre-admit.hl7'), { summary: 'encounter V2002 cancel pre-admit; appointment visit:V2002 updated', changed: true });
  const enc = encounter(f, 'V2002');
  t.is(payloadOf(enc).status, 'cancelled');
  t.true(payloadOf(enc).events[0]?.cancelled);
  t.is(enc.version, 2);
  const appt = appointment(f, 'visit:V2002');
  t.is((appt?.payload as unknown as AppointmentPayload).status, 'cancelled');
  t.is(appt?.version, 2);
  t.is((f.store.history(appt!.id)[0]?.payload as unknown as AppointmentPayload).status, 'booked');
  apply(f, 'a05-pre-admit.hl7');
  t.is((appointment(f, 'visit:V2002')?.payload as unknown as AppointmentPayload).status, 'booked', 'a new A05 books it again');
  t.is(payloadOf(encounter(f, 'V2002')).status, 'planned');
});

test('A14 creates an arrived encounter and an appointment starting at EVN-3; A27 cancels both', (t) => {
  const f = recordFixture(t, { labels: { 'PV1-10|GUM': 'SEXUAL_HEALTH' } });
  apply(f, 'a14-pending-admit.hl7');
  const enc = encounter(f, 'V3003');
  t.is(payloadOf(enc).status, 'arrived');
  t.is(payloadOf(enc).patientClass, 'EMERGENCY');
  t.deepEqual(payloadOf(enc).events, [{ type: 'PENDING_ADMIT', time: '2024-06-20T12:00:00.000Z', location: 'ED CUBICLE4 (RXX)', cancelled: false }]);
  t.is(enc.label, 'SEXUAL_HEALTH');
  const appt = appointment(f, 'visit:V3003');
  t.is(appt?.effectiveAt, '2024-06-20T14:00:00.000Z');
  t.is(appt?.label, 'SEXUAL_HEALTH');
  t.is((appt?.payload as unknown as AppointmentPayload).subject, 'Appointment');
  apply(f, 'a27-cancel-pending-admit.hl7');
  t.is(payloadOf(encounter(f, 'V3003')).status, 'cancelled');
  t.is((appointment(f, 'visit:V3003')?.payload as unknown as AppointmentPayload).status, 'cancelled');
});

test('A05 without PV2-8 or EVN-3 records the encounter but no appointment', (t) => {
  const f = recordFixture(t);
  const r = apply(f, 'a05-pre-admit.hl7', { edits: { 'PV2-8': '', 'EVN-3': '' } });
  t.deepEqual(r, { summary: 'encounter V2002 pre-admit; no appointment (no PV2-8 or EVN-3)', changed: true });
  t.truthy(encounter(f, 'V2002'));
  t.is(appointment(f, 'visit:V2002'), undefined);
  rejects(t, () => apply(f, 'a05-pre-admit.hl7', { edits: { 'PV2-8': '2024-06-10' } }), 'RECORD_APPOINTMENT_TIME_INVALID', 102, 'PV2-8');
  const f2 = recordFixture(t);
  rejects(t, () => apply(f2, 'a05-pre-admit.hl7', { edits: { 'PV2-8': '2024-06-10' } }), 'RECORD_APPOINTMENT_TIME_INVALID', 102, 'PV2-8');
  t.is(f2.store.listItems(f2.patientId).length, 0, 'checked before the encounter is written');
});
