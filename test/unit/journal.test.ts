// SPDX-License-Identifier: Apache-2.0
/** The journal on a real SQLite file: group commit, durability before callbacks, duplicates. */
import test from 'ava';
import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Checkpointer } from '../../src/journal/checkpointer.js';
import { Journal, RAW_PART_BYTES, type CommitResult, type JournalEntry } from '../../src/journal/journal.js';
import { tempDir } from '../helpers/engine.js';
import { silentLogger } from '../../src/log.js';

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

/** Four rows in one turn: a group larger than the ones that sync inline. */
const group = (j: Journal, id: string, over: Partial<JournalEntry> = {}): Promise<CommitResult[]> =>
  Promise.all([1, 2, 3, 4].map((n) => submit(j, entry(`${id}.${n}`, over))));

const turn = () => new Promise((r) => setImmediate(r));

test('whenDurable runs after the group has committed and its callers are answered, and not at all for a group that rolled back', async (t) => {
  const j = Journal.open({ file: join(tempDir(t), 'j.db') });
  t.teardown(() => j.close());
  const ran: string[] = [];
  const answered: string[] = [];
  const ok = Promise.all(
    [1, 2].map(
      (n) =>
        new Promise<void>((resolve) =>
          j.submit(entry(`W1.${n}`, { apply: () => j.whenDurable(() => ran.push(`W1.${n} after ${answered.length} answers`)) }), () => {
            answered.push(`W1.${n}`);
            resolve();
          }),
        ),
    ),
  );
  t.deepEqual(ran, [], 'not before the commit');
  await ok;
  t.deepEqual(ran, ['W1.1 after 2 answers', 'W1.2 after 2 answers']);
  j.faultInjector = () => {
    throw new Error('disk full');
  };
  await t.throwsAsync(group(j, 'W2', { apply: () => j.whenDurable(() => ran.push('W2')) }));
  j.faultInjector = null;
  await turn();
  t.is(ran.length, 2, 'the rolled-back group queued nothing');
});

