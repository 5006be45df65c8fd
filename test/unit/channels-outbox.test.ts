// SPDX-License-Identifier: Apache-2.0
/** The outbox on a real SQLite file: order per destination, state changes, the journal's transaction, the CLI. */
import test from 'ava';
import Database from 'better-sqlite3';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { Outbox, destinationKey, migrateOutbox, outboundDestinations, type EnqueueInput } from '../../src/channels/outbox.js';
import type { Destination } from '../../src/channels/schema.js';
import { runOutboxList, runOutboxRetry } from '../../src/cli/outbox.js';
import { databasePath } from '../../src/engine/engine.js';
import { isTributaryError } from '../../src/errors.js';
import { judgeAck, readMsa, backoffDelay } from '../../src/interfaces/outbound.js';
import { Journal, type CommitResult, type JournalEntry } from '../../src/journal/journal.js';
import { tempDir } from '../helpers/engine.js';

function openDb(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  return db;
}

function setup(t: import('ava').ExecutionContext, now?: () => number): { db: Database.Database; outbox: Outbox; file: string } {
  const file = join(tempDir(t), 'o.db');
  const db = openDb(file);
  t.teardown(() => db.close());
  return { db, outbox: new Outbox(db, { now }), file };
}

const item = (destination: string, n: number): EnqueueInput & { payload: string } => ({
  destination,
  channel: 'ch',
  journalId: n,
  controlId: `C${n}`,
  payload: `MSH|^~\\&|A|B|||20250101||ORU^R01|C${n}|P|2.5\r`,
});

const fail = { code: 'CHANNEL_DESTINATION_FAILED', message: 'destination d: delivery failed: AE' };

test('migration is recorded per component and idempotent', (t) => {
  const { db } = setup(t);
  migrateOutbox(db);
  new Outbox(db);
  t.deepEqual(db.prepare("SELECT version FROM schema_migrations WHERE component = 'outbox'").get(), { version: 1 });
});

test('next() is the oldest pending item of its destination, due or not; destinations are independent', (t) => {
  let clock = 1000;
  const { outbox } = setup(t, () => clock);
  const a1 = outbox.enqueue(item('a', 1));
  const b1 = outbox.enqueue(item('b', 2));
  const a2 = outbox.enqueue(item('a', 3));
  t.is(outbox.next('a')!.id, a1);
  t.is(outbox.next('a')!.payload.toString(), item('a', 1).payload);
  t.is(outbox.next('b')!.id, b1);
  t.is(outbox.next('c'), null);

  // A failed item stays at the head while it waits: a2 must not overtake it.
  t.true(outbox.markFailed(a1, fail, 99_999));
  const head = outbox.next('a')!;
  t.is(head.id, a1);
  t.is(head.attempts, 1);
  t.is(head.nextAttemptAt, 99_999);
  t.is(head.lastCode, fail.code);
  // Not reached: no attempt used up.
  outbox.markFailed(a1, { code: 'CHANNEL_DESTINATION_UNREACHABLE', message: 'x' }, 100_000, { countAttempt: false });
  t.is(outbox.next('a')!.attempts, 1);

  clock = 2000;
  t.true(outbox.markDelivered(a1));
  t.false(outbox.markDelivered(a1), 'only pending items change');
  const done = outbox.get(a1)!;
  t.is(done.status, 'delivered');
  t.is(done.attempts, 2);
  t.is(done.deliveredAt, 2000);
  t.is(done.lastError, null);
  t.is(done.payload.length, 0, 'no payload unless asked');
  t.is(outbox.get(a1, { payload: true })!.payload.toString(), item('a', 1).payload);
  t.is(outbox.next('a')!.id, a2);
});

test('dead items are skipped, and retry() puts one back in its place', (t) => {
  let clock = 1000;
  const { outbox } = setup(t, () => clock);
  const ids = [1, 2, 3].map((n) => outbox.enqueue(item('d', n)));
  t.true(outbox.markDead(ids[0]!, { code: 'CHANNEL_DESTINATION_REFUSED', message: 'refused: AR' }));
  t.is(outbox.next('d')!.id, ids[1]!);
  t.true(outbox.markDelivered(ids[1]!));
  t.false(outbox.retry(ids[1]!), 'only dead items are retried');
  clock = 5000;
  t.true(outbox.retry(ids[0]!));
  const revived = outbox.next('d')!;
  t.is(revived.id, ids[0]!, 'the revived item is older than the pending ones');
  t.is(revived.attempts, 0);
  t.is(revived.nextAttemptAt, 5000);
  t.is(revived.deadAt, null);
  t.is(revived.lastCode, 'CHANNEL_DESTINATION_REFUSED', 'the last error stays visible');
});

