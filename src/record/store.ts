// SPDX-License-Identifier: Apache-2.0
/**
 * The SQLite record store: the only code that writes SQL for the record.
 *
 * Every method runs synchronously in whatever transaction the caller holds (the journal's group
 * commit on the ingest path); none opens one, except {@link SqliteRecordStore.transaction} for
 * admin functions (review resolution, unmerge) that run on their own. Statements are prepared once
 * per store: the apply path runs thousands of times a second.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { TributaryError } from '../errors.js';
import { migrateRecord } from './schema.js';
import type {
  ItemKind,
  ItemQuery,
  ItemStore,
  ItemVersion,
  ItemWrite,
  LabelSource,
  Provenance,
  PutResult,
  RecordItem,
  RecordLabel,
} from './types.js';

/** One person name (PID-5 / NK1-2 repetition). */
export interface PersonName {
  family: string | null;
  given: string[];
  prefix: string | null;
  suffix: string | null;
  /** XPN-7 name type code (L legal, …), as sent. */
  use: string | null;
}

/** One address (PID-11 repetition). */
export interface Address {
  lines: string[];
  city: string | null;
  district: string | null;
  postcode: string | null;
  country: string | null;
  /** XAD-7 address type (H home, …), as sent. */
  use: string | null;
}

/** One telecom (PID-13/14, NK1-5 repetition). */
export interface Telecom {
  /** `phone` or `email` (XTN-3 Internet / XTN-2 NET). */
  system: 'phone' | 'email';
  value: string;
  /** XTN-2 use code (PRN, WPN, NET…), as sent. */
  use: string | null;
  /** `home` for PID-13, `work` for PID-14. */
  where: 'home' | 'work';
}

/** Patient demographics from PID (one set per record; the latest MSH-7 wins). */
export interface Demographics {
  names: PersonName[];
  /** PID-7 as `YYYY-MM-DD` (or shorter when sent with less precision). */
  birthDate: string | null;
  /** PID-8 code as sent (M, F, U, O…). */
  sex: string | null;
  addresses: Address[];
  telecom: Telecom[];
  /** PID-29 as ISO 8601, null when not sent. */
  deceasedAt: string | null;
  /** PID-30 (Y/N) as a boolean; null when not sent. */
  deceased: boolean | null;
  /** PID-16 marital status code as sent. */
  maritalStatus: string | null;
  /** PID-15 primary language code as sent. */
  language: string | null;
  /** PID-22 ethnic group code as sent. */
  ethnicGroup: string | null;
}

/** A patient row. */
export interface PatientRecord {
  id: string;
  createdAt: string;
  /** MSH-7 of the last applied demographics; null before any. */
  enteredAt: string | null;
  /** Demographics version (0: none yet). */
  version: number;
  demographics: Demographics | null;
  /** The survivor this record was merged into, or null. */
  mergedInto: string | null;
}

/**
 * Identifier kinds stored for a patient (the PKB id is the patient id itself, not stored): the NHS
 * number (`nhs`, with its status), other national numbers (`national`: CHI, H&C; the system says
 * which), the email, local ids.
 */
export type IdentifierKind = 'nhs' | 'national' | 'email' | 'local';

/** A stored identifier. */
export interface PatientIdentifier {
  id: number;
  patientId: string;
  kind: IdentifierKind;
  /** `https://fhir.nhs.uk/Id/nhs-number`, a national system (CHI, H&C), `email`, or a local namespace (see identifiers.ts). */
  system: string;
  value: string;
  /** NHS number status (01…), null otherwise or when not sent. */
  status: string | null;
  active: boolean;
  organisationId: string | null;
}

/** A configured local identifier type (domain §1: AA/TC pair per organisation or team). */
export interface LocalIdType {
  id: number;
  organisationId: string;
  /** null: the whole organisation. */
  teamId: string | null;
  /** PID-3.4, or `*` for any authority. */
  authority: string;
  /** PID-3.5 (required). */
  typeCode: string;
}

/** A code → privacy label mapping of an organisation. */
export interface LabelMapping {
  organisationId: string;
  source: LabelSource;
  code: string;
  label: RecordLabel;
}

/** A sending application (MSH-3.1) whose ORU^R01 messages are radiology reports, for one organisation. */
export interface RadiologyApplication {
  organisationId: string;
  /** MSH-3.1 as configured; matched without regard to ASCII case. */
  application: string;
}

/** A period of a patient in a team (ZTM, or the Patient Record Team a new record joins). */
export interface TeamMembership {
  patientId: string;
  organisationId: string;
  teamId: string;
  /** MSH-7 of the message that added the patient. */
  addedAt: string;
  addedJournalId: number;
  /** MSH-7 of the message that removed the patient; null while a member. */
  removedAt: string | null;
  removedJournalId: number | null;
}

/** A recorded merge. */
export interface MergeRecord {
  id: number;
  survivorId: string;
  mergedId: string;
  provenance: Provenance;
  mergedAt: string;
  unmergedAt: string | null;
  unmergedBy: string | null;
  unmergeReason: string | null;
  /** Items moved from the merged record to the survivor. */
  movedItemIds: number[];
}

/** Why a message went to the review queue. */
export type ReviewReason =
  /** NHS number status not 01 while the organisation checks statuses. */
  | 'nhs-status'
  /** A local id matched a record holding a different NHS-style number (NHS, CHI or H&C number) of a type the message carries. */
  | 'nhs-mismatch'
  /** Only local ids were sent and they matched a record holding a national number (NHS, CHI or H&C). */
  | 'local-id-only'
  /** The identifiers matched more than one record. */
  | 'ambiguous';

/** A review queue entry. */
export interface ReviewItem {
  id: number;
  createdAt: string;
  organisationId: string;
  teamId: string | null;
  reason: ReviewReason;
  /** Which rule and identifier kinds; never PHI. */
  detail: string;
  /** Patients the message matched. */
  candidates: string[];
  /** The message (ER7) to apply on resolution. */
  message: string;
  provenance: Omit<Provenance, 'author'>;
  status: 'open' | 'applied' | 'dismissed';
  resolvedAt: string | null;
  resolvedBy: string | null;
  resolutionNote: string | null;
  resolvedPatientId: string | null;
}

/** Status of a registration invitation: waiting for the organisation's process, done, or withdrawn. */
export type InvitationStatus = 'pending' | 'sent' | 'cancelled';

/**
 * A registration invitation (an email from PID-13/PID-14 added to a record). Holds the email: it is
 * read by the organisation's invitation process and the CLI, never written to a log.
 */
export interface Invitation {
  id: number;
  patientId: string;
  /** The address, as the record's email identifier holds it (lower case). */
  email: string;
  /** Where the message sent it, e.g. `PID-13[2].4`. */
  source: string;
  /** The acting organisation (and team) of the message: whose invitation process it is. */
  organisationId: string;
  teamId: string | null;
  journalId: number;
  /** MSH-10 of the message. */
  controlId: string;
  /** Clock time the message was applied. */
  createdAt: string;
  status: InvitationStatus;
  /** When it was marked sent or cancelled; null while pending. */
  closedAt: string | null;
  /** The CLI actor who marked it; null while pending and when a message cancelled it. */
  closedBy: string | null;
  /** The message whose new email cancelled it; null otherwise. */
  closedJournalId: number | null;
}

