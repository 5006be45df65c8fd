// SPDX-License-Identifier: Apache-2.0
/**
 * SIU appointment handlers (src/record/appointments.ts) against a real SQLite record: exact stored
 * payloads, versions, S12 replace, S13/S14 update and reactivation, S15 cancel (also of unknown
 * appointments), S26 DNA, ARs with their locations and ACK text, and per-organisation keys.
 * Synthetic patients only (fixtures under test/fixtures/record/siu).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hl7ErrorCode, Hl7Message, buildAck, parseHl7Timestamp } from '../../src/hl7/index.js';
import { APPOINTMENT_HANDLERS, type AppointmentPayload } from '../../src/record/appointments.js';
import type { HandlerResult, RecordItem } from '../../src/record/types.js';
import { ROOT } from '../helpers/engine.js';
import { ORG, OTHER_ORG, recordFixture, rejects, type RecordFixture } from '../helpers/record.js';

const DIR = join(ROOT, 'test', 'fixtures', 'record', 'siu');

interface Edit {
  /** Raw field edits, e.g. `{ 'SCH-1': '' }`. */
  edits?: Record<string, string>;
  /** Segment ids to leave out. */
  drop?: string[];
  /** Segments to append. */
  extra?: string[];
  org?: string;
}

function load(name: string, opts: Edit = {}): Hl7Message {
  const text = readFileSync(join(DIR, name), 'utf8')
    .split('\r')
    .filter((s) => s !== '' && !(opts.drop ?? []).includes(s.slice(0, 3)))
    .concat(opts.extra ?? [])
    .join('\r') + '\r';
  const msg = Hl7Message.parse(text);
  for (const [path, value] of Object.entries(opts.edits ?? {})) msg.set(path, value, { raw: true });
  return Hl7Message.parse(msg.toString());
}

/** Run the handler MSH-9 names, with provenance taken from the message (as the dispatcher does). */
function apply(f: RecordFixture, name: string, opts: Edit = {}): HandlerResult {
  const msg = load(name, opts);
  const handler = APPOINTMENT_HANDLERS[msg.messageType];
  if (handler === undefined) throw new Error(`no handler for ${msg.messageType}`);
  const enteredAt = parseHl7Timestamp(msg.msh(7))?.toISOString() ?? '';
  const context = f.context({ provenance: { organisationId: opts.org ?? ORG, controlId: msg.controlId, messageType: msg.messageType, enteredAt } });
  return handler(msg, context);
}

function appointment(f: RecordFixture, key = 'PL1001', org = ORG): RecordItem {
  const item = f.store.getItem(f.patientId, 'appointment', org, key);
  if (item === undefined) throw new Error(`no appointment ${key}`);
  return item;
}

const payloadOf = (item: RecordItem): AppointmentPayload => item.payload as unknown as AppointmentPayload;


const SAM = { id: 'C5005', family: 'CLINICIAN', given: 'SAM', prefix: 'DR', display: 'DR SAM CLINICIAN' };
const BOOKED: AppointmentPayload = {
  placerId: 'PL1001',
  fillerId: 'FL2001',
  visitNumber: 'V5005',
  status: 'booked',
  subject: 'Diabetes review',
  reasonCode: 'DIAB',
  appointmentType: { code: 'FOLLOWUP', text: 'Follow-up' },
  start: '2024-07-01T09:30:00.000Z',
  end: '2024-07-01T10:00:00.000Z',
  description: 'Please bring your glucose diary.\nFasting not required.',
  location: 'Diabetes clinic',
  hospitalService: 'DIA',
  clinicians: [SAM],
};
const asRecord = (p: AppointmentPayload): Record<string, unknown> => p as unknown as Record<string, unknown>;

test('the handler table covers exactly S12, S13, S14, S15, S26', (t) => {
  t.deepEqual(Object.keys(APPOINTMENT_HANDLERS).sort(), ['SIU^S12', 'SIU^S13', 'SIU^S14', 'SIU^S15', 'SIU^S26']);
});

