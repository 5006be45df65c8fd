// SPDX-License-Identifier: Apache-2.0
/**
 * What the record commands (`record`, `review`, `admin id-type|label-map`) share: opening a data
 * directory's database with the record and sender tables, the audit row every read and change
 * writes, finding a patient by `--nhs` or `--id`, and output helpers.
 */
import Database from 'better-sqlite3';
import type { Argv } from 'yargs';
import { SenderStore, defaultActor, writeAudit } from '../authentication/index.js';
import { TributaryError } from '../errors.js';
import { NHS_NUMBER_SYSTEM, SqliteRecordStore, isValidNhsNumber } from '../record/index.js';
import { openDatabase, printTable, type CliIO } from './common.js';

/** main.ts's runner: exit codes and one-line user errors. */
export type Run = (fn: () => Promise<number> | number) => Promise<void>;

/** An open data directory: the database, its record store and its sender store (names, audit). */
export interface RecordDb {
  db: Database.Database;
  record: SqliteRecordStore;
  senders: SenderStore;
  /** Who the audit rows name. */
  actor: string;
  /** Display name of an organisation or team id, when known. */
  nameOf(id: string): string | undefined;
  /** Write one audit row now (inside the caller's transaction, if any). */
  audit(action: string, objectType: string, objectId: string | null, detail: Record<string, unknown>): void;
  close(): void;
}

/**
 * Open a data directory's database read-write (audit rows are written even by reads).
 * `create`: make the directory and database when missing (admins may configure before the first
 * start); otherwise a missing database is `JOURNAL_OPEN_FAILED`, so a mistyped `--data` is not
 * silently an empty record.
 */
export function openRecordDb(data: string, options: { actor?: string; create?: boolean } = {}): RecordDb {
  const db = openDatabase(data, { create: options.create });
  try {
    const actor = options.actor ?? defaultActor();
    const senders = new SenderStore(db, { actor });
    const record = new SqliteRecordStore(db);
    return {
      db,
      record,
      senders,
      actor,
      nameOf: (id) => senders.getOrganisation(id)?.name ?? senders.getTeam(id)?.name,
      audit: (action, objectType, objectId, detail) => writeAudit(db, { at: Date.now(), actor, action, objectType, objectId, detail }),
      close: () => db.close(),
    };
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Open, act, close. */
export async function withRecordDb<T>(data: string, options: { actor?: string; create?: boolean }, fn: (r: RecordDb) => T | Promise<T>): Promise<T> {
  const r = openRecordDb(data, options);
  try {
    return await fn(r);
  } finally {
    r.close();
  }
}

/** How a patient was asked for. */
export interface PatientQuery {
  nhs?: string;
  id?: string;
}

/**
 * The patient `--nhs` or `--id` names. An NHS number leads where the engine would file a message
 * for it: through merges to the surviving record. An id is taken as given (a merged-away record
 * can be shown and exported; it says what it was merged into).
 *
 * @throws TributaryError `CLI_USAGE` (not a valid NHS number), `RECORD_PATIENT_NOT_FOUND`
 */
export function findPatient(store: SqliteRecordStore, q: PatientQuery): string {
  if (q.nhs !== undefined) {
    const nhs = q.nhs.replace(/\s+/g, '');
    if (!isValidNhsNumber(nhs)) throw new TributaryError('CLI_USAGE', { reason: '--nhs: not a valid NHS number (10 digits with a modulus 11 check digit)' });
    const owner = store.findIdentifier('nhs', NHS_NUMBER_SYSTEM, nhs)?.patientId;
    const survivor = owner === undefined ? undefined : store.survivorOf(owner);
    // The number is not echoed: error lines end up in shell histories and support tickets.
    if (survivor === undefined) throw new TributaryError('RECORD_PATIENT_NOT_FOUND', { what: 'holds this NHS number' });
    return survivor;
  }
  if (q.id !== undefined) {
    if (store.getPatient(q.id) === undefined) throw new TributaryError('RECORD_PATIENT_NOT_FOUND', { what: `has id "${q.id}"` });
    return q.id;
  }
  throw new TributaryError('CLI_USAGE', { reason: 'name the patient with --nhs N or --id ID' });
}

/** `--data` and `--actor`, the flags of every record command. */
export function dataFlags<T>(y: Argv<T>) {
  return y
    .option('data', { type: 'string', default: './data', describe: 'data directory (holds tributary.db)' })
    .option('actor', { type: 'string', requiresArg: true, describe: 'who is acting, for the audit log [default: the OS user]' });
}

/** Print a table (see {@link printTable}). */
export const table = printTable;

/** One JSON document per line. */
export function jsonLines(io: CliIO, items: unknown[]): void {
  for (const i of items) io.stdout.write(JSON.stringify(i) + '\n');
}

/** A `--merge` / positional id: a positive whole number. */
export function positiveId(flag: string, value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 1) throw new TributaryError('CLI_USAGE', { reason: `${flag} must be a positive whole number, got ${String(value)}` });
  return n;
}

/** A free-text flag that must say something (`--reason`, `--note`). */
export function nonBlank(flag: string, value: string | undefined): string {
  const v = (value ?? '').trim();
  if (v === '') throw new TributaryError('CLI_USAGE', { reason: `${flag} must not be empty: say why, for the audit trail` });
  return v;
}
