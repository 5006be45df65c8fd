// SPDX-License-Identifier: Apache-2.0
/**
 * Shared pieces of the FHIR export: identifier and code systems, codings of v2 coded values,
 * logical references to organisations and clinicians, and the resource `meta` of a record item.
 *
 * Identifier systems for keys the record holds per sending organisation (visit numbers, filler
 * order numbers, document numbers…) are namespaced by the organisation, because the record itself
 * keys them that way: two organisations' visit "V1" are different visits.
 */
import type { CodeableConcept, Coding, Identifier, Meta, Organization, Practitioner, Reference } from '@medplum/fhirtypes';
import type { RecordItem } from '../record/index.js';
import { securityLabels } from './labels.js';

/** Default namespace of Tributary's own identifier systems, code systems and extensions. */
export const DEFAULT_NAMESPACE = 'urn:tributary';

/** Well-known HL7 v2 coding system names (component 3 of CE/CWE) → FHIR system URIs. */
const KNOWN_SYSTEMS: Readonly<Record<string, string>> = {
  LN: 'http://loinc.org',
  LOINC: 'http://loinc.org',
  SCT: 'http://snomed.info/sct',
  SNOMED: 'http://snomed.info/sct',
  SNOMEDCT: 'http://snomed.info/sct',
  'SNOMED CT': 'http://snomed.info/sct',
  'SNOMED-CT': 'http://snomed.info/sct',
  I10: 'http://hl7.org/fhir/sid/icd-10',
  ICD10: 'http://hl7.org/fhir/sid/icd-10',
  UCUM: 'http://unitsofmeasure.org',
  DMD: 'https://dmd.nhs.uk',
  HL70063: 'http://terminology.hl7.org/CodeSystem/v2-0063',
  HL70131: 'http://terminology.hl7.org/CodeSystem/v2-0131',
};

/** Fixed code systems used by the export. */
export const SYSTEMS = {
  v3ActCode: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
  v3ParticipationType: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
  v3NullFlavor: 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor',
  v3Interpretation: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation',
  v2MaritalStatus: 'http://terminology.hl7.org/CodeSystem/v2-0002',
  v2PatientClass: 'http://terminology.hl7.org/CodeSystem/v2-0004',
  v2ServiceSection: 'http://terminology.hl7.org/CodeSystem/v2-0074',
  v2EventType: 'http://terminology.hl7.org/CodeSystem/v2-0003',
  observationCategory: 'http://terminology.hl7.org/CodeSystem/observation-category',
  conditionCategory: 'http://terminology.hl7.org/CodeSystem/condition-category',
  conditionClinical: 'http://terminology.hl7.org/CodeSystem/condition-clinical',
  conditionVerification: 'http://terminology.hl7.org/CodeSystem/condition-ver-status',
  allergyClinical: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical',
  allergyVerification: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification',
  dataAbsentReason: 'http://terminology.hl7.org/CodeSystem/data-absent-reason',
  provenanceParticipant: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type',
  gmpNumber: 'https://fhir.hl7.org.uk/Id/gmp-number',
  odsOrganisation: 'https://fhir.nhs.uk/Id/ods-organization-code',
  nhsNumberVerification: 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland',
  nhsNumberVerificationExtension: 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus',
  ethnicCategoryExtension: 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory',
} as const;

/** Builds the export's URIs under one namespace (see {@link DEFAULT_NAMESPACE}). */
export class Names {
  /** @param namespace - e.g. `urn:tributary` or an https base owned by the deployment */
  constructor(readonly namespace: string) {}

  /** An identifier system of keys that are per sending organisation, e.g. `urn:tributary:org:org-a:visit-number`. */
  orgSystem(organisationId: string, name: string): string {
    return `${this.namespace}:org:${encodeURIComponent(organisationId)}:${name}`;
  }

  /** Identifier system of organisation ids (the senders model's ids). */
  get organisationSystem(): string {
    return `${this.namespace}:organisation`;
  }

  /** Identifier system of team ids. */
  get teamSystem(): string {
    return `${this.namespace}:team`;
  }

  /** Identifier system of journal rows (the stored messages). */
  get journalSystem(): string {
    return `${this.namespace}:journal`;
  }

  /** A Tributary extension URL, e.g. `urn:tributary:extension:patient-release-at`. */
  extension(name: string): string {
    return `${this.namespace}:extension:${name}`;
  }

