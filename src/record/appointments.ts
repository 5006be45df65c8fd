// SPDX-License-Identifier: Apache-2.0
/**
 * Appointments in the record: SIU S12/S13/S14/S15/S26, and the appointment an ADT A05 (pre-admit)
 * or A14 (pending admit) implies. See docs/record.md "Encounters (ADT A01–A38) and appointments".
 *
 * One `appointment` item per (patient, kind, source organisation, key). The key is SCH-1.1 (the
 * placer appointment id) for SIU, and `visit:<PV1-19.1>` for the appointment an ADT pre-admit or
 * pending admit creates, so the two never collide. Each change is a new version of the item (the
 * store compares payloads), so a replayed message changes nothing.
 *
 * This file also holds the few field readers `encounters.ts` shares (locations, timestamps,
 * clinicians), because encounters depend on appointments and not the other way round.
 */
import type { ErrorCode } from '../errors.js';
import { type Delimiters, Hl7Error, Hl7ErrorCode, type Hl7Location, type Hl7Message, hl7TimestampToIso, parsePath, rawComponent, unescapeValue } from '../hl7/index.js';
import type { HandlerContext, HandlerResult, MessageHandler, PutResult, RecordItem } from './types.js';

// ---------------------------------------------------------------------------------------------
// Field readers shared with encounters.ts
// ---------------------------------------------------------------------------------------------

/**
 * The ACK location of a path such as `PV1-19` or `SCH-11.4`. The segment sequence is always set
 * because ERR-2.2 (ERL) requires it.
 *
 * @internal shared with encounters.ts
 */
export function locationOf(path: string): Hl7Location {
  const p = parsePath(path);
  const loc: Hl7Location = { segment: p.segment, sequence: p.occurrence, field: p.field };
  if (p.repetition !== undefined) loc.repetition = p.repetition;
  if (p.component !== undefined) loc.component = p.component;
  if (p.subcomponent !== undefined) loc.subcomponent = p.subcomponent;
  return loc;
}

/**
 * A value as sent, for updates: `undefined` when absent or empty (HL7: "no change", keep what is
 * stored), `null` for the HL7 null `""` (HL7: "delete the value"), else the trimmed text.
 *
 * @internal shared with encounters.ts
 */
export function sentText(msg: Hl7Message, path: string): string | null | undefined {
  return sentValue(msg.get(path));
}

/** {@link sentText} of a value already read (unescaped), or undefined when absent. */
function sentValue(v: string | undefined): string | null | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  if (t === '') return undefined;
  if (t === '""') return null;
  return t;
}

/**
 * Component `n` (0-based) of the repetition of a raw field spanning `from` to `to` (see
 * `rawComponent`), its first subcomponent when `sub` is set, unescaped and trimmed; `''` when absent.
 */
function piece(field: string, from: number, to: number, n: number, d: Delimiters, sub = false): string {
  const v = rawComponent(field, from, to, n, d, sub);
  return v === '' ? '' : unescapeValue(v, d).trim();
}

/**
 * The raw field at `path` (not MSH-1/MSH-2) and what {@link sentText} gives for it (its first
 * repetition unescaped, with that meaning), from one read of the field.
 */
function sentField(msg: Hl7Message, path: string): { field: string; whole: string | null | undefined } | undefined {
  const field = msg.rawField(path);
  if (field === undefined) return undefined;
  const d = msg.delimiters;
  const end = field.indexOf(d.repetition);
  return { field, whole: sentValue(unescapeValue(end < 0 ? field : field.slice(0, end), d)) };
}

/**
 * A timestamp field as an ISO 8601 instant, with {@link sentText}'s undefined/null meaning. Only the
 * first component/subcomponent is read (a v2.4 TS is `time^precision`). A value that is not an HL7
 * timestamp is an AR: guessing a time would put the event in the wrong place in the record.
 *
 * @throws Hl7Error `code` (0357 102) at the field
 * @internal shared with encounters.ts
 */
