// SPDX-License-Identifier: Apache-2.0
/**
 * Patient identifiers in PID-2 / PID-3 (and MRG-1): which assigning authority (component 4) and
 * type code (component 5) pairs mean what, NHS number validation and status parsing.
 *
 * Only components 1, 4 and 5 are read, and an identifier's position does not matter. Pairs the
 * record does not know are ignored (domain §1 "Patient identification and matching").
 */
import { Hl7Error, Hl7ErrorCode, type Hl7Location, type Hl7Message, unescapeValue } from '../hl7/index.js';
import type { IdentifierKind, LocalIdType } from './store.js';

/** FHIR identifier system of NHS numbers. */
export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
/** Identifier system of email identifiers (one namespace). */
export const EMAIL_SYSTEM = 'email';

/** One identifier read from a message. */
export interface MessageIdentifier {
  /** `pkb` is the record's own patient id; the others are stored identifiers. */
  kind: IdentifierKind | 'pkb';
  /** {@link NHS_NUMBER_SYSTEM}, {@link EMAIL_SYSTEM}, `pkb`, or a local namespace ({@link localSystem}). */
  system: string;
  value: string;
  /** NHS number status from `NH{status:NN}`; null when not sent (and for other kinds). */
  status: string | null;
  /** Where the identifier's value (component 1) is. */
  location: Hl7Location;
}

/** Who is sending: local identifier types are per organisation or team. */
export interface IdentifierScope {
  organisationId: string;
  teamId: string | null;
  /** The organisation's local identifier types (all teams'; filtered here). */
  localTypes: readonly LocalIdType[];
}

/**
 * Whether a string is a valid NHS number: 10 digits whose last is the modulus 11 check digit of
 * the first nine (weights 10…2; a remainder giving 10 means no valid number).
 */
export function isValidNhsNumber(value: string): boolean {
  if (!/^\d{10}$/.test(value)) return false;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += (value.charCodeAt(i) - 48) * (10 - i);
  const check = 11 - (sum % 11);
  if (check === 10) return false;
  return (check === 11 ? 0 : check) === value.charCodeAt(9) - 48;
}

/** Why an NHS number is invalid, or undefined when it is valid. */
export function nhsNumberProblem(value: string): string | undefined {
  if (!/^\d+$/.test(value)) return 'not all digits';
  if (value.length !== 10) return `${value.length} digits, expected 10`;
  return isValidNhsNumber(value) ? undefined : 'wrong check digit';
}

/** Split a type code into the code and an appended NHS number status: `NH{status:01}` → `{ code: 'NH', status: '01' }`. */
export function parseTypeCode(typeCode: string): { code: string; status: string | null } {
  if (!typeCode.endsWith('}')) return { code: typeCode, status: null };
  const m = /^(.*?)\{status:([^}]*)\}$/.exec(typeCode);
  return m === null ? { code: typeCode, status: null } : { code: m[1]!, status: m[2]! };
}

/** The stored namespace of a local identifier type: the organisation (or team), authority and type code. */
export function localSystem(type: LocalIdType): string {
  return `local:${type.organisationId}${type.teamId === null ? '' : `/${type.teamId}`}:${type.authority}:${type.typeCode}`;
}

