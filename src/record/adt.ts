// SPDX-License-Identifier: Apache-2.0
/**
 * ADT A28/A31 (add / update person information): demographics upsert and this organisation's
 * lists, each replaced whole (domain §1 "Replace-all rule", §3): allergies (AL1), diagnoses (DG1),
 * medications (ZRX), next of kin (NK1) and GP (PD1 / ROL).
 *
 * A list is replaced only when the message carries at least one of its segments (an empty AL1
 * clears the list, a message without AL1 leaves it as it was): PKB has no per-item delete and
 * senders send "no known allergies" rather than nothing. A message older (MSH-7) than the
 * record's entered time changes nothing.
 */
import { Hl7Error, Hl7ErrorCode, type Hl7Message, hl7TimestampToIso } from '../hl7/index.js';
import { hl7Date, isOlder, readAddress, readName, readTelecom, upsertDemographics } from './patients.js';
import type { Address, PersonName, SqliteRecordStore, Telecom } from './store.js';
import type { HandlerContext, ItemKind, ItemWrite, MessageHandler } from './types.js';

/** A coded value (CE/CWE): code, text, coding system; each null when not sent. */
export interface Coded {
  code: string | null;
  text: string | null;
  system: string | null;
}

/**
 * Payload of an `allergy` item (AL1). Payloads are type aliases (not interfaces) so that they are
 * assignable to `ItemWrite`'s `Record<string, unknown>`.
 */
export type AllergyPayload = {
  /** AL1-2 allergen type code (DA drug, FA food, EA environmental…). */
  type: string | null;
  /** AL1-3 allergen. */
  allergen: Coded;
  /** AL1-4 severity code (SV severe, MO moderate, MI mild…). */
  severity: string | null;
  /** AL1-5 reactions, as sent. */
  reactions: string[];
  /** AL1-6 identification date, `YYYY-MM-DD`. */
  identifiedOn: string | null;
};

/** Payload of a `condition` item (DG1). */
export type ConditionPayload = {
  /** DG1-3 diagnosis code. */
  diagnosis: Coded;
  /** DG1-4 description. */
  description: string | null;
  /** DG1-5 diagnosis date/time, ISO 8601. */
  diagnosedAt: string | null;
  /** DG1-6 diagnosis type (A admitting, W working, F final). */
  type: string | null;
};

/** Payload of a `medication` item (ZRX). */
export type MedicationPayload = {
  /** ZRX-2 product. */
  product: Coded;
  /** ZRX-1 timing, as sent (e.g. "twice daily"). */
  timing: string | null;
  /** ZRX-3 dose, as sent. */
  dose: string | null;
  /** ZRX-5 units. */
  units: string | null;
};

/** Payload of a `next-of-kin` item (NK1). */
export type NextOfKinPayload = {
  /** NK1-2. */
  name: PersonName | null;
  /** NK1-3 relationship. */
  relationship: Coded;
  /** NK1-4. */
  addresses: Address[];
  /** NK1-5 (home) and NK1-6 (work). */
  telecom: Telecom[];
  /** NK1-7 contact role. */
  contactRole: Coded;
};

/** Payload of the `gp` item (PD1-3 practice, PD1-4 or ROL GP). */
export type GpPayload = {
  /** PD1-3: practice ODS code (XON-10, else XON-3) and name (XON-1). */
  practice: { odsCode: string | null; name: string | null } | null;
  /** PD1-4 (or ROL-4 of a ROL whose role ROL-3 is PP, FHCP or GP): GP code (GMC / national code) and name. */
  practitioner: { code: string | null; family: string | null; given: string | null } | null;
};

const nz = (s: string | undefined): string | null => (s === undefined || s === '' || s === '""' ? null : s);

function coded(message: Hl7Message, path: string): Coded {
  return { code: nz(message.get(`${path}.1`)), text: nz(message.get(`${path}.2`)), system: nz(message.get(`${path}.3`)) };
}

const seg = (id: string, i: number): string => (i > 1 ? `${id}[${i}]` : id);

function isoTime(value: string | undefined): string | null {
  const v = nz(value);
  if (v === null) return null;
  return hl7TimestampToIso(v) ?? null;
}

/** Keys unique within a list: the content key, then `#2`, `#3` for repeats (e.g. the same drug at two times of day). */
function uniqueKeys(): (base: string) => string {
  const seen = new Map<string, number>();
  return (base) => {
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}#${n}`;
  };
}