export function sentTime(msg: Hl7Message, path: string, code: ErrorCode): string | null | undefined {
  const v = sentText(msg, path);
  if (v === undefined || v === null) return v;
  const d = msg.delimiters;
  let ts = v;
  const c = ts.indexOf(d.component);
  if (c >= 0) ts = ts.slice(0, c);
  const s = ts.indexOf(d.subcomponent);
  if (s >= 0) ts = ts.slice(0, s);
  const iso = hl7TimestampToIso(ts);
  if (iso === undefined) throw new Hl7Error(code, Hl7ErrorCode.DataType, { field: path }, locationOf(path));
  return iso;
}

/** A person named in an XCN field (PV1-7/8/9 doctors, AIP-3 appointment resource). */
export interface Clinician {
  /** XCN.1 ID number (e.g. a GMC or local consultant code); null when not sent. */
  id: string | null;
  /** XCN.2 family name (its first subcomponent); null when not sent. */
  family: string | null;
  /** XCN.3 given name; null when not sent. */
  given: string | null;
  /** XCN.6 prefix, e.g. `DR`; null when not sent. */
  prefix: string | null;
  /** Readable name: prefix, given, family; the id alone when no name was sent (FHIR `display`). */
  display: string;
}

/**
 * Every repetition of an XCN field as clinicians, skipping empty repetitions, with
 * {@link sentText}'s meaning: undefined (keep) when the field is absent or empty, `[]` for `""`.
 * `path` names a whole field (segment, occurrence, field) other than MSH-1/MSH-2; a repetition or
 * component in it is ignored.
 *
 * @internal shared with encounters.ts
 */
export function sentClinicians(msg: Hl7Message, path: string): Clinician[] | undefined {
  const sent = sentField(msg, path);
  if (sent === undefined || sent.whole === undefined) return undefined;
  if (sent.whole === null) return [];
  // Each repetition read in place: XCN.1 id, XCN.2.1 family name, XCN.3 given name, XCN.6 prefix.
  const { field } = sent;
  const d = msg.delimiters;
  const out: Clinician[] = [];
  for (let from = 0; from <= field.length;) {
    let to = field.indexOf(d.repetition, from);
    if (to < 0) to = field.length;
    const id = piece(field, from, to, 0, d) || null;
    const family = piece(field, from, to, 1, d, true) || null;
    const given = piece(field, from, to, 2, d) || null;
    const prefix = piece(field, from, to, 5, d) || null;
    from = to + 1;
    if (id === null && family === null && given === null) continue;
    // Prefix, given and family names that were sent, joined by spaces; the id alone without a name.
    let display: string;
    if (family === null && given === null) display = id ?? '';
    else {
      display = prefix ?? '';
      if (given !== null) display = display === '' ? given : `${display} ${given}`;
      if (family !== null) display = display === '' ? family : `${display} ${family}`;
    }
    out.push({ id, family, given, prefix, display });
  }
  return out;
}

/**
 * A location (PL) as text: component 9 (location description) when sent, else point of care,
 * room and bed (components 1–3) joined by spaces, followed by the facility (4.1) in brackets.
 * {@link sentText}'s undefined/null meaning. The first repetition of the field `path` names (a
 * whole field other than MSH-1/MSH-2; a repetition or component in it is ignored).
 *
 * @internal shared with encounters.ts
 */
export function sentLocation(msg: Hl7Message, path: string): string | null | undefined {
  const sent = sentField(msg, path);
  if (sent === undefined || sent.whole === undefined || sent.whole === null) return sent?.whole;
  // The first repetition, read in place (it is there: `whole` is).
  const { field } = sent;
  const d = msg.delimiters;
  let to = field.indexOf(d.repetition);
  if (to < 0) to = field.length;
  const description = sentValue(piece(field, 0, to, 8, d));
  if (typeof description === 'string') return description;
  // Point of care, room and bed that were sent (not `""`), joined by spaces.
  let base = '';
  for (let n = 0; n <= 2; n++) {
    const part = sentValue(piece(field, 0, to, n, d));
    if (typeof part === 'string') base = base === '' ? part : `${base} ${part}`;
  }
  const facility = sentValue(piece(field, 0, to, 3, d, true));
  if (typeof facility === 'string') return base === '' ? facility : `${base} (${facility})`;
  return base === '' ? undefined : base;
}

/** `sent` unless it is undefined (not sent: keep `stored`); null clears. */
function pick<T>(sent: T | null | undefined, stored: T | null): T | null {
  return sent === undefined ? stored : sent;
}

