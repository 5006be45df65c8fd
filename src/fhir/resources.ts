// SPDX-License-Identifier: Apache-2.0
/**
 * One builder per record item kind: a current item version → the FHIR R4 resources it is exported
 * as (docs/record.md "FHIR export" has the element-by-element table). Builders are pure: everything
 * they need beyond the item (other items, attachment URLs, organisation names) comes through the
 * {@link BuildContext}.
 *
 * Resource ids are the record's item ids (`Observation/42`), so a re-export gives the same ids and
 * a correction shows as a new `meta.versionId` of the same resource; a second resource made from the
 * same item (the DocumentReference holding an ED result's or a care plan's attachment) gets
 * `<item id>-attachment`.
 */
import type {
  AllergyIntolerance,
  Appointment,
  AppointmentParticipant,
  Attachment,
  CarePlan,
  CodeableConcept,
  Condition,
  DiagnosticReport,
  DocumentReference,
  Encounter,
  EncounterLocation,
  EncounterParticipant,
  EncounterStatusHistory,
  Extension,
  MedicationStatement,
  Observation,
  Patient,
  Practitioner,
  Quantity,
  Reference,
  RelatedPerson,
  Resource,
} from '@medplum/fhirtypes';
import type { AppointmentPayload, Clinician } from '../record/appointments.js';
import type { DocumentPayload } from '../record/documents.js';
import type { EncounterEventType, EncounterPayload, EncounterStatus } from '../record/encounters.js';
import type { AllergyPayload, ConditionPayload, ItemKind, MeasurementPayload, MedicationPayload, NextOfKinPayload, RecordItem } from '../record/index.js';
import { LOINC_SYSTEM, SNOMED_CT_SYSTEM, UCUM_SYSTEM, agreedMeasurementOf } from '../record/index.js';
import type { AttachmentRef, CodedValue, ReportPayload, ResultPayload } from '../record/results.js';
import {
  type Names,
  SYSTEMS,
  concept,
  itemMeta,
  nonEmpty,
  orgIdentifier,
  organisationRef,
  personFromXcn,
  personRef,
  strip,
} from './common.js';
import { addresses, humanName, telecoms } from './patient.js';

/** What a builder gets besides the item. */
export interface BuildContext {
  names: Names;
  /** `Patient/<id>` of the exported patient. */
  patient: Reference<Patient>;
  /** Organisation and team display names (the senders model); the id when unknown. */
  organisationName?: (id: string) => string | undefined;
  /** The FHIR Attachment of a stored attachment (URL or inline data, size, hash). */
  attachment(ref: AttachmentRef, title: string | null): Attachment;
  /** The exported result and measurement items of a report item (same organisation, parentKey = the report's key), in item order. */
  resultsOf(report: RecordItem): RecordItem[];
  /** The report item a result or measurement belongs to, when it is in the export. */
  reportOf(result: RecordItem): RecordItem | undefined;
  /** The exported appointment items linked to this organisation's visit. */
  appointmentsOfVisit(organisationId: string, visitNumber: string): RecordItem[];
  /** The exported document (or care plan) item with this organisation's document number. */
  documentByNumber(organisationId: string, documentNumber: string): RecordItem | undefined;
}

/** A builder: one item → its resources (the first is the item's own resource). */
export type ResourceBuilder = (item: RecordItem, context: BuildContext) => Resource[];

/** Kinds whose FHIR resource can say "entered in error" (so a deleted item can be exported as such). */
export const DELETABLE_KINDS: ReadonlySet<ItemKind> = new Set<ItemKind>([
  'allergy',
  'condition',
  'medication',
  'encounter',
  'appointment',
  'report',
  'result',
  'measurement',
  'document',
  'care-plan',
]);

const payload = <P>(item: RecordItem): P => item.payload as unknown as P;
const org = (item: RecordItem): string => item.provenance.organisationId;
const id = (item: RecordItem): string => String(item.id);

/** Extension carrying the patient release time (OBR-13 delay) so a reader can apply it. */
function releaseExtension(names: Names, releaseAt: string | null): Extension[] | undefined {
  return releaseAt === null ? undefined : [{ url: names.extension('patient-release-at'), valueDateTime: releaseAt }];
}

