// SPDX-License-Identifier: Apache-2.0
/**
 * Authentication: who may send. The configuration model and its store (organisations, teams,
 * MSH-4 aliases, senders with allowlists, TLS identities and credentials, partner grants, the
 * audit log), declared configuration, and the runtime checks on every connection and message.
 * Import from here. See docs/senders.md.
 */
export { type Cidr, parseCidr, parseAddress, normaliseAddress, cidrContains, allowlistContains } from './addresses.js';
export {
  type Alias,
  type AuditRow,
  type CredentialInfo,
  type Organisation,
  type OrganisationKind,
  type PartnerGrant,
  type PrivacyLabel,
  type SecretInfo,
  type SenderRecord,
  type Team,
  ORGANISATION_KINDS,
  PRIVACY_LABELS,
  checkTlsIdentity,
} from './model.js';
export { COMPONENT as SENDERS_COMPONENT, migrateSenders } from './schema.js';
export { SCRYPT_DEFAULTS, type ScryptParams, generateSecret, hashSecret, parseHash, verifySecret, verifySecretAsync } from './secrets.js';
export {
  type AliasInput,
  type GrantInput,
  type IssuedSecret,
  type OrganisationInput,
  type SenderInput,
  type SenderStoreOptions,
  type TeamInput,
  DEFAULT_ROTATION_OVERLAP_MS,
  RECORD_TEAM_NAME,
  SenderStore,
  defaultActor,
  readGeneration,
  recordTeamId,
  writeAudit,
} from './store.js';
export {
  type ActingOk,
  type ActingRefused,
  type ActingResult,
  type LockoutOptions,
  type SenderDirectoryOptions,
  type TlsIdentity,
  SenderDirectory,
} from './directory.js';
export { MSH8_MASK, maskMsh8, parseMsh8Credential } from './msh8.js';
export {
  type ApplyResult,
  type DeclaredAlias,
  type DeclaredConfig,
  type DeclaredCredential,
  type DeclaredGrant,
  type DeclaredOrganisation,
  type DeclaredSender,
  type DeclaredTeam,
  applyDeclaredConfig,
} from './declared.js';