test('S12 creates the appointment keyed by SCH-1.1 with the exact payload, label and start', (t) => {
  const f = recordFixture(t, { labels: { 'PV1-10|DIA': 'GENERAL_HEALTH', 'PV1-10|GUM': 'SEXUAL_HEALTH' } });
  t.deepEqual(apply(f, 's12-book.hl7'), { summary: 'appointment PL1001 booked', changed: true });
  const item = appointment(f);
  t.deepEqual(item.payload, asRecord(BOOKED));
  t.is(item.kind, 'appointment');
  t.is(item.version, 1);
  t.is(item.effectiveAt, '2024-07-01T09:30:00.000Z');
  t.is(item.label, 'GENERAL_HEALTH');
  t.is(item.provenance.controlId, 'SIU0012');
  t.deepEqual(apply(f, 's12-book.hl7'), { summary: 'appointment PL1001 booked (unchanged)', changed: false });
  t.is(appointment(f).version, 1);
  const g = recordFixture(t, { labels: { 'PV1-10|GUM': 'SEXUAL_HEALTH' } });
  apply(g, 's12-book.hl7', { edits: { 'PV1-10': 'GUM' } });
  t.is(appointment(g).label, 'SEXUAL_HEALTH');
});

test('S12 defaults: subject "Appointment", nulls for what is not sent', (t) => {
  const f = recordFixture(t);
  apply(f, 's12-book.hl7', { edits: { 'SCH-7': '', 'SCH-8': '', 'SCH-2': '' }, drop: ['NTE', 'PV1', 'AIL', 'AIP'] });
  t.deepEqual(appointment(f).payload, asRecord({
    ...BOOKED,
    fillerId: null,
    visitNumber: null,
    subject: 'Appointment',
    reasonCode: null,
    appointmentType: null,
    description: null,
    location: null,
    hospitalService: null,
    clinicians: [],
  }));
  t.is(appointment(f).label, 'GENERAL_HEALTH', 'no PV1-10: the default label');
});

test('S12 on an existing appointment replaces it entirely (a new version)', (t) => {
  const f = recordFixture(t);
  apply(f, 's12-book.hl7');
  apply(f, 's15-cancel.hl7');
  apply(f, 's12-book.hl7', { drop: ['NTE', 'PV1', 'AIP'], edits: { 'SCH-11': '^^30^20240702100000' } });
  const item = appointment(f);
  t.is(item.version, 3);
  t.deepEqual(item.payload, asRecord({
    ...BOOKED,
    start: '2024-07-02T10:00:00.000Z',
    end: null,
    visitNumber: null,
    description: null,
    location: 'Diabetes clinic', // from AIL-3, kept in this message
    hospitalService: null,
    clinicians: [],
  }));
});

test('S13 reschedules: new times, everything not sent is kept', (t) => {
  const f = recordFixture(t);
  apply(f, 's12-book.hl7');
  t.deepEqual(apply(f, 's13-reschedule.hl7'), { summary: 'appointment PL1001 updated', changed: true });
  const item = appointment(f);
  t.is(item.version, 2);
  t.deepEqual(item.payload, asRecord({ ...BOOKED, start: '2024-07-08T14:00:00.000Z', end: '2024-07-08T14:30:00.000Z' }));
  t.is(item.effectiveAt, '2024-07-08T14:00:00.000Z');
  t.deepEqual(f.store.history(item.id).map((v) => (v.payload as unknown as AppointmentPayload).start), ['2024-07-01T09:30:00.000Z', '2024-07-08T14:00:00.000Z']);
});

test('S14 modifies like S13 (subject and clinician)', (t) => {
  const f = recordFixture(t);
  apply(f, 's12-book.hl7');
  apply(f, 's14-modify.hl7');
  t.deepEqual(appointment(f).payload, asRecord({
    ...BOOKED,
    subject: 'Diabetes and kidney review',
    clinicians: [{ id: 'C6006', family: 'NEPHRO', given: 'RAY', prefix: 'DR', display: 'DR RAY NEPHRO' }],
  }));
});