/** The AL1 items of the message; AR on a duplicate allergen + date. */
export function readAllergies(message: Hl7Message, context: HandlerContext): ItemWrite<AllergyPayload>[] {
  const out: ItemWrite<AllergyPayload>[] = [];
  const firstAt = new Map<string, number>();
  const n = message.countSegments('AL1');
  for (let i = 1; i <= n; i++) {
    const s = seg('AL1', i);
    const allergen = coded(message, `${s}-3`);
    if (allergen.code === null && allergen.text === null) continue;
    const identifiedOn = nz(message.get(`${s}-6`)) === null ? null : (hl7Date(message.get(`${s}-6`)!) ?? null);
    const key = `${allergen.code ?? allergen.text}|${identifiedOn ?? ''}`;
    const first = firstAt.get(key);
    if (first !== undefined) {
      throw new Hl7Error('RECORD_DUPLICATE_ALLERGY', Hl7ErrorCode.DuplicateKeyIdentifier, { first, second: i }, { segment: 'AL1', sequence: i, field: 3 });
    }
    firstAt.set(key, i);
    out.push({
      patientId: context.patientId,
      kind: 'allergy',
      key,
      label: context.labelFor('AL1-3', allergen.code ?? undefined),
      effectiveAt: identifiedOn,
      payload: {
        type: nz(message.get(`${s}-2.1`)),
        allergen,
        severity: nz(message.get(`${s}-4.1`)),
        reactions: message.getAll(`${s}-5`).filter((x) => x !== ''),
        identifiedOn,
      },
    });
  }
  return out;
}

/** The DG1 items. */
export function readConditions(message: Hl7Message, context: HandlerContext): ItemWrite<ConditionPayload>[] {
  const key = uniqueKeys();
  const out: ItemWrite<ConditionPayload>[] = [];
  for (let i = 1; i <= message.countSegments('DG1'); i++) {
    const s = seg('DG1', i);
    const diagnosis = coded(message, `${s}-3`);
    const description = nz(message.get(`${s}-4`));
    if (diagnosis.code === null && diagnosis.text === null && description === null) continue;
    const diagnosedAt = isoTime(message.get(`${s}-5`));
    out.push({
      patientId: context.patientId,
      kind: 'condition',
      key: key(`${diagnosis.code ?? diagnosis.text ?? description}|${diagnosedAt ?? ''}`),
      label: context.settings.defaultLabel,
      effectiveAt: diagnosedAt,
      payload: { diagnosis, description, diagnosedAt, type: nz(message.get(`${s}-6`)) },
    });
  }
  return out;
}

/** The ZRX items. */
export function readMedications(message: Hl7Message, context: HandlerContext): ItemWrite<MedicationPayload>[] {
  const key = uniqueKeys();
  const out: ItemWrite<MedicationPayload>[] = [];
  for (let i = 1; i <= message.countSegments('ZRX'); i++) {
    const s = seg('ZRX', i);
    const product = coded(message, `${s}-2`);
    if (product.code === null && product.text === null) continue;
    out.push({
      patientId: context.patientId,
      kind: 'medication',
      key: key(`${product.code ?? product.text}`),
      label: context.settings.defaultLabel,
      payload: { product, timing: nz(message.get(`${s}-1`)), dose: nz(message.get(`${s}-3`)), units: nz(message.get(`${s}-5`)) },
    });
  }
  return out;
}

/** The NK1 items. */
export function readNextOfKin(message: Hl7Message, context: HandlerContext): ItemWrite<NextOfKinPayload>[] {
  const key = uniqueKeys();
  const out: ItemWrite<NextOfKinPayload>[] = [];
  for (let i = 1; i <= message.countSegments('NK1'); i++) {
    const s = seg('NK1', i);
    const name = nz(message.get(`${s}-2`)) === null ? null : readName(message, `${s}-2`);
    const relationship = coded(message, `${s}-3`);
    if (name === null && relationship.code === null && relationship.text === null) continue;
    const reps = (path: string) => message.getAll(path, { raw: true }).length;
    const addresses: Address[] = [];
    for (let r = 1; r <= reps(`${s}-4`); r++) addresses.push(readAddress(message, `${s}-4[${r}]`));
    const telecom: Telecom[] = [];
    for (let r = 1; r <= reps(`${s}-5`); r++) {
      const tel = readTelecom(message, `${s}-5[${r}]`, 'home');
      if (tel !== undefined) telecom.push(tel);
    }
    for (let r = 1; r <= reps(`${s}-6`); r++) {
      const tel = readTelecom(message, `${s}-6[${r}]`, 'work');
      if (tel !== undefined) telecom.push(tel);
    }
    out.push({
      patientId: context.patientId,
      kind: 'next-of-kin',
      key: key(`${name?.family ?? ''}|${name?.given.join(' ') ?? ''}|${relationship.code ?? relationship.text ?? ''}`),
      label: context.settings.defaultLabel,
      payload: { name, relationship, addresses, telecom, contactRole: coded(message, `${s}-7`) },
    });
  }
  return out;
}

