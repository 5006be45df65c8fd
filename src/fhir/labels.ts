// SPDX-License-Identifier: Apache-2.0
/**
 * Privacy labels as FHIR security labels (domain §2 "FHIR representation of consent and labels"):
 * a labelled record item's resources carry one `meta.security` coding in the PKB privacy-label code
 * system, so a FHIR server or the authorisation layer can filter on the label without knowing our
 * record tables.
 */
import type { Coding } from '@medplum/fhirtypes';
import type { RecordLabel } from '../record/index.js';

/** PKB's privacy-label code system (the codes are the record's {@link RecordLabel} values as they are). */
export const PRIVACY_LABEL_SYSTEM = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';

/** Readable names of the labels (`Coding.display`). */
export const LABEL_DISPLAY: Readonly<Record<RecordLabel, string>> = {
  GENERAL_HEALTH: 'General health',
  MENTAL_HEALTH: 'Mental health',
  SEXUAL_HEALTH: 'Sexual health',
  SOCIAL_CARE: 'Social care',
};

/**
 * The `meta.security` codings of a label; none for an unlabelled item (the record's `null`, which
 * the access rules treat as "needs all four labels": an absent label, not a fifth code).
 */
export function securityLabels(label: RecordLabel | null): Coding[] | undefined {
  return label === null ? undefined : [{ system: PRIVACY_LABEL_SYSTEM, code: label, display: LABEL_DISPLAY[label] }];
}

/** A FHIR-id-safe short form of a label (ids allow no `_`), used in Provenance ids. */
export function labelSlug(label: RecordLabel | null): string {
  return label === null ? 'unlabelled' : label.toLowerCase().replace(/_/g, '-');
}
