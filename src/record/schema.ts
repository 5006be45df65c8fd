// SPDX-License-Identifier: Apache-2.0
/**
 * Tables of the aggregated record, in the engine's database (the journal's file).
 *
 * The journal owns `PRAGMA user_version`, so the record tracks its own version in
 * `schema_migrations(component, version)`, row `record`. Migrations only add, or rebuild a table
 * copying every row as it is (SQLite cannot change a CHECK constraint in place: migration 5), so an
 * older engine's data is always readable by a newer one.
 *
 * Times are ISO 8601 text: they come from messages (MSH-7) as much as from the clock, and the
 * FHIR export writes them as they are. Payloads and demographics are JSON text (the way Medplum
 * stores resources): the envelope columns are what queries need, the rest is per kind.
 */
import type Database from 'better-sqlite3';
import { TributaryError } from '../errors.js';

/** Component name in `schema_migrations`. */
export const COMPONENT = 'record';

/** Ordered migrations; index + 1 is the version they produce. */
export const RECORD_MIGRATIONS: readonly string[] = [
  `CREATE TABLE record_patient (
     id               TEXT    PRIMARY KEY,           -- random UUID (the "PKB id", PID AA=PKB TC=PI)
     created_at       TEXT    NOT NULL,              -- clock time of creation
     entered_at       TEXT,                          -- MSH-7 of the demographics applied last
     version          INTEGER NOT NULL DEFAULT 0,    -- demographics version (0: none yet)
     demographics     TEXT    NOT NULL DEFAULT '{}', -- JSON Demographics
     merged_into      TEXT    REFERENCES record_patient(id), -- set while merged away: follow to the survivor
     created_by_org   TEXT,
     created_journal_id INTEGER
   );
   CREATE INDEX record_patient_merged ON record_patient (merged_into) WHERE merged_into IS NOT NULL;
   -- Every demographics version, current included (history of the patient "item").
   CREATE TABLE record_patient_version (
     patient_id       TEXT    NOT NULL REFERENCES record_patient(id),
     version          INTEGER NOT NULL,
     demographics     TEXT    NOT NULL,
     provenance       TEXT    NOT NULL,              -- JSON Provenance
     PRIMARY KEY (patient_id, version)
   );
   -- Identifiers: kind nhs | email | local. 'system' namespaces local ids (see identifiers.ts).
   -- Replaced identifiers are deactivated, never deleted; only active ones must be unique.
   CREATE TABLE record_identifier (
     id               INTEGER PRIMARY KEY,
     patient_id       TEXT    NOT NULL REFERENCES record_patient(id),
     kind             TEXT    NOT NULL CHECK (kind IN ('nhs', 'email', 'local')),
     system           TEXT    NOT NULL,
     value            TEXT    NOT NULL,
     status           TEXT,                          -- NHS number status (01..08) as last sent
     active           INTEGER NOT NULL DEFAULT 1,
     organisation_id  TEXT,                          -- who sent it first
     journal_id       INTEGER,
     created_at       TEXT    NOT NULL,
     deactivated_at   TEXT
   );
   CREATE UNIQUE INDEX record_identifier_active ON record_identifier (kind, system, value) WHERE active = 1;
   CREATE INDEX record_identifier_patient ON record_identifier (patient_id);
   -- Items: the current version with the provenance envelope as columns (what queries filter on).
   CREATE TABLE record_item (
     id               INTEGER PRIMARY KEY,
     patient_id       TEXT    NOT NULL REFERENCES record_patient(id),
     kind             TEXT    NOT NULL,
     organisation_id  TEXT    NOT NULL,              -- source organisation: the replace-all scope
     key              TEXT    NOT NULL,
     parent_key       TEXT,
     label            TEXT    CHECK (label IN ('GENERAL_HEALTH', 'MENTAL_HEALTH', 'SEXUAL_HEALTH', 'SOCIAL_CARE')),
     version          INTEGER NOT NULL,
     deleted          INTEGER NOT NULL DEFAULT 0,
     effective_at     TEXT,
     team_id          TEXT,
     on_behalf_of     TEXT    NOT NULL DEFAULT '[]', -- JSON array of organisation ids
     chain            TEXT    NOT NULL,
     author           TEXT,
     sender_id        TEXT,
     journal_id       INTEGER NOT NULL,
     control_id       TEXT    NOT NULL,
     message_type     TEXT    NOT NULL,
     entered_at       TEXT    NOT NULL,
     payload          TEXT    NOT NULL
   );
   CREATE UNIQUE INDEX record_item_key ON record_item (patient_id, kind, organisation_id, key);
   CREATE INDEX record_item_journal ON record_item (journal_id);
   -- Every version of every item, current included (since migration 3: earlier versions only; the current one is the item row).
   CREATE TABLE record_item_version (
     item_id          INTEGER NOT NULL REFERENCES record_item(id),
     version          INTEGER NOT NULL,
     deleted          INTEGER NOT NULL,
     label            TEXT,
     effective_at     TEXT,
     provenance       TEXT    NOT NULL,              -- JSON Provenance
     payload          TEXT    NOT NULL,
     PRIMARY KEY (item_id, version)
   );
   -- Per-organisation configuration the senders model lacks.
   CREATE TABLE record_local_id_type (
     id               INTEGER PRIMARY KEY,
     organisation_id  TEXT    NOT NULL,
     team_id          TEXT    NOT NULL DEFAULT '',   -- '' = the whole organisation
     authority        TEXT    NOT NULL,              -- PID-3.4, or '*' for any
     type_code        TEXT    NOT NULL,              -- PID-3.5, required
     created_at       TEXT    NOT NULL,
     UNIQUE (organisation_id, team_id, authority, type_code)
   );
   CREATE TABLE record_label_mapping (
     organisation_id  TEXT    NOT NULL,
     source           TEXT    NOT NULL CHECK (source IN ('PV1-10', 'OBR-4', 'AL1-3')),
     code             TEXT    NOT NULL,
     label            TEXT    NOT NULL CHECK (label IN ('GENERAL_HEALTH', 'MENTAL_HEALTH', 'SEXUAL_HEALTH', 'SOCIAL_CARE')),
     created_at       TEXT    NOT NULL,
     PRIMARY KEY (organisation_id, source, code)
   );
   -- Merges: who/when/which message, and what moved (so an unmerge can move it back).
   CREATE TABLE record_merge (
     id               INTEGER PRIMARY KEY,
     survivor_id      TEXT    NOT NULL REFERENCES record_patient(id),
     merged_id        TEXT    NOT NULL REFERENCES record_patient(id),
     provenance       TEXT    NOT NULL,              -- JSON Provenance of the merge message
     merged_at        TEXT    NOT NULL,
     unmerged_at      TEXT,
     unmerged_by      TEXT,
     unmerge_reason   TEXT
   );
   CREATE INDEX record_merge_survivor ON record_merge (survivor_id);
   CREATE INDEX record_merge_merged ON record_merge (merged_id);
   CREATE TABLE record_merge_item (
     merge_id         INTEGER NOT NULL REFERENCES record_merge(id),
     item_id          INTEGER NOT NULL REFERENCES record_item(id),
     PRIMARY KEY (merge_id, item_id)
   );
   -- The review queue: accepted (AA) messages not applied until someone decides.
   CREATE TABLE record_review (
     id               INTEGER PRIMARY KEY,
     created_at       TEXT    NOT NULL,
     organisation_id  TEXT    NOT NULL,
     team_id          TEXT,
     reason           TEXT    NOT NULL,              -- a ReviewReason
     detail           TEXT    NOT NULL,              -- no PHI: which rule, which identifier kind
     candidates       TEXT    NOT NULL DEFAULT '[]', -- JSON array of patient ids the message matched
     message          TEXT    NOT NULL,              -- the ER7 text, to apply later
     provenance       TEXT    NOT NULL,              -- JSON Provenance without author
     status           TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'applied', 'dismissed')),
     resolved_at      TEXT,
     resolved_by      TEXT,
     resolution_note  TEXT,
     resolved_patient_id TEXT
   );
   CREATE INDEX record_review_open ON record_review (organisation_id, status);`,
  // 2: no query reads items by journal id, and the index cost a write on every item change
  // (measured on the ORU path). Only the index goes; no data.
  `DROP INDEX IF EXISTS record_item_journal;`,
  // 3: record_item_version keeps earlier versions only; the current one is the record_item row.
  // Rows that repeat an item's current version are removed: their content is in the item row, so
  // no version is lost (history() returns the earlier rows, then the item).
  `DELETE FROM record_item_version WHERE (item_id, version) IN (SELECT id, version FROM record_item);`,
  // 4: per-organisation radiology sending applications (PKB decides radiology by MSH-3): an ORU^R01
  // whose MSH-3.1 is one of the acting organisation's is a radiology report. Matched without regard
  // to ASCII case (the column's collation), so `RIS` and `ris` are one row.
  `CREATE TABLE record_radiology_application (
     organisation_id  TEXT    NOT NULL,
     application      TEXT    NOT NULL COLLATE NOCASE, -- MSH-3.1 (namespace id), as configured
     created_at       TEXT    NOT NULL,
     PRIMARY KEY (organisation_id, application)
   );`,
  // 5: national identifiers besides the NHS number (CHI, H&C: kind 'national', told apart by
  // system). The kind CHECK is widened by rebuilding the table: every row and id copied as is, the
  // same indexes made again. Nothing references record_identifier, so dropping it breaks no link.
  // Identifier rows of missing patients would fail the copy: MIGRATION_CHECKS[5] names them first.
  // Cost: about 2 s per million identifier rows (docs/record.md "Upgrading").
  `CREATE TABLE record_identifier_v5 (
     id               INTEGER PRIMARY KEY,
     patient_id       TEXT    NOT NULL REFERENCES record_patient(id),
     kind             TEXT    NOT NULL CHECK (kind IN ('nhs', 'national', 'email', 'local')),
     system           TEXT    NOT NULL,
     value            TEXT    NOT NULL,
     status           TEXT,                          -- NHS number status (01..08) as last sent
     active           INTEGER NOT NULL DEFAULT 1,
     organisation_id  TEXT,                          -- who sent it first
     journal_id       INTEGER,
     created_at       TEXT    NOT NULL,
     deactivated_at   TEXT
   );
   INSERT INTO record_identifier_v5 (id, patient_id, kind, system, value, status, active, organisation_id, journal_id, created_at, deactivated_at)
     SELECT id, patient_id, kind, system, value, status, active, organisation_id, journal_id, created_at, deactivated_at FROM record_identifier;
   DROP TABLE record_identifier;
   ALTER TABLE record_identifier_v5 RENAME TO record_identifier;
   CREATE UNIQUE INDEX record_identifier_active ON record_identifier (kind, system, value) WHERE active = 1;
   CREATE INDEX record_identifier_patient ON record_identifier (patient_id);`,
  // 6: team membership (ZTM of A28/A31, and the Patient Record Team a new record joins): one row per
  // period in a team; a removal closes the row (kept), a later add opens a new one.
  `CREATE TABLE record_team_member (
     id                 INTEGER PRIMARY KEY,
     patient_id         TEXT    NOT NULL REFERENCES record_patient(id),
     organisation_id    TEXT    NOT NULL,            -- the team's organisation (the acting one)
     team_id            TEXT    NOT NULL,
     added_at           TEXT    NOT NULL,            -- MSH-7 of the adding message
     added_journal_id   INTEGER NOT NULL,
     removed_at         TEXT,                        -- MSH-7 of the removing message; NULL while a member
     removed_journal_id INTEGER
   );
   CREATE UNIQUE INDEX record_team_member_current ON record_team_member (patient_id, team_id) WHERE removed_at IS NULL;
   -- A patient's periods in id order (teamMemberships with the closed ones: record show, merges) without a scan.
   CREATE INDEX record_team_member_patient ON record_team_member (patient_id, id);
   -- What a merge did to the merged record's current memberships (moved to the survivor, or closed
   -- because the survivor was in that team too), so an unmerge undoes exactly that.
   CREATE TABLE record_merge_team_member (
     merge_id           INTEGER NOT NULL REFERENCES record_merge(id),
     member_id          INTEGER NOT NULL REFERENCES record_team_member(id),
     action             TEXT    NOT NULL CHECK (action IN ('moved', 'closed')),
     PRIMARY KEY (merge_id, member_id)
   );`,
  // 7: registration invitations (domain §1 A28/A31: an email in PID-13/PID-14 added to the record
  // "triggers a registration invitation"). A queue for the organisation's own invitation process:
  // nothing here sends email. One row per (patient, email), so a repeated A31 never invites twice;
  // rows are never deleted, a status change closes them (kept as the history).
  `CREATE TABLE record_invitation (
     id                 INTEGER PRIMARY KEY,
     patient_id         TEXT    NOT NULL REFERENCES record_patient(id),
     email              TEXT    NOT NULL,            -- as the record's email identifier holds it (lower case)
     source             TEXT    NOT NULL,            -- where the message sent it, e.g. PID-13[2].4
     organisation_id    TEXT    NOT NULL,            -- the acting organisation of the message (whose process invites)
     team_id            TEXT,
     journal_id         INTEGER NOT NULL,
     control_id         TEXT    NOT NULL,            -- MSH-10
     created_at         TEXT    NOT NULL,            -- clock time
     status             TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'cancelled')),
     closed_at          TEXT,                        -- clock time of the change to sent / cancelled
     closed_by          TEXT,                        -- the CLI actor; NULL when a message cancelled it
     closed_journal_id  INTEGER,                     -- the message whose new email cancelled it
     UNIQUE (patient_id, email)
   );
   CREATE INDEX record_invitation_status ON record_invitation (status, id);`,
];