/** Options of {@link SqliteRecordStore}. */
export interface RecordStoreOptions {
  /** Clock for created/resolved times (not for item times, which come from MSH-7); injectable for tests. */
  now?: () => Date;
  /** Patient id generator; default random UUIDs. */
  newId?: () => string;
}

interface ItemRow {
  id: number;
  patient_id: string;
  kind: ItemKind;
  organisation_id: string;
  key: string;
  parent_key: string | null;
  label: RecordLabel | null;
  version: number;
  deleted: number;
  effective_at: string | null;
  team_id: string | null;
  on_behalf_of: string;
  chain: string;
  author: string | null;
  sender_id: string | null;
  journal_id: number;
  control_id: string;
  message_type: string;
  entered_at: string;
  payload: string;
}
interface VersionRow { version: number; deleted: number; label: RecordLabel | null; effective_at: string | null; provenance: string; payload: string }
interface PatientRow { id: string; created_at: string; entered_at: string | null; version: number; demographics: string; merged_into: string | null }
interface IdentifierRow { id: number; patient_id: string; kind: IdentifierKind; system: string; value: string; status: string | null; active: number; organisation_id: string | null }
interface LocalTypeRow { id: number; organisation_id: string; team_id: string; authority: string; type_code: string }
interface MergeRow { id: number; survivor_id: string; merged_id: string; provenance: string; merged_at: string; unmerged_at: string | null; unmerged_by: string | null; unmerge_reason: string | null }
interface ReviewRow {
  id: number;
  created_at: string;
  organisation_id: string;
  team_id: string | null;
  reason: ReviewReason;
  detail: string;
  candidates: string;
  message: string;
  provenance: string;
  status: ReviewItem['status'];
  resolved_at: string | null;
  resolved_by: string | null;
  resolution_note: string | null;
  resolved_patient_id: string | null;
}

const provenanceOf = (r: ItemRow): Provenance => ({
  organisationId: r.organisation_id,
  teamId: r.team_id,
  onBehalfOf: JSON.parse(r.on_behalf_of) as string[],
  chain: r.chain,
  author: r.author,
  senderId: r.sender_id,
  journalId: r.journal_id,
  controlId: r.control_id,
  messageType: r.message_type,
  enteredAt: r.entered_at,
});

/** The identity of an item in {@link SqliteRecordStore}'s read memo. */
function readKey(patientId: string, kind: string, organisationId: string, key: string): string {
  return `${patientId}\u0000${kind}\u0000${organisationId}\u0000${key}`;
}

const itemOf = (r: ItemRow): RecordItem => ({
  id: r.id,
  patientId: r.patient_id,
  kind: r.kind,
  key: r.key,
  parentKey: r.parent_key,
  label: r.label,
  version: r.version,
  deleted: r.deleted === 1,
  effectiveAt: r.effective_at,
  provenance: provenanceOf(r),
  payload: JSON.parse(r.payload) as Record<string, unknown>,
});

const localIdTypeOf = (r: LocalTypeRow): LocalIdType => ({ id: r.id, organisationId: r.organisation_id, teamId: r.team_id === '' ? null : r.team_id, authority: r.authority, typeCode: r.type_code });

const identifierOf = (r: IdentifierRow): PatientIdentifier => ({
  id: r.id,
  patientId: r.patient_id,
  kind: r.kind,
  system: r.system,
  value: r.value,
  status: r.status,
  active: r.active === 1,
  organisationId: r.organisation_id,
});

interface InvitationRow {
  id: number;
  patient_id: string;
  email: string;
  source: string;
  organisation_id: string;
  team_id: string | null;
  journal_id: number;
  control_id: string;
  created_at: string;
  status: InvitationStatus;
  closed_at: string | null;
  closed_by: string | null;
  closed_journal_id: number | null;
}

const invitationOf = (r: InvitationRow): Invitation => ({
  id: r.id,
  patientId: r.patient_id,
  email: r.email,
  source: r.source,
  organisationId: r.organisation_id,
  teamId: r.team_id,
  journalId: r.journal_id,
  controlId: r.control_id,
  createdAt: r.created_at,
  status: r.status,
  closedAt: r.closed_at,
  closedBy: r.closed_by,
  closedJournalId: r.closed_journal_id,
});

const reviewOf = (r: ReviewRow): ReviewItem => ({
  id: r.id,
  createdAt: r.created_at,
  organisationId: r.organisation_id,
  teamId: r.team_id,
  reason: r.reason,
  detail: r.detail,
  candidates: JSON.parse(r.candidates) as string[],
  message: r.message,
  provenance: JSON.parse(r.provenance) as Omit<Provenance, 'author'>,
  status: r.status,
  resolvedAt: r.resolved_at,
  resolvedBy: r.resolved_by,
  resolutionNote: r.resolution_note,
  resolvedPatientId: r.resolved_patient_id,
});

/** The row an item write leaves (what `SELECT *` would read back). */
function rowOf(
  id: number,
  patientId: string,
  kind: ItemKind,
  organisationId: string,
  key: string,
  parentKey: string | null,
  label: RecordLabel | null,
  version: number,
  deleted: number,
  effectiveAt: string | null,
  p: Provenance,
  payload: string,
): ItemRow {
  return {
    id,
    patient_id: patientId,
    kind,
    organisation_id: organisationId,
    key,
    parent_key: parentKey,
    label,
    version,
    deleted,
    effective_at: effectiveAt,
    team_id: p.teamId,
    on_behalf_of: JSON.stringify(p.onBehalfOf),
    chain: p.chain,
    author: p.author,
    sender_id: p.senderId,
    journal_id: p.journalId,
    control_id: p.controlId,
    message_type: p.messageType,
    entered_at: p.enteredAt,
    payload,
  };
}

/** A row's provenance columns in the order of the item statements (its on-behalf-of list already JSON). */
const provArgs = (r: ItemRow) =>
  [r.team_id, r.on_behalf_of, r.chain, r.author, r.sender_id, r.journal_id, r.control_id, r.message_type, r.entered_at] as const;

/**
 * A put's result whose item is built (and its JSON parsed) only if the caller looks at it: most
 * handlers need only the outcome, and building the item was a fifth of an ORU's record cost. A
 * class, not an object literal with a getter and a closure per put: an ORU makes twenty puts.
 */
class StoredPut implements PutResult {
  private built: RecordItem | undefined;
  constructor(
    readonly outcome: PutResult['outcome'],
    private readonly row: ItemRow,
  ) {}

  get item(): RecordItem {
    return (this.built ??= itemOf(this.row));
  }
}

/** The store that keeps rows for a connection ({@link SqliteRecordStore.enableCache}): at most one. */
const cachingStores = new WeakMap<Database.Database, SqliteRecordStore>();

/** Item rows with a longer payload (in UTF-16 code units) are read again rather than kept. */
const MAX_KEPT_PAYLOAD = 64 * 1024;

/** Merges are followed at most this deep: a longer chain means a cycle (a bug), not data. */
const MAX_MERGE_DEPTH = 32;

/**
 * The record in SQLite: items ({@link ItemStore}), patients and identifiers, per-organisation
 * record configuration, merges, the review queue and registration invitations.
 */