test('S13 on an unknown appointment creates it', (t) => {
  const f = recordFixture(t);
  t.deepEqual(apply(f, 's13-reschedule.hl7'), { summary: 'appointment PL1001 updated (created)', changed: true });
  const item = appointment(f);
  t.is(item.version, 1);
  t.deepEqual(item.payload, asRecord({
    placerId: 'PL1001',
    fillerId: 'FL2001',
    visitNumber: null,
    status: 'booked',
    subject: 'Appointment',
    reasonCode: null,
    appointmentType: { code: 'FOLLOWUP', text: 'Follow-up' },
    start: '2024-07-08T14:00:00.000Z',
    end: '2024-07-08T14:30:00.000Z',
    description: null,
    location: null,
    hospitalService: null,
    clinicians: [],
  }));
});

test('S15 cancels a known appointment', (t) => {
  const f = recordFixture(t);
  apply(f, 's12-book.hl7');
  t.deepEqual(apply(f, 's15-cancel.hl7'), { summary: 'appointment PL1001 cancelled', changed: true });
  const item = appointment(f);
  t.is(item.version, 2);
  t.deepEqual(item.payload, asRecord({ ...BOOKED, status: 'cancelled' }));
  t.false(item.deleted, 'a cancelled appointment stays visible');
  t.false(apply(f, 's15-cancel.hl7').changed);
});

test('S15 on an unknown appointment creates it cancelled', (t) => {
  const f = recordFixture(t);
  t.deepEqual(apply(f, 's15-cancel.hl7'), { summary: 'appointment PL1001 cancelled (created)', changed: true });
  const item = appointment(f);
  t.is(item.version, 1);
  t.deepEqual(item.payload, asRecord({
    ...BOOKED,
    status: 'cancelled',
    visitNumber: null,
    description: null,
    location: null,
    hospitalService: null,
    clinicians: [],
  }));
});

test('S15 on an unknown appointment without a start is an AR at SCH-11.4, and nothing is written', (t) => {
  const f = recordFixture(t);
  const e = rejects(t, () => apply(f, 's15-cancel.hl7', { edits: { 'SCH-11': '' } }), 'RECORD_APPOINTMENT_START_MISSING', Hl7ErrorCode.RequiredFieldMissing, 'SCH-11.4');
  t.deepEqual(e.location, { segment: 'SCH', sequence: 1, field: 11, component: 4 });
  t.is(e.message, 'SCH-11.4 (appointment start) must be provided to create an appointment');
  t.is(f.store.listItems(f.patientId, { includeDeleted: true }).length, 0);
  // A known appointment needs no start to be cancelled.
  apply(f, 's12-book.hl7');
  t.true(apply(f, 's15-cancel.hl7', { edits: { 'SCH-11': '' } }).changed);
  t.deepEqual(appointment(f).payload, asRecord({ ...BOOKED, status: 'cancelled' }));
});

test('S13 and S14 reactivate a cancelled appointment', (t) => {
  const f = recordFixture(t);
  apply(f, 's12-book.hl7');
  apply(f, 's15-cancel.hl7');
  apply(f, 's13-reschedule.hl7');
  t.is(payloadOf(appointment(f)).status, 'booked');
  apply(f, 's15-cancel.hl7');
  apply(f, 's14-modify.hl7');
  t.is(payloadOf(appointment(f)).status, 'booked');
  t.deepEqual(f.store.history(appointment(f).id).map((v) => (v.payload as unknown as AppointmentPayload).status), ['booked', 'cancelled', 'booked', 'cancelled', 'booked']);
});

