// SPDX-License-Identifier: Apache-2.0
/**
 * Outbound delivery over real loopback sockets: a fake downstream MLLP system (src/mllp framing)
 * that answers AA/AE/AR, answers late, drops the connection or is down; a real node:http server;
 * file folders; restarts of the deliverer on the same database file. Traffic only to 127.0.0.1.
 */
import test, { type ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { Outbox, type OutboundDestination } from '../../src/channels/outbox.js';
import { OutboxDeliverer, type OutboxDelivererOptions } from '../../src/interfaces/outbound.js';
import { MllpDecoder, encodeFrame } from '../../src/mllp/index.js';
import { tempDir } from '../helpers/engine.js';

const payload = (ctrl: string): string => `MSH|^~\\&|TRIB|RXX|GP|GP|20250101120000||ORU^R01|${ctrl}|P|2.5\rPID|1||123^^^RXX^MR\r`;
const ackText = (code: string, ctrl: string): string => `MSH|^~\\&|GP|GP|TRIB|RXX|20250101120001||ACK|A-${ctrl}|P|2.5\rMSA|${code}|${ctrl}|answer ${code}\r`;

/** What the fake server does with one message: answer (code, maybe for another MSH-10, maybe late), stay silent, or drop the connection. */
type Answer = { code: string; controlId?: string; delayMs?: number } | 'silent' | 'drop';

interface FakeMllp {
  port: number;
  /** MSH-10 of every message received, in order. */
  received: string[];
  connections: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

async function fakeMllp(t: ExecutionContext, answer: (ctrl: string, n: number) => Answer, port = 0): Promise<FakeMllp> {
  const sockets = new Set<net.Socket>();
  const state: FakeMllp = {
    port,
    received: [],
    connections: 0,
    stop: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
    start: () => new Promise((r) => server.listen(state.port, '127.0.0.1', () => r())),
  };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const decoder = new MllpDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const ev of decoder.push(chunk)) {
        if (ev.kind !== 'frame') continue;
        const ctrl = ev.payload.toString('utf8').split('\r')[0]!.split('|')[9]!;
        state.received.push(ctrl);
        const a = answer(ctrl, state.received.length);
        if (a === 'silent') continue;
        if (a === 'drop') {
          socket.destroy();
          continue;
        }
        const send = (): void => void (socket.destroyed || socket.write(encodeFrame(ackText(a.code, a.controlId ?? ctrl))));
        if (a.delayMs) setTimeout(send, a.delayMs);
        else send();
      }
    });
  });
  await state.start();
  state.port = (server.address() as net.AddressInfo).port;
  t.teardown(() => state.stop());
  return state;
}

