// SPDX-License-Identifier: Apache-2.0
/**
 * Tables of the aggregated record, in the engine's database (the journal's file).
 *
 * The journal owns `PRAGMA user_version`, so the record tracks its own version in
 * `schema_migrations(component, version)`, row `record`. Migrations only add (never drop or
 * rewrite), so an older engine's data is always readable by a newer one.
 *
 * Times are ISO 8601 text: they come from messages (MSH-7) as much as from the clock, and the
 * FHIR export writes them as they are. Payloads and demographics are JSON text (the way Medplum
 * stores resources): the envelope columns are what queries need, the rest is per kind.
 */
import type Database from 'better-sqlite3';

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
];

/** Create or upgrade the record tables (idempotent; safe beside the journal's and senders' migrations). */
export function migrateRecord(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  const read = db.prepare<[string], { version: number }>('SELECT version FROM schema_migrations WHERE component = ?');
  const current = read.get(COMPONENT)?.version ?? 0;
  for (let v = current; v < RECORD_MIGRATIONS.length; v++) {
    const step = db.transaction(() => {
      // Re-read inside the write transaction: another process may have migrated meanwhile.
      if ((read.get(COMPONENT)?.version ?? 0) > v) return;
      db.exec(RECORD_MIGRATIONS[v]!);
      db.prepare('INSERT INTO schema_migrations (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version').run(COMPONENT, v + 1);
    });
    // Inside a caller's transaction a nested transaction is a savepoint; otherwise take the write lock first.
    if (db.inTransaction) step();
    else step.immediate();
  }
}