// ---------------------------------------------------------------------------------------------
// ADT lists (A28/A31): allergies, conditions, medications, next of kin
// ---------------------------------------------------------------------------------------------

/** AL1-2 allergen type → AllergyIntolerance.category. */
const ALLERGY_CATEGORY: Readonly<Record<string, 'food' | 'medication' | 'environment'>> = {
  DA: 'medication',
  FA: 'food',
  EA: 'environment',
  AA: 'environment',
  PA: 'environment',
  LA: 'environment',
};
/** AL1-4 severity → reaction.severity. */
const REACTION_SEVERITY: Readonly<Record<string, 'mild' | 'moderate' | 'severe'>> = { MI: 'mild', MO: 'moderate', SV: 'severe' };

/** `allergy` (AL1) → AllergyIntolerance. */
export const allergyResource: ResourceBuilder = (item, ctx) => {
  const p = payload<AllergyPayload>(item);
  const severity = p.severity === null ? undefined : REACTION_SEVERITY[p.severity.toUpperCase()];
  const category = p.type === null ? undefined : ALLERGY_CATEGORY[p.type.toUpperCase()];
  const resource: AllergyIntolerance = {
    resourceType: 'AllergyIntolerance',
    id: id(item),
    meta: itemMeta(item),
    // ait-2: an entered-in-error allergy has no clinical status; ait-1: every other one has one.
    clinicalStatus: item.deleted ? undefined : { coding: [{ system: SYSTEMS.allergyClinical, code: 'active' }] },
    verificationStatus: item.deleted ? { coding: [{ system: SYSTEMS.allergyVerification, code: 'entered-in-error' }] } : undefined,
    category: category === undefined ? undefined : [category],
    criticality: severity === 'severe' ? 'high' : severity === undefined ? undefined : 'low',
    code: concept(ctx.names, org(item), p.allergen),
    patient: ctx.patient,
    onsetDateTime: p.identifiedOn ?? undefined,
    reaction: p.reactions.length === 0 ? undefined : [{ manifestation: p.reactions.map((text) => ({ text })), severity }],
  };
  return [strip(resource)];
};

/** DG1-6 diagnosis type → Condition.verificationStatus. */
const CONDITION_VERIFICATION: Readonly<Record<string, string>> = { A: 'provisional', W: 'provisional', F: 'confirmed' };

/** `condition` (DG1) → Condition (a problem-list item: A28/A31 carry the patient's list, not an encounter's). */
export const conditionResource: ResourceBuilder = (item, ctx) => {
  const p = payload<ConditionPayload>(item);
  const verification = item.deleted ? 'entered-in-error' : p.type === null ? undefined : CONDITION_VERIFICATION[p.type.toUpperCase()];
  const resource: Condition = {
    resourceType: 'Condition',
    id: id(item),
    meta: itemMeta(item),
    // con-5: no clinical status on an entered-in-error condition; con-3: required on a problem-list item.
    clinicalStatus: item.deleted ? undefined : { coding: [{ system: SYSTEMS.conditionClinical, code: 'active' }] },
    verificationStatus: verification === undefined ? undefined : { coding: [{ system: SYSTEMS.conditionVerification, code: verification }] },
    category: [{ coding: [{ system: SYSTEMS.conditionCategory, code: 'problem-list-item' }] }],
    code: concept(ctx.names, org(item), { code: p.diagnosis.code, display: p.diagnosis.text, system: p.diagnosis.system }, p.description),
    subject: ctx.patient,
    onsetDateTime: p.diagnosedAt ?? undefined,
  };
  return [strip(resource)];
};

