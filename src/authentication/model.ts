// SPDX-License-Identifier: Apache-2.0
/**
 * The sender configuration model (organisations, teams, aliases, senders, credentials, partner
 * grants, audit rows) and the validation rules shared by the admin CLI and declared configuration,
 * so both paths accept and refuse exactly the same values.
 */
import { TributaryError } from '../errors.js';
import { parseCidr } from './addresses.js';

/** A customer (a data controller, e.g. a hospital) or a partner (an integrator sending for customers). */
export type OrganisationKind = 'customer' | 'partner';
/** Organisation kinds, for flags and validation. */
export const ORGANISATION_KINDS: readonly OrganisationKind[] = ['customer', 'partner'];

/** The four privacy labels (domain §3); a team's default label is applied to data it authors. */
export const PRIVACY_LABELS = ['GENERAL_HEALTH', 'MENTAL_HEALTH', 'SEXUAL_HEALTH', 'SOCIAL_CARE'] as const;
/** One of {@link PRIVACY_LABELS}. */
export type PrivacyLabel = (typeof PRIVACY_LABELS)[number];

/** An organisation. */
export interface Organisation {
  id: string;
  name: string;
  kind: OrganisationKind;
  /** Create a patient record from any message that has the required fields (not only A28/A31). */
  autoCreate: boolean;
  /** Quarantine messages whose NHS number status is not 01. */
  nhsStatusCheck: boolean;
  createdAt: number;
}

/** A team of an organisation. */
export interface Team {
  id: string;
  organisationId: string;
  name: string;
  defaultLabel: PrivacyLabel | null;
  /** The organisation's Patient Record Team (one per customer, made with it). */
  isRecordTeam: boolean;
  createdAt: number;
}

/** An MSH-4 alias naming an organisation, or one of its teams. */
export interface Alias {
  value: string;
  organisationId: string;
  teamId: string | null;
  createdAt: number;
}

/** A system that connects and sends messages for an organisation. */
export interface SenderRecord {
  id: string;
  organisationId: string;
  /** The organisation's kind (copied for the checks). */
  organisationKind: OrganisationKind;
  name: string;
  /** Canonical CIDRs the sender may connect from. */
  allowCidrs: string[];
  /** Canonical TLS identities: `CN=...`, `DNS:...` (or another SAN type), `sha256:<hex>`. */
  tlsIdentities: string[];
  /** Allowed MSH-3 values; empty = any. */
  applications: string[];
  enabled: boolean;
  createdAt: number;
}

/** One secret of a credential (never the secret or its hash, only its state). */
export interface SecretInfo {
  id: number;
  createdAt: number;
  /** Set by a rotation on the old secret: valid until then. */
  expiresAt: number | null;
  revokedAt: number | null;
}

/** A user name of a sender, with the state of its secrets. */
export interface CredentialInfo {
  id: number;
  senderId: string;
  username: string;
  createdAt: number;
  revokedAt: number | null;
  secrets: SecretInfo[];
}

/** A customer's grant to another organisation (normally a partner) to send for it. */
export interface PartnerGrant {
  id: number;
  customerOrganisationId: string;
  partnerOrganisationId: string;
  /** Only this team of the customer; null = the whole organisation. */
  teamId: string | null;
  createdAt: number;
  revokedAt: number | null;
}

/** One audit row. */
export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  objectType: string;
  objectId: string | null;
  detail: Record<string, unknown>;
}

// ---- validation (throws ADMIN_INVALID with the field name; callers prefix a key path) ----

/** Throw `ADMIN_INVALID` for `field`. */
export function invalid(field: string, reason: string): never {
  throw new TributaryError('ADMIN_INVALID', { field, reason });
}

const ID = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** Ids of organisations, teams and senders: lowercase slugs, as they appear in URLs and logs. */
export function checkId(field: string, value: unknown): string {
  if (typeof value !== 'string' || !ID.test(value)) {
    invalid(field, `${JSON.stringify(value)} is not an id (lowercase letters, digits, ".", "_", "-"; at most 63; starts with a letter or digit)`);
  }
  return value;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
/** A display name: 1..200 characters, no control characters. */
export function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > 200 || CONTROL.test(value)) {
    invalid(field, 'must be 1 to 200 characters without control characters');
  }
  return value.trim();
}

/** An organisation kind. */
export function checkKind(field: string, value: unknown): OrganisationKind {
  if (!ORGANISATION_KINDS.includes(value as OrganisationKind)) invalid(field, `${JSON.stringify(value)} is not one of ${ORGANISATION_KINDS.join(', ')}`);
  return value as OrganisationKind;
}

