// SPDX-License-Identifier: Apache-2.0
/**
 * Patient resolution and creation rules, and demographics from PID.
 *
 * Resolution (domain §1 "Patient identification and matching", Implications 4): identifiers are
 * looked up (following merge links to the survivor); national numbers (NHS, CHI, H&C), the PKB id
 * and local ids decide the match, the email only when nothing else matched. Some matches go to the
 * review queue instead of being applied; creation is reserved to A28/A31, or to any message with
 * auto-create and enough verified data.
 *
 * The national numbers are treated alike (a match by one is a verified identity; a local id never
 * overrides one), one of each type per record; only the NHS number has a status, so only it goes
 * to review for its status.
 */
import { Hl7Error, Hl7ErrorCode, type Hl7Location, type Hl7Message, parseHl7Timestamp } from '../hl7/index.js';
import { emailOf, isNational, type MessageIdentifier, nationalNameOf, nationalsOf, nhsOf } from './identifiers.js';
import type { Address, Demographics, PersonName, ReviewReason, SqliteRecordStore, Telecom } from './store.js';
import type { Provenance } from './types.js';

/** The outcome of {@link resolvePatient}. */
export type Resolution =
  | { kind: 'matched'; patientId: string }
  | { kind: 'unmatched' }
  | { kind: 'review'; reason: ReviewReason; detail: string; candidates: string[] };

/** Options of {@link resolvePatient}. */
export interface ResolveOptions {
  /** The organisation's NHS number status check (statuses other than 01 go to review). */
  nhsStatusCheck: boolean;
  /** False when applying a reviewed message "as sent": the review rules are skipped. */
  review: boolean;
}

/**
 * Find the record the identifiers name, or decide that the message needs review.
 *
 * Review cases: identifiers matching different records; an NHS number with a status other than 01
 * when the organisation checks statuses; a local id matching a record holding a different number
 * of a national type the message carries (`nhs-mismatch`: NHS, CHI or H&C); only local ids,
 * matching a record that holds a national number (`local-id-only`).
 *
 * The PID-3 email finds a record only when the record's address did not come from PID-13/14 (no
 * invitation row for it): a contact address is not a confirmed account email (domain §1 "the
 * primary email or a confirmed secondary one").
 *
 * @throws Hl7Error RECORD_EMAIL_IN_USE when the email identifier is another record's (also when it
 *   is a PID-13/14 address the message would otherwise have been matched by)
 */
