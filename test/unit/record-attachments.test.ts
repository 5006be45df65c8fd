// SPDX-License-Identifier: Apache-2.0
/** The attachment store: stored once by content hash, chunked, streamed back chunk by chunk. */
import test from 'ava';
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  ATTACHMENT_CHUNK_BYTES,
  ATTACHMENT_COMPONENT,
  SqliteAttachmentStore,
  migrateAttachments,
} from '../../src/record/attachments.js';
import { isTributaryError } from '../../src/errors.js';
import { tempDir } from '../helpers/engine.js';

function openDb(t: Parameters<typeof tempDir>[0]): Database.Database {
  const db = new Database(join(tempDir(t, 'tributary-attach-'), 'engine.db'));
  t.teardown(() => db.close());
  return db;
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('a 3 MB attachment is stored in 256 KiB chunks and streamed back equal', async (t) => {
  const db = openDb(t);
  const store = new SqliteAttachmentStore(db, { now: () => 1_000 });
  const bytes = randomBytes(3 * 1024 * 1024 + 17);
  const info = store.put(bytes, 'application/pdf');
  t.is(info.size, bytes.length);
  t.is(info.sha256, sha(bytes));
  t.is(info.mediaType, 'application/pdf');
  t.deepEqual(store.info(info.id), info);

  const rows = db.prepare('SELECT seq, length(bytes) AS n FROM record_attachment_chunk WHERE attachment_id = ? ORDER BY seq').all(info.id) as { seq: number; n: number }[];
  t.is(rows.length, 13); // 12 full chunks of 256 KiB + 17 bytes
  t.true(rows.every((r) => r.n <= ATTACHMENT_CHUNK_BYTES));
  t.deepEqual(rows.map((r) => r.seq), [...Array(13).keys()]);

  const chunks = await collect(store.read(info.id));
  t.is(chunks.length, 13);
  const hash = createHash('sha256');
  for (const c of chunks) hash.update(c);
  t.is(hash.digest('hex'), info.sha256);
});

test('the same bytes are stored once; the first media type stays', (t) => {
  const db = openDb(t);
  const store = new SqliteAttachmentStore(db);
  const bytes = randomBytes(1000);
  const a = store.put(bytes, 'application/pdf');
  const b = store.put(Buffer.from(bytes), 'application/octet-stream');
  t.deepEqual(b, a);
  t.is(db.prepare('SELECT count(*) FROM record_attachment').pluck().get(), 1);
  t.is(db.prepare('SELECT count(*) FROM record_attachment_chunk').pluck().get(), 1);
  const c = store.put(randomBytes(1000), 'application/pdf');
  t.not(c.id, a.id);
});

test('encoded content (Base64, hex) is decoded a chunk at a time as it is stored: the same bytes, hash and id as the decoded bytes', async (t) => {
  const db = openDb(t);
  const store = new SqliteAttachmentStore(db);
  // Not a multiple of 3 or of a chunk: the last quantum is padded.
  const bytes = randomBytes(ATTACHMENT_CHUNK_BYTES * 3 + 1001);
  const info = store.put({ text: bytes.toString('base64'), encoding: 'base64' }, 'application/pdf');
  t.is(info.size, bytes.length);
  t.is(info.sha256, sha(bytes));
  const rows = db.prepare('SELECT length(bytes) AS n FROM record_attachment_chunk WHERE attachment_id = ? ORDER BY seq').pluck().all(info.id) as number[];
  // Base64 is sliced in whole 4-character quanta: chunks of 87,381 × 3 bytes, one byte under 256 KiB.
  t.deepEqual(rows, [...Array(3).fill(ATTACHMENT_CHUNK_BYTES - 1), bytes.length - 3 * (ATTACHMENT_CHUNK_BYTES - 1)]);
  t.deepEqual(Buffer.concat(await collect(store.read(info.id))), bytes);
  // The same bytes again, as bytes or as hex: stored once.
  t.deepEqual(store.put(bytes, 'application/octet-stream'), info);
  t.deepEqual(store.put({ text: bytes.toString('hex'), encoding: 'hex' }, 'application/octet-stream'), info);
  t.is(db.prepare('SELECT count(*) FROM record_attachment').pluck().get(), 1);
  const hexOnly = randomBytes(ATTACHMENT_CHUNK_BYTES + 5);
  const h = store.put({ text: hexOnly.toString('hex'), encoding: 'hex' }, 'image/png');
  t.is(h.sha256, sha(hexOnly));
  t.deepEqual(Buffer.concat(await collect(store.read(h.id))), hexOnly);
  t.deepEqual(db.prepare('SELECT length(bytes) FROM record_attachment_chunk WHERE attachment_id = ? ORDER BY seq').pluck().all(h.id), [ATTACHMENT_CHUNK_BYTES, 5]);
});

test('a view into a larger buffer stores only the view', async (t) => {
  const store = new SqliteAttachmentStore(openDb(t));
  const big = Buffer.from('xxxxHELLOyyyy');
  const info = store.put(big.subarray(4, 9), 'text/plain');
  t.is(info.size, 5);
  t.is(Buffer.concat(await collect(store.read(info.id))).toString(), 'HELLO');
});

test('empty content has no chunks and reads as nothing', async (t) => {
  const store = new SqliteAttachmentStore(openDb(t));
  const info = store.put(new Uint8Array(0), 'text/plain');
  t.is(info.size, 0);
  t.deepEqual(await collect(store.read(info.id)), []);
});

test('read queries chunks lazily: only the chunks consumed are fetched', async (t) => {
  const db = openDb(t);
  const store = new SqliteAttachmentStore(db);
  const info = store.put(randomBytes(ATTACHMENT_CHUNK_BYTES * 3), 'application/pdf');
  const it = store.read(info.id)[Symbol.asyncIterator]();
  const first = await it.next();
  t.is((first.value as Uint8Array).length, ATTACHMENT_CHUNK_BYTES);
  // Damage the tail after the first chunk was read: a lazy reader sees it, an eager one would not.
  db.prepare('DELETE FROM record_attachment_chunk WHERE attachment_id = ? AND seq = 2').run(info.id);
  await it.next();
  const err = await t.throwsAsync(() => it.next());
  t.true(isTributaryError(err, 'RECORD_ATTACHMENT_NOT_FOUND'));
});

test('unknown id: info undefined, read throws RECORD_ATTACHMENT_NOT_FOUND', async (t) => {
  const store = new SqliteAttachmentStore(openDb(t));
  t.is(store.info(42), undefined);
  const err = await t.throwsAsync(() => collect(store.read(42)));
  t.true(isTributaryError(err, 'RECORD_ATTACHMENT_NOT_FOUND'));
});

test('migration is recorded under its component and is idempotent', (t) => {
  const db = openDb(t);
  migrateAttachments(db);
  migrateAttachments(db);
  new SqliteAttachmentStore(db);
  t.is(db.prepare('SELECT version FROM schema_migrations WHERE component = ?').pluck().get(ATTACHMENT_COMPONENT), 1);
});

test('put inside a caller transaction rolls back with it', (t) => {
  const db = openDb(t);
  const store = new SqliteAttachmentStore(db);
  t.throws(() => db.transaction(() => {
    store.put(randomBytes(10), 'text/plain');
    throw new Error('abort');
  })());
  t.is(db.prepare('SELECT count(*) FROM record_attachment').pluck().get(), 0);
  t.is(db.prepare('SELECT count(*) FROM record_attachment_chunk').pluck().get(), 0);
});
