// SPDX-License-Identifier: Apache-2.0
/**
 * Attachment bytes of the record (an MDM document's encapsulated PDF, image…) in SQLite.
 *
 * Content-addressed: a row per distinct SHA-256, so the same PDF sent twice (a re-sent document, a
 * new version with unchanged content) is stored once. The bytes live in `record_attachment_chunk`
 * rows of at most {@link ATTACHMENT_CHUNK_BYTES}: binding one multi-MB blob makes SQLite copy it
 * twice (the bound value and the record), the reason the journal stores large frames in parts too
 * (`message_raw_part`). Reading queries one chunk at a time, so a large document is never held in
 * memory whole on the way out either.
 *
 * The tables are this component's own (`schema_migrations` row `record-attachments`); the item
 * store (`store.ts`) refers to attachments by id only.
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { TributaryError } from '../errors.js';
import type { AttachmentInfo, AttachmentStore, EncodedAttachment } from './types.js';

/** Component name in `schema_migrations`. */
export const ATTACHMENT_COMPONENT = 'record-attachments';

/** Largest chunk written (and so read back) per row: 256 KiB, as the journal's raw parts. */
export const ATTACHMENT_CHUNK_BYTES = 256 * 1024;

/** Ordered migrations; index + 1 is the version they produce. Only ever append. */
export const ATTACHMENT_MIGRATIONS: readonly string[] = [
  `CREATE TABLE record_attachment (
     id          INTEGER PRIMARY KEY,
     sha256      TEXT    NOT NULL UNIQUE,   -- hex SHA-256 of the bytes: one row per content
     size        INTEGER NOT NULL,          -- bytes
     media_type  TEXT    NOT NULL,          -- of the first message that sent these bytes
     created_at  INTEGER NOT NULL           -- epoch milliseconds
   );
   CREATE TABLE record_attachment_chunk (
     attachment_id INTEGER NOT NULL REFERENCES record_attachment(id),
     seq           INTEGER NOT NULL,        -- 0, 1, 2… in content order
     bytes         BLOB    NOT NULL,
     PRIMARY KEY (attachment_id, seq)
   ) WITHOUT ROWID;`,
];

/** Create or upgrade the attachment tables (idempotent; safe beside other components' migrations). */
export function migrateAttachments(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  const versionOf = (): number =>
    (db.prepare('SELECT version FROM schema_migrations WHERE component = ?').get(ATTACHMENT_COMPONENT) as { version: number } | undefined)
      ?.version ?? 0;
  for (let v = versionOf(); v < ATTACHMENT_MIGRATIONS.length; v++) {
    const step = (): void => {
      // Re-read inside the write transaction: another process may have migrated meanwhile.
      if (versionOf() > v) return;
      db.exec(ATTACHMENT_MIGRATIONS[v]!);
      db.prepare(
        'INSERT INTO schema_migrations (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version',
      ).run(ATTACHMENT_COMPONENT, v + 1);
    };
    // BEGIN IMMEDIATE cannot nest: inside a caller's transaction run the step there (a savepoint).
    if (db.inTransaction) db.transaction(step)();
    else db.transaction(step).immediate();
  }
}

interface AttachmentRow {
  id: number;
  sha256: string;
  size: number;
  media_type: string;
}

function toInfo(r: AttachmentRow): AttachmentInfo {
  return { id: r.id, sha256: r.sha256, size: r.size, mediaType: r.media_type };
}

/**
 * Encoded content decoded a chunk at a time: a slice of whole quanta (4 base64 characters are 3
 * bytes, 2 hex characters 1) of about {@link ATTACHMENT_CHUNK_BYTES}, decoded into one reused
 * buffer. Each chunk is a view of that buffer, valid until the next one: the hash and SQLite's bind
 * copy it. A new Buffer per chunk would be garbage that only a GC frees, and for a single big
 * message none comes before its peak.
 */
function* decodedChunks(content: EncodedAttachment): Generator<Buffer> {
  const [chars, bytes] = content.encoding === 'base64' ? [4, 3] : [2, 1];
  const step = Math.floor(ATTACHMENT_CHUNK_BYTES / bytes) * chars;
  const text = content.text;
  const scratch = Buffer.allocUnsafe(Math.min(ATTACHMENT_CHUNK_BYTES, Math.ceil(text.length / chars) * bytes));
  for (let at = 0; at < text.length; at += step) {
    const n = scratch.write(text.slice(at, at + step), content.encoding);
    yield scratch.subarray(0, n);
  }
}

/** Bytes as chunk views (no copy) of at most {@link ATTACHMENT_CHUNK_BYTES}. */
function* byteChunks(buf: Buffer): Generator<Buffer> {
  for (let at = 0; at < buf.length; at += ATTACHMENT_CHUNK_BYTES) yield buf.subarray(at, Math.min(at + ATTACHMENT_CHUNK_BYTES, buf.length));
}