export class SqliteRecordStore implements ItemStore {
  readonly db: Database.Database;
  private readonly now: () => Date;
  private readonly newId: () => string;
  private readonly stmts = new Map<string, Database.Statement>();
  /**
   * Rows as the database holds them now (this transaction's writes included), by identity; null =
   * known to be absent. Every write of the store goes through them, so they never disagree with the
   * database while this connection is the only writer. Without {@link enableCache} they live for one
   * message (a handler's read and the put that follows share one SELECT); with it they are kept
   * across messages and transactions (see {@link beginMessage} for when they are dropped).
   */
  private readonly items = new Map<string, ItemRow | null>();
  private readonly patients = new Map<string, PatientRow | null>();
  /** Active identifier by `kind NUL system NUL value`. */
  private readonly identifierByValue = new Map<string, IdentifierRow | null>();
  /** A patient's active identifiers, in id order. */
  private readonly identifiersByPatient = new Map<string, IdentifierRow[]>();
  private readonly localTypes = new Map<string, readonly LocalIdType[]>();
  private readonly labels = new Map<string, RecordLabel | null>();
  /** Radiology sending applications by `organisation NUL MSH-3.1` as sent (each spelling looked up once: no case folding per message). */
  private readonly radiologyApps = new Map<string, boolean>();
  /**
   * Whether any organisation declared a radiology application; undefined = not known now. Most
   * databases declare none: then no ORU looks one up. Kept and dropped with the maps above.
   */
  private anyRadiologyApp: boolean | undefined;
  /** Key prefixes {@link prefetch} has read (their rows are in `items`, unless evicted since). */
  private readonly prefetched = new Map<string, true>();
  private cacheLimit = 0;
  /** Between {@link beginMessage} and {@link endMessage}: without the cache, rows are kept only then. */
  private inMessage = false;
  /** The current message wrote something (a rollback of it must drop what the maps learnt). */
  private dirty = false;
  /** A transaction ended since the last look at `PRAGMA data_version`. */
  private checkOthers = true;
  private dataVersion = -1;

  /**
   * @param db - the engine database (the journal's file); the record tables are created or migrated
   * @param options - clock and id generator
   */
  constructor(db: Database.Database, options: RecordStoreOptions = {}) {
    this.db = db;
    this.now = options.now ?? (() => new Date());
    this.newId = options.newId ?? randomUUID;
    migrateRecord(db);
  }

  /** A cached prepared statement. */
  private q(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /**
   * Run `fn` in a transaction (a savepoint when the caller already holds one). For admin functions
   * that run on their own; the apply path never calls it.
   */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (e) {
      // Rolled back: what the maps learnt inside it is gone from the database.
      this.forgetReads();
      throw e;
    }
  }

  /** Clock time as ISO 8601. */
  nowIso(): string {
    return this.now().toISOString();
  }

  // ---------------------------------------------------------------- items (ItemStore)

  /** {@inheritDoc ItemStore.getItem} */
  getItem(patientId: string, kind: ItemKind, organisationId: string, key: string): RecordItem | undefined {
    const r = this.itemRow(patientId, kind, organisationId, key);
    return r === null ? undefined : itemOf(r);
  }

  /** The current row of an item (remembered, or read and remembered), null when there is none. `rk` is its {@link readKey}. */
  private itemRow(patientId: string, kind: ItemKind, organisationId: string, key: string, rk = readKey(patientId, kind, organisationId, key)): ItemRow | null {
    const known = this.items.get(rk);
    if (known !== undefined) return known;
    const r = (this.q('SELECT * FROM record_item WHERE patient_id = ? AND kind = ? AND organisation_id = ? AND key = ?').get(patientId, kind, organisationId, key) as ItemRow | undefined) ?? null;
    this.keepItem(rk, r);
    return r;
  }

  /**
   * Read, in one query, the items of a kind whose key starts with `keyPrefix` (a report's results:
   * `<filler>|`), so the puts that follow need no query each. Returns how many rows it read (0 when it had read them before).
   */
  prefetch(patientId: string, kind: ItemKind, organisationId: string, keyPrefix: string): number {
    // Read already (and every write since went through the maps): the rows are here, or were evicted
    // and will be read one by one.
    const pk = readKey(patientId, kind, organisationId, keyPrefix);
    if (this.prefetched.has(pk)) return 0;
    this.keep(this.prefetched, pk, true);
    // A range on the unique (patient, kind, organisation, key) index: keys from the prefix up to the
    // prefix followed by the highest code point.
    const rows = this.q('SELECT * FROM record_item WHERE patient_id = ? AND kind = ? AND organisation_id = ? AND key >= ? AND key < ?').all(
      patientId,
      kind,
      organisationId,
      keyPrefix,
      `${keyPrefix}\uffff`,
    ) as ItemRow[];
    for (const r of rows) this.keepItem(readKey(patientId, kind, organisationId, r.key), r);
    return rows.length;
  }

  /** Forget every remembered row (the next reads go to the database). */
  forgetReads(): void {
    this.items.clear();
    this.patients.clear();
    this.identifierByValue.clear();
    this.identifiersByPatient.clear();
    this.localTypes.clear();
    this.labels.clear();
    this.radiologyApps.clear();
    this.anyRadiologyApp = undefined;
    this.prefetched.clear();
  }

  /**
   * Keep rows across messages, up to `maxRows` per kind of row (those first stored longest ago dropped first).
   * Only for a store whose owner reports the end of every transaction the store writes in
   * ({@link transactionEnded}), as the engine does from the journal's group commit: a rolled-back
   * transaction must not leave its rows behind. Other processes writing the same file (the admin
   * CLI) are noticed through `PRAGMA data_version` at the first message of each transaction.
   */
  enableCache(maxRows = 10_000): void {
    // A second caching store on the same connection would not see this one's writes (data_version
    // only changes for other connections' commits).
    const owner = cachingStores.get(this.db);
    if (owner !== undefined && owner !== this) throw new Error('another record store already keeps rows for this database connection');
    cachingStores.set(this.db, this);
    this.cacheLimit = maxRows;
  }

  /** How many rows of each kind are remembered now (for tests and status pages). */
  cachedRows(): { items: number; patients: number; identifiers: number } {
    return { items: this.items.size, patients: this.patients.size, identifiers: this.identifierByValue.size + this.identifiersByPatient.size };
  }

  /** Called before each message is applied. */
  beginMessage(): void {
    this.dirty = false;
    this.inMessage = true;
    if (this.cacheLimit === 0) {
      this.forgetReads();
      return;
    }
    if (this.checkOthers) {
      this.checkOthers = false;
      // Another connection's commit changes data_version (ours never do): then nothing we hold is sure.
      const v = this.q('PRAGMA data_version').pluck().get() as number;
      if (v !== this.dataVersion) {
        this.dataVersion = v;
        this.forgetReads();
      }
    }
  }

  /** Called after each message: `undone` when its writes were rolled back (its savepoint or transaction). */
  endMessage(undone: boolean): void {
    if ((undone && this.dirty) || this.cacheLimit === 0) this.forgetReads();
    this.dirty = false;
    this.inMessage = false;
  }

  /** The transaction the store wrote in has ended; a rollback drops every remembered row. */
  transactionEnded(committed: boolean): void {
    this.checkOthers = true;
    if (!committed) this.forgetReads();
  }

  /** A write the maps cannot follow row by row: forget everything (and say so to a rollback). */
  private forgetAll(): void {
    this.dirty = true;
    this.forgetReads();
  }

  /** Identifier writes by id (rare: a status change, a replaced email): forget every identifier. */
  private forgetIdentifiers(): void {
    this.dirty = true;
    this.identifierByValue.clear();
    this.identifiersByPatient.clear();
  }