/**
 * The payload as the store wants it. Payload interfaces have no index signature, so they are not
 * assignable to `Record<string, unknown>` although they are plain JSON objects.
 *
 * @internal shared with encounters.ts
 */
export function asPayload<P extends object>(payload: P): Record<string, unknown> {
  return payload as unknown as Record<string, unknown>;
}

/**
 * The current, not deleted item of this organisation with this key. A deleted item counts as
 * absent: a new message about the same key starts it afresh (as a new version of the same item).
 *
 * @internal shared with encounters.ts
 */
export function liveItem(context: HandlerContext, kind: 'encounter' | 'appointment', key: string): RecordItem | undefined {
  const item = context.store.getItem(context.patientId, kind, context.provenance.organisationId, key);
  return item === undefined || item.deleted ? undefined : item;
}

// ---------------------------------------------------------------------------------------------
// Appointment payload
// ---------------------------------------------------------------------------------------------

/**
 * Appointment status, already in FHIR R4 `Appointment.status` terms: `booked` (S12/S13/S14, A05,
 * A14), `cancelled` (S15, A27, A38), `noshow` (S26, the patient did not attend), `fulfilled` (the
 * visit of an A05/A14 appointment was admitted, A01).
 */
export type AppointmentStatus = 'booked' | 'cancelled' | 'noshow' | 'fulfilled';

/** A coded value as sent (CE/CWE components 1 and 2); local codes, no coding system. */
export interface CodedText {
  /** Component 1, the code; null when only text was sent. */
  code: string | null;
  /** Component 2, the text; null when only a code was sent. */
  text: string | null;
}

/** Payload of an `appointment` item. Every time is an ISO 8601 instant (UTC). */
export interface AppointmentPayload {
  /** SCH-1.1 placer appointment id (the item key for SIU); null for an A05/A14 appointment. FHIR `Appointment.identifier`. */
  placerId: string | null;
  /** SCH-2.1 filler appointment id, when sent. A second `Appointment.identifier`. */
  fillerId: string | null;
  /** PV1-19.1 visit number: the key of the A05/A14 visit, or the PV1 an SIU message carried; null when none. Links to the `encounter` item with that key. */
  visitNumber: string | null;
  /** See {@link AppointmentStatus}. FHIR `Appointment.status`. */
  status: AppointmentStatus;
  /** SCH-7.2 (reason text) for SIU, PV2-3.2 (admit reason) for ADT; `Appointment` when neither was sent. FHIR `Appointment.description`. */
  subject: string;
  /** SCH-7.1 (reason code) for SIU, PV2-3.1 for ADT; null when not sent. FHIR `Appointment.reasonCode`. */
  reasonCode: string | null;
  /** SCH-8 appointment type (local codes, domain §1); null when not sent. FHIR `Appointment.appointmentType`. */
  appointmentType: CodedText | null;
  /** Start: SCH-11.4 (else TQ1-7) for SIU; PV2-8 (expected admit time), else EVN-3 (planned event time) for ADT. FHIR `Appointment.start`. */
  start: string;
  /** End: SCH-11.5 (else TQ1-8); null when not sent (never for ADT). FHIR `Appointment.end`. */
  end: string | null;
  /** NTE-3 lines before the resource groups, joined by newlines; null when none. FHIR `Appointment.comment`. */
  description: string | null;
  /** PV1-3 as text (see the location rule in docs/record.md), else AIL-3 for SIU; null when not sent. FHIR `Appointment.participant` (Location). */
  location: string | null;
  /** PV1-10.1 hospital service code, when the message has a PV1; the item's label is mapped from it. FHIR `Appointment.serviceType`. */
  hospitalService: string | null;
  /** AIP-3 of every AIP segment for SIU; PV1-7 (attending doctor) for ADT. FHIR `Appointment.participant` (Practitioner). */
  clinicians: Clinician[];
}

/**
 * What one message says about an appointment; undefined = not sent (keep), null = `""` (clear).
 * Read in full before anything is written, so a bad field rejects the message with no partial write.
 */