test('list, counts and purge', (t) => {
  let clock = 1000;
  const { outbox } = setup(t, () => clock);
  const ids = [1, 2, 3, 4].map((n) => outbox.enqueue(item(n % 2 ? 'x' : 'y', n)));
  outbox.markDelivered(ids[0]!);
  outbox.markDead(ids[1]!, fail);
  t.deepEqual(outbox.counts(), { x: { pending: 1, delivered: 1, dead: 0 }, y: { pending: 1, delivered: 0, dead: 1 } });
  t.deepEqual(outbox.list({ destination: 'x' }).map((i) => i.id), [ids[0], ids[2]]);
  t.deepEqual(outbox.list({ status: 'dead' }).map((i) => i.id), [ids[1]]);
  t.deepEqual(outbox.list({ limit: 2, afterId: ids[0] }).map((i) => i.id), [ids[1], ids[2]]);
  t.is(outbox.purgeDelivered(1000), 0);
  clock = 3000;
  t.is(outbox.purgeDelivered(2000), 1);
  t.is(outbox.get(ids[0]!), null);
});

test('enqueue belongs to the caller\'s transaction: rolled back with it, durable after its commit', (t) => {
  const { db, outbox, file } = setup(t);
  t.throws(() =>
    db.transaction(() => {
      outbox.enqueue(item('r', 1));
      throw new Error('group failed');
    })(),
  );
  t.is(outbox.next('r'), null);
  db.transaction(() => outbox.enqueue(item('r', 2)))();
  const again = openDb(file);
  t.teardown(() => again.close());
  t.is(new Outbox(again).next('r')!.controlId, 'C2');
});

test('enqueued from JournalEntry.apply: committed with the message, gone with a failed group', async (t) => {
  const file = join(tempDir(t), 'j.db');
  const journal = Journal.open({ file });
  t.teardown(() => journal.close());
  const outbox = new Outbox(journal.database);
  const entry = (controlId: string, apply: JournalEntry['apply']): JournalEntry => ({
    receivedAt: Date.now(), interface: 'mllp', connectionId: 'c1', remoteAddress: '127.0.0.1', remotePort: 5000,
    raw: Buffer.from(`MSH|^~\\&|A|B|||20250101||ORU^R01|${controlId}|P|2.5\r`), charset: null, sender: 'A|B', controlId,
    messageType: 'ORU^R01', status: 'accepted', reasonCode: null, reason: null, errorLocation: null, ackCode: 'AA', ack: 'ACK', apply,
  });
  const submit = (e: JournalEntry): Promise<CommitResult> => new Promise((res, rej) => journal.submit(e, (err, r) => (err ? rej(err) : res(r!))));
  const enqueueFor = (controlId: string) => (_db: Database.Database, id: number) => {
    outbox.enqueue({ destination: 'j', channel: 'ch', journalId: id, controlId, payload: `MSH|^~\\&|X|Y|||20250101||ORU^R01|${controlId}|P|2.5\r` });
  };

  const ok = await submit(entry('OK1', enqueueFor('OK1')));
  t.is(outbox.next('j')!.journalId, ok.id);

  journal.faultInjector = () => {
    throw new Error('disk full');
  };
  await t.throwsAsync(submit(entry('NO2', enqueueFor('NO2'))));
  journal.faultInjector = null;
  t.deepEqual(outbox.list().map((i) => i.controlId), ['OK1'], 'only the committed message was enqueued');
});

test('destination keys are per channel; record destinations are not outbound', (t) => {
  const dests: Destination[] = [
    { type: 'record' },
    { type: 'mllp', name: 'gp', host: 'h', port: 1, tls: false, ackTimeoutMs: 1, retryDelayMs: 0 },
    { type: 'file', folder: 'out', extension: '.hl7' },
  ];
  t.is(destinationKey('lab', dests[1]!, 1), 'lab/gp');
  const out = outboundDestinations([{ name: 'lab', definition: { destinations: dests } }]);
  t.deepEqual(out.map((d) => [d.name, d.channel, d.type]), [['lab/gp', 'lab', 'mllp'], ['lab/file-3', 'lab', 'file']]);
});

test('ACK judgement: MSA-2 must match; AA/CA delivered, AR/CR dead, AE/CE and the rest retried', (t) => {
  const ack = (code: string, ctrl: string): string => `MSH|^~\\&|R|R|T|T|20250101||ACK|A1|P|2.5\rMSA|${code}|${ctrl}|some text\r`;
  t.deepEqual(readMsa(ack('AE', 'C1')), { code: 'AE', controlId: 'C1', text: 'some text' });
  t.is(readMsa('MSH#^~\\&#R\nMSA#CA#Z9')!.controlId, 'Z9', 'other delimiters and line ends');
  t.is(readMsa('hello'), null);
  t.is(judgeAck(ack('AA', 'C1'), 'C1', 'd').kind, 'delivered');
  t.is(judgeAck(ack('CA', 'C1'), 'C1', 'd').kind, 'delivered');
  for (const code of ['AR', 'CR']) {
    const r = judgeAck(ack(code, 'C1'), 'C1', 'd');
    t.true(r.kind === 'dead' && r.error.code === 'CHANNEL_DESTINATION_REFUSED');
  }
  for (const code of ['AE', 'CE', 'XX']) {
    const r = judgeAck(ack(code, 'C1'), 'C1', 'd');
    t.true(r.kind === 'retry' && r.counted && r.error.code === 'CHANNEL_DESTINATION_FAILED');
  }
  const mismatch = judgeAck(ack('AA', 'C2'), 'C1', 'd');
  t.true(mismatch.kind === 'retry' && mismatch.error.code === 'CHANNEL_DESTINATION_ACK_MISMATCH');
  t.true(judgeAck('not an ack', 'C1', 'd').kind === 'retry');
});