export function resolvePatient(store: SqliteRecordStore, ids: readonly MessageIdentifier[], options: ResolveOptions): Resolution {
  const matched = new Map<string, Set<MessageIdentifier['kind']>>();
  for (const id of ids) {
    if (id.kind === 'email') continue;
    const owner = id.kind === 'pkb' ? id.value : store.findIdentifier(id.kind, id.system, id.value)?.patientId;
    const survivor = owner === undefined ? undefined : store.survivorOf(owner);
    if (survivor === undefined) continue;
    let kinds = matched.get(survivor);
    if (kinds === undefined) matched.set(survivor, (kinds = new Set()));
    kinds.add(id.kind);
  }
  const email = emailOf(ids);
  const emailOwnerRaw = email === undefined ? undefined : store.findIdentifier('email', email.system, email.value)?.patientId;
  const emailOwner = emailOwnerRaw === undefined ? undefined : store.survivorOf(emailOwnerRaw);
  const nhs = nhsOf(ids);
  const nationals = nationalsOf(ids);
  const candidates = [...matched.keys()];

  if (candidates.length > 1) {
    if (options.review) return { kind: 'review', reason: 'ambiguous', detail: `identifiers match ${candidates.length} records`, candidates };
    // As sent: the NHS number decides, then another national number, then the first match.
    const byNhs = candidates.find((c) => matched.get(c)!.has('nhs')) ?? candidates.find((c) => matched.get(c)!.has('national'));
    return finish(byNhs ?? candidates[0]!);
  }
  if (options.review && options.nhsStatusCheck && nhs?.status != null && nhs.status !== '01') {
    return { kind: 'review', reason: 'nhs-status', detail: `NHS number status ${nhs.status}`, candidates };
  }
  if (candidates.length === 0) {
    if (emailOwner !== undefined) {
      // An address that came from PID-13/14 (it has an invitation row) is a contact address, not a
      // confirmed account email: it finds no record, but is still that record's (one per record).
      if (store.findInvitation(emailOwnerRaw!, email!.value) !== undefined) throw emailInUse(email!);
      // The email finds its record unless the message names another person by a national number
      // (one the email's record holds a different number of: the message's matched no record).
      const heldSystems = store.identifiers(emailOwner).filter((x) => isNational(x.kind)).map((x) => x.system);
      if (nationals.some((n) => heldSystems.includes(n.system))) throw emailInUse(email!);
      return finish(emailOwner);
    }
    return { kind: 'unmatched' };
  }
  const patientId = candidates[0]!;
  const kinds = matched.get(patientId)!;
  if (options.review && !kinds.has('nhs') && !kinds.has('national') && !kinds.has('pkb')) {
    // Matched by a local id only: it must not override a national identity the record holds.
    const held = store.identifiers(patientId).filter((x) => isNational(x.kind));
    const differs = nationals.find((n) => held.some((h) => h.system === n.system && h.value !== n.value));
    if (differs !== undefined) {
      const name = nationalNameOf(differs.system) ?? 'national number';
      return { kind: 'review', reason: 'nhs-mismatch', detail: `a local id matches a record holding a different ${name}`, candidates };
    }
    if (held.length > 0 && nationals.length === 0 && ids.every((x) => x.kind === 'local' || x.kind === 'email')) {
      const names = [...new Set(held.map((h) => nationalNameOf(h.system) ?? 'national number'))].join(', ');
      return { kind: 'review', reason: 'local-id-only', detail: `only local ids, matching a record that holds a national number (${names})`, candidates };
    }
  }
  return finish(patientId);

  function finish(patientId: string): Resolution {
    if (email !== undefined && emailOwner !== undefined && emailOwner !== patientId) throw emailInUse(email);
    return { kind: 'matched', patientId };
  }
}

/** The AR for an email another record holds, at the email's field: `PID-3[2].1`, or `PID-13[2].4` for a contact email. */
function emailInUse(email: MessageIdentifier): Hl7Error {
  const at = email.location;
  const location = `${at.segment}-${at.field ?? 3}[${at.repetition ?? 1}].${at.component ?? 1}`;
  return new Hl7Error('RECORD_EMAIL_IN_USE', Hl7ErrorCode.DuplicateKeyIdentifier, { location }, at);
}

/**
 * Store the message's identifiers on the record: new local ids and national numbers (one of each
 * type: NHS, CHI, H&C), the NHS status as last sent, the email (one per record: a new one replaces
 * the old, kept inactive). With `replaceNational` (a reviewed message applied as sent) a different
 * national number replaces the record's number of that type.
 *
 * @throws Hl7Error RECORD_EMAIL_IN_USE, RECORD_NHS_NUMBER_IN_USE, RECORD_NATIONAL_ID_IN_USE
 */
