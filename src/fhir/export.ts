// SPDX-License-Identifier: Apache-2.0
/**
 * The aggregated record of one patient as a FHIR R4 Bundle (issue 4: `tributary record export`).
 *
 * {@link patientBundle} is a pure mapping: record rows in, Bundle out, no I/O, no clock, so the same
 * record always exports to the same JSON (resource ids are record ids; the Bundle carries a
 * timestamp only when the caller passes one). {@link exportInputFromStore} reads the rows from the
 * SQLite store; attachment bytes stay with the caller, who may hand small ones in for inlining.
 *
 * The Bundle is a `transaction` of `PUT Type/id` entries: ids are stable, so loading an export
 * into a FHIR server is idempotent (a re-export after a correction updates the same resources
 * instead of duplicating them), `Type/id` references resolve in the receiving server without a base
 * URL, and a patient loads all-or-nothing. A `collection` would need absolute `fullUrl`s (a server
 * base we do not have) for its relative references to resolve.
 *
 * One Provenance per source message and privacy label names the source organisation (and the
 * partner chain through `onBehalfOf`) and the message (journal id, MSH-10), and targets the
 * resources whose current version that message wrote. Splitting by label keeps a Provenance exactly
 * as visible as its targets: a reader cleared for general health learns nothing from a Provenance
 * about a sexual-health result.
 */
import { createHash } from 'node:crypto';
import type { Attachment, Bundle, BundleEntry, Patient, Provenance as FhirProvenance, ProvenanceAgent, Reference, Resource } from '@medplum/fhirtypes';
import type { DocumentPayload } from '../record/documents.js';
import type { PatientIdentifier, PatientRecord, Provenance, RecordItem, RecordLabel, SqliteRecordStore } from '../record/index.js';
import type { AttachmentRef, ResultPayload } from '../record/results.js';
import { DEFAULT_NAMESPACE, Names, SYSTEMS, organisationRef, strip, teamRef } from './common.js';
import { labelSlug, securityLabels } from './labels.js';
import { patientResource } from './patient.js';
import { type BuildContext, DELETABLE_KINDS, RESOURCE_BUILDERS } from './resources.js';

/** What {@link patientBundle} exports: one patient's rows. */
export interface PatientExportInput {
  patient: PatientRecord;
  /** The patient's identifiers (inactive ones are exported with `use: old`). */
  identifiers: PatientIdentifier[];
  /** The patient's items, current versions; deleted ones may be included (see {@link BundleOptions.includeDeleted}). */
  items: RecordItem[];
  /** Provenance of the current demographics version (the store's `demographicsHistory`), so a Provenance targets the Patient. */
  demographicsProvenance?: Provenance | null;
  /** Display names of organisations and teams by id (the senders model); the id is shown when unknown. */
  organisations?: (id: string) => string | undefined;
  /** Records merged into this one (active merges): `Patient.link` type `replaces`. */
  replaces?: string[];
}

/** Options of {@link patientBundle}. */
export interface BundleOptions {
  /**
   * Export deleted items too, as `entered-in-error`, for kinds whose resource has that status (all
   * but next of kin and GP, which FHIR cannot mark so and which stay out). Default false.
   */
  includeDeleted?: boolean;
  /** Namespace of Tributary's identifier systems and extensions; default {@link DEFAULT_NAMESPACE}. */
  namespace?: string;
  /** `Attachment.url` of a stored attachment; default `<namespace>:attachment:<id>`. */
  attachmentUrl?: (ref: AttachmentRef) => string;
  /**
   * The bytes of an attachment to inline as `Attachment.data` (with the SHA-1 `hash` FHIR defines),
   * or undefined to refer to it by URL only. The caller reads the attachment store and decides the
   * size limit; the mapping stays synchronous and pure.
   */
  attachmentData?: (ref: AttachmentRef) => Uint8Array | undefined;
  /** `Bundle.timestamp`; omitted by default so exports are byte-for-byte reproducible. */
  timestamp?: string;
}

/** Extension on `Attachment` holding the hex SHA-256 the record keys attachments by (FHIR's `hash` is SHA-1). */
export const ATTACHMENT_SHA256_EXTENSION = 'attachment-sha256';
/** Extension on `Provenance.entity` holding the message's MSH-10 control id. */
export const MESSAGE_CONTROL_ID_EXTENSION = 'message-control-id';

/** Item kinds in a fixed order of export (then by item id), so bundles are deterministic. */
const ORDER = ['encounter', 'appointment', 'allergy', 'condition', 'medication', 'next-of-kin', 'report', 'result', 'measurement', 'document', 'care-plan'] as const;