/** `medication` (ZRX) → MedicationStatement. */
export const medicationResource: ResourceBuilder = (item, ctx) => {
  const p = payload<MedicationPayload>(item);
  const dose = p.dose !== null && /^\d+(\.\d+)?$/.test(p.dose.trim()) ? Number(p.dose) : undefined;
  const text = [p.dose, p.units, p.timing].filter((s) => s !== null && s !== '').join(' ');
  const resource: MedicationStatement = {
    resourceType: 'MedicationStatement',
    id: id(item),
    meta: itemMeta(item),
    // The sender's current list (replace-all): what is on it is being taken.
    status: item.deleted ? 'entered-in-error' : 'active',
    medicationCodeableConcept: concept(ctx.names, org(item), p.product) ?? { text: 'unknown' },
    subject: ctx.patient,
    dateAsserted: item.provenance.enteredAt,
    dosage:
      text === ''
        ? undefined
        : [
            {
              text,
              timing: p.timing === null ? undefined : { code: { text: p.timing } },
              doseAndRate: dose === undefined ? undefined : [{ doseQuantity: { value: dose, unit: p.units ?? undefined } }],
            },
          ],
  };
  return [strip(resource)];
};

/** `next-of-kin` (NK1) → RelatedPerson. */
export const nextOfKinResource: ResourceBuilder = (item, ctx) => {
  const p = payload<NextOfKinPayload>(item);
  const relationship = [concept(ctx.names, org(item), p.relationship), concept(ctx.names, org(item), p.contactRole)].filter(
    (c): c is CodeableConcept => c !== undefined,
  );
  const resource: RelatedPerson = {
    resourceType: 'RelatedPerson',
    id: id(item),
    meta: itemMeta(item),
    active: true,
    patient: ctx.patient,
    relationship: nonEmpty(relationship),
    name: p.name === null ? undefined : [humanName(p.name)],
    telecom: nonEmpty(telecoms(p.telecom)),
    address: nonEmpty(addresses(p.addresses)),
  };
  return [strip(resource)];
};

// ---------------------------------------------------------------------------------------------
// Encounters and appointments
// ---------------------------------------------------------------------------------------------

/** PV1-2 class → v3 ActCode (Encounter.class); unmapped classes keep the v2 table 0004 code. */
const ENCOUNTER_CLASS: Readonly<Record<string, { code: string; display: string }>> = {
  INPATIENT: { code: 'IMP', display: 'inpatient encounter' },
  OBSTETRICS: { code: 'IMP', display: 'inpatient encounter' },
  OUTPATIENT: { code: 'AMB', display: 'ambulatory' },
  RECURRING: { code: 'AMB', display: 'ambulatory' },
  EMERGENCY: { code: 'EMER', display: 'emergency' },
  PREADMIT: { code: 'PRENC', display: 'pre-admission' },
};

/** The status an event puts the encounter in (the status rule of docs/record.md). */
const EVENT_STATUS: Readonly<Record<EncounterEventType, EncounterStatus>> = {
  ADMIT: 'in-progress',
  TRANSFER: 'in-progress',
  DISCHARGE: 'finished',
  PENDING_ADMIT: 'arrived',
  PRE_ADMIT: 'planned',
};

const PARTICIPANT_TYPES = [
  ['attending', 'ATND', 'attender'],
  ['referring', 'REF', 'referrer'],
  ['consulting', 'CON', 'consultant'],
] as const;

function clinicianRef(ctx: BuildContext, organisationId: string, c: Clinician): Reference<Practitioner> {
  return personRef(ctx.names, organisationId, { id: c.id, display: c.display });
}