/**
 * Checks run in a migration's transaction before its SQL, by the version it produces: a database
 * the SQL would fail on gets a message saying what to fix instead of SQLite's bare error.
 */
const MIGRATION_CHECKS: Readonly<Record<number, (db: Database.Database) => void>> = {
  5: (db) => {
    // The rebuild copies record_identifier into a table declaring the same foreign key; with foreign
    // keys on (better-sqlite3's default) one identifier naming a missing patient fails the copy with
    // only "FOREIGN KEY constraint failed". Such rows can only come from outside Tributary (a manual
    // delete, a restore of part of a file).
    let count = 0;
    const shown: number[] = [];
    for (const o of db.prepare('PRAGMA foreign_key_check(record_identifier)').iterate() as IterableIterator<{ rowid: number }>) {
      if (count++ < 20) shown.push(o.rowid);
    }
    if (count === 0) return;
    const patients = db
      .prepare('SELECT DISTINCT patient_id FROM record_identifier i WHERE NOT EXISTS (SELECT 1 FROM record_patient p WHERE p.id = i.patient_id) ORDER BY patient_id LIMIT 11')
      .pluck()
      .all() as string[];
    const rows = `${shown.join(', ')}${count > shown.length ? ` and ${count - shown.length} more` : ''}`;
    const missing = `${patients.slice(0, 10).join(', ')}${patients.length > 10 ? ' and more' : ''}`;
    throw new TributaryError('RECORD_MIGRATION_FAILED', {
      version: 5,
      reason:
        `${count} record_identifier row${count === 1 ? '' : 's'} (id ${rows}) name${count === 1 ? 's' : ''} a patient missing from record_patient (${missing}); ` +
        'restore those patients or delete those identifier rows, then start again',
    });
  },
};

/**
 * Create or upgrade the record tables (idempotent; safe beside the journal's and senders' migrations).
 * Each migration runs in its own transaction: one that fails leaves the database at the version before it.
 *
 * @throws TributaryError `RECORD_MIGRATION_FAILED` when a migration's check finds data it cannot upgrade
 */
export function migrateRecord(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  const read = db.prepare<[string], { version: number }>('SELECT version FROM schema_migrations WHERE component = ?');
  const current = read.get(COMPONENT)?.version ?? 0;
  for (let v = current; v < RECORD_MIGRATIONS.length; v++) {
    const step = db.transaction(() => {
      // Re-read inside the write transaction: another process may have migrated meanwhile.
      if ((read.get(COMPONENT)?.version ?? 0) > v) return;
      MIGRATION_CHECKS[v + 1]?.(db);
      db.exec(RECORD_MIGRATIONS[v]!);
      db.prepare('INSERT INTO schema_migrations (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version').run(COMPONENT, v + 1);
    });
    // Inside a caller's transaction a nested transaction is a savepoint; otherwise take the write lock first.
    if (db.inTransaction) step();
    else step.immediate();
  }
}