/**
 * {@link AttachmentStore} on a better-sqlite3 database (the engine's, so attachments commit in the
 * same transaction as the item that refers to them).
 */
export class SqliteAttachmentStore implements AttachmentStore {
  private readonly db: Database.Database;
  private readonly byHashStmt: Database.Statement;
  private readonly byIdStmt: Database.Statement;
  private readonly insertStmt: Database.Statement;
  private readonly insertChunkStmt: Database.Statement;
  private readonly chunkStmt: Database.Statement;
  private readonly now: () => number;

  /**
   * Migrates the tables and prepares the statements.
   * @param db - an open, writable database
   * @param options - `now` for tests (epoch ms of `created_at`)
   */
  constructor(db: Database.Database, options: { now?: () => number } = {}) {
    migrateAttachments(db);
    this.db = db;
    this.now = options.now ?? Date.now;
    this.byHashStmt = db.prepare('SELECT id, sha256, size, media_type FROM record_attachment WHERE sha256 = ?');
    this.byIdStmt = db.prepare('SELECT id, sha256, size, media_type FROM record_attachment WHERE id = ?');
    // ON CONFLICT: another writer (a second engine process on the file) may have stored the same
    // bytes between our lookup and the insert; then its row is the one to use.
    this.insertStmt = db.prepare(
      'INSERT INTO record_attachment (sha256, size, media_type, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING',
    );
    this.insertChunkStmt = db.prepare('INSERT INTO record_attachment_chunk (attachment_id, seq, bytes) VALUES (?, ?, ?)');
    this.chunkStmt = db.prepare('SELECT bytes FROM record_attachment_chunk WHERE attachment_id = ? AND seq = ?').pluck();
  }

  /**
   * Store content, or return the existing row holding the same bytes (its media type is the one
   * first stored: content identity is the hash, the hint of a later sender does not rewrite it).
   * Bytes are written as views of `content` (no copy) in chunks of {@link ATTACHMENT_CHUNK_BYTES};
   * encoded content is decoded one chunk at a time into one buffer, twice (for the hash, then, when
   * the bytes are new, for the rows): a few milliseconds more for a 5 MB document, instead of its
   * 3.75 MB decoded copy held through the message (docs/benchmarks.md §4).
   */
  put(content: Uint8Array | EncodedAttachment, mediaType: string): AttachmentInfo {
    const chunks =
      content instanceof Uint8Array ? (): Iterable<Buffer> => byteChunks(Buffer.from(content.buffer, content.byteOffset, content.byteLength)) : (): Iterable<Buffer> => decodedChunks(content);
    const hash = createHash('sha256');
    let size = 0;
    for (const chunk of chunks()) {
      hash.update(chunk);
      size += chunk.length;
    }
    const sha256 = hash.digest('hex');
    const existing = this.byHashStmt.get(sha256) as AttachmentRow | undefined;
    if (existing !== undefined) return toInfo(existing);
    return this.db.transaction((): AttachmentInfo => {
      const inserted = this.insertStmt.run(sha256, size, mediaType, this.now());
      if (inserted.changes === 0) return toInfo(this.byHashStmt.get(sha256) as AttachmentRow);
      const id = Number(inserted.lastInsertRowid);
      let seq = 0;
      for (const chunk of chunks()) this.insertChunkStmt.run(id, seq++, chunk);
      return { id, sha256, size, mediaType };
    })();
  }

  /** Metadata of an attachment, or undefined when there is none with this id. */
  info(id: number): AttachmentInfo | undefined {
    const r = this.byIdStmt.get(id) as AttachmentRow | undefined;
    return r === undefined ? undefined : toInfo(r);
  }

  /**
   * The bytes, one chunk per iteration, each fetched from the database only when asked for (so a
   * slow consumer, e.g. an HTTP response, holds one chunk at a time).
   *
   * @throws TributaryError RECORD_ATTACHMENT_NOT_FOUND (on the first iteration) for an unknown id,
   *   or when a chunk is missing (a damaged database must not yield a silently truncated file)
   */
  read(id: number): AsyncIterable<Uint8Array> {
    return this.chunks(id);
  }

  private async *chunks(id: number): AsyncGenerator<Uint8Array> {
    const info = this.info(id);
    if (info === undefined) throw new TributaryError('RECORD_ATTACHMENT_NOT_FOUND', { id });
    let remaining = info.size;
    for (let seq = 0; remaining > 0; seq++) {
      const chunk = this.chunkStmt.get(id, seq) as Buffer | undefined;
      if (chunk === undefined || chunk.length === 0) throw new TributaryError('RECORD_ATTACHMENT_NOT_FOUND', { id });
      remaining -= chunk.length;
      yield chunk;
    }
  }
}