export function attachIdentifiers(
  store: SqliteRecordStore,
  patientId: string,
  ids: readonly MessageIdentifier[],
  provenance: Pick<Provenance, 'organisationId' | 'journalId'>,
  options: { replaceNational?: boolean } = {},
): void {
  const held = store.identifiers(patientId);
  for (const id of ids) {
    if (id.kind === 'pkb') continue;
    const existing = store.findIdentifier(id.kind, id.system, id.value);
    if (existing !== undefined) {
      if (store.survivorOf(existing.patientId) !== patientId) {
        if (id.kind === 'email') throw emailInUse(id);
        if (isNational(id.kind) && options.replaceNational === true) {
          const location = `PID-${id.location.field}[${id.location.repetition ?? 1}].1`;
          throw id.kind === 'nhs'
            ? new Hl7Error('RECORD_NHS_NUMBER_IN_USE', Hl7ErrorCode.DuplicateKeyIdentifier, { location }, id.location)
            : new Hl7Error('RECORD_NATIONAL_ID_IN_USE', Hl7ErrorCode.DuplicateKeyIdentifier, { name: nationalNameOf(id.system) ?? 'national number', location }, id.location);
        }
        continue; // another record's local id or national number (a reviewed message applied to a chosen record): leave it there
      }
      if (id.kind === 'nhs' && id.status !== null && existing.status !== id.status) store.setIdentifierStatus(existing.id, id.status);
      continue;
    }
    if (isNational(id.kind)) {
      // One number of each national type per record; a different one only replaces it as sent.
      const current = held.find((x) => x.kind === id.kind && x.system === id.system);
      if (current !== undefined) {
        if (options.replaceNational !== true) continue;
        store.deactivateIdentifier(current.id);
      }
    }
    if (id.kind === 'email') {
      for (const old of held) if (old.kind === 'email') store.deactivateIdentifier(old.id);
    }
    store.addIdentifier(patientId, { kind: id.kind, system: id.system, value: id.value, status: id.status }, provenance);
  }
}

// ------------------------------------------------------------------ demographics

/** A field's state in a message: absent or empty (keep what the record has), `""` (clear), or a value. */
type Update<T> = { keep: true } | { keep: false; value: T };
const KEEP = { keep: true } as const;

/** What a PID says about demographics, field by field. */
export interface DemographicsUpdate {
  names: Update<PersonName[]>;
  birthDate: Update<string | null>;
  sex: Update<string | null>;
  addresses: Update<Address[]>;
  telecom: Update<Telecom[]>;
  deceasedAt: Update<string | null>;
  deceased: Update<boolean | null>;
  maritalStatus: Update<string | null>;
  language: Update<string | null>;
  ethnicGroup: Update<string | null>;
}

const nz = (s: string | undefined): string | null => (s === undefined || s === '' ? null : s);

/** Read an XPN repetition (PID-5, NK1-2) at `path` (e.g. `PID-5[2]`). */
export function readName(message: Hl7Message, path: string): PersonName {
  const given = [nz(message.get(`${path}.2`)), nz(message.get(`${path}.3`))].filter((x): x is string => x !== null);
  return { family: nz(message.get(`${path}.1.1`)), given, prefix: nz(message.get(`${path}.5`)), suffix: nz(message.get(`${path}.4`)), use: nz(message.get(`${path}.7`)) };
}

/** Read an XAD repetition (PID-11, NK1-4). */
export function readAddress(message: Hl7Message, path: string): Address {
  const lines = [nz(message.get(`${path}.1.1`)), nz(message.get(`${path}.2`))].filter((x): x is string => x !== null);
  return {
    lines,
    city: nz(message.get(`${path}.3`)),
    district: nz(message.get(`${path}.4`)),
    postcode: nz(message.get(`${path}.5`)),
    country: nz(message.get(`${path}.6`)),
    use: nz(message.get(`${path}.7`)),
  };
}

/** XTN-3 equipment types (HL7 table 0202: Internet, X.400) that mean an email address, lower-cased (senders vary the case). */
const EMAIL_EQUIPMENT = new Set(['internet', 'x.400']);

/**
 * Read an XTN repetition, with the component its value came from (an error location needs it):
 * an email when XTN-4 is set, the use code XTN-2 is NET or the equipment type XTN-3 is Internet or
 * X.400 (value XTN-4, else XTN-1); else a phone (XTN-1, or XTN-6 + XTN-7).
 */