export interface SentAppointment {
  placerId: string | null;
  fillerId: string | null | undefined;
  visitNumber: string | null | undefined;
  subject: string | null | undefined;
  reasonCode: string | null | undefined;
  appointmentType: CodedText | null | undefined;
  start: string | null | undefined;
  /** Path named when the start is missing on create. */
  startField: string;
  startLocation: Hl7Location;
  end: string | null | undefined;
  description: string | null | undefined;
  location: string | null | undefined;
  hospitalService: string | null | undefined;
  clinicians: Clinician[] | undefined;
}

const DEFAULT_SUBJECT = 'Appointment';

/** Key of the appointment an ADT A05/A14 creates for visit `visitNumber`. */
export function visitAppointmentKey(visitNumber: string): string {
  return `visit:${visitNumber}`;
}

function sentCoded(msg: Hl7Message, path: string): CodedText | null | undefined {
  const whole = sentText(msg, path);
  if (whole === undefined || whole === null) return whole;
  const code = sentText(msg, `${path}.1`);
  const text = sentText(msg, `${path}.2`);
  if (typeof code !== 'string' && typeof text !== 'string') return undefined;
  return { code: typeof code === 'string' ? code : null, text: typeof text === 'string' ? text : null };
}

/** NTE-3 of the NTE segments before the first resource group (RGS/AIS/AIG/AIL/AIP): the appointment's own notes. */
function sentNotes(msg: Hl7Message): string | undefined {
  const lines: string[] = [];
  let nte = 0;
  for (const id of msg.segmentNames()) {
    if (id === 'RGS' || id === 'AIS' || id === 'AIG' || id === 'AIL' || id === 'AIP') break;
    if (id !== 'NTE') continue;
    nte++;
    for (const line of msg.getAll(`NTE[${nte}]-3`)) if (line.trim() !== '') lines.push(line.trimEnd());
  }
  return lines.length === 0 ? undefined : lines.join('\n');
}

function sentAipClinicians(msg: Hl7Message): Clinician[] | undefined {
  const count = msg.segmentNames().filter((id) => id === 'AIP').length;
  if (count === 0) return undefined;
  const out: Clinician[] = [];
  for (let i = 1; i <= count; i++) out.push(...(sentClinicians(msg, `AIP[${i}]-3`) ?? []));
  return out.length === 0 ? undefined : out;
}

/**
 * The placer id of an SIU message.
 *
 * @throws Hl7Error RECORD_PLACER_ID_MISSING (0357 101) at SCH-1
 */
function placerId(msg: Hl7Message): string {
  const v = sentText(msg, 'SCH-1.1');
  if (typeof v !== 'string') throw new Hl7Error('RECORD_PLACER_ID_MISSING', Hl7ErrorCode.RequiredFieldMissing, {}, locationOf('SCH-1'));
  return v;
}

function readSiu(msg: Hl7Message): SentAppointment {
  const code: ErrorCode = 'RECORD_APPOINTMENT_TIME_INVALID';
  const start = sentTime(msg, 'SCH-11.4', code) ?? sentTime(msg, 'TQ1-7', code);
  const end = sentTime(msg, 'SCH-11.5', code) ?? sentTime(msg, 'TQ1-8', code);
  return {
    placerId: placerId(msg),
    fillerId: sentText(msg, 'SCH-2.1'),
    visitNumber: sentText(msg, 'PV1-19.1'),
    subject: sentText(msg, 'SCH-7.2'),
    reasonCode: sentText(msg, 'SCH-7.1'),
    appointmentType: sentCoded(msg, 'SCH-8'),
    start,
    startField: 'SCH-11.4',
    startLocation: locationOf('SCH-11.4'),
    end,
    description: sentNotes(msg),
    location: sentLocation(msg, 'PV1-3') ?? sentLocation(msg, 'AIL-3'),
    hospitalService: sentText(msg, 'PV1-10.1'),
    clinicians: sentAipClinicians(msg),
  };
}

function readAdt(msg: Hl7Message, visitNumber: string): SentAppointment {
  const code: ErrorCode = 'RECORD_APPOINTMENT_TIME_INVALID';
  return {
    placerId: null,
    fillerId: undefined,
    visitNumber,
    subject: sentText(msg, 'PV2-3.2'),
    reasonCode: sentText(msg, 'PV2-3.1'),
    appointmentType: undefined,
    start: sentTime(msg, 'PV2-8', code) ?? sentTime(msg, 'EVN-3', code),
    startField: 'PV2-8',
    startLocation: locationOf('PV2-8'),
    end: undefined,
    description: undefined,
    location: sentLocation(msg, 'PV1-3'),
    hospitalService: sentText(msg, 'PV1-10.1'),
    clinicians: sentClinicians(msg, 'PV1-7'),
  };
}

