// SPDX-License-Identifier: Apache-2.0
/**
 * The Patient resource: demographics (PID, latest MSH-7 wins), the stored identifiers, and the
 * registered GP from the `gp` items (PD1 / ROL) as `generalPractitioner`, the way UK Core carries
 * it (logical references by ODS / GP code; no Organization or Practitioner resources are exported).
 */
import type { Address as FhirAddress, ContactPoint, Extension, HumanName, Identifier, Organization, Patient, Practitioner, Reference } from '@medplum/fhirtypes';
import type { Address, GpPayload, PatientIdentifier, PatientRecord, PersonName, RecordItem, Telecom } from '../record/index.js';
import { type Names, SYSTEMS, nonEmpty, strip } from './common.js';

/** XPN-7 name type → HumanName.use. */
const NAME_USE: Readonly<Record<string, HumanName['use']>> = { L: 'official', D: 'usual', M: 'maiden', N: 'nickname', A: 'anonymous' };
/** XAD-7 address type → Address.use. */
const ADDRESS_USE: Readonly<Record<string, FhirAddress['use']>> = { H: 'home', B: 'work', O: 'work', C: 'temp', BA: 'old' };
/** PID-8 (PKBCS01) → Patient.gender. */
const GENDER: Readonly<Record<string, Patient['gender']>> = { M: 'male', F: 'female', O: 'other', A: 'other', U: 'unknown', N: 'unknown' };

/** A record person name → HumanName. */
export function humanName(n: PersonName): HumanName {
  return strip({
    use: n.use === null ? undefined : NAME_USE[n.use.toUpperCase()],
    family: n.family ?? undefined,
    given: nonEmpty(n.given.filter((g) => g !== '')),
    prefix: n.prefix === null ? undefined : [n.prefix],
    suffix: n.suffix === null ? undefined : [n.suffix],
  });
}

/** Record addresses → FHIR Addresses. */
export function addresses(list: Address[]): FhirAddress[] {
  return list.map((a) =>
    strip({
      use: a.use === null ? undefined : ADDRESS_USE[a.use.toUpperCase()],
      line: nonEmpty(a.lines.filter((l) => l !== '')),
      city: a.city ?? undefined,
      district: a.district ?? undefined,
      postalCode: a.postcode ?? undefined,
      country: a.country ?? undefined,
    }),
  );
}

/** Record telecoms → ContactPoints (`PRS`, personal, is the mobile; otherwise home for PID-13, work for PID-14). */
export function telecoms(list: Telecom[]): ContactPoint[] {
  return list.map((t) => ({ system: t.system, value: t.value, use: t.use?.toUpperCase() === 'PRS' ? 'mobile' : t.where }));
}

/**
 * A stored identifier → Identifier: an NHS number with its verification status (UK Core style);
 * national numbers (NHS, CHI, H&C) `official`, each in its own system (the three NHS-style
 * number ranges are separate types); the others `usual`.
 */
function identifier(names: Names, id: PatientIdentifier): Identifier {
  const status: Extension[] | undefined =
    id.kind === 'nhs' && id.status !== null
      ? [{ url: SYSTEMS.nhsNumberVerificationExtension, valueCodeableConcept: { coding: [{ system: SYSTEMS.nhsNumberVerification, code: id.status }] } }]
      : undefined;
  return strip({
    extension: status,
    use: id.active ? (id.kind === 'nhs' || id.kind === 'national' ? 'official' : 'usual') : 'old',
    system: names.identifierSystem(id.system),
    value: id.value,
  });
}

/** The GP items → `generalPractitioner` references (practice by ODS code, GP by national code), deduplicated. */
function generalPractitioners(names: Names, gps: RecordItem[]): Reference<Organization | Practitioner>[] {
  const out: Reference<Organization | Practitioner>[] = [];
  const seen = new Set<string>();
  const add = (ref: Reference<Organization | Practitioner>): void => {
    const k = JSON.stringify(ref);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(ref);
    }
  };
  for (const item of gps) {
    const p = item.payload as unknown as GpPayload;
    if (p.practice !== null) {
      add(
        strip({
          type: 'Organization' as const,
          identifier: p.practice.odsCode === null ? undefined : { system: SYSTEMS.odsOrganisation, value: p.practice.odsCode },
          display: p.practice.name ?? p.practice.odsCode ?? undefined,
        }),
      );
    }
    const gp = p.practitioner;
    if (gp !== null && (gp.code !== null || gp.family !== null)) {
      const name = [gp.given, gp.family].filter((x) => x !== null).join(' ');
      // Only a GMP national code (G + 7 digits) has a known system; another code stays in the display.
      const gmp = gp.code !== null && /^G\d{7}$/.test(gp.code);
      add(
        strip({
          type: 'Practitioner' as const,
          identifier: gmp ? { system: SYSTEMS.gmpNumber, value: gp.code! } : undefined,
          display: name !== '' ? name : (gp.code ?? undefined),
        }),
      );
    }
  }
  return out;
}

/**
 * The Patient resource. `meta.versionId` is the demographics version (0 before any demographics),
 * `meta.lastUpdated` the MSH-7 of the demographics (else the record's creation time). No privacy
 * label: demographics are not labelled in the record.
 */
export function patientResource(names: Names, patient: PatientRecord, identifiers: PatientIdentifier[], gps: RecordItem[], replaces: readonly string[] = []): Patient {
  const d = patient.demographics;
  const extension: Extension[] = [];
  if (d?.ethnicGroup) extension.push({ url: SYSTEMS.ethnicCategoryExtension, valueCodeableConcept: { text: d.ethnicGroup } });
  const resource: Patient = {
    resourceType: 'Patient',
    id: patient.id,
    meta: { versionId: String(patient.version), lastUpdated: patient.enteredAt ?? patient.createdAt },
    extension: nonEmpty(extension),
    identifier: nonEmpty(identifiers.map((i) => identifier(names, i))),
    active: patient.mergedInto === null,
    name: d === null ? undefined : nonEmpty(d.names.map(humanName)),
    telecom: d === null ? undefined : nonEmpty(telecoms(d.telecom)),
    gender: d?.sex ? (GENDER[d.sex.toUpperCase()] ?? 'unknown') : undefined,
    birthDate: d?.birthDate ?? undefined,
    // deceased[x] is a choice: the time when sent, else the flag.
    deceasedDateTime: d?.deceasedAt ?? undefined,
    deceasedBoolean: d?.deceasedAt ? undefined : (d?.deceased ?? undefined),
    address: d === null ? undefined : nonEmpty(addresses(d.addresses)),
    // PID-16 codes are HL7 table 0002 (not v3 MaritalStatus: v2 A is separated, v3 A annulled).
    maritalStatus: d?.maritalStatus ? { coding: [{ system: SYSTEMS.v2MaritalStatus, code: d.maritalStatus }] } : undefined,
    communication: d?.language ? [{ language: { text: d.language } }] : undefined,
    generalPractitioner: nonEmpty(generalPractitioners(names, gps)),
    // Merges: the merged-away record points at its survivor; the survivor at what it replaces.
    link: nonEmpty([
      ...(patient.mergedInto === null ? [] : [{ other: { reference: `Patient/${patient.mergedInto}` }, type: 'replaced-by' as const }]),
      ...replaces.map((id) => ({ other: { reference: `Patient/${id}` }, type: 'replaces' as const })),
    ]),
  };
  return strip(resource);
}