export function readTelecomAt(message: Hl7Message, path: string, where: Telecom['where']): { telecom: Telecom; component: number } | undefined {
  const use = nz(message.get(`${path}.2`));
  const email = nz(message.get(`${path}.4`));
  const first = nz(message.get(`${path}.1`));
  if (email !== null || use === 'NET' || EMAIL_EQUIPMENT.has((message.get(`${path}.3`) ?? '').toLowerCase())) {
    const v = email ?? first;
    return v === null ? undefined : { telecom: { system: 'email', value: v, use, where }, component: email !== null ? 4 : 1 };
  }
  if (first !== null) return { telecom: { system: 'phone', value: first, use, where }, component: 1 };
  if (nz(message.get(`${path}.7`)) === null) return undefined;
  return { telecom: { system: 'phone', value: `${message.get(`${path}.6`) ?? ''}${message.get(`${path}.7`)}`, use, where }, component: 7 };
}

/** Read an XTN repetition (PID-13/14, NK1-5/6) as a telecom: see {@link readTelecomAt}. */
export function readTelecom(message: Hl7Message, path: string, where: Telecom['where']): Telecom | undefined {
  return readTelecomAt(message, path, where)?.telecom;
}

/** `YYYYMMDD…` → `YYYY-MM-DD` (or `YYYY-MM`, `YYYY` when sent with less precision); undefined when not a date. */
export function hl7Date(value: string): string | undefined {
  const m = /^(\d{4})(?:(\d{2})(\d{2})?)?(?:\d{2,6}(?:\.\d+)?)?(?:[+-]\d{4})?$/.exec(value.trim());
  if (m === null) return undefined;
  const [, y, mo, d] = m;
  if (mo !== undefined && (Number(mo) < 1 || Number(mo) > 12)) return undefined;
  if (d !== undefined && (Number(d) < 1 || Number(d) > 31)) return undefined;
  return [y, mo, d].filter((x) => x !== undefined).join('-');
}

function badField(location: Hl7Location, path: string, reason: string): Hl7Error {
  return new Hl7Error('RECORD_BAD_FIELD', Hl7ErrorCode.DataType, { location: path, reason }, location);
}

/**
 * What the PID says about demographics. Blank fields keep the record's value (domain §1: "blank
 * fields are ignored on update"); the HL7 null `""` clears it.
 *
 * @throws Hl7Error RECORD_BAD_FIELD for a PID-7 or PID-29 that is not a date
 */
export function readDemographics(message: Hl7Message): DemographicsUpdate {
  const state = (path: string): 'keep' | 'clear' | 'value' => {
    const raw = message.get(path, { raw: true });
    return raw === undefined || raw === '' ? 'keep' : raw === '""' ? 'clear' : 'value';
  };
  const list = <T>(path: string, read: (p: string) => T | undefined): Update<T[]> => {
    const s = state(path);
    if (s === 'keep') return KEEP;
    if (s === 'clear') return { keep: false, value: [] };
    const n = message.getAll(path, { raw: true }).length;
    const out: T[] = [];
    for (let i = 1; i <= n; i++) {
      const v = read(`${path}[${i}]`);
      if (v !== undefined) out.push(v);
    }
    return { keep: false, value: out };
  };
  const scalar = <T>(path: string, read: (v: string) => T): Update<T | null> => {
    const s = state(path);
    if (s === 'keep') return KEEP;
    if (s === 'clear') return { keep: false, value: null };
    return { keep: false, value: read(message.get(path)!) };
  };
  const telecom = (): Update<Telecom[]> => {
    const home = list('PID-13', (p) => readTelecom(message, p, 'home'));
    const work = list('PID-14', (p) => readTelecom(message, p, 'work'));
    if (home.keep && work.keep) return KEEP;
    // One list on the record: a field not sent keeps its own part.
    return { keep: false, value: [...(home.keep ? [] : home.value), ...(work.keep ? [] : work.value)] };
  };
  return {
    names: list('PID-5', (p) => readName(message, p)),
    birthDate: scalar('PID-7.1', (v) => {
      const d = hl7Date(v);
      if (d === undefined) throw badField({ segment: 'PID', field: 7, component: 1 }, 'PID-7', 'not a date');
      return d;
    }),
    sex: scalar('PID-8', (v) => v),
    addresses: list('PID-11', (p) => readAddress(message, p)),
    telecom: telecom(),
    deceasedAt: scalar('PID-29.1', (v) => {
      const d = parseHl7Timestamp(v);
      if (d === undefined) throw badField({ segment: 'PID', field: 29, component: 1 }, 'PID-29', 'not a date/time');
      return d.toISOString();
    }),
    deceased: scalar('PID-30', (v) => v === 'Y'),
    maritalStatus: scalar('PID-16.1', (v) => v),
    language: scalar('PID-15.1', (v) => v),
    ethnicGroup: scalar('PID-22.1', (v) => v),
  };
}