/** `encounter` (PV1, ADT A01…A38) → Encounter. */
export const encounterResource: ResourceBuilder = (item, ctx) => {
  const p = payload<EncounterPayload>(item);
  const o = org(item);
  const live = p.events.filter((e) => !e.cancelled);
  // Events in time order (equal times: the order received) for the status and location history.
  const ordered = live.map((e, i) => ({ e, i })).sort((a, b) => (a.e.time < b.e.time ? -1 : a.e.time > b.e.time ? 1 : a.i - b.i)).map((x) => x.e);
  const mapped = p.patientClass === null ? undefined : ENCOUNTER_CLASS[p.patientClass];
  const participants: EncounterParticipant[] = [];
  for (const [field, code, display] of PARTICIPANT_TYPES) {
    for (const c of p[field]) {
      participants.push({ type: [{ coding: [{ system: SYSTEMS.v3ParticipationType, code, display }] }], individual: clinicianRef(ctx, o, c) });
    }
  }
  const withLocation = ordered.filter((e) => e.location !== null);
  const locations: EncounterLocation[] = withLocation.map((e, i) => ({
    location: { display: e.location! },
    status: i === withLocation.length - 1 && p.status !== 'finished' && p.status !== 'cancelled' ? 'active' : 'completed',
    period: { start: e.time },
  }));
  const admit = live.find((e) => e.type === 'ADMIT')?.time;
  const discharge = live.find((e) => e.type === 'DISCHARGE')?.time;
  const start = p.admitTime ?? admit;
  let end = p.dischargeTime ?? discharge;
  // per-1: a period's end is not before its start (a PV1-45 earlier than PV1-44 is kept in the record, not here).
  if (start !== undefined && end !== undefined && end < start) end = undefined;
  const statusHistory: EncounterStatusHistory[] = ordered.map((e) => ({ status: EVENT_STATUS[e.type], period: { start: e.time } }));
  const appointments = ctx.appointmentsOfVisit(o, p.visitNumber).map((a): Reference<Appointment> => ({ reference: `Appointment/${a.id}` }));
  const resource: Encounter = {
    resourceType: 'Encounter',
    id: id(item),
    meta: itemMeta(item),
    identifier: [orgIdentifier(ctx.names, o, 'visit-number', p.visitNumber)],
    status: item.deleted ? 'entered-in-error' : p.status,
    statusHistory: nonEmpty(statusHistory),
    class:
      mapped !== undefined
        ? { system: SYSTEMS.v3ActCode, ...mapped }
        : p.patientClassCode !== null
          ? { system: SYSTEMS.v2PatientClass, code: p.patientClassCode, display: p.patientClass ?? undefined }
          : { system: SYSTEMS.v3NullFlavor, code: 'UNK', display: 'unknown' },
    serviceType: p.hospitalService === null ? undefined : { coding: [{ system: ctx.names.orgSystem(o, 'hospital-service'), code: p.hospitalService }] },
    subject: ctx.patient,
    participant: nonEmpty(participants),
    appointment: nonEmpty(appointments),
    period: start === undefined && end === undefined ? undefined : { start, end },
    location: nonEmpty(locations),
    serviceProvider: organisationRef(ctx.names, o, ctx.organisationName),
  };
  return [strip(resource)];
};

/** `appointment` (SIU S12…S26, ADT A05/A14) → Appointment. */
export const appointmentResource: ResourceBuilder = (item, ctx) => {
  const p = payload<AppointmentPayload>(item);
  const o = org(item);
  const participant: AppointmentParticipant[] = [{ actor: ctx.patient, status: 'accepted' }];
  if (p.location !== null) participant.push({ actor: { type: 'Location', display: p.location }, status: 'accepted' });
  for (const c of p.clinicians) participant.push({ actor: clinicianRef(ctx, o, c), status: 'accepted' });
  const identifier = [
    p.placerId === null ? undefined : orgIdentifier(ctx.names, o, 'placer-appointment-id', p.placerId),
    p.fillerId === null ? undefined : orgIdentifier(ctx.names, o, 'filler-appointment-id', p.fillerId),
  ].filter((x) => x !== undefined);
  const type = p.appointmentType;
  const resource: Appointment = {
    resourceType: 'Appointment',
    id: id(item),
    meta: itemMeta(item),
    identifier: nonEmpty(identifier),
    status: item.deleted ? 'entered-in-error' : p.status,
    serviceType: p.hospitalService === null ? undefined : [{ coding: [{ system: ctx.names.orgSystem(o, 'hospital-service'), code: p.hospitalService }] }],
    appointmentType:
      type === null
        ? undefined
        : type.code === null
          ? { text: type.text ?? undefined }
          : { coding: [strip({ system: ctx.names.orgSystem(o, 'appointment-type'), code: type.code, display: type.text ?? undefined })], text: type.text ?? undefined },
    reasonCode: p.reasonCode === null ? undefined : [{ coding: [{ system: ctx.names.orgSystem(o, 'appointment-reason'), code: p.reasonCode }] }],
    description: p.subject,
    start: p.start,
    // app-2/app-3: a booked appointment needs both start and end. With no end sent (always the case
    // for A05/A14) the end is the start: the shortest true statement, not an invented duration.
    end: p.end ?? p.start,
    comment: p.description ?? undefined,
    participant,
  };
  return [strip(resource)];
};

