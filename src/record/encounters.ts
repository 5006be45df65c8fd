// SPDX-License-Identifier: Apache-2.0
/**
 * Encounters in the record: ADT A01 admit, A02 transfer, A03 discharge, A05 pre-admit, A08 update,
 * A11/A12/A13 cancel admit/transfer/discharge, A14 pending admit, A27 cancel pending admit, A38
 * cancel pre-admit. See docs/record.md "Encounters (ADT A01–A38) and appointments".
 *
 * One `encounter` item per visit (PV1-19.1) and sending organisation. Its payload holds the visit's
 * current details and a list of typed events; the status and current location are derived from the
 * events that are not cancelled, so cancelling an event undoes its effect without a second copy of
 * the history (every change is a new item version anyway).
 */
import type { ErrorCode } from '../errors.js';
import { Hl7Error, Hl7ErrorCode, type Hl7Message } from '../hl7/index.js';
import {
  type Clinician,
  asPayload,
  liveItem,
  locationOf,
  putVisitAppointment,
  readVisitAppointment,
  sentClinicians,
  sentLocation,
  sentText,
  sentTime,
  setVisitAppointmentStatus,
  visitAppointmentKey,
} from './appointments.js';
import type { HandlerContext, HandlerResult, MessageHandler, PutResult } from './types.js';

export type { Clinician } from './appointments.js';

/** The typed events of an encounter (domain §1 "Encounters"). */
export type EncounterEventType = 'ADMIT' | 'TRANSFER' | 'DISCHARGE' | 'PRE_ADMIT' | 'PENDING_ADMIT';

/**
 * Encounter status, in FHIR R4 `Encounter.status` terms, derived from the events that are not
 * cancelled: a DISCHARGE → `finished`; else an ADMIT or TRANSFER → `in-progress`; else a
 * PENDING_ADMIT (decision to admit: the patient is usually already in hospital, waiting for a bed)
 * → `arrived`; else a PRE_ADMIT → `planned`; every event cancelled → `cancelled`.
 */
export type EncounterStatus = 'planned' | 'arrived' | 'in-progress' | 'finished' | 'cancelled';

/**
 * PV1-2 patient class (code set PKBCS04, the HL7 table 0004 codes): I INPATIENT, O OUTPATIENT,
 * E EMERGENCY, P PREADMIT, R RECURRING, B OBSTETRICS, C COMMERCIAL, N NOT_APPLICABLE, U UNKNOWN;
 * any other code OTHER.
 */
export type PatientClass =
  | 'INPATIENT'
  | 'OUTPATIENT'
  | 'EMERGENCY'
  | 'PREADMIT'
  | 'RECURRING'
  | 'OBSTETRICS'
  | 'COMMERCIAL'
  | 'NOT_APPLICABLE'
  | 'UNKNOWN'
  | 'OTHER';

const PATIENT_CLASSES: Record<string, PatientClass> = {
  I: 'INPATIENT',
  O: 'OUTPATIENT',
  E: 'EMERGENCY',
  P: 'PREADMIT',
  R: 'RECURRING',
  B: 'OBSTETRICS',
  C: 'COMMERCIAL',
  N: 'NOT_APPLICABLE',
  U: 'UNKNOWN',
};

/** One event of an encounter. FHIR: `Encounter.statusHistory` / `Encounter.location` history. */
export interface EncounterEvent {
  /** What happened. */
  type: EncounterEventType;
  /**
   * When it happened, ISO 8601: EVN-6 (event occurred), else EVN-2 (recorded), else MSH-7. Also
   * what ZVN-6 matches for a transfer. Never changed by A08.
   */
  time: string;
  /** PV1-3 as text at the time of the event (see the location rule in docs/record.md); null when not sent. */
  location: string | null;
  /** True once A11/A12/A13/A27/A38 cancelled it (A01/A03/A05/A14 again un-cancel their event). */
  cancelled: boolean;
}