test('S26 marks the appointment DNA; S13 reactivates it', (t) => {
  const f = recordFixture(t);
  apply(f, 's12-book.hl7');
  t.deepEqual(apply(f, 's26-no-show.hl7'), { summary: 'appointment PL1001 did not attend', changed: true });
  t.deepEqual(appointment(f).payload, asRecord({ ...BOOKED, status: 'noshow' }));
  apply(f, 's13-reschedule.hl7');
  const p = payloadOf(appointment(f));
  t.is(p.status, 'booked');
  t.is(p.start, '2024-07-08T14:00:00.000Z');
  t.is(appointment(f).version, 3);
});

test('S26 on an unknown appointment creates it as DNA (and needs a start)', (t) => {
  const f = recordFixture(t);
  t.deepEqual(apply(f, 's26-no-show.hl7'), { summary: 'appointment PL1001 did not attend (created)', changed: true });
  t.is(payloadOf(appointment(f)).status, 'noshow');
  const g = recordFixture(t);
  rejects(t, () => apply(g, 's26-no-show.hl7', { edits: { 'SCH-11': '' } }), 'RECORD_APPOINTMENT_START_MISSING', 101, 'SCH-11.4');
});

test('a missing SCH-1.1 is an AR at SCH-1 with PKB\'s text, for every trigger', (t) => {
  const f = recordFixture(t);
  for (const name of ['s12-book.hl7', 's13-reschedule.hl7', 's14-modify.hl7', 's15-cancel.hl7', 's26-no-show.hl7']) {
    const e = rejects(t, () => apply(f, name, { edits: { 'SCH-1': '^RXX' } }), 'RECORD_PLACER_ID_MISSING', Hl7ErrorCode.RequiredFieldMissing, 'SCH-1');
    t.is(e.message, 'SCH-1.1 (placer ID) must be provided');
  }
  const e = rejects(t, () => apply(f, 's12-book.hl7', { edits: { 'SCH-1': '' } }), 'RECORD_PLACER_ID_MISSING', 101, 'SCH-1');
  const ack = buildAck(load('s12-book.hl7').ackRequest(), { code: 'AR', error: e, controlId: 'ACK1', timestamp: new Date(0) });
  t.true(ack.includes('MSA|AR|SIU0012|SCH-1.1 (placer ID) must be provided at SCH-1\r'));
  t.is(f.store.listItems(f.patientId, { includeDeleted: true }).length, 0);
});

test('a time that is not an HL7 timestamp is an AR at that field', (t) => {
  const f = recordFixture(t);
  rejects(t, () => apply(f, 's12-book.hl7', { edits: { 'SCH-11': '^^30^tomorrow' } }), 'RECORD_APPOINTMENT_TIME_INVALID', Hl7ErrorCode.DataType, 'SCH-11.4');
  rejects(t, () => apply(f, 's12-book.hl7', { edits: { 'SCH-11': '^^30^20240701093000^2024-07-01' } }), 'RECORD_APPOINTMENT_TIME_INVALID', 102, 'SCH-11.5');
  t.is(f.store.listItems(f.patientId).length, 0);
});

test('without SCH-11, the start and end come from TQ1-7 and TQ1-8', (t) => {
  const f = recordFixture(t);
  apply(f, 's12-book.hl7', { edits: { 'SCH-11': '' }, extra: ['TQ1|1||||||20240703080000|20240703083000'] });
  const p = payloadOf(appointment(f));
  t.is(p.start, '2024-07-03T08:00:00.000Z');
  t.is(p.end, '2024-07-03T08:30:00.000Z');
});

test('another organisation\'s appointment with the same placer id is a separate item', (t) => {
  const f = recordFixture(t);
  apply(f, 's12-book.hl7');
  t.deepEqual(apply(f, 's15-cancel.hl7', { org: OTHER_ORG }), { summary: 'appointment PL1001 cancelled (created)', changed: true });
  t.is(f.store.listItems(f.patientId, { kind: 'appointment' }).length, 2);
  t.is(payloadOf(appointment(f)).status, 'booked');
  t.is(appointment(f).version, 1);
  t.is(payloadOf(appointment(f, 'PL1001', OTHER_ORG)).status, 'cancelled');
});