// ---------------------------------------------------------------------------------------------
// Reports and results (ORU^R01)
// ---------------------------------------------------------------------------------------------

/** OBR-25 (HL7 table 0123) → DiagnosticReport.status. R is the record's "deleted" (PKB's use). */
const REPORT_STATUS: Readonly<Record<string, DiagnosticReport['status']>> = {
  O: 'registered',
  I: 'registered',
  S: 'registered',
  P: 'preliminary',
  A: 'partial',
  F: 'final',
  C: 'corrected',
  X: 'cancelled',
  R: 'entered-in-error',
};

/** OBX-11 (HL7 table 0085) → Observation.status. D and W are the record's "deleted". */
const RESULT_STATUS: Readonly<Record<string, Observation['status']>> = {
  F: 'final',
  C: 'corrected',
  P: 'preliminary',
  R: 'preliminary',
  S: 'preliminary',
  I: 'registered',
  X: 'cancelled',
  U: 'final',
  D: 'entered-in-error',
  W: 'entered-in-error',
};

/** OBX-8 flags that are codes of v3 ObservationInterpretation as they are (table 0078 shares them). */
const INTERPRETATION_CODES = new Set(['L', 'H', 'LL', 'HH', '<', '>', 'N', 'A', 'AA', 'U', 'D', 'B', 'W', 'S', 'R', 'I', 'NEG', 'POS', 'IND', 'DET', 'ND']);

/** `report` (OBR) → DiagnosticReport; `result` references the exported Observations of its OBX. */
export const reportResource: ResourceBuilder = (item, ctx) => {
  const p = payload<ReportPayload>(item);
  const o = org(item);
  const sectionCode = p.category === 'radiology' ? 'RAD' : 'LAB';
  const category: CodeableConcept[] = [{ coding: [{ system: SYSTEMS.v2ServiceSection, code: sectionCode }] }];
  if (p.discipline !== null && p.discipline.toUpperCase() !== sectionCode) {
    category.push({ coding: [{ system: ctx.names.orgSystem(o, 'discipline'), code: p.discipline }] });
  }
  const status = item.deleted ? 'entered-in-error' : (REPORT_STATUS[(p.resultStatus ?? '').toUpperCase()] ?? 'unknown');
  const resource: DiagnosticReport = {
    resourceType: 'DiagnosticReport',
    id: id(item),
    meta: itemMeta(item),
    extension: releaseExtension(ctx.names, p.releaseAt),
    identifier: [orgIdentifier(ctx.names, o, 'filler-order-number', p.fillerOrderNumber)],
    basedOn: p.placerOrderNumber === null ? undefined : [{ type: 'ServiceRequest', identifier: orgIdentifier(ctx.names, o, 'placer-order-number', p.placerOrderNumber) }],
    status,
    category,
    // DiagnosticReport.code is required: an OBR without OBR-4 says so with data-absent-reason.
    code: concept(ctx.names, o, p.code) ?? { coding: [{ system: SYSTEMS.dataAbsentReason, code: 'unknown' }] },
    subject: ctx.patient,
    effectiveDateTime: p.observedAt ?? undefined,
    issued: p.statusChangedAt ?? undefined,
    performer: [organisationRef(ctx.names, o, ctx.organisationName)],
    result: nonEmpty(ctx.resultsOf(item).map((r): Reference<Observation> => ({ reference: `Observation/${r.id}` }))),
    conclusion: p.comments.length === 0 ? undefined : p.comments.join('\n'),
  };
  return [strip(resource)];
};