  /** Configuration written (identifier types, label mappings). */
  private forgetConfig(): void {
    this.dirty = true;
    this.localTypes.clear();
    this.labels.clear();
    this.radiologyApps.clear();
    this.anyRadiologyApp = undefined;
  }

  /** Remember an item row, unless its payload is large (a long letter stored inline): the limit counts rows, not bytes. */
  private keepItem(key: string, row: ItemRow | null): void {
    if (row !== null && row.payload.length > MAX_KEPT_PAYLOAD) this.items.delete(key);
    else this.keep(this.items, key, row);
  }

  /** {@link keepItem} for a row this message wrote. */
  private wroteItem(key: string, row: ItemRow): void {
    this.dirty = true;
    this.keepItem(key, row);
  }

  /** Remember a row this message wrote. */
  private wrote<K, V>(map: Map<K, V>, key: K, value: V): void {
    this.dirty = true;
    this.keep(map, key, value);
  }

  /**
   * Remember `value` under `key`; past the limit, drop the entries first stored longest ago (a hit
   * or a rewrite does not refresh an entry: cheaper, and a hot row comes back after one read).
   */
  private keep<K, V>(map: Map<K, V>, key: K, value: V): void {
    // Without the cache, only within a message (reads outside one, e.g. the CLI's, are never kept).
    if (this.cacheLimit === 0 && !this.inMessage) {
      map.delete(key);
      return;
    }
    map.set(key, value);
    if (map.size > this.cacheLimit && this.cacheLimit > 0) {
      // An eighth at a time, oldest first: deleting one entry per insert through a fresh iterator
      // walked over the holes earlier deletes left at the front of the map (8 µs a message).
      let drop = this.cacheLimit >> 3;
      for (const k of map.keys()) {
        map.delete(k);
        if (--drop <= 0) break;
      }
    }
  }

  /** An item by id (current version), or undefined. */
  getItemById(itemId: number): RecordItem | undefined {
    const r = this.q('SELECT * FROM record_item WHERE id = ?').get(itemId) as ItemRow | undefined;
    return r === undefined ? undefined : itemOf(r);
  }

  /** {@inheritDoc ItemStore.listItems} */
  listItems(patientId: string, query: ItemQuery = {}): RecordItem[] {
    // One cached statement per filter shape (at most 16).
    let sql = 'SELECT * FROM record_item WHERE patient_id = ?';
    const args: unknown[] = [patientId];
    if (query.kind !== undefined) {
      sql += ' AND kind = ?';
      args.push(query.kind);
    }
    if (query.organisationId !== undefined) {
      sql += ' AND organisation_id = ?';
      args.push(query.organisationId);
    }
    if (query.parentKey !== undefined) {
      sql += ' AND parent_key = ?';
      args.push(query.parentKey);
    }
    if (query.includeDeleted !== true) sql += ' AND deleted = 0';
    sql += ' ORDER BY id';
    return (this.q(sql).all(...args) as ItemRow[]).map(itemOf);
  }

