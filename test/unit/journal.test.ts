// SPDX-License-Identifier: Apache-2.0
/** The journal on a real SQLite file: group commit, durability before callbacks, duplicates. */
import test from 'ava';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Journal, RAW_PART_BYTES, type CommitResult, type JournalEntry } from '../../src/journal/journal.js';
import { tempDir } from '../helpers/engine.js';

function entry(controlId: string, over: Partial<JournalEntry> = {}): JournalEntry {
  return {
    receivedAt: Date.now(),
    interface: 'mllp',
    connectionId: 'c1',
    remoteAddress: '127.0.0.1',
    remotePort: 5000,
    raw: Buffer.from(`MSH|^~\\&|A|B|||20250101||ADT^A01|${controlId}|P|2.5\r`),
    charset: 'UNICODE UTF-8',
    sender: 'A|B',
    controlId,
    messageType: 'ADT^A01',
    status: 'accepted',
    reasonCode: null,
    reason: null,
    errorLocation: null,
    ackCode: 'AA',
    ack: `ACK-FOR-${controlId}`,
    ...over,
  };
}

const submit = (j: Journal, e: JournalEntry): Promise<CommitResult> =>
  new Promise((resolve, reject) => j.submit(e, (err, res) => (err ? reject(err) : resolve(res!))));

test('rows submitted in one turn share one commit, and are readable by another connection when the callback runs', async (t) => {
  const file = join(tempDir(t), 'j.db');
  const j = Journal.open({ file });
  t.teardown(() => j.close());
  const other = new Database(file, { readonly: true });
  t.teardown(() => other.close());
  const seenAtCallback: number[] = [];
  const all = Array.from({ length: 100 }, (_, i) =>
    new Promise<void>((resolve) =>
      j.submit(entry(`G${i}`), (err, res) => {
        t.is(err, null);
        // another connection sees the row: it is committed, not just written
        seenAtCallback.push((other.prepare('SELECT count(*) AS n FROM message WHERE id = ?').get(res!.id) as { n: number }).n);
        resolve();
      }),
    ),
  );
  await Promise.all(all);
  t.is(j.stats.commits, 1);
  t.is(j.stats.rows, 100);
  t.true(seenAtCallback.every((n) => n === 1));
  t.is(j.database.pragma('journal_mode', { simple: true }), 'wal');
  t.is(j.database.pragma('synchronous', { simple: true }), 2, 'synchronous=FULL');
});

test('maxBatchMessages flushes early', async (t) => {
  const j = Journal.open({ file: join(tempDir(t), 'j.db'), maxBatchMessages: 10 });
  t.teardown(() => j.close());
  await Promise.all(Array.from({ length: 35 }, (_, i) => submit(j, entry(`B${i}`))));
  t.is(j.stats.commits, 4);
});

test('duplicates: inside the window only, against accepted originals only', async (t) => {
  const j = Journal.open({ file: join(tempDir(t), 'j.db'), duplicateWindowMs: 60_000 });
  t.teardown(() => j.close());
  const old = await submit(j, entry('OLD', { receivedAt: Date.now() - 120_000 }));
  const fresh = await submit(j, entry('OLD'));
  t.is(fresh.status, 'accepted', 'outside the window is not a duplicate');
  t.not(fresh.id, old.id);
  const dup = await submit(j, entry('OLD', { ack: 'a different ACK' }));
  t.is(dup.status, 'duplicate');
  t.is(dup.duplicateOf, fresh.id);
  t.is(dup.ack, 'ACK-FOR-OLD', 'the first ACK again');
  const rejected = await submit(j, entry('REJ', { status: 'rejected', ackCode: 'AR' }));
  const resent = await submit(j, entry('REJ'));
  t.is(rejected.status, 'rejected');
  t.is(resent.status, 'accepted', 'a rejected message may be sent again with the same MSH-10');
});

test('duplicate detection can be switched off', async (t) => {
  const j = Journal.open({ file: join(tempDir(t), 'j.db'), duplicateWindowMs: 0 });
  t.teardown(() => j.close());
  await submit(j, entry('X'));
  t.is((await submit(j, entry('X'))).status, 'accepted');
});

test('a failed commit fails every entry of the group and writes none', async (t) => {
  const j = Journal.open({ file: join(tempDir(t), 'j.db') });
  t.teardown(() => j.close());
  j.faultInjector = () => {
    throw new Error('SQLITE_FULL');
  };
  const results = await Promise.allSettled([submit(j, entry('F1')), submit(j, entry('F2'))]);
  t.true(results.every((r) => r.status === 'rejected' && /JOURNAL|SQLITE_FULL/.test(String((r as PromiseRejectedResult).reason))));
  j.faultInjector = null;
  t.is(j.list().length, 0);
  t.is(j.stats.failedCommits, 1);
});

test('reopening keeps data and schema version; read-only opening cannot write', async (t) => {
  const file = join(tempDir(t), 'j.db');
  const j = Journal.open({ file });
  await submit(j, entry('KEEP'));
  j.close();
  const late = await new Promise<Error | null>((resolve) => j.submit(entry('LATE'), (err) => resolve(err)));
  t.is((late as { code?: string } | null)?.code, 'JOURNAL_CLOSED', 'a closed journal answers through the callback');
  const again = Journal.open({ file });
  t.is(again.list().length, 1);
  t.is(again.database.pragma('user_version', { simple: true }), 4);
  again.close();
  const ro = Journal.open({ file, readonly: true });
  t.teardown(() => ro.close());
  t.is(ro.get(1)?.controlId, 'KEEP');
  t.throws(() => ro.database.exec("INSERT INTO transport_event (at, kind, code, detail) VALUES (1, 'x', 'y', 'z')"), { any: true, code: 'SQLITE_READONLY' });
});

test('a large frame is stored in parts and read back byte for byte', async (t) => {
  const j = Journal.open({ file: join(tempDir(t), 'j.db') });
  t.teardown(() => j.close());
  const big = Buffer.alloc(RAW_PART_BYTES * 2 + 12345);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const res = await submit(j, entry('BIG', { raw: big }));
  const parts = j.database.prepare('SELECT count(*) AS n FROM message_raw_part WHERE message_id = ?').get(res.id) as { n: number };
  t.is(parts.n, 3);
  const row = j.get(res.id)!;
  t.is(row.rawSize, big.length);
  t.true(row.raw.equals(big));
  t.true(j.list()[0]!.raw.equals(big));
});