/** A number as a Quantity with OBX-6 units: the unit text always; code and system only for UCUM (qty-3). */
function quantity(names: Names, organisationId: string, value: number, units: CodedValue | null): Quantity {
  if (units === null) return { value };
  const system = names.codeSystem(units.system, organisationId);
  const ucum = system === 'http://unitsofmeasure.org';
  return strip({ value, unit: units.display ?? units.code, system: ucum ? system : undefined, code: ucum ? units.code : undefined });
}

const COMPARATORS = new Set(['<', '<=', '>=', '>']);

/** OBX-5 → Observation.value[x] (and the ED attachment's DocumentReference id, when there is one). */
function observationValue(names: Names, organisationId: string, p: ResultPayload, deletedOrCancelled: boolean): Partial<Observation> {
  const v = p.value;
  switch (v.type) {
    case 'numeric':
      return { valueQuantity: quantity(names, organisationId, v.value, p.units) };
    case 'text':
      return { valueString: v.text };
    case 'coded':
      return { valueCodeableConcept: concept(names, organisationId, v.coding) ?? { text: v.coding.code } };
    case 'datetime':
      return { valueDateTime: v.value };
    case 'other':
      return { valueString: v.raw };
    case 'structured-numeric': {
      const { comparator, value1, separator, value2 } = v;
      if (separator === null && value1 !== null && (comparator === null || comparator === '=' || COMPARATORS.has(comparator))) {
        const q = quantity(names, organisationId, value1, p.units);
        return { valueQuantity: comparator === null || comparator === '=' ? q : { ...q, comparator: comparator as Quantity['comparator'] } };
      }
      if (separator === '-' && value1 !== null && value2 !== null && (comparator === null || comparator === '=')) {
        return { valueRange: { low: quantity(names, organisationId, value1, p.units), high: quantity(names, organisationId, value2, p.units) } };
      }
      if ((separator === ':' || separator === '/') && value1 !== null && value2 !== null && (comparator === null || comparator === '=')) {
        return { valueRatio: { numerator: { value: value1 }, denominator: { value: value2 } } };
      }
      // `2+`, `<>`… have no FHIR numeric form: keep them readable.
      return { valueString: [comparator, value1, separator, value2].filter((x) => x !== null).join('') };
    }
    case 'attachment':
      return {}; // derivedFrom the attachment's DocumentReference (R4 has no valueAttachment)
    case 'empty':
      return deletedOrCancelled ? {} : { dataAbsentReason: { coding: [{ system: SYSTEMS.dataAbsentReason, code: 'unknown' }] } };
  }
}

/** OBX-7 → referenceRange: the text as sent, plus low/high when it is a plain `low-high`. */
function referenceRange(names: Names, organisationId: string, p: ResultPayload): Observation['referenceRange'] {
  if (p.referenceRange === null) return undefined;
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$/.exec(p.referenceRange);
  if (m === null) return [{ text: p.referenceRange }];
  return [{ low: quantity(names, organisationId, Number(m[1]), p.units), high: quantity(names, organisationId, Number(m[2]), p.units), text: p.referenceRange }];
}

/**
 * An OBX item (result or measurement) → Observation: status, code, subject, time, performer,
 * value, interpretation, notes, reference range, patient delay, and `derivedFrom` an ED value's
 * DocumentReference. `category` and the value are the caller's (they differ by kind).
 */