/** Fixed key order, so the store's payload comparison sees equal content as equal. */
function normalise(p: AppointmentPayload): AppointmentPayload {
  return {
    placerId: p.placerId,
    fillerId: p.fillerId,
    visitNumber: p.visitNumber,
    status: p.status,
    subject: p.subject,
    reasonCode: p.reasonCode,
    appointmentType: p.appointmentType === null ? null : { code: p.appointmentType.code, text: p.appointmentType.text },
    start: p.start,
    end: p.end,
    description: p.description,
    location: p.location,
    hospitalService: p.hospitalService,
    clinicians: p.clinicians.map((c) => ({ id: c.id, family: c.family, given: c.given, prefix: c.prefix, display: c.display })),
  };
}

/**
 * A whole new appointment from the message (S12, or any message about an unknown appointment).
 *
 * @throws Hl7Error RECORD_APPOINTMENT_START_MISSING when the message has no start time
 */
function fromScratch(sent: SentAppointment, status: AppointmentStatus): AppointmentPayload {
  if (typeof sent.start !== 'string') {
    throw new Hl7Error('RECORD_APPOINTMENT_START_MISSING', Hl7ErrorCode.RequiredFieldMissing, { field: sent.startField }, sent.startLocation);
  }
  return normalise({
    placerId: sent.placerId,
    fillerId: sent.fillerId ?? null,
    visitNumber: sent.visitNumber ?? null,
    status,
    subject: sent.subject ?? DEFAULT_SUBJECT,
    reasonCode: sent.reasonCode ?? null,
    appointmentType: sent.appointmentType ?? null,
    start: sent.start,
    end: sent.end ?? null,
    description: sent.description ?? null,
    location: sent.location ?? null,
    hospitalService: sent.hospitalService ?? null,
    clinicians: sent.clinicians ?? [],
  });
}

/** The stored appointment updated with what the message sent (S13/S14/S15/S26, repeated A05/A14). */
function merge(stored: AppointmentPayload, sent: SentAppointment, status: AppointmentStatus): AppointmentPayload {
  return normalise({
    placerId: stored.placerId,
    fillerId: pick(sent.fillerId, stored.fillerId),
    visitNumber: pick(sent.visitNumber, stored.visitNumber),
    status,
    subject: pick(sent.subject, stored.subject) ?? DEFAULT_SUBJECT,
    reasonCode: pick(sent.reasonCode, stored.reasonCode),
    appointmentType: pick(sent.appointmentType, stored.appointmentType),
    // The start cannot be cleared: an appointment always has one.
    start: sent.start ?? stored.start,
    end: pick(sent.end, stored.end),
    description: pick(sent.description, stored.description),
    location: pick(sent.location, stored.location),
    hospitalService: pick(sent.hospitalService, stored.hospitalService),
    clinicians: sent.clinicians ?? stored.clinicians,
  });
}

function put(context: HandlerContext, key: string, payload: AppointmentPayload): PutResult {
  return context.store.putItem(
    {
      patientId: context.patientId,
      kind: 'appointment',
      key,
      label: context.labelFor('PV1-10', payload.hospitalService ?? undefined),
      effectiveAt: payload.start,
      payload: asPayload(payload),
    },
    context.provenance,
  );
}

function stored(item: RecordItem | undefined): AppointmentPayload | undefined {
  return item === undefined ? undefined : (item.payload as unknown as AppointmentPayload);
}

// ---------------------------------------------------------------------------------------------
// SIU handlers
// ---------------------------------------------------------------------------------------------

type SiuAction = 'create' | 'update' | 'cancel' | 'noshow';

const ACTION_WORD: Record<SiuAction, string> = { create: 'booked', update: 'updated', cancel: 'cancelled', noshow: 'did not attend' };

