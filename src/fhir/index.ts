// SPDX-License-Identifier: Apache-2.0
/**
 * FHIR R4 export of the aggregated record: the supported surface of `src/fhir/`. Import from here.
 * See docs/record.md "FHIR export".
 */
export {
  ATTACHMENT_SHA256_EXTENSION,
  type BundleOptions,
  type ExportStore,
  MESSAGE_CONTROL_ID_EXTENSION,
  type PatientExportInput,
  attachmentRefsOf,
  exportInputFromStore,
  patientBundle,
} from './export.js';
export { LABEL_DISPLAY, PRIVACY_LABEL_SYSTEM, securityLabels } from './labels.js';
export { DEFAULT_NAMESPACE } from './common.js';
export { patientResource } from './patient.js';
export { type BuildContext, DELETABLE_KINDS, RESOURCE_BUILDERS, type ResourceBuilder } from './resources.js';