/** An empty demographics set. */
export const EMPTY_DEMOGRAPHICS: Demographics = {
  names: [],
  birthDate: null,
  sex: null,
  addresses: [],
  telecom: [],
  deceasedAt: null,
  deceased: null,
  maritalStatus: null,
  language: null,
  ethnicGroup: null,
};

/** Apply an update over the record's demographics. */
export function mergeDemographics(current: Demographics | null, update: DemographicsUpdate): Demographics {
  const base = current ?? EMPTY_DEMOGRAPHICS;
  const pick = <K extends keyof Demographics>(k: K): Demographics[K] => {
    const u = update[k] as Update<Demographics[K]>;
    return u.keep ? base[k] : u.value;
  };
  return {
    names: pick('names'),
    birthDate: pick('birthDate'),
    sex: pick('sex'),
    addresses: pick('addresses'),
    telecom: pick('telecom'),
    deceasedAt: pick('deceasedAt'),
    deceased: pick('deceased'),
    maritalStatus: pick('maritalStatus'),
    language: pick('language'),
    ethnicGroup: pick('ethnicGroup'),
  };
}

/** True when `enteredAt` (this message's MSH-7) is strictly older than the record's entered time. */
export function isOlder(enteredAt: string, recordEnteredAt: string | null): boolean {
  if (recordEnteredAt === null) return false;
  return Date.parse(enteredAt) < Date.parse(recordEnteredAt);
}

/**
 * Upsert demographics from the PID: skipped when the message is older than the record, no new
 * version when nothing changed.
 */
export function upsertDemographics(store: SqliteRecordStore, patientId: string, message: Hl7Message, provenance: Provenance): 'skipped' | 'unchanged' | 'updated' {
  const patient = store.getPatient(patientId);
  if (patient === undefined) throw new Error(`no patient ${patientId}`);
  if (isOlder(provenance.enteredAt, patient.enteredAt)) return 'skipped';
  const next = mergeDemographics(patient.demographics, readDemographics(message));
  if (patient.demographics !== null && JSON.stringify(next) === JSON.stringify(patient.demographics)) return 'unchanged';
  store.putDemographics(patientId, next, provenance);
  return 'updated';
}

/**
 * What a message lacks to create a record, or undefined when it may. A28/A31 need an identifier
 * other than a PKB id and a given and family name; auto-create (`verified`) also needs a verified
 * national number (an NHS number with status 01 or none, or a CHI or H&C number, which carry no
 * status), a birth date and sex.
 */
export function creationProblem(message: Hl7Message, ids: readonly MessageIdentifier[], options: { verified: boolean }): string | undefined {
  const missing: string[] = [];
  if (options.verified) {
    const nationals = nationalsOf(ids);
    const verified = nationals.some((n) => n.kind !== 'nhs' || n.status === null || n.status === '01');
    if (nationals.length === 0) missing.push('a national number (NHS, CHI or H&C number)');
    else if (!verified) missing.push('a verified NHS number (status 01)');
  } else if (!ids.some((x) => x.kind !== 'pkb')) missing.push('a patient identifier');
  if (nz(message.get('PID-5.2')) === null) missing.push('a given name (PID-5.2)');
  if (nz(message.get('PID-5.1.1')) === null) missing.push('a family name (PID-5.1)');
  if (options.verified) {
    if (nz(message.get('PID-7.1')) === null) missing.push('a birth date (PID-7)');
    if (nz(message.get('PID-8')) === null) missing.push('sex (PID-8)');
  }
  return missing.length === 0 ? undefined : missing.join(', ');
}