/** The stored attachments an export refers to (so the caller can read the ones it wants inlined). */
export function attachmentRefsOf(items: readonly RecordItem[]): AttachmentRef[] {
  const out: AttachmentRef[] = [];
  for (const item of items) {
    if (item.kind === 'document' || item.kind === 'care-plan') {
      const a = (item.payload as unknown as DocumentPayload).attachment;
      if (a !== null && a !== undefined) out.push(a);
    } else if (item.kind === 'result') {
      const v = (item.payload as unknown as ResultPayload).value;
      if (v.type === 'attachment') out.push(v.attachment);
    }
  }
  return out;
}

/** The store methods {@link exportInputFromStore} reads. */
export type ExportStore = Pick<SqliteRecordStore, 'getPatient' | 'identifiers' | 'listItems' | 'demographicsHistory'> & Partial<Pick<SqliteRecordStore, 'listMerges'>>;

/**
 * Read one patient's rows for {@link patientBundle}: the patient, all identifiers, every item
 * (deleted ones included: the options decide), the provenance of the current demographics.
 * Undefined when there is no such patient.
 */
export function exportInputFromStore(store: ExportStore, patientId: string, organisations?: (id: string) => string | undefined): PatientExportInput | undefined {
  const patient = store.getPatient(patientId);
  if (patient === undefined) return undefined;
  const history = store.demographicsHistory(patientId);
  return {
    patient,
    identifiers: store.identifiers(patientId, true),
    items: store.listItems(patientId, { includeDeleted: true }),
    demographicsProvenance: history.at(-1)?.provenance ?? null,
    ...(organisations === undefined ? {} : { organisations }),
    replaces: (store.listMerges?.(patientId) ?? []).filter((m) => m.survivorId === patientId && m.unmergedAt === null).map((m) => m.mergedId),
  };
}

/** `Type/id` of a resource. */
const refOf = (r: Resource): string => `${r.resourceType}/${r.id}`;

/** A source message and label → the resources it produced. */
interface ProvenanceGroup {
  provenance: Provenance;
  label: RecordLabel | null;
  targets: string[];
}

/**
 * The patient's record as a FHIR R4 transaction Bundle: the Patient, one or more resources per item
 * (docs/record.md "FHIR export"), and one Provenance per source message and label.
 */
export function patientBundle(input: PatientExportInput, options: BundleOptions = {}): Bundle {
  const names = new Names(options.namespace ?? DEFAULT_NAMESPACE);
  const includeDeleted = options.includeDeleted === true;
  const patientId = input.patient.id;
  const patient: Reference<Patient> = { reference: `Patient/${patientId}` };

  const exported = input.items
    .filter((i) => i.patientId === patientId && (!i.deleted || (includeDeleted && DELETABLE_KINDS.has(i.kind))))
    .sort((a, b) => a.id - b.id);
  const orgKey = (organisationId: string, key: string): string => `${organisationId}\u0000${key}`;
  const reports = new Map<string, RecordItem>();
  const resultsByReport = new Map<string, RecordItem[]>();
  const appointmentsByVisit = new Map<string, RecordItem[]>();
  const documents = new Map<string, RecordItem>();
  for (const item of exported) {
    const o = item.provenance.organisationId;
    if (item.kind === 'report') reports.set(orgKey(o, item.key), item);
    if ((item.kind === 'result' || item.kind === 'measurement') && item.parentKey !== null) {
      const k = orgKey(o, item.parentKey);
      resultsByReport.set(k, [...(resultsByReport.get(k) ?? []), item]);
    }
    if (item.kind === 'appointment') {
      const visit = (item.payload as { visitNumber?: string | null }).visitNumber;
      if (typeof visit === 'string') appointmentsByVisit.set(orgKey(o, visit), [...(appointmentsByVisit.get(orgKey(o, visit)) ?? []), item]);
    }
    if (item.kind === 'document' || item.kind === 'care-plan') documents.set(orgKey(o, item.key), item);
  }

  const context: BuildContext = {
    names,
    patient,
    ...(input.organisations === undefined ? {} : { organisationName: input.organisations }),
    attachment: (ref, title) => attachmentOf(names, ref, title, options),
    resultsOf: (report) => resultsByReport.get(orgKey(report.provenance.organisationId, report.key)) ?? [],
    reportOf: (result) => (result.parentKey === null ? undefined : reports.get(orgKey(result.provenance.organisationId, result.parentKey))),
    appointmentsOfVisit: (organisationId, visitNumber) => appointmentsByVisit.get(orgKey(organisationId, visitNumber)) ?? [],
    documentByNumber: (organisationId, documentNumber) => documents.get(orgKey(organisationId, documentNumber)),
  };

  const groups = new Map<string, ProvenanceGroup>();
  const attribute = (provenance: Provenance, label: RecordLabel | null, target: string): void => {
    const k = `${provenance.journalId}\u0000${label ?? ''}`;
    let g = groups.get(k);
    if (g === undefined) {
      g = { provenance, label, targets: [] };
      groups.set(k, g);
    }
    if (!g.targets.includes(target)) g.targets.push(target);
  };

  const gps = exported.filter((i) => i.kind === 'gp');
  const resources: Resource[] = [patientResource(names, input.patient, input.identifiers, gps, input.replaces ?? [])];
  // The Patient is unlabelled (demographics have no label); the messages that wrote its
  // demographics and its GP are its sources.
  if (input.demographicsProvenance) attribute(input.demographicsProvenance, null, `Patient/${patientId}`);
  for (const gp of gps) attribute(gp.provenance, null, `Patient/${patientId}`);

  const byKind = (a: RecordItem, b: RecordItem): number => ORDER.indexOf(a.kind as (typeof ORDER)[number]) - ORDER.indexOf(b.kind as (typeof ORDER)[number]) || a.id - b.id;
  for (const item of exported.filter((i) => i.kind !== 'gp').sort(byKind)) {
    const builder = RESOURCE_BUILDERS[item.kind];
    if (builder === undefined) continue; // a kind this exporter does not know yet: left out, not guessed
    for (const r of builder(item, context)) {
      resources.push(r);
      attribute(item.provenance, item.label, refOf(r));
    }
  }

  const provenances = [...groups.values()]
    .sort((a, b) => a.provenance.journalId - b.provenance.journalId || labelSlug(a.label).localeCompare(labelSlug(b.label)))
    .map((g) => provenanceResource(names, g, input.organisations));

  const entry: BundleEntry[] = [...resources, ...provenances].map((resource) => ({ resource, request: { method: 'PUT', url: refOf(resource) } }));
  return strip({ resourceType: 'Bundle', id: `patient-${patientId}`, type: 'transaction', timestamp: options.timestamp, entry });
}

