// SPDX-License-Identifier: Apache-2.0
/**
 * Patient identifiers in PID-2 / PID-3 (and MRG-1): which assigning authority (component 4) and
 * type code (component 5) pairs mean what, validation of the national numbers (NHS, CHI, H&C) and
 * NHS number status parsing.
 *
 * Only components 1, 4 and 5 are read, and an identifier's position does not matter. Pairs the
 * record does not know are ignored (domain §1 "Patient identification and matching").
 *
 * National identifiers: the NHS number (England and Wales, kind `nhs`, with its status rules), and
 * the other two "NHS-style" numbers, drawn from the same scheme in non-overlapping ranges and kept
 * as separate types (kind `national`, told apart by their system): the CHI number (Scotland) and
 * the Health and Care number (Northern Ireland). Their authority / type code pairs and identifier
 * systems are PKB's (see {@link NATIONAL_ID_TYPES}).
 */
import { Hl7Error, Hl7ErrorCode, type Hl7Location, type Hl7Message, rawComponent, unescapeValue } from '../hl7/index.js';
import type { IdentifierKind, LocalIdType } from './store.js';

/** FHIR identifier system of NHS numbers. */
export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
/** Identifier system of CHI numbers (Scotland): the HL7 UK OID, as PKB's FHIR API uses it. */
export const CHI_NUMBER_SYSTEM = 'urn:oid:2.16.840.1.113883.2.1.3.2.4.16.53';
/** Identifier system of Health and Care numbers (Northern Ireland), as PKB's FHIR API uses it. */
export const HC_NUMBER_SYSTEM = 'urn:uuid:1479257a-ce8f-482a-89fa-429ac066c158';
/** Identifier system of email identifiers (one namespace). */
export const EMAIL_SYSTEM = 'email';

