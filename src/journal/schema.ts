// SPDX-License-Identifier: Apache-2.0
/**
 * Journal schema migrations. Each migration is applied once, in order, inside a transaction, and
 * `PRAGMA user_version` records how far the file is. Migrations only add: they never drop or
 * rewrite data (an old file keeps every message it received).
 */
import type Database from 'better-sqlite3';

/** Ordered migrations; index + 1 is the schema version they produce. */
export const MIGRATIONS: readonly string[] = [
  // 1: the message journal and transport events
  `CREATE TABLE message (
     id             INTEGER PRIMARY KEY,
     received_at    INTEGER NOT NULL,             -- epoch ms
     interface      TEXT    NOT NULL,             -- mllp | mllps | replay | http
     connection_id  TEXT,
     remote_address TEXT,
     remote_port    INTEGER,
     raw            BLOB    NOT NULL,             -- bytes exactly as received (a prefix when raw_size is larger); empty when raw_parts > 0
     raw_size       INTEGER NOT NULL,
     raw_parts      INTEGER NOT NULL DEFAULT 0,   -- > 0: the bytes are in message_raw_part, in this many parts
     charset        TEXT,
     sender         TEXT,                         -- duplicate-detection key
     control_id     TEXT,                         -- MSH-10
     message_type   TEXT,                         -- MSH-9.1^MSH-9.2
     status         TEXT    NOT NULL CHECK (status IN ('accepted', 'rejected', 'error', 'duplicate')),
     reason_code    TEXT,
     reason         TEXT,
     error_location TEXT,
     ack_code       TEXT,
     ack            TEXT,
     duplicate_of   INTEGER REFERENCES message(id),
     envelope       TEXT,
     dedup_key      TEXT                          -- sender NUL MSH-10 of an accepted message inside the window, else NULL
   );
   -- One B-tree descent both finds a duplicate and indexes the new row (INSERT ... ON CONFLICT).
   -- Every extra index costs pages written per group commit; add one only with a query that needs it.
   CREATE UNIQUE INDEX message_dedup ON message (dedup_key) WHERE dedup_key IS NOT NULL;
   -- Large frames are stored in parts so SQLite never copies a whole multi-MB blob at once.
   CREATE TABLE message_raw_part (
     message_id     INTEGER NOT NULL REFERENCES message(id),
     seq            INTEGER NOT NULL,
     bytes          BLOB    NOT NULL,
     PRIMARY KEY (message_id, seq)
   ) WITHOUT ROWID;
   CREATE TABLE transport_event (
     id             INTEGER PRIMARY KEY,
     at             INTEGER NOT NULL,
     kind           TEXT    NOT NULL,
     remote_address TEXT,
     connection_id  TEXT,
     code           TEXT    NOT NULL,
     detail         TEXT    NOT NULL
   );`,
  // 2: who the message was accepted from (authenticated senders): `sender` becomes the sender id
  // for authenticated messages; the acting organisation and the readable "on behalf of" chain.
  `ALTER TABLE message ADD COLUMN organisation_id TEXT;
   ALTER TABLE message ADD COLUMN acting TEXT;`,
  // 3: what each channel did with a message (the per-channel counters are counts of these rows)
  `CREATE TABLE message_channel (
     message_id     INTEGER NOT NULL REFERENCES message(id),
     channel        TEXT    NOT NULL,
     version        TEXT    NOT NULL,             -- content hash of the channel that ran
     outcome        TEXT    NOT NULL CHECK (outcome IN ('passed', 'filtered', 'rejected', 'error')),
     step           TEXT,                         -- where it stopped, e.g. transform[2]
     code           TEXT,
     detail         TEXT,
     PRIMARY KEY (message_id, channel)
   ) WITHOUT ROWID;`,
  // 4: a message sent through the channels again (`tributary messages reprocess`): the row it
  // repeats, and who asked, why, and whether it was edited
  `ALTER TABLE message ADD COLUMN reprocess_of INTEGER REFERENCES message(id);
   ALTER TABLE message ADD COLUMN note TEXT;`,
];

/** Bring a database to the newest schema version. */
export function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
