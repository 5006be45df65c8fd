// SPDX-License-Identifier: Apache-2.0
/**
 * Record test helpers: a real SQLite record in a temp dir with one synthetic patient, a
 * `HandlerContext` builder for handler tests, provenance with synthetic defaults, and valid
 * synthetic NHS numbers. Only made-up people.
 *
 * ```ts
 * const f = recordFixture(t, { labels: { 'AL1-3|DA': 'MENTAL_HEALTH' } });
 * const result = myHandler(Hl7Message.parse(text), f.context());
 * t.is(f.store.listItems(f.patientId, { kind: 'encounter' }).length, 1);
 * ```
 */
import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { SqliteAttachmentStore } from '../../src/record/attachments.js';
import { RecordService } from '../../src/record/service.js';
import { SqliteRecordStore } from '../../src/record/store.js';
import type { HandlerContext, LabelSource, MessageHandler, OrganisationSettings, Provenance, RecordLabel } from '../../src/record/types.js';
import { Hl7Error, formatLocation } from '../../src/hl7/index.js';
import { ROOT, tempDir } from './engine.js';

/** The default acting organisation of {@link prov}. */
export const ORG = 'org-a';
/** A second organisation (for "other organisations' items are untouched"). */
export const OTHER_ORG = 'org-b';

/**
 * Provenance with synthetic defaults: organisation {@link ORG}, no team, journal id 1, MSH-10
 * `MSG0001`, type `ADT^A28`, entered 2024-05-01T12:00:00.000Z.
 */
export function prov(overrides: Partial<Provenance> = {}): Provenance {
  return {
    organisationId: ORG,
    teamId: null,
    onBehalfOf: [],
    chain: 'Org A',
    author: null,
    senderId: 'sender-a',
    journalId: 1,
    controlId: 'MSG0001',
    messageType: 'ADT^A28',
    enteredAt: '2024-05-01T12:00:00.000Z',
    ...overrides,
  };
}

/** Default settings: no auto-create, no NHS status check, default label GENERAL_HEALTH. */
export const DEFAULT_SETTINGS: OrganisationSettings = { autoCreate: false, nhsStatusCheck: false, defaultLabel: 'GENERAL_HEALTH' };

/**
 * A valid synthetic NHS number (modulus 11) in the 999 test range, different for each `seed`
 * (0 … 999999). Computed here independently of src/record/identifiers.ts so tests check it.
 */
export function nhsNumber(seed: number): string {
  for (let s = seed; ; s++) {
    const nine = `999${String(s % 1_000_000).padStart(6, '0')}`;
    let sum = 0;
    for (let i = 0; i < 9; i++) sum += Number(nine[i]) * (10 - i);
    const check = 11 - (sum % 11);
    if (check === 10) continue; // no valid number with these nine digits
    return nine + String(check === 11 ? 0 : check);
  }
}

/** Options of {@link recordFixture}. */
export interface RecordFixtureOptions {
  /** Organisation settings of {@link RecordFixture.context} (merged over {@link DEFAULT_SETTINGS}). */
  settings?: Partial<OrganisationSettings>;
  /** Label mappings of {@link ORG}, keyed `SOURCE|code`, e.g. `{ 'PV1-10|GUM': 'SEXUAL_HEALTH' }`; stored in the record. */
  labels?: Record<string, RecordLabel>;
}

/** What {@link recordFixture} gives. */
export interface RecordFixture {
  dir: string;
  db: Database.Database;
  store: SqliteRecordStore;
  attachments: SqliteAttachmentStore;
  /** A patient created for the test (no demographics). */
  patientId: string;
  /**
   * A handler context for {@link RecordFixture.patientId} with `prov(provenance)`; `labelFor`
   * reads the provenance organisation's stored mappings, then the settings' default label.
   */
  context(overrides?: Partial<Omit<HandlerContext, 'provenance' | 'settings'>> & { provenance?: Partial<Provenance>; settings?: Partial<OrganisationSettings> }): HandlerContext;
}

/** A fresh record database file in a temp dir (closed after the test) with one patient. */
export function recordFixture(t: ExecutionContext, options: RecordFixtureOptions = {}): RecordFixture {
  const dir = tempDir(t, 'tributary-record-');
  const db = new Database(join(dir, 'engine.db'));
  db.pragma('journal_mode = WAL');
  t.teardown(() => db.close());
  const store = new SqliteRecordStore(db);
  const attachments = new SqliteAttachmentStore(db);
  for (const [k, label] of Object.entries(options.labels ?? {})) {
    const [source, code] = k.split('|') as [LabelSource, string];
    store.setLabelMapping({ organisationId: ORG, source, code, label });
  }
  const patientId = store.createPatient({ organisationId: ORG, journalId: 0 });
  const context: RecordFixture['context'] = (overrides = {}) => {
    const { provenance, settings: settingOverrides, ...rest } = overrides;
    const p = prov(provenance);
    const settings = { ...DEFAULT_SETTINGS, ...options.settings, ...settingOverrides };
    return {
      store,
      attachments,
      patientId,
      provenance: p,
      settings,
      labelFor: (source, code) => (code === undefined || code === '' ? undefined : store.mappedLabel(p.organisationId, source, code)) ?? settings.defaultLabel,
      ...rest,
    };
  };
  return { dir, db, store, attachments, patientId, context };
}

/** ER7 text from segments (joined with CR). */
export function hl7(...segments: string[]): string {
  return segments.join('\r');
}

/** An MSH segment: `type` like `ADT^A28`, MSH-7 `time` as HL7 (default 20240501120000). */
export function msh(type: string, controlId = 'MSG0001', time = '20240501120000'): string {
  return `MSH|^~\\&|PAS|RXX|TRIBUTARY|HUB|${time}||${type}|${controlId}|P|2.4`;
}

/** A `RecordService` over the fixture's store with no extra handlers unless given, and fixed settings. */
export function recordService(
  f: RecordFixture,
  options: { settings?: Partial<OrganisationSettings>; handlers?: Record<string, MessageHandler> } = {},
): RecordService {
  const settings = { ...DEFAULT_SETTINGS, ...options.settings };
  return new RecordService({ store: f.store, attachments: f.attachments, handlers: options.handlers ?? {}, settingsFor: () => settings });
}

/** `Omit<Provenance, 'author'>` for {@link RecordService.apply}: {@link prov} minus the author. */
export function applyProv(overrides: Partial<Provenance> = {}): Omit<Provenance, 'author'> {
  const { author: _author, ...rest } = prov(overrides);
  return rest;
}

/** The text of a fixture under test/fixtures/record/. */
export function recordFixtureText(path: string): string {
  return readFileSync(join(ROOT, 'test', 'fixtures', 'record', path), 'utf8');
}

/** A message with MSH-8 (a credential) and MSH-10 replaced. */
export function withMsh(text: string, security: string, controlId: string): string {
  const [msh, ...rest] = text.split('\r');
  const f = msh!.split('|');
  f[7] = security;
  f[9] = controlId;
  return [f.join('|'), ...rest].join('\r');
}

/** Assert that `fn` throws an `Hl7Error` with this catalog code, table 0357 code and location. */
export function rejects(t: ExecutionContext, fn: () => unknown, code: string, hl7Code: number, location: string): Hl7Error {
  const e = t.throws(fn, { instanceOf: Hl7Error }) as Hl7Error;
  t.is(e.code as string, code);
  t.is(e.hl7Code, hl7Code);
  t.truthy(e.location);
  t.is(formatLocation(e.location!), location);
  return e;
}