  /** {@inheritDoc ItemStore.putItem} */
  putItem(write: ItemWrite, provenance: Provenance): PutResult {
    const payload = JSON.stringify(write.payload);
    const parentKey = write.parentKey ?? null;
    const effectiveAt = write.effectiveAt ?? null;
    const deleted = write.deleted === true ? 1 : 0;
    const org = provenance.organisationId;
    const rk = readKey(write.patientId, write.kind, org, write.key);
    const current = this.itemRow(write.patientId, write.kind, org, write.key, rk);
    if (current === null) {
      const row = rowOf(0, write.patientId, write.kind, org, write.key, parentKey, write.label, 1, deleted, effectiveAt, provenance, payload);
      const info = this.q(
        `INSERT INTO record_item (patient_id, kind, organisation_id, key, parent_key, label, version, deleted, effective_at,
           team_id, on_behalf_of, chain, author, sender_id, journal_id, control_id, message_type, entered_at, payload)
         VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(write.patientId, write.kind, org, write.key, parentKey, write.label, deleted, effectiveAt, ...provArgs(row), payload);
      row.id = Number(info.lastInsertRowid);
      this.wroteItem(rk, row);
      return new StoredPut('created', row);
    }
    if (current.payload === payload && current.label === write.label && current.effective_at === effectiveAt && current.deleted === deleted && current.parent_key === parentKey) {
      return new StoredPut('unchanged', current);
    }
    const version = current.version + 1;
    this.keepVersion(current);
    const row = rowOf(current.id, write.patientId, write.kind, org, write.key, parentKey, write.label, version, deleted, effectiveAt, provenance, payload);
    this.q(
      `UPDATE record_item SET parent_key = ?, label = ?, version = ?, deleted = ?, effective_at = ?,
         team_id = ?, on_behalf_of = ?, chain = ?, author = ?, sender_id = ?, journal_id = ?, control_id = ?, message_type = ?, entered_at = ?, payload = ?
       WHERE id = ?`,
    ).run(parentKey, write.label, version, deleted, effectiveAt, ...provArgs(row), payload, current.id);
    this.wroteItem(rk, row);
    return new StoredPut('updated', row);
  }

  /**
   * Keep the version an item row holds now, before the row is overwritten: `record_item` holds the
   * current version, `record_item_version` every earlier one (so a new item costs one row, not two).
   */
  private keepVersion(current: ItemRow): void {
    this.q('INSERT INTO record_item_version (item_id, version, deleted, label, effective_at, provenance, payload) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      current.id,
      current.version,
      current.deleted,
      current.label,
      current.effective_at,
      JSON.stringify(provenanceOf(current)),
      current.payload,
    );
  }

  /** {@inheritDoc ItemStore.deleteItem} */
  deleteItem(itemId: number, provenance: Provenance): void {
    const current = this.q('SELECT * FROM record_item WHERE id = ?').get(itemId) as ItemRow | undefined;
    if (current === undefined || current.deleted === 1) return;
    const version = current.version + 1;
    this.keepVersion(current);
    // The provenance is the deleting message's; the item's source organisation stays its own.
    const row = rowOf(itemId, current.patient_id, current.kind, current.organisation_id, current.key, current.parent_key, current.label, version, 1, current.effective_at, provenance, current.payload);
    this.q(
      `UPDATE record_item SET version = ?, deleted = 1, team_id = ?, on_behalf_of = ?, chain = ?, author = ?, sender_id = ?,
         journal_id = ?, control_id = ?, message_type = ?, entered_at = ? WHERE id = ?`,
    ).run(version, ...provArgs(row), itemId);
    this.wroteItem(readKey(current.patient_id, current.kind, current.organisation_id, current.key), row);
  }

  /** {@inheritDoc ItemStore.replaceList} */
  replaceList(patientId: string, kind: ItemKind, writes: ItemWrite[], provenance: Provenance): void {
    const keep = new Set<string>();
    for (const w of writes) {
      keep.add(w.key);
      this.putItem({ ...w, patientId, kind }, provenance);
    }
    const rows = this.q('SELECT id, key FROM record_item WHERE patient_id = ? AND kind = ? AND organisation_id = ? AND deleted = 0').all(
      patientId,
      kind,
      provenance.organisationId,
    ) as { id: number; key: string }[];
    for (const r of rows) if (!keep.has(r.key)) this.deleteItem(r.id, provenance);
  }

  /** {@inheritDoc ItemStore.history} */
  history(itemId: number): ItemVersion[] {
    const rows = this.q('SELECT version, deleted, label, effective_at, provenance, payload FROM record_item_version WHERE item_id = ? ORDER BY version').all(itemId) as VersionRow[];
    const earlier: ItemVersion[] = rows.map((r) => ({
      version: r.version,
      deleted: r.deleted === 1,
      label: r.label,
      effectiveAt: r.effective_at,
      provenance: JSON.parse(r.provenance) as Provenance,
      payload: JSON.parse(r.payload) as Record<string, unknown>,
    }));
    const current = this.getItemById(itemId);
    if (current === undefined) return earlier;
    return [...earlier, { version: current.version, deleted: current.deleted, label: current.label, effectiveAt: current.effectiveAt, provenance: current.provenance, payload: current.payload }];
  }

  // ---------------------------------------------------------------- patients

  /** Create an empty patient (no demographics yet); returns its id. */
  createPatient(provenance?: Pick<Provenance, 'organisationId' | 'journalId'>): string {
    const id = this.newId();
    const createdAt = this.nowIso();
    this.q('INSERT INTO record_patient (id, created_at, created_by_org, created_journal_id) VALUES (?, ?, ?, ?)').run(
      id,
      createdAt,
      provenance?.organisationId ?? null,
      provenance?.journalId ?? null,
    );
    this.wrote(this.patients, id, { id, created_at: createdAt, entered_at: null, version: 0, demographics: '{}', merged_into: null });
    return id;
  }

  /** A patient row (remembered, or read and remembered), null when there is none. */
  private patientRow(patientId: string): PatientRow | null {
    const known = this.patients.get(patientId);
    if (known !== undefined) return known;
    const r = (this.q('SELECT id, created_at, entered_at, version, demographics, merged_into FROM record_patient WHERE id = ?').get(patientId) as PatientRow | undefined) ?? null;
    this.keep(this.patients, patientId, r);
    return r;
  }

  /** A patient row as stored (merged ones included), or undefined. */
  getPatient(patientId: string): PatientRecord | undefined {
    const r = this.patientRow(patientId);
    if (r === null) return undefined;
    return {
      id: r.id,
      createdAt: r.created_at,
      enteredAt: r.entered_at,
      version: r.version,
      demographics: r.version === 0 ? null : (JSON.parse(r.demographics) as Demographics),
      mergedInto: r.merged_into,
    };
  }

  /** Follow merge links to the surviving record; undefined when the patient does not exist. */
  survivorOf(patientId: string): string | undefined {
    let id = patientId;
    for (let depth = 0; depth < MAX_MERGE_DEPTH; depth++) {
      const r = this.patientRow(id);
      if (r === null) return undefined;
      if (r.merged_into === null) return id;
      id = r.merged_into;
    }
    throw new Error('merge chain too long (cycle?)');
  }

  /** Write a new demographics version with its provenance (entered time = provenance.enteredAt). */
  putDemographics(patientId: string, demographics: Demographics, provenance: Provenance): number {
    const r = this.patientRow(patientId);
    if (r === null) throw new Error(`no patient ${patientId}`);
    const version = r.version + 1;
    const json = JSON.stringify(demographics);
    this.q('UPDATE record_patient SET version = ?, demographics = ?, entered_at = ? WHERE id = ?').run(version, json, provenance.enteredAt, patientId);
    this.wrote(this.patients, patientId, { ...r, version, demographics: json, entered_at: provenance.enteredAt });
    this.q('INSERT INTO record_patient_version (patient_id, version, demographics, provenance) VALUES (?, ?, ?, ?)').run(patientId, version, json, JSON.stringify(provenance));
    return version;
  }

  /** Every demographics version, oldest first. */
  demographicsHistory(patientId: string): { version: number; demographics: Demographics; provenance: Provenance }[] {
    const rows = this.q('SELECT version, demographics, provenance FROM record_patient_version WHERE patient_id = ? ORDER BY version').all(patientId) as {
      version: number;
      demographics: string;
      provenance: string;
    }[];
    return rows.map((r) => ({ version: r.version, demographics: JSON.parse(r.demographics) as Demographics, provenance: JSON.parse(r.provenance) as Provenance }));
  }

  // ---------------------------------------------------------------- identifiers

  /** The active identifier with this kind/system/value, or undefined. */
  findIdentifier(kind: IdentifierKind, system: string, value: string): PatientIdentifier | undefined {
    const k = `${kind}\u0000${system}\u0000${value}`;
    let r = this.identifierByValue.get(k);
    if (r === undefined) {
      r = (this.q('SELECT * FROM record_identifier WHERE kind = ? AND system = ? AND value = ? AND active = 1').get(kind, system, value) as IdentifierRow | undefined) ?? null;
      this.keep(this.identifierByValue, k, r);
    }
    return r === null ? undefined : identifierOf(r);
  }

  /** A patient's identifiers (active ones unless `includeInactive`). */
  identifiers(patientId: string, includeInactive = false): PatientIdentifier[] {
    if (includeInactive) return (this.q('SELECT * FROM record_identifier WHERE patient_id = ? ORDER BY id').all(patientId) as IdentifierRow[]).map(identifierOf);
    let rows = this.identifiersByPatient.get(patientId);
    if (rows === undefined) {
      rows = this.q('SELECT * FROM record_identifier WHERE patient_id = ? AND active = 1 ORDER BY id').all(patientId) as IdentifierRow[];
      this.keep(this.identifiersByPatient, patientId, rows);
    }
    return rows.map(identifierOf);
  }

  /** Add an active identifier (the caller checked it is unused). */
  addIdentifier(
    patientId: string,
    identifier: { kind: IdentifierKind; system: string; value: string; status?: string | null },
    provenance?: Pick<Provenance, 'organisationId' | 'journalId'>,
  ): PatientIdentifier {
    const info = this.q(
      'INSERT INTO record_identifier (patient_id, kind, system, value, status, organisation_id, journal_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(patientId, identifier.kind, identifier.system, identifier.value, identifier.status ?? null, provenance?.organisationId ?? null, provenance?.journalId ?? null, this.nowIso());
    const row = this.q('SELECT * FROM record_identifier WHERE id = ?').get(Number(info.lastInsertRowid)) as IdentifierRow;
    this.wrote(this.identifierByValue, `${row.kind}\u0000${row.system}\u0000${row.value}`, row);
    this.identifiersByPatient.delete(patientId);
    return identifierOf(row);
  }

  /** Update the NHS number status of an identifier (as last sent). */
  setIdentifierStatus(identifierId: number, status: string | null): void {
    this.q('UPDATE record_identifier SET status = ? WHERE id = ?').run(status, identifierId);
    this.forgetIdentifiers();
  }

  /** Deactivate an identifier (replaced, e.g. a changed email): kept, no longer matched. */
  deactivateIdentifier(identifierId: number): void {
    this.q('UPDATE record_identifier SET active = 0, deactivated_at = ? WHERE id = ?').run(this.nowIso(), identifierId);
    this.forgetIdentifiers();
  }

  // ---------------------------------------------------------------- configuration

  /** Add a local identifier type; `teamId` null for the whole organisation, `authority` `*` for any. */
  addLocalIdType(input: { organisationId: string; teamId?: string | null; authority: string; typeCode: string }): LocalIdType {
    if (input.typeCode === '') throw new TributaryError('ADMIN_INVALID', { field: 'typeCode', reason: 'a local identifier type needs a type code (PID-3.5)' });
    if (input.authority === '') throw new TributaryError('ADMIN_INVALID', { field: 'authority', reason: 'a local identifier type needs an authority (PID-3.4) or *' });
    const dup = this.q('SELECT 1 FROM record_local_id_type WHERE organisation_id = ? AND team_id = ? AND authority = ? AND type_code = ?').get(
      input.organisationId,
      input.teamId ?? '',
      input.authority,
      input.typeCode,
    );
    if (dup !== undefined) throw new TributaryError('ADMIN_DUPLICATE', { what: 'local identifier type', id: `${input.authority}^${input.typeCode}` });
    const info = this.q('INSERT INTO record_local_id_type (organisation_id, team_id, authority, type_code, created_at) VALUES (?, ?, ?, ?, ?)').run(
      input.organisationId,
      input.teamId ?? '',
      input.authority,
      input.typeCode,
      this.nowIso(),
    );
    this.forgetConfig();
    return { id: Number(info.lastInsertRowid), organisationId: input.organisationId, teamId: input.teamId ?? null, authority: input.authority, typeCode: input.typeCode };
  }

  /** Local identifier types of an organisation (all of its teams' included); all when no id. */
  listLocalIdTypes(organisationId?: string): LocalIdType[] {
    if (organisationId !== undefined) return this.localIdTypesOf(organisationId).map((t) => ({ ...t }));
    return (this.q('SELECT * FROM record_local_id_type ORDER BY id').all() as LocalTypeRow[]).map(localIdTypeOf);
  }

  /**
   * {@link listLocalIdTypes} of an organisation, shared and frozen (remembered like the other rows):
   * what every message's identifiers are read with.
   */
  localIdTypesOf(organisationId: string): readonly LocalIdType[] {
    let types = this.localTypes.get(organisationId);
    if (types === undefined) {
      const rows = this.q('SELECT * FROM record_local_id_type WHERE organisation_id = ? ORDER BY id').all(organisationId) as LocalTypeRow[];
      types = Object.freeze(rows.map((r) => Object.freeze(localIdTypeOf(r))));
      this.keep(this.localTypes, organisationId, types);
    }
    return types;
  }

  /** Remove a local identifier type; false when none had this id. Stored identifiers stay. */
  removeLocalIdType(id: number): boolean {
    this.forgetConfig();
    return this.q('DELETE FROM record_local_id_type WHERE id = ?').run(id).changes > 0;
  }

  /** Set (insert or replace) a code → label mapping. */
  setLabelMapping(mapping: LabelMapping): void {
    this.q(
      'INSERT INTO record_label_mapping (organisation_id, source, code, label, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (organisation_id, source, code) DO UPDATE SET label = excluded.label',
    ).run(mapping.organisationId, mapping.source, mapping.code, mapping.label, this.nowIso());
    this.forgetConfig();
  }

  /** Label mappings of an organisation (all when no id). */
  listLabelMappings(organisationId?: string): LabelMapping[] {
    const rows = (
      organisationId === undefined
        ? this.q('SELECT * FROM record_label_mapping ORDER BY organisation_id, source, code').all()
        : this.q('SELECT * FROM record_label_mapping WHERE organisation_id = ? ORDER BY source, code').all(organisationId)
    ) as { organisation_id: string; source: LabelSource; code: string; label: RecordLabel }[];
    return rows.map((r) => ({ organisationId: r.organisation_id, source: r.source, code: r.code, label: r.label }));
  }

  /** Remove a mapping; false when there was none. */
  removeLabelMapping(organisationId: string, source: LabelSource, code: string): boolean {
    this.forgetConfig();
    return this.q('DELETE FROM record_label_mapping WHERE organisation_id = ? AND source = ? AND code = ?').run(organisationId, source, code).changes > 0;
  }

  /** The mapped label for a code, or undefined. */
  mappedLabel(organisationId: string, source: LabelSource, code: string): RecordLabel | undefined {
    const k = `${organisationId}\u0000${source}\u0000${code}`;
    let label = this.labels.get(k);
    if (label === undefined) {
      label = (this.q('SELECT label FROM record_label_mapping WHERE organisation_id = ? AND source = ? AND code = ?').pluck().get(organisationId, source, code) as RecordLabel | undefined) ?? null;
      this.keep(this.labels, k, label);
    }
    return label ?? undefined;
  }

  /**
   * Declare `application` (MSH-3.1) a radiology sending application of the organisation.
   * @throws TributaryError `ADMIN_INVALID` (blank), `ADMIN_DUPLICATE` (already declared, in any ASCII case)
   */
  addRadiologyApplication(input: RadiologyApplication): RadiologyApplication {
    const application = input.application.trim();
    if (application === '') throw new TributaryError('ADMIN_INVALID', { field: 'application', reason: 'must not be empty (it is matched against MSH-3.1)' });
    const existing = this.findRadiologyApplication(input.organisationId, application);
    if (existing !== undefined) throw new TributaryError('ADMIN_DUPLICATE', { what: 'radiology application', id: `${input.organisationId} ${existing.application}` });
    this.q('INSERT INTO record_radiology_application (organisation_id, application, created_at) VALUES (?, ?, ?)').run(input.organisationId, application, this.nowIso());
    this.forgetConfig();
    return { organisationId: input.organisationId, application };
  }

  /**
   * The organisation's radiology application matching `application` without regard to ASCII case
   * (the column's NOCASE collation, as the engine matches MSH-3.1), with its name as stored; undefined when none.
   */
  findRadiologyApplication(organisationId: string, application: string): RadiologyApplication | undefined {
    const stored = this.q('SELECT application FROM record_radiology_application WHERE organisation_id = ? AND application = ?').pluck().get(organisationId, application.trim()) as
      | string
      | undefined;
    return stored === undefined ? undefined : { organisationId, application: stored };
  }

  /** Radiology sending applications of an organisation (all when no id), by organisation and application. */
  listRadiologyApplications(organisationId?: string): RadiologyApplication[] {
    const rows = (
      organisationId === undefined
        ? this.q('SELECT organisation_id, application FROM record_radiology_application ORDER BY organisation_id, application').all()
        : this.q('SELECT organisation_id, application FROM record_radiology_application WHERE organisation_id = ? ORDER BY application').all(organisationId)
    ) as { organisation_id: string; application: string }[];
    return rows.map((r) => ({ organisationId: r.organisation_id, application: r.application }));
  }

  /** Remove one (matched without regard to ASCII case); false when there was none. */
  removeRadiologyApplication(organisationId: string, application: string): boolean {
    this.forgetConfig();
    return this.q('DELETE FROM record_radiology_application WHERE organisation_id = ? AND application = ?').run(organisationId, application.trim()).changes > 0;
  }

  /** Whether MSH-3.1 `application` is one of the organisation's radiology sending applications (ASCII case ignored). */
  isRadiologyApplication(organisationId: string, application: string): boolean {
    // Every ORU asks: with no application declared anywhere (most databases), one remembered answer.
    let any = this.anyRadiologyApp;
    if (any === undefined) {
      any = this.q('SELECT 1 FROM record_radiology_application LIMIT 1').get() !== undefined;
      // Remembered under the same rule as the maps' rows (see keep): never outside a message without the cache.
      if (this.cacheLimit > 0 || this.inMessage) this.anyRadiologyApp = any;
    }
    if (!any) return false;
    const app = application.trim();
    if (app === '') return false;
    // Keyed by the spelling as sent (a sender uses one): the NOCASE column does the folding.
    const k = `${organisationId}\u0000${app}`;
    let found = this.radiologyApps.get(k);
    if (found === undefined) {
      found = this.q('SELECT 1 FROM record_radiology_application WHERE organisation_id = ? AND application = ?').get(organisationId, app) !== undefined;
      this.keep(this.radiologyApps, k, found);
    }
    return found;
  }

  // ---------------------------------------------------------------- team membership

  /** The patient's teams (current ones unless `includeRemoved`), oldest first. */
  teamMemberships(patientId: string, includeRemoved = false): TeamMembership[] {
    const rows = this.q(
      `SELECT * FROM record_team_member WHERE patient_id = ?${includeRemoved ? '' : ' AND removed_at IS NULL'} ORDER BY id`,
    ).all(patientId) as { patient_id: string; organisation_id: string; team_id: string; added_at: string; added_journal_id: number; removed_at: string | null; removed_journal_id: number | null }[];
    return rows.map((r) => ({
      patientId: r.patient_id,
      organisationId: r.organisation_id,
      teamId: r.team_id,
      addedAt: r.added_at,
      addedJournalId: r.added_journal_id,
      removedAt: r.removed_at,
      removedJournalId: r.removed_journal_id,
    }));
  }

  /** Add the patient to a team of the acting organisation (the caller checked it is not a member). */
  addTeamMember(patientId: string, teamId: string, provenance: Pick<Provenance, 'organisationId' | 'journalId' | 'enteredAt'>): void {
    // Not remembered in the maps (read per message with ZTM only), so a rollback has nothing to forget.
    this.q('INSERT INTO record_team_member (patient_id, organisation_id, team_id, added_at, added_journal_id) VALUES (?, ?, ?, ?, ?)').run(
      patientId,
      provenance.organisationId,
      teamId,
      provenance.enteredAt,
      provenance.journalId,
    );
  }

  /** Remove the patient from a team (the row is closed, kept); false when not a member. */
  removeTeamMember(patientId: string, teamId: string, provenance: Pick<Provenance, 'journalId' | 'enteredAt'>): boolean {
    return (
      this.q('UPDATE record_team_member SET removed_at = ?, removed_journal_id = ? WHERE patient_id = ? AND team_id = ? AND removed_at IS NULL').run(
        provenance.enteredAt,
        provenance.journalId,
        patientId,
        teamId,
      ).changes > 0
    );
  }

  // ---------------------------------------------------------------- merges

  /**
   * Merge `mergedId` into `survivorId`: link the merged record to the survivor and move its items
   * (those whose key the survivor already has for the same organisation stay behind, hidden with the
   * merged record: the survivor's own copy wins) and its current team memberships (one the survivor
   * has too is closed by the merge message instead: the survivor's own period goes on). Closed
   * memberships stay with the merged record as its history. The merged record's pending
   * registration invitations are cancelled by the merge message. Returns the merge row.
   */
  merge(survivorId: string, mergedId: string, provenance: Provenance): MergeRecord {
    // Items change owner in bulk: nothing remembered about these records holds afterwards.
    this.forgetAll();
    const info = this.q('INSERT INTO record_merge (survivor_id, merged_id, provenance, merged_at) VALUES (?, ?, ?, ?)').run(survivorId, mergedId, JSON.stringify(provenance), this.nowIso());
    const mergeId = Number(info.lastInsertRowid);
    this.q(
      `INSERT INTO record_merge_item (merge_id, item_id)
       SELECT ?, m.id FROM record_item m
       WHERE m.patient_id = ? AND NOT EXISTS (
         SELECT 1 FROM record_item s WHERE s.patient_id = ? AND s.kind = m.kind AND s.organisation_id = m.organisation_id AND s.key = m.key)`,
    ).run(mergeId, mergedId, survivorId);
    this.q('UPDATE record_item SET patient_id = ? WHERE id IN (SELECT item_id FROM record_merge_item WHERE merge_id = ?)').run(survivorId, mergeId);
    // Team memberships follow the same way, recorded so that an unmerge undoes exactly this:
    // otherwise ZTM on the survivor would not see the teams the merged record was in.
    this.q(
      `INSERT INTO record_merge_team_member (merge_id, member_id, action)
       SELECT ?, m.id, CASE WHEN EXISTS (
         SELECT 1 FROM record_team_member s WHERE s.patient_id = ? AND s.team_id = m.team_id AND s.removed_at IS NULL) THEN 'closed' ELSE 'moved' END
       FROM record_team_member m WHERE m.patient_id = ? AND m.removed_at IS NULL`,
    ).run(mergeId, survivorId, mergedId);
    this.q(
      `UPDATE record_team_member SET removed_at = ?, removed_journal_id = ?
       WHERE id IN (SELECT member_id FROM record_merge_team_member WHERE merge_id = ? AND action = 'closed')`,
    ).run(provenance.enteredAt, provenance.journalId, mergeId);
    this.q(`UPDATE record_team_member SET patient_id = ? WHERE id IN (SELECT member_id FROM record_merge_team_member WHERE merge_id = ? AND action = 'moved')`).run(survivorId, mergeId);
    // One person, one pending invitation: the merged record's pending ones are withdrawn by the
    // merge message (an unmerge does not reopen them).
    this.q("UPDATE record_invitation SET status = 'cancelled', closed_at = ?, closed_journal_id = ? WHERE patient_id = ? AND status = 'pending'").run(
      this.nowIso(),
      provenance.journalId,
      mergedId,
    );
    this.q('UPDATE record_patient SET merged_into = ? WHERE id = ?').run(survivorId, mergedId);
    return this.getMerge(mergeId)!;
  }

  /** A merge by id. */
  getMerge(mergeId: number): MergeRecord | undefined {
    const r = this.q('SELECT * FROM record_merge WHERE id = ?').get(mergeId) as MergeRow | undefined;
    return r === undefined ? undefined : this.mergeOf(r);
  }

  /** Merges where the patient is the survivor or the merged record, oldest first. */
  listMerges(patientId: string): MergeRecord[] {
    return (this.q('SELECT * FROM record_merge WHERE survivor_id = ? OR merged_id = ? ORDER BY id').all(patientId, patientId) as MergeRow[]).map((r) => this.mergeOf(r));
  }

  /** The active (not unmerged) merge that merged this patient away, or undefined. */
  activeMergeOf(mergedId: string): MergeRecord | undefined {
    const r = this.q('SELECT * FROM record_merge WHERE merged_id = ? AND unmerged_at IS NULL ORDER BY id DESC LIMIT 1').get(mergedId) as MergeRow | undefined;
    return r === undefined ? undefined : this.mergeOf(r);
  }

  private mergeOf(r: MergeRow): MergeRecord {
    const moved = (this.q('SELECT item_id FROM record_merge_item WHERE merge_id = ? ORDER BY item_id').all(r.id) as { item_id: number }[]).map((x) => x.item_id);
    return {
      id: r.id,
      survivorId: r.survivor_id,
      mergedId: r.merged_id,
      provenance: JSON.parse(r.provenance) as Provenance,
      mergedAt: r.merged_at,
      unmergedAt: r.unmerged_at,
      unmergedBy: r.unmerged_by,
      unmergeReason: r.unmerge_reason,
      movedItemIds: moved,
    };
  }

  /**
   * Undo a merge: move the moved items and team memberships back (those still on the survivor),
   * reopen the memberships the merge closed, clear the link, mark the merge unmerged. Items and
   * memberships the survivor received after the merge stay with the survivor.
   */
  unmerge(mergeId: number, by: string, reason: string): MergeRecord {
    this.forgetAll();
    const m = this.getMerge(mergeId);
    if (m === undefined) throw new Error(`no merge ${mergeId}`);
    this.q(
      `UPDATE record_item SET patient_id = ?
       WHERE patient_id = ? AND id IN (SELECT item_id FROM record_merge_item WHERE merge_id = ?)`,
    ).run(m.mergedId, m.survivorId, mergeId);
    // A moved membership goes back as it is now (also when the survivor left that team since: the
    // period belongs to the merged record's history); one the merge closed is open again. The
    // merged record received nothing while merged (messages went to the survivor), so neither can
    // meet an open row of the same team.
    this.q(
      `UPDATE record_team_member SET patient_id = ?
       WHERE patient_id = ? AND id IN (SELECT member_id FROM record_merge_team_member WHERE merge_id = ? AND action = 'moved')`,
    ).run(m.mergedId, m.survivorId, mergeId);
    this.q(
      `UPDATE record_team_member SET removed_at = NULL, removed_journal_id = NULL
       WHERE patient_id = ? AND removed_journal_id = ? AND id IN (SELECT member_id FROM record_merge_team_member WHERE merge_id = ? AND action = 'closed')`,
    ).run(m.mergedId, m.provenance.journalId, mergeId);
    this.q('UPDATE record_patient SET merged_into = NULL WHERE id = ? AND merged_into = ?').run(m.mergedId, m.survivorId);
    this.q('UPDATE record_merge SET unmerged_at = ?, unmerged_by = ?, unmerge_reason = ? WHERE id = ?').run(this.nowIso(), by, reason, mergeId);
    return this.getMerge(mergeId)!;
  }

  // ---------------------------------------------------------------- review queue

  /** Queue a message for review; returns its id. */
  addReview(input: { reason: ReviewReason; detail: string; candidates: string[]; message: string; provenance: Omit<Provenance, 'author'> }): number {
    const p = input.provenance;
    const info = this.q(
      'INSERT INTO record_review (created_at, organisation_id, team_id, reason, detail, candidates, message, provenance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(this.nowIso(), p.organisationId, p.teamId, input.reason, input.detail, JSON.stringify(input.candidates), input.message, JSON.stringify(p));
    return Number(info.lastInsertRowid);
  }

  /** A review entry, or undefined. */
  getReview(id: number): ReviewItem | undefined {
    const r = this.q('SELECT * FROM record_review WHERE id = ?').get(id) as ReviewRow | undefined;
    return r === undefined ? undefined : reviewOf(r);
  }

  /** Review entries, oldest first, optionally by organisation and status. */
  listReviews(filter: { organisationId?: string; status?: ReviewItem['status'] } = {}): ReviewItem[] {
    const rows = this.q(
      'SELECT * FROM record_review WHERE (@org IS NULL OR organisation_id = @org) AND (@status IS NULL OR status = @status) ORDER BY id',
    ).all({ org: filter.organisationId ?? null, status: filter.status ?? null }) as ReviewRow[];
    return rows.map(reviewOf);
  }

  /** Close a review entry (only an open one: returns false otherwise). */
  closeReview(id: number, outcome: { status: 'applied' | 'dismissed'; by: string; note: string; patientId: string | null }): boolean {
    return (
      this.q("UPDATE record_review SET status = ?, resolved_at = ?, resolved_by = ?, resolution_note = ?, resolved_patient_id = ? WHERE id = ? AND status = 'open'").run(
        outcome.status,
        this.nowIso(),
        outcome.by,
        outcome.note,
        outcome.patientId,
        id,
      ).changes > 0
    );
  }

  // ---------------------------------------------------------------- registration invitations

  /**
   * Queue an invitation for `email` (pending), unless the patient has one for it already that is
   * pending, `sent`, or cancelled by an operator (a record is invited once per address, and an
   * operator's cancel is final). One that a message cancelled (the record's email changed,
   * `closed_by` NULL) is pending again, with this message's source and provenance and its
   * `closed_*` columns cleared. Returns the new or reopened invitation, or undefined.
   * Not remembered in the maps (read per email change only), so a rollback has nothing to forget.
   */
  addInvitation(patientId: string, email: string, source: string, provenance: Pick<Provenance, 'organisationId' | 'teamId' | 'journalId' | 'controlId'>): Invitation | undefined {
    const info = this.q(
      `INSERT INTO record_invitation (patient_id, email, source, organisation_id, team_id, journal_id, control_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (patient_id, email) DO UPDATE SET
         status = 'pending', source = excluded.source, organisation_id = excluded.organisation_id, team_id = excluded.team_id,
         journal_id = excluded.journal_id, control_id = excluded.control_id, created_at = excluded.created_at,
         closed_at = NULL, closed_by = NULL, closed_journal_id = NULL
       WHERE record_invitation.status = 'cancelled' AND record_invitation.closed_by IS NULL`,
    ).run(patientId, email, source, provenance.organisationId, provenance.teamId, provenance.journalId, provenance.controlId, this.nowIso());
    return info.changes === 0 ? undefined : this.findInvitation(patientId, email);
  }

  /** The patient's invitation for an address (any status), or undefined. */
  findInvitation(patientId: string, email: string): Invitation | undefined {
    const r = this.q('SELECT * FROM record_invitation WHERE patient_id = ? AND email = ?').get(patientId, email) as InvitationRow | undefined;
    return r === undefined ? undefined : invitationOf(r);
  }

  /** Cancel the patient's pending invitation for an address (its email was replaced by a message); returns how many (0 or 1). */
  cancelPendingInvitations(patientId: string, email: string, provenance: Pick<Provenance, 'journalId'>): number {
    return this.q("UPDATE record_invitation SET status = 'cancelled', closed_at = ?, closed_journal_id = ? WHERE patient_id = ? AND email = ? AND status = 'pending'").run(
      this.nowIso(),
      provenance.journalId,
      patientId,
      email,
    ).changes;
  }

  /** An invitation by id, or undefined. */
  getInvitation(id: number): Invitation | undefined {
    const r = this.q('SELECT * FROM record_invitation WHERE id = ?').get(id) as InvitationRow | undefined;
    return r === undefined ? undefined : invitationOf(r);
  }

  /** Invitations, oldest first, optionally by status and acting organisation. */
  listInvitations(filter: { status?: InvitationStatus; organisationId?: string } = {}): Invitation[] {
    const rows = this.q(
      'SELECT * FROM record_invitation WHERE (@status IS NULL OR status = @status) AND (@org IS NULL OR organisation_id = @org) ORDER BY id',
    ).all({ status: filter.status ?? null, org: filter.organisationId ?? null }) as InvitationRow[];
    return rows.map(invitationOf);
  }

  /** Mark a pending invitation sent or cancelled by an operator; false when it is not pending (or does not exist). */
  closeInvitation(id: number, status: 'sent' | 'cancelled', by: string): boolean {
    return this.q("UPDATE record_invitation SET status = ?, closed_at = ?, closed_by = ? WHERE id = ? AND status = 'pending'").run(status, this.nowIso(), by, id).changes > 0;
  }
}