test('background checkpoints copy the WAL into the database file while commits never checkpoint', async (t) => {
  const file = join(tempDir(t), 'j.db');
  const j = Journal.open({ file, backgroundCheckpoints: true });
  t.teardown(() => j.close());
  t.is(j.database.pragma('wal_autocheckpoint', { simple: true }), 0, 'the commits leave checkpoints to the worker');
  const before = statSync(file).size;
  const big = Buffer.alloc(8 * 1024, 0x41);
  for (let g = 0; g < 20; g++) await Promise.all(Array.from({ length: 10 }, (_, i) => submit(j, entry(`K${g}-${i}`, { raw: big }))));
  // ~1.6 MB of rows: the worker's rounds (every 20 ms) copy them into the main file.
  const deadline = Date.now() + 10_000;
  while (statSync(file).size < before + 1_500_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.true(statSync(file).size >= before + 1_500_000, `database file ${statSync(file).size} bytes`);
});

test('a checkpoint worker that cannot start is reported', async (t) => {
  const cp = new Checkpointer({ file: join(tempDir(t), 'missing.db') });
  const deadline = Date.now() + 10_000;
  while (!cp.failed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.true(cp.failed, 'the journal then gives checkpoints back to SQLite');
  await cp.stop();
});

test('the checkpointer asks for a restart once the log is past its bound', async (t) => {
  const file = join(tempDir(t), 'w.db');
  const db = new Database(file);
  t.teardown(() => db.close());
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (b BLOB)');
  const cp = new Checkpointer({ file, restartFrames: 50, intervalMs: 5 });
  t.teardown(() => cp.stop());
  const ins = db.prepare('INSERT INTO t VALUES (?)');
  for (let i = 0; i < 100; i++) ins.run(Buffer.alloc(4096, i));
  const deadline = Date.now() + 10_000;
  while (!cp.restartDue && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.true(cp.restartDue);
  db.pragma('wal_checkpoint(RESTART)');
  cp.restarted();
  t.false(cp.restartDue);
  ins.run(Buffer.alloc(10));
  const frames = (db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>)[0]!.log;
  t.true(frames < 10, `the next write starts the log again (${frames} frames)`);
});

test('under a steady feed the engine journal keeps its log bounded', async (t) => {
  const file = join(tempDir(t), 'j.db');
  const j = Journal.open({ file, backgroundCheckpoints: true });
  t.teardown(() => j.close());
  const big = Buffer.alloc(16 * 1024, 0x42);
  // 48 MB of rows, three times the 16 MiB bound, in groups of 10 without a pause.
  for (let g = 0; g < 300; g++) await Promise.all(Array.from({ length: 10 }, (_, i) => submit(j, entry(`L${g}-${i}`, { raw: big }))));
  const wal = statSync(`${file}-wal`).size;
  t.true(wal < 32 * 1024 * 1024, `write-ahead log ${wal} bytes`);
});

test('channel outcomes written inside a group are all stored with it, however many (they go in by the dozen)', async (t) => {
  const j = Journal.open({ file: join(tempDir(t), 'j.db') });
  t.teardown(() => j.close());
  const outcome = (n: number) => ({
    channel: n % 2 === 0 ? 'even' : 'odd',
    version: `v${n}`,
    outcome: n % 5 === 0 ? ('rejected' as const) : ('passed' as const),
    step: n % 5 === 0 ? 'filter' : null,
    code: n % 5 === 0 ? 'CHANNEL_REJECTED' : null,
    detail: n % 5 === 0 ? `no ${n}` : null,
  });
  // 37 messages in one group: two chunks of 16 and five single rows; message 3 writes two channels.
  const results = await Promise.all(
    Array.from({ length: 37 }, (_, n) =>
      submit(j, entry(`O${n}`, {
        apply: (_db, id) => {
          j.writeChannelOutcome(id, outcome(n));
          if (n === 3) j.writeChannelOutcome(id, { ...outcome(n), channel: 'extra' });
        },
      })),
    ),
  );
  t.is(j.stats.commits, 1);
  results.forEach((r, n) => {
    const expected = [outcome(n), ...(n === 3 ? [{ ...outcome(n), channel: 'extra' }] : [])].sort((a, b) => a.channel.localeCompare(b.channel));
    t.deepEqual(j.channelOutcomes(r.id), expected, `message ${n}`);
  });
  const counts = j.channelCounts();
  t.is(counts.even!.passed + counts.even!.rejected + counts.odd!.passed + counts.odd!.rejected + counts.extra!.passed, 38);
  // Outside a group the row is written at once.
  j.writeChannelOutcome(results[0]!.id, { ...outcome(0), channel: 'later' });
  t.is(j.channelOutcomes(results[0]!.id).length, 2);
});

test('channel outcomes of a group that fails to commit are not stored', async (t) => {
  const j = Journal.open({ file: join(tempDir(t), 'j.db') });
  t.teardown(() => j.close());
  j.faultInjector = () => {
    throw new Error('disk full');
  };
  const write = (_db: unknown, id: number) => j.writeChannelOutcome(id, { channel: 'c', version: 'v', outcome: 'passed', step: null, code: null, detail: null });
  await t.throwsAsync(Promise.all(Array.from({ length: 20 }, (_, n) => submit(j, entry(`X${n}`, { apply: write })))));
  j.faultInjector = null;
  const ok = await submit(j, entry('Y', { apply: write }));
  t.deepEqual(Object.keys(j.channelCounts()), ['c']);
  t.is(j.channelCounts().c!.passed, 1, 'only the later message');
  t.is(j.channelOutcomes(ok.id).length, 1);
});

test('a checkpoint worker that stops gives the checkpoints back to SQLite, and the journal goes on', async (t) => {
  const logged: string[] = [];
  const logger = { ...silentLogger, error: (m: string) => void logged.push(m) };
  const j = Journal.open({ file: join(tempDir(t), 'j.db'), backgroundCheckpoints: true, logger });
  t.teardown(() => j.close());
  t.is(j.database.pragma('wal_autocheckpoint', { simple: true }), 0);
  // The worker goes away without being asked to (as if it crashed).
  await (j as unknown as { checkpointer: { worker: { terminate(): Promise<number> } } }).checkpointer.worker.terminate();
  await submit(j, entry('AFTER'));
  t.is(j.database.pragma('wal_autocheckpoint', { simple: true }), 1000, 'SQLite checkpoints in the commits again');
  t.deepEqual(logged, ['background checkpoints stopped; commits checkpoint again']);
  t.is((await submit(j, entry('AGAIN'))).status, 'accepted');
});

test('a reader holding an old snapshot does not make the log restart wait for it', async (t) => {
  const file = join(tempDir(t), 'j.db');
  const j = Journal.open({ file, backgroundCheckpoints: true });
  t.teardown(() => j.close());
  await submit(j, entry('FIRST'));
  // Another connection (a long export, a shell) keeps a read transaction open on that snapshot.
  const reader = new Database(file, { readonly: true });
  t.teardown(() => reader.close());
  reader.exec('BEGIN');
  reader.prepare('SELECT count(*) FROM message').get();
  const big = Buffer.alloc(16 * 1024, 0x43);
  let slowest = 0;
  // 40 MB, past the 16 MiB restart bound: each RESTART finds the reader and must not wait for it.
  for (let g = 0; g < 250; g++) {
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 10 }, (_, i) => submit(j, entry(`R${g}-${i}`, { raw: big }))));
    slowest = Math.max(slowest, Date.now() - t0);
  }
  t.true(slowest < 2000, `slowest group ${slowest} ms (the busy timeout is 5,000)`);
  reader.exec('COMMIT');
});