test('backoff doubles up to its cap and never goes below 10 ms', (t) => {
  const b = { initialMs: 100, maxMs: 1000, factor: 2 };
  t.deepEqual([1, 2, 3, 4, 5, 50, 5000].map((n) => backoffDelay(n, b)), [100, 200, 400, 800, 1000, 1000, 1000]);
  t.is(backoffDelay(3, { initialMs: 0, maxMs: 1000, factor: 2 }), 10);
});

// --- CLI ---------------------------------------------------------------------------------------

function io(): { io: { stdout: PassThrough; stderr: PassThrough }; out: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let text = '';
  stdout.on('data', (d: Buffer) => (text += d.toString()));
  return { io: { stdout, stderr }, out: () => text };
}

function dataDir(t: import('ava').ExecutionContext): { data: string; outbox: Outbox } {
  const data = tempDir(t);
  const db = openDb(databasePath(data));
  t.teardown(() => db.close());
  return { data, outbox: new Outbox(db) };
}

test('outbox list: table and JSON lines, filtered, never the payload', (t) => {
  const { data, outbox } = dataDir(t);
  const ids = [1, 2, 3].map((n) => outbox.enqueue(item(n === 3 ? 'ch/file' : 'ch/gp', n)));
  outbox.markDead(ids[1]!, { code: 'CHANNEL_DESTINATION_REFUSED', message: 'destination ch/gp refused the message: AR' });
  const a = io();
  t.is(runOutboxList({ data, json: true }, a.io), 0);
  const lines = a.out().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(lines.map((l) => l.id), ids);
  t.deepEqual(Object.keys(lines[0]!), ['id', 'destination', 'channel', 'journalId', 'controlId', 'status', 'attempts', 'nextAttemptAt', 'lastCode', 'lastError', 'createdAt', 'deliveredAt', 'deadAt']);
  t.false(a.out().includes('MSH'), 'no payload');
  const b = io();
  runOutboxList({ data, json: false, status: 'dead', destination: 'ch/gp' }, b.io);
  t.regex(b.out(), /^ID\s+DESTINATION/);
  t.regex(b.out(), /\n2\s+ch\/gp\s+2\s+C2\s+dead\s+1\s+\S+\s+destination ch\/gp refused the message: AR\n$/);
  const c = io();
  runOutboxList({ data, json: false, status: 'delivered' }, c.io);
  t.true(c.out().endsWith('(no outbox items)\n'));
});

test('outbox retry: ids all or none, --all-dead per destination, one-line errors', (t) => {
  const { data, outbox } = dataDir(t);
  const ids = [1, 2, 3, 4].map((n) => outbox.enqueue(item(n === 4 ? 'other' : 'ch/gp', n)));
  for (const id of [ids[0]!, ids[1]!, ids[3]!]) outbox.markDead(id, fail);
  const a = io();
  const notDead = t.throws(() => runOutboxRetry({ data, ids: [ids[0]!, ids[2]!], allDead: false }, a.io));
  t.true(isTributaryError(notDead, 'OUTBOX_NOT_DEAD'));
  t.is(notDead!.message, `outbox item ${ids[2]} is pending; only dead items can be retried`);
  t.is(outbox.get(ids[0]!)!.status, 'dead', 'nothing changed');
  t.true(isTributaryError(t.throws(() => runOutboxRetry({ data, ids: [999], allDead: false }, a.io)), 'OUTBOX_NOT_FOUND'));
  t.true(isTributaryError(t.throws(() => runOutboxRetry({ data, ids: [], allDead: false }, a.io)), 'CLI_USAGE'));
  t.is(runOutboxRetry({ data, ids: [ids[0]!], allDead: false }, a.io), 0);
  t.is(a.out(), `retried 1 item: ${ids[0]}\n`);
  const b = io();
  t.is(runOutboxRetry({ data, ids: [], allDead: true, destination: 'ch/gp' }, b.io), 0);
  t.is(b.out(), `retried 1 item: ${ids[1]}\n`);
  t.is(outbox.get(ids[3]!)!.status, 'dead', 'other destinations untouched');
});

test('outbox CLI on a data directory without a database, or without the outbox table', (t) => {
  const a = io();
  t.true(isTributaryError(t.throws(() => runOutboxList({ data: tempDir(t), json: false }, a.io)), 'JOURNAL_OPEN_FAILED'));
  const data = tempDir(t);
  openDb(databasePath(data)).close();
  t.is(runOutboxList({ data, json: false }, a.io), 0);
  t.true(a.out().endsWith('(no outbox items)\n'));
  t.true(isTributaryError(t.throws(() => runOutboxRetry({ data, ids: [1], allDead: false }, a.io)), 'OUTBOX_NOT_FOUND'));
});
