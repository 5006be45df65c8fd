// SPDX-License-Identifier: Apache-2.0
/**
 * The aggregated patient record: the supported surface of `src/record/`. Import from here, not
 * from the files behind it. See docs/record.md.
 */
export * from './types.js';
export { COMPONENT as RECORD_COMPONENT, RECORD_MIGRATIONS, migrateRecord } from './schema.js';
export {
  type Address,
  type Demographics,
  type IdentifierKind,
  type Invitation,
  type InvitationStatus,
  type LabelMapping,
  type LocalIdType,
  type MergeRecord,
  type PatientIdentifier,
  type PatientRecord,
  type PersonName,
  type RadiologyApplication,
  type RecordStoreOptions,
  type ReviewItem,
  type ReviewReason,
  type Telecom,
  type TeamMembership,
  SqliteRecordStore,
} from './store.js';
export { type TeamDirectory, type ZtmPlan, applyZtm, creatingTeam, readZtm, ztmDefaultTeam } from './teams.js';
export { SqliteAttachmentStore } from './attachments.js';
export {
  CHI_NUMBER_SYSTEM,
  EMAIL_SYSTEM,
  HC_NUMBER_SYSTEM,
  NATIONAL_ID_TYPES,
  NHS_NUMBER_SYSTEM,
  type MessageIdentifier,
  type NationalIdType,
  chiNumberProblem,
  hcNumberProblem,
  isValidNhsNumber,
  nationalNameOf,
  parseTypeCode,
  readIdentifiers,
} from './identifiers.js';
export { type AllergyPayload, type Coded, type ConditionPayload, type GpPayload, type MedicationPayload, type NextOfKinPayload, createAdtUpdateHandler } from './adt.js';
export { MERGE_TYPES, type UnmergeInput, unmerge } from './merge.js';
export { ReviewQueue, type ReviewResolution } from './review.js';
export {
  type ContactEmailPlan,
  type ContactEmails,
  type InvitationOutcome,
  closeInvitation,
  emailSource,
  planContactEmail,
  readContactEmails,
  recordEmail,
  settleInvitations,
} from './invitations.js';
export { type ApplyInput, type ApplyOutcome, RecordService, type RecordServiceOptions, UPDATE_TYPES } from './service.js';
export { ENCOUNTER_HANDLERS, type EncounterEvent, type EncounterPayload } from './encounters.js';
export { APPOINTMENT_HANDLERS, type AppointmentPayload, type Clinician } from './appointments.js';
export { RESULT_HANDLERS, type AttachmentRef, type CodedValue, type ReportPayload, type ResultPayload } from './results.js';
export {
  AGREED_MEASUREMENTS,
  type AgreedMeasurement,
  LOINC_SYSTEM,
  type LoincCode,
  type MeasuredValue,
  type MeasurementPayload,
  SNOMED_CT_SYSTEM,
  UCUM_SYSTEM,
  agreedMeasurement,
  agreedMeasurementOf,
  isAgreedCode,
  isSnomedSystem,
} from './measurements.js';
export { DOCUMENT_HANDLERS, type DocumentPayload } from './documents.js';
export { LABEL_SOURCES, parseLabelSource, parseRecordLabel } from './config.js';