/** GP roles of a ROL segment (ROL-3.1). */
const GP_ROLES = new Set(['PP', 'FHCP', 'GP']);

/** The GP item, or undefined when the message has neither PD1 nor a GP ROL (list left as it is). */
export function readGp(message: Hl7Message, context: HandlerContext): ItemWrite<GpPayload>[] | undefined {
  const hasPd1 = message.countSegments('PD1') > 0;
  let rolPath: string | undefined;
  for (let i = 1; i <= message.countSegments('ROL'); i++) {
    if (GP_ROLES.has(message.get(`${seg('ROL', i)}-3.1`) ?? '')) {
      rolPath = `${seg('ROL', i)}-4`;
      break;
    }
  }
  if (!hasPd1 && rolPath === undefined) return undefined;
  const odsCode = nz(message.get('PD1-3.10')) ?? nz(message.get('PD1-3.3'));
  const practiceName = nz(message.get('PD1-3.1'));
  const practice = odsCode === null && practiceName === null ? null : { odsCode, name: practiceName };
  const gpPath = nz(message.get('PD1-4.1')) !== null || nz(message.get('PD1-4.2')) !== null ? 'PD1-4' : rolPath;
  const practitioner =
    gpPath === undefined
      ? null
      : { code: nz(message.get(`${gpPath}.1`)), family: nz(message.get(`${gpPath}.2.1`)), given: nz(message.get(`${gpPath}.3`)) };
  if (practice === null && (practitioner === null || (practitioner.code === null && practitioner.family === null))) return [];
  return [{ patientId: context.patientId, kind: 'gp', key: 'gp', label: context.settings.defaultLabel, payload: { practice, practitioner } }];
}

/**
 * The A28/A31 handler. It needs the patient half of the store (demographics), so it is made for a
 * store; the service registers it for `ADT^A28` and `ADT^A31`.
 */
export function createAdtUpdateHandler(store: SqliteRecordStore): MessageHandler {
  return (message, context) => {
    const patient = store.getPatient(context.patientId);
    if (patient === undefined) throw new Error(`no patient ${context.patientId}`);
    if (isOlder(context.provenance.enteredAt, patient.enteredAt)) return { summary: 'older than the record (MSH-7): skipped', changed: false };
    // Read everything first, so an AR (duplicate AL1, bad date) leaves no partial change.
    const lists: [ItemKind, string, ItemWrite[] | undefined][] = [
      ['allergy', 'allergies', message.countSegments('AL1') > 0 ? readAllergies(message, context) : undefined],
      ['condition', 'conditions', message.countSegments('DG1') > 0 ? readConditions(message, context) : undefined],
      ['medication', 'medications', message.countSegments('ZRX') > 0 ? readMedications(message, context) : undefined],
      ['next-of-kin', 'next of kin', message.countSegments('NK1') > 0 ? readNextOfKin(message, context) : undefined],
      ['gp', 'gp', readGp(message, context)],
    ];
    const demographics = upsertDemographics(store, context.patientId, message, context.provenance);
    const parts = [`demographics ${demographics}`];
    let changed = demographics === 'updated';
    for (const [kind, name, writes] of lists) {
      if (writes === undefined) continue;
      const before = versionsOf(store, context.patientId, kind, context.provenance.organisationId);
      store.replaceList(context.patientId, kind, writes, context.provenance);
      if (versionsOf(store, context.patientId, kind, context.provenance.organisationId) !== before) changed = true;
      parts.push(`${name} ${writes.length}`);
    }
    return { summary: parts.join('; '), changed };
  };
}

/** A fingerprint of this organisation's list (ids and versions) to tell whether a replace changed it. */
function versionsOf(store: SqliteRecordStore, patientId: string, kind: ItemKind, organisationId: string): string {
  return store
    .listItems(patientId, { kind, organisationId, includeDeleted: true })
    .map((i) => `${i.id}.${i.version}`)
    .join(',');
}