/** A privacy label, or null. */
export function checkLabel(field: string, value: unknown): PrivacyLabel | null {
  if (value === null || value === undefined) return null;
  if (!PRIVACY_LABELS.includes(value as PrivacyLabel)) invalid(field, `${JSON.stringify(value)} is not one of ${PRIVACY_LABELS.join(', ')}`);
  return value as PrivacyLabel;
}

/** A boolean. */
export function checkBool(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') invalid(field, 'must be true or false');
  return value;
}

/** HL7 delimiters that a value matched against one MSH component can never contain. */
const HL7_DELIMS = /[|^~\\&]/;
/** An MSH-4 alias: the exact text of one MSH-4 component (case-sensitive). */
export function checkAlias(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > 100 || value.trim() !== value || CONTROL.test(value) || HL7_DELIMS.test(value)) {
    invalid(field, `${JSON.stringify(value)} is not an alias (1 to 100 characters, no surrounding spaces, no HL7 delimiters | ^ ~ \\ &)`);
  }
  return value;
}

const USERNAME = /^[A-Za-z0-9._@-]{1,64}$/;
/** A credential user name: no ':' (it ends the user name in MSH-8) and nothing needing escapes. */
export function checkUsername(field: string, value: unknown): string {
  if (typeof value !== 'string' || !USERNAME.test(value)) {
    invalid(field, `${JSON.stringify(value)} is not a user name (1 to 64 of A-Z a-z 0-9 . _ @ -)`);
  }
  return value;
}

/** An MSH-3 value allowed for a sender. */
export function checkApplication(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > 200 || CONTROL.test(value) || value.includes('|')) {
    invalid(field, `${JSON.stringify(value)} is not an MSH-3 value`);
  }
  return value;
}

/** A list of strings, each checked; duplicates are dropped (order kept). */
export function checkList<T>(field: string, value: unknown, each: (field: string, v: unknown) => T): T[] {
  if (!Array.isArray(value)) invalid(field, 'must be a list');
  const out: T[] = [];
  value.forEach((v, i) => {
    const x = each(`${field}[${i}]`, v);
    if (!out.includes(x)) out.push(x);
  });
  return out;
}

/** An allowlist entry, returned canonical (`10.1.2.0/24`). */
export function checkCidr(field: string, value: unknown): string {
  if (typeof value !== 'string') invalid(field, 'must be a CIDR string');
  const c = parseCidr(value);
  if ('error' in c) invalid(field, c.error);
  return c.text;
}

const SAN_TYPES: Record<string, string> = { dns: 'DNS', ip: 'IP Address', 'ip address': 'IP Address', uri: 'URI', email: 'email' };

/**
 * A TLS client identity, returned canonical:
 * - `CN=<subject common name>`;
 * - a subjectAltName entry as Node prints it: `DNS:<name>`, `IP Address:<ip>` (or `IP:`), `URI:<uri>`, `email:<address>`;
 * - a certificate fingerprint: `sha256:<hex>` or the bare 64 hex digits, with or without colons
 *   (as `openssl x509 -fingerprint -sha256` or Node's `fingerprint256` print it).
 */
export function checkTlsIdentity(field: string, value: unknown): string {
  const t = typeof value === 'string' ? value.trim() : '';
  if (t === '' || t.length > 300 || CONTROL.test(t)) invalid(field, 'must be CN=..., DNS:..., or a sha256 fingerprint');
  const fp = /^(?:sha256:)?((?:[0-9a-f]{2}:){31}[0-9a-f]{2}|[0-9a-f]{64})$/i.exec(t);
  if (fp) return `sha256:${fp[1]!.replace(/:/g, '').toLowerCase()}`;
  const cn = /^cn=(.+)$/i.exec(t);
  if (cn) return `CN=${cn[1]!.trim()}`;
  const san = /^([A-Za-z ]+):(.+)$/.exec(t);
  const type = san ? SAN_TYPES[san[1]!.trim().toLowerCase()] : undefined;
  if (san && type) return `${type}:${type === 'DNS' ? san[2]!.trim().toLowerCase() : san[2]!.trim()}`;
  return invalid(field, `${JSON.stringify(value)} is not a TLS identity: use CN=<name>, DNS:<name>, IP Address:<ip>, URI:<uri>, email:<address>, or sha256:<fingerprint>`);
}

/** The key two TLS identities are compared by (case-insensitive: DNS names and hex are). */
export function tlsIdentityKey(canonical: string): string {
  return canonical.toLowerCase();
}