/** The local type matching an AA/TC pair for the scope: team before organisation, exact authority before `*`. */
export function matchLocalType(scope: IdentifierScope, authority: string, typeCode: string): LocalIdType | undefined {
  let best: LocalIdType | undefined;
  let bestScore = -1;
  for (const t of scope.localTypes) {
    if (t.organisationId !== scope.organisationId || t.typeCode !== typeCode) continue;
    if (t.teamId !== null && t.teamId !== scope.teamId) continue;
    if (t.authority !== '*' && t.authority !== authority) continue;
    const score = (t.teamId !== null ? 2 : 0) + (t.authority !== '*' ? 1 : 0);
    if (score > bestScore) {
      best = t;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Read the identifiers of one segment's identifier fields (PID-2 and PID-3 by default; MRG-1 for
 * merges). NHS numbers are validated; at most one NHS number and one email are allowed.
 *
 * @throws Hl7Error RECORD_INVALID_NHS_NUMBER (with the location), RECORD_CONFLICTING_IDENTIFIERS
 */
export function readIdentifiers(
  message: Hl7Message,
  scope: IdentifierScope,
  options: { segment?: string; occurrence?: number; fields?: readonly number[] } = {},
): MessageIdentifier[] {
  const segment = options.segment ?? 'PID';
  const occurrence = options.occurrence ?? 1;
  const fields = options.fields ?? [2, 3];
  const seg = occurrence > 1 ? `${segment}[${occurrence}]` : segment;
  const out: MessageIdentifier[] = [];
  const d = message.delimiters;
  for (const field of fields) {
    // The field split once: CX.1 id, CX.4.1 assigning authority, CX.5 type code.
    const reps = message.componentsOf({ segment, occurrence, field });
    for (let i = 0; i < reps.length; i++) {
      const c = reps[i]!;
      const value = unescapeValue(c[0] ?? '', d).trim();
      if (value === '' || value === '""') continue;
      const aa = c[3] ?? '';
      const sub = aa.indexOf(d.subcomponent);
      const authority = unescapeValue(sub < 0 ? aa : aa.slice(0, sub), d);
      const { code, status } = parseTypeCode(unescapeValue(c[4] ?? '', d));
      const location: Hl7Location = { segment, sequence: occurrence, field, repetition: i + 1, component: 1 };
      if (authority === 'NHS' && code === 'NH') {
        const problem = nhsNumberProblem(value);
        if (problem !== undefined) {
          throw new Hl7Error('RECORD_INVALID_NHS_NUMBER', Hl7ErrorCode.DataType, { location: `${seg}-${field}[${i + 1}].1`, reason: problem }, location);
        }
        out.push({ kind: 'nhs', system: NHS_NUMBER_SYSTEM, value, status: status === '' ? null : status, location });
      } else if (authority === 'PKB' && code === 'PI') {
        out.push({ kind: 'pkb', system: 'pkb', value, status: null, location });
      } else if (authority === 'EMAIL' && code === 'EMAIL') {
        // Email is an identifier only in PID-3 (domain §1); elsewhere it is ignored like an unknown pair.
        if (segment === 'PID' && field === 3) out.push({ kind: 'email', system: EMAIL_SYSTEM, value: value.toLowerCase(), status: null, location });
      } else if (code !== '') {
        const type = matchLocalType(scope, authority, code);
        if (type !== undefined) out.push({ kind: 'local', system: localSystem(type), value, status: null, location });
      }
    }
  }
  // A handful of identifiers: plain loops, no sets (this runs for every message).
  let nhs: string | undefined;
  let nhsConflict = false;
  let emails = 0;
  const unique: MessageIdentifier[] = [];
  for (const x of out) {
    if (x.kind === 'nhs') {
      if (nhs !== undefined && nhs !== x.value) nhsConflict = true;
      nhs = x.value;
    } else if (x.kind === 'email') emails++;
    // The same identifier sent twice (PID-2 and PID-3) counts once.
    if (!unique.some((u) => u.kind === x.kind && u.system === x.system && u.value === x.value)) unique.push(x);
  }
  if (nhsConflict) throw conflict(segment, occurrence, 'two different NHS numbers');
  if (emails > 1) throw conflict(segment, occurrence, 'more than one email identifier');
  return unique;
}

function conflict(segment: string, occurrence: number, reason: string): Hl7Error {
  return new Hl7Error('RECORD_CONFLICTING_IDENTIFIERS', Hl7ErrorCode.DataType, { reason }, { segment, sequence: occurrence, field: segment === 'PID' ? 3 : 1 });
}

/** The NHS number among identifiers, if any. */
export const nhsOf = (ids: readonly MessageIdentifier[]): MessageIdentifier | undefined => ids.find((x) => x.kind === 'nhs');
/** The email among identifiers, if any. */
export const emailOf = (ids: readonly MessageIdentifier[]): MessageIdentifier | undefined => ids.find((x) => x.kind === 'email');