function observationOf(item: RecordItem, ctx: BuildContext, category: string | undefined, value: (status: Observation['status']) => Partial<Observation>, code: CodeableConcept): Observation {
  const p = payload<ResultPayload>(item);
  const o = org(item);
  const status = item.deleted ? 'entered-in-error' : (RESULT_STATUS[(p.status ?? '').toUpperCase()] ?? 'unknown');
  const attachment = p.value.type === 'attachment' ? p.value.attachment : null;
  return strip({
    resourceType: 'Observation',
    id: id(item),
    meta: itemMeta(item),
    extension: releaseExtension(ctx.names, p.releaseAt),
    status,
    category: category === undefined ? undefined : [{ coding: [{ system: SYSTEMS.observationCategory, code: category }] }],
    code,
    subject: ctx.patient,
    effectiveDateTime: p.observedAt,
    performer: p.performer === null ? undefined : [personRef(ctx.names, o, personFromXcn(p.performer))],
    ...value(status),
    interpretation: nonEmpty(
      p.abnormalFlags.map((f): CodeableConcept => (INTERPRETATION_CODES.has(f.toUpperCase()) ? { coding: [{ system: SYSTEMS.v3Interpretation, code: f.toUpperCase() }] } : { text: f })),
    ),
    note: nonEmpty(p.comments.map((text) => ({ text }))),
    referenceRange: referenceRange(ctx.names, o, p),
    derivedFrom: attachment === null ? undefined : [{ reference: `DocumentReference/${item.id}-attachment` }],
  });
}

/** `result` (OBX) → Observation, and a DocumentReference for an ED value. */
export const resultResource: ResourceBuilder = (item, ctx) => {
  const p = payload<ResultPayload>(item);
  const o = org(item);
  const report = ctx.reportOf(item);
  const category = report === undefined ? undefined : payload<ReportPayload>(report).category === 'radiology' ? 'imaging' : 'laboratory';
  const attachment = p.value.type === 'attachment' ? p.value.attachment : null;
  const resource = observationOf(
    item,
    ctx,
    category,
    (status) => observationValue(ctx.names, o, p, status === 'entered-in-error' || status === 'cancelled'),
    concept(ctx.names, o, p.code) ?? { text: p.code.code },
  );
  const out: Resource[] = [resource];
  if (attachment !== null) {
    const doc: DocumentReference = {
      resourceType: 'DocumentReference',
      id: `${item.id}-attachment`,
      meta: itemMeta(item),
      status: item.deleted ? 'entered-in-error' : 'current',
      type: concept(ctx.names, o, p.code),
      subject: ctx.patient,
      date: p.observedAt,
      custodian: organisationRef(ctx.names, o, ctx.organisationName),
      content: [{ attachment: ctx.attachment(attachment, null) }],
    };
    out.push(strip(doc));
  }
  return out;
};

/**
 * `measurement` (an OBX with an agreed SNOMED CT code, unit and number) → Observation with
 * category `vital-signs`, `code` in SNOMED CT (whatever name OBX-3.3 gave it; the text as sent,
 * else the agreed name) followed by the agreed LOINC codings (R4's vitalsigns profiles require
 * LOINC; from the table, so measurements stored before are exported with them too) and
 * `valueQuantity` in UCUM (OBX-6.2 as the unit text when sent). Systolic and diastolic blood
 * pressure stay two Observations, as they were sent (no `bp` panel is made up).
 */
export const measurementResource: ResourceBuilder = (item, ctx) => {
  const p = payload<MeasurementPayload>(item);
  const m = p.measurement;
  const display = p.code.display ?? m.name;
  const loinc = (agreedMeasurementOf(m.code)?.loinc ?? []).map((l) => ({ system: LOINC_SYSTEM, code: l.code, display: l.display }));
  const code: CodeableConcept = { coding: [{ system: SNOMED_CT_SYSTEM, code: m.code, display }, ...loinc], text: display };
  const quantity: Quantity = { value: m.value, unit: p.units?.display ?? m.unit, system: UCUM_SYSTEM, code: m.unit };
  return [observationOf(item, ctx, 'vital-signs', () => ({ valueQuantity: quantity }), code)];
};

// ---------------------------------------------------------------------------------------------
// Documents and care plans (MDM^T02)
// ---------------------------------------------------------------------------------------------

/** The plain-text content of a document, inline (documents' text is small: OBX lines). */
function textAttachment(text: string, title: string | null): Attachment {
  return strip({ contentType: 'text/plain; charset=utf-8', data: Buffer.from(text, 'utf8').toString('base64'), title: title ?? undefined });
}