/** A loopback port with nobody listening (taken, then released). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function openOutbox(t: ExecutionContext, file: string): Outbox {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  t.teardown(() => {
    if (db.open) db.close();
  });
  return new Outbox(db);
}

const mllpDest = (port: number, over: Partial<Extract<OutboundDestination, { type: 'mllp' }>> = {}): OutboundDestination => ({
  type: 'mllp',
  name: 'lab/gp',
  channel: 'lab',
  host: '127.0.0.1',
  port,
  tls: false,
  ackTimeoutMs: 1000,
  retryDelayMs: 20,
  ...over,
});

function deliverer(t: ExecutionContext, outbox: Outbox, destinations: OutboundDestination[], over: Partial<OutboxDelivererOptions> = {}): OutboxDeliverer {
  const d = new OutboxDeliverer({ outbox, destinations, backoff: { maxMs: 200, factor: 2 }, pollMs: 50, maxAttempts: 10, stopTimeoutMs: 2000, ...over });
  t.teardown(() => d.stop());
  d.start();
  return d;
}

async function until(cond: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const enqueue = (outbox: Outbox, destination: string, ctrl: string, journalId = 1): number =>
  outbox.enqueue({ destination, channel: 'lab', journalId, controlId: ctrl, payload: payload(ctrl) });

const allDone = (outbox: Outbox, destination = 'lab/gp') => (): boolean => {
  const c = outbox.counts()[destination];
  return c !== undefined && c.pending === 0;
};

test('MLLP: delivered in order over one persistent connection', async (t) => {
  const server = await fakeMllp(t, () => ({ code: 'AA' }));
  const outbox = openOutbox(t, join(tempDir(t), 'o.db'));
  const ids = ['M1', 'M2', 'M3', 'M4', 'M5'].map((c) => enqueue(outbox, 'lab/gp', c));
  deliverer(t, outbox, [mllpDest(server.port)]);
  await until(allDone(outbox), 'all delivered');
  t.deepEqual(server.received, ['M1', 'M2', 'M3', 'M4', 'M5']);
  t.is(server.connections, 1);
  for (const id of ids) t.like(outbox.get(id), { status: 'delivered', attempts: 1, lastError: null });
});

test('MLLP: AE is retried with backoff and the next message waits; AR is dead at once and does not block', async (t) => {
  const server = await fakeMllp(t, (ctrl, n) => (ctrl === 'E1' && n <= 2 ? { code: 'AE' } : ctrl === 'R1' ? { code: 'AR' } : { code: 'AA' }));
  const outbox = openOutbox(t, join(tempDir(t), 'o.db'));
  const [e1, r1, ok] = ['E1', 'R1', 'OK'].map((c) => enqueue(outbox, 'lab/gp', c));
  const lines: string[] = [];
  const log = (level: string) => (msg: string, meta?: Record<string, unknown>) => void lines.push(`${level} ${msg} ${JSON.stringify(meta ?? {})}`);
  const logger = { error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug'), bodies: false, body: () => undefined };
  deliverer(t, outbox, [mllpDest(server.port)], { logger });
  await until(allDone(outbox), 'queue drained');
  t.deepEqual(server.received, ['E1', 'E1', 'E1', 'R1', 'OK'], 'order kept under retries');
  t.like(outbox.get(e1!), { status: 'delivered', attempts: 3 });
  t.like(outbox.get(r1!), { status: 'dead', attempts: 1, lastCode: 'CHANNEL_DESTINATION_REFUSED', lastError: 'destination lab/gp refused the message: AR answer AR' });
  t.like(outbox.get(ok!), { status: 'delivered' });
  t.true(lines.some((l) => l.startsWith('warn outbound delivery failed') && l.includes('"controlId":"E1"')));
  t.true(lines.some((l) => l.startsWith('error outbound message refused') && l.includes('"code":"CHANNEL_DESTINATION_REFUSED"')));
  t.false(lines.some((l) => l.includes('PID') || l.includes('MSH') || l.includes('answer')), 'no payload or ACK text in the log');
});

test('MLLP: an ACK for another MSH-10 is a failure, answered on a fresh connection', async (t) => {
  const server = await fakeMllp(t, (_ctrl, n) => (n === 1 ? { code: 'AA', controlId: 'SOMETHING-ELSE' } : { code: 'AA' }));
  const outbox = openOutbox(t, join(tempDir(t), 'o.db'));
  const id = enqueue(outbox, 'lab/gp', 'X1');
  deliverer(t, outbox, [mllpDest(server.port)]);
  await until(allDone(outbox), 'delivered');
  t.deepEqual(server.received, ['X1', 'X1']);
  t.is(server.connections, 2);
  t.like(outbox.get(id), { status: 'delivered', attempts: 2 });
});

test('MLLP: no ACK in time and a dropped connection are retried; maxAttempts makes the item dead; retry revives it', async (t) => {
  let mode: 'bad' | 'good' = 'bad';
  const server = await fakeMllp(t, (_c, n) => (mode === 'good' ? { code: 'AA' } : n === 1 ? 'silent' : n === 2 ? 'drop' : { code: 'AE' }));
  const outbox = openOutbox(t, join(tempDir(t), 'o.db'));
  const id = enqueue(outbox, 'lab/gp', 'T1');
  const next = enqueue(outbox, 'lab/gp', 'T2');
  const d = deliverer(t, outbox, [mllpDest(server.port, { ackTimeoutMs: 300 })], { maxAttempts: 4 });
  await until(() => outbox.get(id)!.status === 'dead', 'T1 dead');
  const item = outbox.get(id)!;
  t.is(item.attempts, 4);
  t.is(item.lastCode, 'CHANNEL_DESTINATION_GAVE_UP');
  t.is(item.lastError, 'destination lab/gp: gave up after 4 attempts; last error: destination lab/gp: delivery failed: AE answer AE');
  t.true(server.received.lastIndexOf('T1') < server.received.indexOf('T2') || !server.received.includes('T2'), 'T2 waited for T1');
  t.true(server.received.filter((c) => c === 'T1').length >= 3);
  await until(() => outbox.get(next)!.status === 'dead', 'T2 dead too (still AE)');
  mode = 'good';
  t.true(outbox.retry(id));
  d.kick('lab/gp');
  await until(() => outbox.get(id)!.status === 'delivered', 'revived item delivered');
  t.is(outbox.get(next)!.status, 'dead', 'only the retried item was revived');
});

test('MLLP: down, then up, then restarted: reconnects with backoff, unreachable attempts not counted, order kept', async (t) => {
  const port = await freePort();
  const outbox = openOutbox(t, join(tempDir(t), 'o.db'));
  const a = enqueue(outbox, 'lab/gp', 'D1');
  deliverer(t, outbox, [mllpDest(port)], { maxAttempts: 2 });
  await until(() => outbox.get(a)!.lastCode === 'CHANNEL_DESTINATION_UNREACHABLE', 'unreachable recorded');
  await new Promise((r) => setTimeout(r, 300));
  t.like(outbox.get(a), { status: 'pending', attempts: 0 }, 'an outage uses up no attempts');
  t.regex(outbox.get(a)!.lastError!, /cannot connect to 127\.0\.0\.1:\d+: ECONNREFUSED/);

  const server = await fakeMllp(t, () => ({ code: 'AA' }), port);
  await until(() => outbox.get(a)!.status === 'delivered', 'delivered once up');
  t.is(outbox.get(a)!.attempts, 1);

  await server.stop();
  const later = ['D2', 'D3', 'D4'].map((c) => enqueue(outbox, 'lab/gp', c));
  await until(() => outbox.get(later[0]!)!.lastCode !== null, 'a failed attempt while down');
  await server.start();
  await until(allDone(outbox), 'delivered after the restart');
  // D2 may arrive twice (a connection lost after sending is retried); never out of order.
  t.deepEqual([...new Set(server.received)], ['D1', 'D2', 'D3', 'D4']);
  t.deepEqual(server.received.filter((c, i, all) => i === 0 || c !== all[i - 1]), ['D1', 'D2', 'D3', 'D4']);
  t.true(server.connections >= 2);
  for (const id of later) t.is(outbox.get(id)!.status, 'delivered');
});

test('destinations are independent: a down MLLP system does not delay a file destination', async (t) => {
  const dir = tempDir(t);
  const outbox = openOutbox(t, join(dir, 'o.db'));
  const folder = join(dir, 'out');
  const file: OutboundDestination = { type: 'file', name: 'lab/files', channel: 'lab', folder, extension: '.hl7' };
  enqueue(outbox, 'lab/gp', 'I1', 7);
  const f = enqueue(outbox, 'lab/files', 'I1', 7);
  deliverer(t, outbox, [mllpDest(await freePort()), file]);
  await until(() => outbox.get(f)!.status === 'delivered', 'file delivered');
  t.is(outbox.counts()['lab/gp']!.pending, 1);
  t.deepEqual(readdirSync(folder), ['7-I1.hl7'], 'no temporary file left');
  t.is(readFileSync(join(folder, '7-I1.hl7'), 'utf8'), payload('I1'));
});

test('file: a write error is retried; the file appears whole under its final name', async (t) => {
  const dir = tempDir(t);
  const outbox = openOutbox(t, join(dir, 'o.db'));
  const folder = join(dir, 'blocked');
  writeFileSync(folder, 'a file where the folder should be');
  const id = enqueue(outbox, 'lab/files', 'F/1', 9);
  deliverer(t, outbox, [{ type: 'file', name: 'lab/files', channel: 'lab', folder, extension: '.txt' }]);
  await until(() => outbox.get(id)!.attempts >= 1, 'failed attempt');
  t.like(outbox.get(id), { status: 'pending', lastCode: 'CHANNEL_DESTINATION_FAILED' });
  rmSync(folder);
  await until(() => outbox.get(id)!.status === 'delivered', 'delivered');
  t.deepEqual(readdirSync(folder), ['9-F_1.txt'], 'control id made safe; no temporary file left');
  t.is(readFileSync(join(folder, '9-F_1.txt'), 'utf8'), payload('F/1'));
});

test('HTTP: 2xx delivered, 5xx retried, 4xx dead, an ACK body is checked', async (t) => {
  const seen: Array<{ ctrl: string; type: string | undefined; auth: string | undefined }> = [];
  let failures = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const ctrl = body.split('\r')[0]!.split('|')[9]!;
      seen.push({ ctrl, type: req.headers['content-type'], auth: req.headers.authorization });
      if (ctrl === 'H5' && failures++ < 2) return void res.writeHead(503).end('busy');
      if (ctrl === 'H4') return void res.writeHead(404).end('no such endpoint');
      if (ctrl === 'HR') return void res.writeHead(200, { 'content-type': 'x-application/hl7-v2+er7' }).end(ackText('AR', ctrl));
      if (ctrl === 'HA') return void res.writeHead(200).end(ackText('AA', ctrl));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/hl7`;
  const outbox = openOutbox(t, join(tempDir(t), 'o.db'));
  const ids = ['H2', 'H5', 'H4', 'HR', 'HA'].map((c) => enqueue(outbox, 'lab/http', c));
  deliverer(t, outbox, [{ type: 'http', name: 'lab/http', channel: 'lab', url, headers: { Authorization: 'Bearer x' }, timeoutMs: 2000, retryDelayMs: 20 }]);
  await until(allDone(outbox, 'lab/http'), 'drained');
  t.deepEqual(seen.map((s) => s.ctrl), ['H2', 'H5', 'H5', 'H5', 'H4', 'HR', 'HA']);
  t.is(seen[0]!.type, 'x-application/hl7-v2+er7; charset=utf-8');
  t.is(seen[0]!.auth, 'Bearer x');
  const [h2, h5, h4, hr, ha] = ids.map((id) => outbox.get(id)!);
  t.like(h2, { status: 'delivered', attempts: 1 });
  t.like(h5, { status: 'delivered', attempts: 3 });
  t.like(h4, { status: 'dead', lastError: 'destination lab/http refused the message: HTTP 404' });
  t.like(hr, { status: 'dead', lastCode: 'CHANNEL_DESTINATION_REFUSED' });
  t.like(ha, { status: 'delivered' });
});

test('stop() lets the attempt in flight finish, or abandons it after stopTimeoutMs (sent again after a restart)', async (t) => {
  let late = true;
  const server = await fakeMllp(t, () => (late ? { code: 'AA', delayMs: 200 } : { code: 'AA' }));
  const file = join(tempDir(t), 'o.db');
  const outbox = openOutbox(t, file);
  const a = enqueue(outbox, 'lab/gp', 'S1');
  const d1 = deliverer(t, outbox, [mllpDest(server.port)]);
  await until(() => server.received.length === 1, 'S1 sent');
  await d1.stop();
  t.is(outbox.get(a)!.status, 'delivered', 'the answer arriving within stopTimeoutMs was recorded');

  const silent = await fakeMllp(t, () => 'silent');
  const b = enqueue(outbox, 'lab/gp2', 'S2');
  const d2 = deliverer(t, outbox, [mllpDest(silent.port, { name: 'lab/gp2', ackTimeoutMs: 30_000 })], { stopTimeoutMs: 100 });
  await until(() => silent.received.length === 1, 'S2 sent');
  const started = Date.now();
  await d2.stop();
  t.true(Date.now() - started < 2000, 'stop did not wait for the ACK timeout');
  t.like(outbox.get(b), { status: 'pending', attempts: 0 }, 'an abandoned attempt writes nothing');

  // Restart (new connection, new Outbox and deliverer on the same file): sent again, at least once.
  late = false;
  const again = openOutbox(t, file);
  deliverer(t, again, [mllpDest(server.port, { name: 'lab/gp2' })]);
  await until(() => again.get(b)!.status === 'delivered', 'delivered after restart');
  t.deepEqual(server.received, ['S1', 'S2']);
});

test('durability: committed items are delivered by a later deliverer; a rolled-back enqueue never is', async (t) => {
  const server = await fakeMllp(t, () => ({ code: 'AA' }));
  const file = join(tempDir(t), 'o.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const outbox = new Outbox(db);
  db.transaction(() => enqueue(outbox, 'lab/gp', 'K1'))();
  t.throws(() =>
    db.transaction(() => {
      enqueue(outbox, 'lab/gp', 'GONE');
      throw new Error('group failed');
    })(),
  );
  db.transaction(() => enqueue(outbox, 'lab/gp', 'K2'))();
  db.close();

  const reopened = openOutbox(t, file);
  deliverer(t, reopened, [mllpDest(server.port)]);
  await until(allDone(reopened), 'delivered after reopening');
  t.deepEqual(server.received, ['K1', 'K2']);
});
