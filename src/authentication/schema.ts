// SPDX-License-Identifier: Apache-2.0
/**
 * Tables of the sender configuration, in the engine's database (the journal's file).
 *
 * The journal owns `PRAGMA user_version`, so this component tracks its own version in
 * `schema_migrations(component, version)`, row `senders`. Like the journal's, migrations only add.
 * Times are epoch milliseconds. `senders_generation` holds one counter that every change
 * increments in the same transaction: a running engine compares it on each check and reloads its
 * snapshot when an admin (another process, e.g. the CLI) changed something.
 */
import type Database from 'better-sqlite3';

/** Component name in `schema_migrations`. */
export const COMPONENT = 'senders';

/** Ordered migrations; index + 1 is the version they produce. */
export const SENDER_MIGRATIONS: readonly string[] = [
  `CREATE TABLE organisation (
     id               TEXT    PRIMARY KEY,           -- slug, e.g. rxx
     name             TEXT    NOT NULL,
     kind             TEXT    NOT NULL CHECK (kind IN ('customer', 'partner')),
     auto_create      INTEGER NOT NULL DEFAULT 0,    -- create a record from any message with enough data
     nhs_status_check INTEGER NOT NULL DEFAULT 0,    -- quarantine NHS numbers whose status is not 01
     created_at       INTEGER NOT NULL
   );
   CREATE TABLE team (
     id               TEXT    PRIMARY KEY,
     organisation_id  TEXT    NOT NULL REFERENCES organisation(id),
     name             TEXT    NOT NULL,
     default_label    TEXT    CHECK (default_label IN ('GENERAL_HEALTH', 'MENTAL_HEALTH', 'SEXUAL_HEALTH', 'SOCIAL_CARE')),
     is_record_team   INTEGER NOT NULL DEFAULT 0,    -- the organisation's Patient Record Team
     created_at       INTEGER NOT NULL
   );
   CREATE INDEX team_org ON team (organisation_id);
   CREATE TABLE alias (
     value            TEXT    PRIMARY KEY,           -- an MSH-4 component, exactly
     organisation_id  TEXT    NOT NULL REFERENCES organisation(id),
     team_id          TEXT    REFERENCES team(id),
     created_at       INTEGER NOT NULL
   );
   CREATE TABLE sender (
     id               TEXT    PRIMARY KEY,
     organisation_id  TEXT    NOT NULL REFERENCES organisation(id),
     name             TEXT    NOT NULL,
     allow_cidrs      TEXT    NOT NULL DEFAULT '[]', -- JSON array of canonical CIDRs
     tls_identities   TEXT    NOT NULL DEFAULT '[]', -- JSON array: CN=..., DNS:..., sha256:<hex>
     applications     TEXT    NOT NULL DEFAULT '[]', -- JSON array of allowed MSH-3 values; empty = any
     enabled          INTEGER NOT NULL DEFAULT 1,
     created_at       INTEGER NOT NULL
   );
   -- A credential is a user name of a sender; its secrets live in credential_secret so that a
   -- rotation keeps the user name (only the secret changes) and both secrets work during the overlap.
   CREATE TABLE credential (
     id               INTEGER PRIMARY KEY,
     sender_id        TEXT    NOT NULL REFERENCES sender(id),
     username         TEXT    NOT NULL UNIQUE,       -- reserved forever, even when revoked
     created_at       INTEGER NOT NULL,
     revoked_at       INTEGER
   );
   CREATE TABLE credential_secret (
     id               INTEGER PRIMARY KEY,
     credential_id    INTEGER NOT NULL REFERENCES credential(id),
     secret_hash      TEXT    NOT NULL,              -- scrypt$N$r$p$salt$key, never the secret
     created_at       INTEGER NOT NULL,
     expires_at       INTEGER,                       -- set on the old secret by a rotation
     revoked_at       INTEGER
   );
   CREATE INDEX credential_secret_cred ON credential_secret (credential_id);
   CREATE TABLE partner_grant (
     id                        INTEGER PRIMARY KEY,
     customer_organisation_id  TEXT    NOT NULL REFERENCES organisation(id),
     partner_organisation_id   TEXT    NOT NULL REFERENCES organisation(id),
     team_id                   TEXT    REFERENCES team(id),   -- NULL: the whole organisation
     created_at                INTEGER NOT NULL,
     revoked_at                INTEGER
   );
   CREATE TABLE audit (
     id               INTEGER PRIMARY KEY,
     at               INTEGER NOT NULL,
     actor            TEXT    NOT NULL,
     action           TEXT    NOT NULL,              -- add | update | remove | rotate | apply | ...
     object_type      TEXT    NOT NULL,
     object_id        TEXT,
     detail           TEXT    NOT NULL DEFAULT '{}'  -- JSON; never a secret or a hash
   );
   CREATE TABLE senders_generation (
     id               INTEGER PRIMARY KEY CHECK (id = 1),
     value            INTEGER NOT NULL
   );
   INSERT INTO senders_generation (id, value) VALUES (1, 1);`,
];

/** Create or upgrade the sender tables (idempotent; safe beside the journal's migrations). */
export function migrateSenders(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  const row = db.prepare('SELECT version FROM schema_migrations WHERE component = ?').get(COMPONENT) as { version: number } | undefined;
  const current = row?.version ?? 0;
  for (let v = current; v < SENDER_MIGRATIONS.length; v++) {
    db.transaction(() => {
      // Re-read inside the write transaction: another process may have migrated meanwhile.
      const again = db.prepare('SELECT version FROM schema_migrations WHERE component = ?').get(COMPONENT) as { version: number } | undefined;
      if ((again?.version ?? 0) > v) return;
      db.exec(SENDER_MIGRATIONS[v]!);
      db.prepare('INSERT INTO schema_migrations (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version').run(COMPONENT, v + 1);
    }).immediate();
  }
}