/** A stored attachment as a FHIR Attachment: by URL, or inline with FHIR's SHA-1 hash when the caller gave the bytes. */
function attachmentOf(names: Names, ref: AttachmentRef, title: string | null, options: BundleOptions): Attachment {
  const bytes = options.attachmentData?.(ref);
  return strip({
    extension: [{ url: names.extension(ATTACHMENT_SHA256_EXTENSION), valueString: ref.sha256 }],
    contentType: ref.mediaType,
    data: bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
    url: options.attachmentUrl?.(ref) ?? `${names.namespace}:attachment:${ref.attachmentId}`,
    size: ref.size,
    hash: bytes === undefined ? undefined : createHash('sha1').update(bytes).digest('base64'),
    title: title ?? undefined,
  });
}

/**
 * The agents of a message: the source organisation (author: the data controller), its team (an
 * author on behalf of the organisation), and each partner the data came through, outermost first,
 * as a performer on behalf of the next one inwards ("A on behalf of B" → A onBehalfOf B).
 */
function agents(names: Names, p: Provenance, nameOf?: (id: string) => string | undefined): ProvenanceAgent[] {
  const type = (code: 'author' | 'performer') => ({ coding: [{ system: SYSTEMS.provenanceParticipant, code, display: code === 'author' ? 'Author' : 'Performer' }] });
  const source = organisationRef(names, p.organisationId, nameOf);
  const out: ProvenanceAgent[] = [{ type: type('author'), who: source }];
  if (p.teamId !== null) out.push({ type: type('author'), who: teamRef(names, p.teamId, nameOf), onBehalfOf: source });
  p.onBehalfOf.forEach((partner, i) => {
    const next = p.onBehalfOf[i + 1];
    out.push({ type: type('performer'), who: organisationRef(names, partner, nameOf), onBehalfOf: next === undefined ? source : organisationRef(names, next, nameOf) });
  });
  return out;
}

/**
 * One Provenance: a source message's resources of one label. Its id is per message and label (a
 * message applies to one patient, so it is unique across exports of one engine).
 */
function provenanceResource(names: Names, g: ProvenanceGroup, nameOf?: (id: string) => string | undefined): FhirProvenance {
  const p = g.provenance;
  const trigger = p.messageType.split('^')[1];
  const resource: FhirProvenance = {
    resourceType: 'Provenance',
    id: `msg-${p.journalId}-${labelSlug(g.label)}`,
    meta: strip({ security: securityLabels(g.label) }),
    target: g.targets.map((reference) => ({ reference })),
    recorded: p.enteredAt,
    activity: trigger ? { coding: [{ system: SYSTEMS.v2EventType, code: trigger }], text: p.messageType } : { text: p.messageType },
    agent: agents(names, p, nameOf),
    entity: [
      {
        extension: [{ url: names.extension(MESSAGE_CONTROL_ID_EXTENSION), valueString: p.controlId }],
        role: 'source',
        what: { identifier: { system: names.journalSystem, value: String(p.journalId) }, display: `${p.messageType} ${p.controlId}` },
      },
    ],
  };
  return strip(resource);
}