  /**
   * The FHIR system of a v2 coding system name: well-known names (LN, SCT, I10, UCUM…) map to their
   * URIs; any other name is a code system local to the sending organisation; no name, no system
   * (a Coding without a system is honest; inventing one is not).
   */
  codeSystem(name: string | null, organisationId: string): string | undefined {
    if (name === null || name === '') return undefined;
    return KNOWN_SYSTEMS[name.toUpperCase()] ?? this.orgSystem(organisationId, `codesystem:${encodeURIComponent(name)}`);
  }

  /** A stored identifier system as a URI: absolute ones as they are, the record's local names under the namespace. */
  identifierSystem(system: string): string {
    return /^(https?:\/\/|urn:)/.test(system) ? system : `${this.namespace}:identifier:${encodeURIComponent(system)}`;
  }
}

/** A CodeableConcept of one coding (code, display, system name) and its text; undefined when nothing was sent. */
export function concept(
  names: Names,
  organisationId: string,
  value: { code: string | null; display?: string | null; text?: string | null; system?: string | null } | null,
  text?: string | null,
): CodeableConcept | undefined {
  if (value === null) return text ? { text } : undefined;
  const display = value.display ?? value.text ?? undefined;
  const coding: Coding[] =
    value.code === null ? [] : [strip({ system: names.codeSystem(value.system ?? null, organisationId), code: value.code, display: display ?? undefined })];
  const t = text ?? display ?? undefined;
  if (coding.length === 0 && !t) return undefined;
  return strip({ coding: coding.length === 0 ? undefined : coding, text: t || undefined });
}

/** A logical reference to an organisation of the senders model (no Organization resource is exported). */
export function organisationRef(names: Names, organisationId: string, nameOf?: (id: string) => string | undefined): Reference<Organization> {
  return { type: 'Organization', identifier: { system: names.organisationSystem, value: organisationId }, display: nameOf?.(organisationId) ?? organisationId };
}

/** A logical reference to a team (an Organization in PKB's model). */
export function teamRef(names: Names, teamId: string, nameOf?: (id: string) => string | undefined): Reference<Organization> {
  return { type: 'Organization', identifier: { system: names.teamSystem, value: teamId }, display: nameOf?.(teamId) ?? teamId };
}

/** A person as the record keeps them (a {@link Clinician}-like shape). */
export interface PersonLike {
  id: string | null;
  display: string;
}

/**
 * A person named in an XCN field kept "as sent" (`id^family^given^^^prefix`, e.g. OBX-16, TXA-5),
 * read with the standard `^`/`&` separators: the record keeps the text, not the components.
 */
export function personFromXcn(text: string): PersonLike {
  const parts = text.split('^').map((p) => (p.split('&')[0] ?? '').trim());
  const [id = '', family = '', given = ''] = parts;
  const prefix = parts[5] ?? '';
  const name = [prefix, given, family].filter((p) => p !== '').join(' ');
  return { id: id === '' ? null : id, display: family !== '' || given !== '' ? name : id };
}

/** A logical reference to a clinician (no Practitioner resources are exported): the local id and the display. */
export function personRef(names: Names, organisationId: string, person: PersonLike): Reference<Practitioner> {
  return strip({
    type: 'Practitioner' as const,
    identifier: person.id === null ? undefined : { system: names.orgSystem(organisationId, 'clinician-id'), value: person.id },
    display: person.display === '' ? undefined : person.display,
  });
}

/** An identifier in an organisation-scoped system. */
export function orgIdentifier(names: Names, organisationId: string, name: string, value: string): Identifier {
  return { system: names.orgSystem(organisationId, name), value };
}

/**
 * `meta` of a resource made from a record item: the item version (the record's version, so a
 * correction shows as a new versionId), the entered time of that version (MSH-7) and the label.
 */
export function itemMeta(item: RecordItem): Meta {
  return strip({ versionId: String(item.version), lastUpdated: item.provenance.enteredAt, security: securityLabels(item.label) });
}

/**
 * Remove `undefined` properties, recursively (arrays and plain objects), so resources compare and
 * serialise the same however they were built, and the validator never sees an explicit undefined.
 */
export function strip<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => strip(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (v !== undefined) out[k] = strip(v);
    return out as T;
  }
  return value;
}

/** The array, or undefined when empty (FHIR forbids empty arrays). */
export function nonEmpty<T>(values: T[]): T[] | undefined {
  return values.length === 0 ? undefined : values;
}