/** Payload of an `encounter` item (key: PV1-19.1). Every time is an ISO 8601 instant (UTC). */
export interface EncounterPayload {
  /** PV1-19.1, the visit number (the item key). FHIR `Encounter.identifier`. */
  visitNumber: string;
  /** Derived from the events, see {@link EncounterStatus}. FHIR `Encounter.status`. */
  status: EncounterStatus;
  /** PV1-2 mapped, see {@link PatientClass}; null when never sent. FHIR `Encounter.class`. */
  patientClass: PatientClass | null;
  /** PV1-2 as sent (so OTHER keeps the code); null when never sent. */
  patientClassCode: string | null;
  /** The current location: that of the latest event, not cancelled, that has one; null when none. FHIR `Encounter.location`. */
  location: string | null;
  /** PV1-10.1 hospital service code (its label mapping gives the item's label); null when not sent. FHIR `Encounter.serviceType`. */
  hospitalService: string | null;
  /** PV1-7 attending doctors (every repetition). FHIR `Encounter.participant` type ATND. */
  attending: Clinician[];
  /** PV1-8 referring doctors. FHIR `Encounter.participant` type REF. */
  referring: Clinician[];
  /** PV1-9 consulting doctors. FHIR `Encounter.participant` type CON. */
  consulting: Clinician[];
  /** PV1-44 admit time as sent; null when not sent. FHIR `Encounter.period.start` (else the ADMIT event's time). */
  admitTime: string | null;
  /** PV1-45 discharge time as sent; cleared by A13. FHIR `Encounter.period.end` (else the DISCHARGE event's time, when not cancelled). */
  dischargeTime: string | null;
  /** Every event in the order received; at most one of each type except TRANSFER. */
  events: EncounterEvent[];
}

/** What one message's PV1 says about the visit; undefined = not sent (keep), null = `""` (clear). */
interface SentVisit {
  patientClassCode: string | null | undefined;
  location: string | null | undefined;
  hospitalService: string | null | undefined;
  attending: Clinician[] | undefined;
  referring: Clinician[] | undefined;
  consulting: Clinician[] | undefined;
  admitTime: string | null | undefined;
  dischargeTime: string | null | undefined;
}

const TIME_INVALID: ErrorCode = 'RECORD_ENCOUNTER_TIME_INVALID';

/**
 * The visit number.
 *
 * @throws Hl7Error RECORD_VISIT_NUMBER_MISSING (0357 101) at PV1-19
 */
function visitNumber(msg: Hl7Message): string {
  const v = sentText(msg, 'PV1-19.1');
  if (typeof v !== 'string') throw new Hl7Error('RECORD_VISIT_NUMBER_MISSING', Hl7ErrorCode.RequiredFieldMissing, {}, locationOf('PV1-19'));
  return v;
}

/** EVN-6, else EVN-2, else MSH-7 (already an ISO instant in the provenance). */
function eventTime(msg: Hl7Message, context: HandlerContext): string {
  return sentTime(msg, 'EVN-6', TIME_INVALID) ?? sentTime(msg, 'EVN-2', TIME_INVALID) ?? context.provenance.enteredAt;
}

function readVisit(msg: Hl7Message): SentVisit {
  return {
    patientClassCode: sentText(msg, 'PV1-2.1'),
    location: sentLocation(msg, 'PV1-3'),
    hospitalService: sentText(msg, 'PV1-10.1'),
    attending: sentClinicians(msg, 'PV1-7'),
    referring: sentClinicians(msg, 'PV1-8'),
    consulting: sentClinicians(msg, 'PV1-9'),
    admitTime: sentTime(msg, 'PV1-44', TIME_INVALID),
    dischargeTime: sentTime(msg, 'PV1-45', TIME_INVALID),
  };
}

function pick<T>(sent: T | null | undefined, stored: T | null): T | null {
  return sent === undefined ? stored : sent;
}

function emptyEncounter(visit: string): EncounterPayload {
  return {
    visitNumber: visit,
    status: 'cancelled',
    patientClass: null,
    patientClassCode: null,
    location: null,
    hospitalService: null,
    attending: [],
    referring: [],
    consulting: [],
    admitTime: null,
    dischargeTime: null,
    events: [],
  };
}