function siu(action: SiuAction): MessageHandler {
  return (msg, context): HandlerResult => {
    const sent = readSiu(msg);
    const key = sent.placerId as string;
    const existing = stored(liveItem(context, 'appointment', key));
    let payload: AppointmentPayload;
    if (action === 'create' || existing === undefined) {
      // S12 replaces an existing appointment entirely; every other trigger on an unknown
      // appointment creates it first (domain §1), so it needs the S12-mandatory fields.
      const status: AppointmentStatus = action === 'cancel' ? 'cancelled' : action === 'noshow' ? 'noshow' : 'booked';
      payload = fromScratch(sent, status);
    } else {
      let status: AppointmentStatus;
      if (action === 'cancel') status = 'cancelled';
      else if (action === 'noshow') status = 'noshow';
      // S13/S14 on a cancelled or DNA appointment reactivate it (domain §1).
      else status = existing.status === 'cancelled' || existing.status === 'noshow' ? 'booked' : existing.status;
      payload = merge(existing, sent, status);
    }
    const { outcome } = put(context, key, payload);
    const created = outcome === 'created' && action !== 'create' ? ' (created)' : '';
    return { summary: `appointment ${key} ${ACTION_WORD[action]}${created}${outcome === 'unchanged' ? ' (unchanged)' : ''}`, changed: outcome !== 'unchanged' };
  };
}

/**
 * SIU handlers by `TYPE^TRIGGER`: S12 new booking (replaces an existing appointment entirely),
 * S13 rescheduling and S14 modification (update; create when unknown; reactivate a cancelled or
 * DNA appointment), S15 cancellation (create-then-cancel when unknown), S26 no-show (DNA; also
 * created when unknown). Keyed by SCH-1.1; a missing SCH-1.1 is an AR at SCH-1, a missing start
 * when the appointment has to be created an AR at SCH-11.4.
 */
export const APPOINTMENT_HANDLERS: Record<string, MessageHandler> = {
  'SIU^S12': siu('create'),
  'SIU^S13': siu('update'),
  'SIU^S14': siu('update'),
  'SIU^S15': siu('cancel'),
  'SIU^S26': siu('noshow'),
};

// ---------------------------------------------------------------------------------------------
// The appointment of an ADT A05/A14 visit (used by encounters.ts)
// ---------------------------------------------------------------------------------------------

/**
 * Read what an A05/A14 says about its visit's appointment (PV2-8, else EVN-3, is its start). Call
 * it before writing anything, then pass the result to {@link putVisitAppointment}.
 *
 * @throws Hl7Error RECORD_APPOINTMENT_TIME_INVALID for a PV2-8 or EVN-3 that is not a timestamp
 */
export function readVisitAppointment(msg: Hl7Message, visitNumber: string): SentAppointment {
  return readAdt(msg, visitNumber);
}

/**
 * Create or update the appointment of an A05/A14 visit. A repeated A05/A14 updates it and books
 * it again if it was cancelled. Returns the store outcome, or `'no start'` when the visit has no
 * appointment yet and the message gives no start time: the encounter is still recorded, because a
 * pre-admission without a date (a waiting list entry) is valid ADT.
 */
export function putVisitAppointment(context: HandlerContext, sent: SentAppointment): PutResult['outcome'] | 'no start' {
  const key = visitAppointmentKey(sent.visitNumber as string);
  const existing = stored(liveItem(context, 'appointment', key));
  if (existing === undefined && typeof sent.start !== 'string') return 'no start';
  const payload = existing === undefined ? fromScratch(sent, 'booked') : merge(existing, sent, 'booked');
  return put(context, key, payload).outcome;
}

/**
 * Set the status of visit `visitNumber`'s appointment (A27/A38 cancel it, A01 fulfils it, A11
 * books it again), only when its current status is one of `from`. Returns the store outcome, or
 * `'none'` when the visit has no appointment or its status is not in `from`.
 */
export function setVisitAppointmentStatus(
  context: HandlerContext,
  visitNumber: string,
  status: AppointmentStatus,
  from: readonly AppointmentStatus[],
): PutResult['outcome'] | 'none' {
  const key = visitAppointmentKey(visitNumber);
  const existing = stored(liveItem(context, 'appointment', key));
  if (existing === undefined || !from.includes(existing.status)) return 'none';
  return put(context, key, normalise({ ...existing, status })).outcome;
}