/** `document` (MDM^T02) → DocumentReference. */
export const documentResource: ResourceBuilder = (item, ctx) => {
  const p = payload<DocumentPayload>(item);
  const o = org(item);
  const content: DocumentReference['content'] = [];
  if (p.text !== null) content.push({ attachment: textAttachment(p.text, p.fileName) });
  if (p.attachment !== null) content.push({ attachment: ctx.attachment(p.attachment, p.fileName) });
  const parent = p.parentDocumentNumber === null ? undefined : ctx.documentByNumber(o, p.parentDocumentNumber);
  const resource: DocumentReference = {
    resourceType: 'DocumentReference',
    id: id(item),
    meta: itemMeta(item),
    masterIdentifier: orgIdentifier(ctx.names, o, 'document-number', p.documentNumber),
    status: item.deleted ? 'entered-in-error' : 'current',
    docStatus: 'final', // TXA-17 = AU (authenticated) is required to store a document at all
    type: p.documentType === '' ? undefined : { coding: [{ system: ctx.names.orgSystem(o, 'document-type'), code: p.documentType }] },
    subject: ctx.patient,
    date: p.documentDate,
    author: p.author === null ? undefined : [personRef(ctx.names, o, personFromXcn(p.author))],
    custodian: organisationRef(ctx.names, o, ctx.organisationName),
    relatesTo:
      p.parentDocumentNumber === null
        ? undefined
        : [
            {
              code: 'replaces',
              target:
                parent !== undefined && parent.kind === 'document'
                  ? { reference: `DocumentReference/${parent.id}` }
                  : { type: 'DocumentReference', identifier: orgIdentifier(ctx.names, o, 'document-number', p.parentDocumentNumber) },
            },
          ],
    content: content.length === 0 ? [{ attachment: { title: p.fileName ?? undefined } }] : content,
  };
  return [strip(resource)];
};

/** `care-plan` (MDM^T02 with TXA-2 = CP) → CarePlan, and a DocumentReference for an attached file. */
export const carePlanResource: ResourceBuilder = (item, ctx) => {
  const p = payload<DocumentPayload>(item);
  const o = org(item);
  const docId = `${item.id}-attachment`;
  const resource: CarePlan = {
    resourceType: 'CarePlan',
    id: id(item),
    meta: itemMeta(item),
    identifier: [orgIdentifier(ctx.names, o, 'document-number', p.documentNumber)],
    status: item.deleted ? 'entered-in-error' : 'active',
    intent: 'plan',
    title: p.fileName ?? undefined,
    description: p.text ?? undefined,
    subject: ctx.patient,
    created: p.documentDate,
    author: p.author === null ? undefined : personRef(ctx.names, o, personFromXcn(p.author)),
    supportingInfo: p.attachment === null ? undefined : [{ reference: `DocumentReference/${docId}` }],
  };
  const out: Resource[] = [strip(resource)];
  if (p.attachment !== null) {
    const doc: DocumentReference = {
      resourceType: 'DocumentReference',
      id: docId,
      meta: itemMeta(item),
      status: item.deleted ? 'entered-in-error' : 'current',
      docStatus: 'final',
      type: { coding: [{ system: ctx.names.orgSystem(o, 'document-type'), code: p.documentType }] },
      subject: ctx.patient,
      date: p.documentDate,
      author: p.author === null ? undefined : [personRef(ctx.names, o, personFromXcn(p.author))],
      custodian: organisationRef(ctx.names, o, ctx.organisationName),
      content: [{ attachment: ctx.attachment(p.attachment, p.fileName) }],
    };
    out.push(strip(doc));
  }
  return out;
};

/**
 * Builders by kind. `gp` has none: it is folded into `Patient.generalPractitioner` by the patient
 * builder (patient.ts), the way UK Core carries the registered GP.
 */
export const RESOURCE_BUILDERS: Readonly<Partial<Record<ItemKind, ResourceBuilder>>> = {
  allergy: allergyResource,
  condition: conditionResource,
  medication: medicationResource,
  'next-of-kin': nextOfKinResource,
  encounter: encounterResource,
  appointment: appointmentResource,
  report: reportResource,
  result: resultResource,
  measurement: measurementResource,
  document: documentResource,
  'care-plan': carePlanResource,
};