/** Apply the PV1 details a message sent (not for cancels: their PV1 describes the state being undone). */
function applyVisit(p: EncounterPayload, sent: SentVisit): void {
  p.patientClassCode = pick(sent.patientClassCode, p.patientClassCode);
  p.patientClass = p.patientClassCode === null ? null : (PATIENT_CLASSES[p.patientClassCode] ?? 'OTHER');
  p.hospitalService = pick(sent.hospitalService, p.hospitalService);
  p.attending = sent.attending ?? p.attending;
  p.referring = sent.referring ?? p.referring;
  p.consulting = sent.consulting ?? p.consulting;
  p.admitTime = pick(sent.admitTime, p.admitTime);
  p.dischargeTime = pick(sent.dischargeTime, p.dischargeTime);
}

function ms(iso: string): number {
  return Date.parse(iso);
}

/** Index of the latest event matching `test` (latest time; among equal times, the later received), or -1. */
function latest(events: EncounterEvent[], test: (e: EncounterEvent) => boolean): number {
  let best = -1;
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as EncounterEvent;
    if (!test(e)) continue;
    if (best < 0 || ms(e.time) >= ms((events[best] as EncounterEvent).time)) best = i;
  }
  return best;
}

function deriveStatus(events: EncounterEvent[]): EncounterStatus {
  const live = new Set(events.filter((e) => !e.cancelled).map((e) => e.type));
  if (live.has('DISCHARGE')) return 'finished';
  if (live.has('ADMIT') || live.has('TRANSFER')) return 'in-progress';
  if (live.has('PENDING_ADMIT')) return 'arrived';
  if (live.has('PRE_ADMIT')) return 'planned';
  return 'cancelled';
}

/** Recompute the derived fields and fix the key order (the store compares payloads as JSON). */
function normalise(p: EncounterPayload): EncounterPayload {
  const events = p.events.map((e) => ({ type: e.type, time: e.time, location: e.location, cancelled: e.cancelled }));
  const at = latest(events, (e) => !e.cancelled && e.location !== null);
  const copy = (list: Clinician[]): Clinician[] => list.map((c) => ({ id: c.id, family: c.family, given: c.given, prefix: c.prefix, display: c.display }));
  return {
    visitNumber: p.visitNumber,
    status: deriveStatus(events),
    patientClass: p.patientClass,
    patientClassCode: p.patientClassCode,
    location: at < 0 ? null : (events[at] as EncounterEvent).location,
    hospitalService: p.hospitalService,
    attending: copy(p.attending),
    referring: copy(p.referring),
    consulting: copy(p.consulting),
    admitTime: p.admitTime,
    dischargeTime: p.dischargeTime,
    events,
  };
}

/** PV1-44, else the ADMIT event's time (not cancelled); null for a visit not admitted. */
function effectiveAt(p: EncounterPayload): string | null {
  if (p.admitTime !== null) return p.admitTime;
  return p.events.find((e) => e.type === 'ADMIT' && !e.cancelled)?.time ?? null;
}

function putEncounter(context: HandlerContext, p: EncounterPayload): PutResult['outcome'] {
  const payload = normalise(p);
  return context.store.putItem(
    {
      patientId: context.patientId,
      kind: 'encounter',
      key: payload.visitNumber,
      label: context.labelFor('PV1-10', payload.hospitalService ?? undefined),
      effectiveAt: effectiveAt(payload),
      payload: asPayload(payload),
    },
    context.provenance,
  ).outcome;
}

/**
 * The stored encounter, safe to change, or undefined for an unknown (or deleted) visit. The store
 * parses a fresh payload for every read, so no copy is needed.
 */
function storedEncounter(context: HandlerContext, visit: string): EncounterPayload | undefined {
  const item = liveItem(context, 'encounter', visit);
  return item === undefined ? undefined : normalise(item.payload as unknown as EncounterPayload);
}