/** One identifier read from a message. */
export interface MessageIdentifier {
  /** `pkb` is the record's own patient id; the others are stored identifiers. */
  kind: IdentifierKind | 'pkb';
  /** {@link NHS_NUMBER_SYSTEM}, {@link CHI_NUMBER_SYSTEM}, {@link HC_NUMBER_SYSTEM}, {@link EMAIL_SYSTEM}, `pkb`, or a local namespace ({@link localSystem}). */
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

/** Whether six digits DDMMYY are a calendar date (29 February only in a year divisible by 4: 00 is 2000). */
function isDdmmyy(digits: string): boolean {
  const day = Number(digits.slice(0, 2));
  const month = Number(digits.slice(2, 4));
  const year = Number(digits.slice(4, 6));
  if (month < 1 || month > 12 || day < 1) return false;
  const days = [31, year % 4 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days;
}

/**
 * Why a CHI number (Scotland) is invalid, or undefined when it is valid: 10 digits, the first six
 * the date of birth as DDMMYY, the last the same modulus 11 check digit as an NHS number's.
 */
export function chiNumberProblem(value: string): string | undefined {
  if (!/^\d+$/.test(value)) return 'not all digits';
  if (value.length !== 10) return `${value.length} digits, expected 10`;
  if (!isDdmmyy(value.slice(0, 6))) return 'first six digits are not a date (DDMMYY)';
  return isValidNhsNumber(value) ? undefined : 'wrong check digit';
}

/**
 * Why a Health and Care number (Northern Ireland) is invalid, or undefined when it is valid: 10
 * digits in its range, 320 000 0000 to 399 999 9999, with an NHS number's modulus 11 check digit.
 */
export function hcNumberProblem(value: string): string | undefined {
  if (!/^\d+$/.test(value)) return 'not all digits';
  if (value.length !== 10) return `${value.length} digits, expected 10`;
  const prefix = Number(value.slice(0, 2));
  if (prefix < 32 || prefix > 39) return 'not in the H&C range 320 000 0000 to 399 999 9999';
  return isValidNhsNumber(value) ? undefined : 'wrong check digit';
}

/** A national identifier type: how it is sent (PID-3.4 / PID-3.5), stored and checked. */
export interface NationalIdType {
  /** As messages name it, e.g. `CHI number`. */
  name: string;
  /** Assigning authority (CX-4.1), compared exactly. */
  authority: string;
  /** Identifier type code (CX-5, without a `{status:NN}` suffix), compared exactly. */
  typeCode: string;
  /** Stored kind: `nhs` (its status rules apply) or `national`. */
  kind: 'nhs' | 'national';
  /** Stored and FHIR identifier system. */
  system: string;
  /** Why a value is invalid, or undefined. */
  problem(value: string): string | undefined;
}

/**
 * The national identifier types, with PKB's authority / type code pairs (PKB's NationalIdType:
 * NHS/NH, "NHS Scotland"/NH, DHSSPS/NH) and identifier systems (PKB's FHIR identifier systems page).
 */
export const NATIONAL_ID_TYPES: readonly NationalIdType[] = [
  { name: 'NHS number', authority: 'NHS', typeCode: 'NH', kind: 'nhs', system: NHS_NUMBER_SYSTEM, problem: nhsNumberProblem },
  { name: 'CHI number', authority: 'NHS Scotland', typeCode: 'NH', kind: 'national', system: CHI_NUMBER_SYSTEM, problem: chiNumberProblem },
  { name: 'H&C number', authority: 'DHSSPS', typeCode: 'NH', kind: 'national', system: HC_NUMBER_SYSTEM, problem: hcNumberProblem },
];

/** The national type an authority / type code pair names, or undefined. */
export function nationalTypeOf(authority: string, typeCode: string): NationalIdType | undefined {
  return NATIONAL_ID_TYPES.find((x) => x.authority === authority && x.typeCode === typeCode);
}

/** The name of a national identifier system (`CHI number`…), or undefined for other systems. */
export function nationalNameOf(system: string): string | undefined {
  return NATIONAL_ID_TYPES.find((x) => x.system === system)?.name;
}

/** Whether an identifier kind is a national one (NHS, CHI, H&C number). */
export const isNational = (kind: MessageIdentifier['kind']): kind is 'nhs' | 'national' => kind === 'nhs' || kind === 'national';

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
 * merges). National numbers are validated; at most one number of each national type and one email
 * are allowed.
 *
 * @throws Hl7Error RECORD_INVALID_NHS_NUMBER, RECORD_INVALID_NATIONAL_ID (with the location), RECORD_CONFLICTING_IDENTIFIERS
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
    // Each repetition read in place: CX.1 id, CX.4.1 assigning authority, CX.5 type code.
    const raw = message.rawField({ segment, occurrence, field });
    if (raw === undefined || raw === '') continue;
    for (let i = 0, from = 0; from <= raw.length; i++) {
      let to = raw.indexOf(d.repetition, from);
      if (to < 0) to = raw.length;
      const start = from;
      from = to + 1;
      const value = unescapeValue(rawComponent(raw, start, to, 0, d), d).trim();
      if (value === '' || value === '""') continue;
      const authority = unescapeValue(rawComponent(raw, start, to, 3, d, true), d);
      const { code, status } = parseTypeCode(unescapeValue(rawComponent(raw, start, to, 4, d), d));
      const location: Hl7Location = { segment, sequence: occurrence, field, repetition: i + 1, component: 1 };
      const national = nationalTypeOf(authority, code);
      if (national !== undefined) {
        const problem = national.problem(value);
        if (problem !== undefined) {
          const at = `${seg}-${field}[${i + 1}].1`;
          throw national.kind === 'nhs'
            ? new Hl7Error('RECORD_INVALID_NHS_NUMBER', Hl7ErrorCode.DataType, { location: at, reason: problem }, location)
            : new Hl7Error('RECORD_INVALID_NATIONAL_ID', Hl7ErrorCode.DataType, { name: national.name, location: at, reason: problem }, location);
        }
        // The status suffix is the NHS number's (PDS tracing); on a CHI or H&C number it means nothing.
        out.push({ kind: national.kind, system: national.system, value, status: national.kind === 'nhs' && status !== '' ? status : null, location });
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
  let emails = 0;
  const unique: MessageIdentifier[] = [];
  for (const x of out) {
    if (isNational(x.kind)) {
      // One number per national type: an NHS and a CHI number together are two types, not a conflict.
      if (unique.some((u) => u.system === x.system && u.value !== x.value)) {
        throw conflict(segment, occurrence, `two different ${nationalNameOf(x.system) ?? 'national'}s`);
      }
    } else if (x.kind === 'email') emails++;
    // The same identifier sent twice (PID-2 and PID-3) counts once.
    if (!unique.some((u) => u.kind === x.kind && u.system === x.system && u.value === x.value)) unique.push(x);
  }
  if (emails > 1) throw conflict(segment, occurrence, 'more than one email identifier');
  return unique;
}

function conflict(segment: string, occurrence: number, reason: string): Hl7Error {
  return new Hl7Error('RECORD_CONFLICTING_IDENTIFIERS', Hl7ErrorCode.DataType, { reason }, { segment, sequence: occurrence, field: segment === 'PID' ? 3 : 1 });
}

/** The NHS number among identifiers, if any. */
export const nhsOf = (ids: readonly MessageIdentifier[]): MessageIdentifier | undefined => ids.find((x) => x.kind === 'nhs');
/** The national identifiers (NHS, CHI, H&C numbers) among identifiers, the NHS number first. */
export const nationalsOf = (ids: readonly MessageIdentifier[]): MessageIdentifier[] =>
  ids.filter((x) => isNational(x.kind)).sort((a, b) => (a.kind === 'nhs' ? 0 : 1) - (b.kind === 'nhs' ? 0 : 1));
/** The email among identifiers, if any. */
export const emailOf = (ids: readonly MessageIdentifier[]): MessageIdentifier | undefined => ids.find((x) => x.kind === 'email');