function result(visit: string, what: string, outcome: PutResult['outcome'] | 'none', extra = ''): HandlerResult {
  const unchanged = outcome === 'unchanged' || outcome === 'none';
  return { summary: `encounter ${visit} ${what}${unchanged ? ' (unchanged)' : ''}${extra}`, changed: !unchanged };
}

/** Fold an appointment outcome into the handler result (changed when either item changed). */
function withAppointment(r: HandlerResult, visit: string, outcome: PutResult['outcome'] | 'none' | 'no start'): HandlerResult {
  if (outcome === 'none') return r;
  const key = visitAppointmentKey(visit);
  const note = outcome === 'no start' ? `; no appointment (no PV2-8 or EVN-3)` : `; appointment ${key} ${outcome}`;
  return { summary: r.summary + note, changed: r.changed || outcome === 'created' || outcome === 'updated' };
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

const WORD: Record<EncounterEventType, string> = {
  ADMIT: 'admit',
  TRANSFER: 'transfer',
  DISCHARGE: 'discharge',
  PRE_ADMIT: 'pre-admit',
  PENDING_ADMIT: 'pending admit',
};

/**
 * A01/A03/A05/A14 upsert the visit's single event of that type (un-cancelling it); A02 adds a
 * transfer, or updates the transfer with the same time (a replayed A02 adds nothing).
 */
function record(type: EncounterEventType): MessageHandler {
  return (msg, context) => {
    const visit = visitNumber(msg);
    const time = eventTime(msg, context);
    const sent = readVisit(msg);
    const planned = type === 'PRE_ADMIT' || type === 'PENDING_ADMIT' ? readVisitAppointment(msg, visit) : undefined;
    const p = storedEncounter(context, visit) ?? emptyEncounter(visit);
    applyVisit(p, sent);
    const index = type === 'TRANSFER'
      ? p.events.findIndex((e) => e.type === 'TRANSFER' && ms(e.time) === ms(time))
      : p.events.findIndex((e) => e.type === type);
    const prior = index < 0 ? undefined : p.events[index];
    const event: EncounterEvent = { type, time, location: pick(sent.location, prior?.location ?? null), cancelled: false };
    if (index < 0) p.events.push(event);
    else p.events[index] = event;
    const outcome = putEncounter(context, p);
    const r = result(visit, WORD[type], outcome);
    if (planned !== undefined) return withAppointment(r, visit, putVisitAppointment(context, planned));
    // The admission is what a pre-admission or pending admission appointment was for.
    if (type === 'ADMIT') return withAppointment(r, visit, setVisitAppointmentStatus(context, visit, 'fulfilled', ['booked']));
    return r;
  };
}

const ZVN_EVENTS: Record<string, EncounterEventType> = {
  A01: 'ADMIT',
  A02: 'TRANSFER',
  A03: 'DISCHARGE',
  A05: 'PRE_ADMIT',
  A14: 'PENDING_ADMIT',
};

/**
 * A08: update the latest event that is not cancelled, or the one ZVN chooses (ZVN-1 the event
 * type; for A02, ZVN-6 the transfer's time, else the latest transfer). The event gets the PV1-3
 * location; the visit gets the PV1 details. When nothing matches (unknown visit, no such event),
 * nothing changes: not even the visit details (domain §1 "if nothing matches it does nothing").
 *
 * @throws Hl7Error RECORD_ZVN_INVALID (0357 103) at ZVN-1 for an event type ZVN cannot choose
 */
const update: MessageHandler = (msg, context) => {
  const visit = visitNumber(msg);
  let test: (e: EncounterEvent) => boolean = (e) => !e.cancelled;
  let what = 'update';
  const zvn1 = sentText(msg, 'ZVN-1');
  if (typeof zvn1 === 'string') {
    const type = ZVN_EVENTS[zvn1.toUpperCase()];
    if (type === undefined) throw new Hl7Error('RECORD_ZVN_INVALID', Hl7ErrorCode.TableValueNotFound, { value: zvn1 }, locationOf('ZVN-1'));
    const at = type === 'TRANSFER' ? sentTime(msg, 'ZVN-6', TIME_INVALID) : undefined;
    test = typeof at === 'string'
      ? (e) => !e.cancelled && e.type === type && ms(e.time) === ms(at)
      : (e) => !e.cancelled && e.type === type;
    what = `update ${WORD[type]}`;
  }
  const sent = readVisit(msg);
  const p = storedEncounter(context, visit);
  const index = p === undefined ? -1 : latest(p.events, test);
  if (p === undefined || index < 0) return { summary: `encounter ${visit} ${what}: no matching event (unchanged)`, changed: false };
  applyVisit(p, sent);
  const event = p.events[index] as EncounterEvent;
  event.location = pick(sent.location, event.location);
  return result(visit, what, putEncounter(context, p));
};

/**
 * A11/A12/A13/A27/A38: mark the matching event cancelled (A12: the latest transfer not cancelled;
 * A13 also clears the discharge time). A cancel for a visit this organisation never sent is an AR:
 * the sender's cancel refers to something the record does not have, which usually means an earlier
 * message was lost or rejected, and the sender should know. A known visit without a matching event
 * (e.g. already cancelled) is left unchanged.
 *
 * @throws Hl7Error RECORD_VISIT_UNKNOWN (0357 204) at PV1-19
 */
function cancel(type: EncounterEventType, trigger: string): MessageHandler {
  return (msg, context) => {
    const visit = visitNumber(msg);
    const p = storedEncounter(context, visit);
    if (p === undefined) {
      throw new Hl7Error('RECORD_VISIT_UNKNOWN', Hl7ErrorCode.UnknownKeyIdentifier, { trigger }, locationOf('PV1-19'));
    }
    const index = latest(p.events, (e) => !e.cancelled && e.type === type);
    let outcome: PutResult['outcome'] | 'none' = 'none';
    if (index >= 0) {
      (p.events[index] as EncounterEvent).cancelled = true;
      if (type === 'DISCHARGE') p.dischargeTime = null;
      outcome = putEncounter(context, p);
    }
    const r = result(visit, `cancel ${WORD[type]}`, outcome);
    if (type === 'PRE_ADMIT' || type === 'PENDING_ADMIT') {
      // A27 and A38 cancel the appointment whatever its state (a fulfilled one too: the admission
      // it led to is being undone).
      return withAppointment(r, visit, setVisitAppointmentStatus(context, visit, 'cancelled', ['booked', 'fulfilled', 'noshow']));
    }
    // Cancelling the admission puts its appointment back to booked.
    if (type === 'ADMIT') return withAppointment(r, visit, setVisitAppointmentStatus(context, visit, 'booked', ['fulfilled']));
    return r;
  };
}

/**
 * ADT encounter handlers by `TYPE^TRIGGER` (A01, A02, A03, A05, A08, A11, A12, A13, A14, A27, A38).
 * Each writes the visit's `encounter` item (key PV1-19.1; missing → AR at PV1-19) through
 * `context.store`; A05/A14 also write the visit's `appointment` (key `visit:<PV1-19.1>`), A27/A38
 * cancel it.
 */
export const ENCOUNTER_HANDLERS: Record<string, MessageHandler> = {
  'ADT^A01': record('ADMIT'),
  'ADT^A02': record('TRANSFER'),
  'ADT^A03': record('DISCHARGE'),
  'ADT^A05': record('PRE_ADMIT'),
  'ADT^A08': update,
  'ADT^A11': cancel('ADMIT', 'A11'),
  'ADT^A12': cancel('TRANSFER', 'A12'),
  'ADT^A13': cancel('DISCHARGE', 'A13'),
  'ADT^A14': record('PENDING_ADMIT'),
  'ADT^A27': cancel('PENDING_ADMIT', 'A27'),
  'ADT^A38': cancel('PRE_ADMIT', 'A38'),
};
