// SPDX-License-Identifier: Apache-2.0
/** The MLLP listener and the ACK contract over real loopback sockets, against a real SQLite file. */
import test from 'ava';
import net from 'node:net';
import { MllpClient } from '../../src/interfaces/mllp-client.js';
import { Journal } from '../../src/journal/journal.js';
import { MllpPayloadDecoder, encodeFrame } from '../../src/mllp/index.js';
import { inProcessEngine, tempDir } from '../helpers/engine.js';
import { addSender } from '../helpers/senders.js';
import { adtA01, msa } from '../helpers/messages.js';
import { makePki } from '../helpers/tls.js';

const VT = Buffer.from([0x0b]);
const FSCR = Buffer.from([0x1c, 0x0d]);

/** A raw socket that collects ACK payloads. */
async function rawClient(port: number): Promise<{ sock: net.Socket; acks: Buffer[]; closed: Promise<void>; waitAcks(n: number, ms?: number): Promise<Buffer[]> }> {
  const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const dec = new MllpPayloadDecoder();
  const acks: Buffer[] = [];
  let wake: (() => void) | null = null;
  sock.on('data', (c: Buffer) => {
    acks.push(...dec.push(c));
    wake?.();
  });
  sock.on('error', () => {});
  // Like a real sender: when the engine ends the connection, end ours too.
  sock.on('end', () => sock.end());
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  return {
    sock,
    acks,
    closed,
    async waitAcks(n, ms = 5000) {
      const until = Date.now() + ms;
      while (acks.length < n && Date.now() < until) {
        await Promise.race([new Promise<void>((r) => (wake = r)), new Promise((r) => setTimeout(r, 50)), closed]);
      }
      return acks;
    },
  };
}

test('a valid message gets AA only after its journal row exists, raw bytes kept exactly', async (t) => {
  const engine = await inProcessEngine(t);
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort });
  t.teardown(() => client.close());
  const text = adtA01('AA-0001');
  const ack = msa(await client.send(text));
  t.is(ack.code, 'AA');
  t.is(ack.controlId, 'AA-0001');
  const rows = engine.journal.list();
  t.is(rows.length, 1);
  const row = rows[0]!;
  t.is(row.status, 'accepted');
  t.is(row.controlId, 'AA-0001');
  t.is(row.messageType, 'ADT^A01');
  t.is(row.remoteAddress, '127.0.0.1');
  t.is(row.interface, 'mllp');
  t.is(row.ackCode, 'AA');
  t.true(row.raw.equals(Buffer.from(text, 'utf8')));
  t.regex(row.ack ?? '', /^MSH\|\^~\\&\|TRIBUTARY\|TRIBUTARY\|PAS\|RXX\|/);
});

test('pipelined frames in one write are answered in order', async (t) => {
  const engine = await inProcessEngine(t);
  const c = await rawClient(engine.mllpPort);
  t.teardown(() => c.sock.destroy());
  const ids = Array.from({ length: 50 }, (_, i) => `PIPE-${i}`);
  c.sock.write(Buffer.concat(ids.map((id) => encodeFrame(adtA01(id)))));
  const acks = await c.waitAcks(50);
  t.deepEqual(acks.map((a) => msa(a).controlId), ids);
  t.true(acks.every((a) => msa(a).code === 'AA'));
  t.is(engine.journal.countByStatus().accepted, 50);
});

test('junk, split frames and FS without CR are handled (the framing probe cases)', async (t) => {
  const engine = await inProcessEngine(t);
  const c = await rawClient(engine.mllpPort);
  t.teardown(() => c.sock.destroy());
  const f1 = encodeFrame(adtA01('PROBE-1'));
  c.sock.write(Buffer.concat([Buffer.from('junk\r\n'), f1.subarray(0, 10)]));
  await new Promise((r) => setTimeout(r, 30));
  c.sock.write(Buffer.concat([f1.subarray(10, f1.length - 1)])); // everything but the final CR
  await new Promise((r) => setTimeout(r, 30));
  c.sock.write(Buffer.concat([f1.subarray(f1.length - 1), Buffer.from('\r\n'), encodeFrame(adtA01('PROBE-2'))]));
  // FS not followed by CR, then straight into the next frame
  c.sock.write(Buffer.concat([VT, Buffer.from(adtA01('PROBE-3')), Buffer.from([0x1c]), encodeFrame(adtA01('PROBE-4'))]));
  const acks = await c.waitAcks(4);
  t.deepEqual(acks.map((a) => `${msa(a).code}:${msa(a).controlId}`), ['AA:PROBE-1', 'AA:PROBE-2', 'AA:PROBE-3', 'AA:PROBE-4']);
  c.sock.end();
  await c.closed;
  await new Promise((r) => setTimeout(r, 50));
  engine.journal.flush();
  const stray = engine.journal.listEvents().find((e) => e.kind === 'stray-bytes');
  t.is(stray?.code, 'MLLP_STRAY_BYTES');
  t.regex(stray?.detail ?? '', /^8 bytes outside any frame/, 'junk\r\n (6) and \r\n (2)');
});

test('garbage is answered AR with a reason, journaled, and the connection survives', async (t) => {
  const engine = await inProcessEngine(t);
  const c = await rawClient(engine.mllpPort);
  t.teardown(() => c.sock.destroy());
  c.sock.write(encodeFrame('HELLO WORLD'));
  c.sock.write(Buffer.concat([VT, FSCR])); // empty frame
  c.sock.write(encodeFrame('MSH|^~\\&|A|B\rPID|1\r')); // no MSH-9, no MSH-10
  c.sock.write(encodeFrame('MSH|^~\\&|A|B|C|D|20250101||ADT^A01|\rPID|1\r')); // MSH-9 but empty MSH-10
  c.sock.write(encodeFrame(adtA01('AFTER-GARBAGE')));
  const acks = (await c.waitAcks(5)).map((a) => msa(a));
  t.deepEqual(acks.map((a) => a.code), ['AR', 'AR', 'AR', 'AR', 'AA']);
  t.is(acks[0]!.controlId, '', 'no invented control id');
  t.regex(acks[2]!.text, /MSH-9/);
  t.regex(acks[3]!.text, /MSH-10/);
  const rows = engine.journal.list();
  t.is(rows.length, 5);
  t.deepEqual(rows.map((r) => r.status), ['rejected', 'rejected', 'rejected', 'rejected', 'accepted']);
  t.is(rows[0]!.reasonCode, 'HL7_NO_MSH');
  t.is(rows[1]!.reasonCode, 'HL7_EMPTY');
  t.is(rows[2]!.reasonCode, 'HL7_REQUIRED_FIELD');
  t.is(rows[3]!.errorLocation, 'MSH-10');
  t.is(rows[0]!.raw.toString(), 'HELLO WORLD');
});

test('a duplicate (same sender + MSH-10) gets the first ACK again and is marked duplicate', async (t) => {
  const engine = await inProcessEngine(t);
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort });
  t.teardown(() => client.close());
  const lab = addSender(engine, { id: 'lab', organisationId: 'lab-org', credential: true });
  const first = await client.send(adtA01('DUP-1'));
  const second = await client.send(adtA01('DUP-1', { facility: 'OTHER' })); // same sender (the demo one): MSH-4 does not matter
  const other = await client.send(adtA01('DUP-1', { security: lab.msh8 })); // another (authenticated) sender: not a duplicate
  t.true(first.equals(second), 'identical ACK bytes');
  t.is(msa(other).code, 'AA');
  t.false(first.equals(other));
  const rows = engine.journal.list();
  t.deepEqual(rows.map((r) => r.status), ['accepted', 'duplicate', 'accepted']);
  t.is(rows[1]!.duplicateOf, rows[0]!.id);
  t.is(rows[1]!.reasonCode, 'JOURNAL_DUPLICATE');
  t.deepEqual(rows.map((r) => r.sender), ['demo-loopback', 'demo-loopback', 'lab']);
});

test('duplicates inside one group commit are caught too', async (t) => {
  const engine = await inProcessEngine(t);
  const c = await rawClient(engine.mllpPort);
  t.teardown(() => c.sock.destroy());
  c.sock.write(Buffer.concat([encodeFrame(adtA01('SAME')), encodeFrame(adtA01('SAME')), encodeFrame(adtA01('SAME'))]));
  const acks = await c.waitAcks(3);
  t.true(acks[0]!.equals(acks[1]!) && acks[1]!.equals(acks[2]!));
  const rows = engine.journal.list();
  t.deepEqual(rows.map((r) => r.status), ['accepted', 'duplicate', 'duplicate']);
  t.is(rows[2]!.duplicateOf, rows[0]!.id);
});

test('an oversize frame is answered AR, journaled with its size, and the connection is closed', async (t) => {
  const engine = await inProcessEngine(t, { mllp: { maxFrameBytes: 4096 } });
  const c = await rawClient(engine.mllpPort);
  const big = adtA01('BIG-1') + 'NTE|1||' + 'x'.repeat(10_000) + '\r';
  c.sock.write(encodeFrame(big));
  await c.closed;
  t.is(c.acks.length, 1);
  const a = msa(c.acks[0]!);
  t.is(a.code, 'AR');
  t.is(a.controlId, 'BIG-1', 'MSA-2 salvaged from the prefix');
  t.regex(a.text, /maxFrameBytes/);
  const row = engine.journal.list()[0]!;
  t.is(row.status, 'rejected');
  t.is(row.reasonCode, 'MLLP_FRAME_TOO_LARGE');
  t.true(row.rawSize > 4096);
  t.true(row.raw.length <= 4096);
});

test('a sender that half-closes right after its frame still gets the ACK', async (t) => {
  const engine = await inProcessEngine(t);
  const c = await rawClient(engine.mllpPort);
  c.sock.end(encodeFrame(adtA01('HALF-1')));
  await c.closed;
  t.is(c.acks.length, 1);
  t.is(msa(c.acks[0]!).code, 'AA');
});

test('a storage failure answers AE, never AA, and the engine keeps serving', async (t) => {
  const engine = await inProcessEngine(t);
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort });
  t.teardown(() => client.close());
  engine.journal.faultInjector = () => {
    throw new Error('disk I/O error');
  };
  const failed = msa(await client.send(adtA01('FAIL-1')));
  t.is(failed.code, 'AE');
  t.is(failed.controlId, 'FAIL-1');
  t.regex(failed.text, /journal/);
  t.is(engine.journal.list().length, 0, 'nothing half-written');
  engine.journal.faultInjector = null;
  const ok = msa(await client.send(adtA01('FAIL-1')));
  t.is(ok.code, 'AA', 'the same MSH-10 is processed anew after an AE');
});

test('connections over the per-address limit are refused at accept and recorded', async (t) => {
  const engine = await inProcessEngine(t, { mllp: { maxConnectionsPerIp: 2 } });
  const a = await rawClient(engine.mllpPort);
  const b = await rawClient(engine.mllpPort);
  const c = await rawClient(engine.mllpPort);
  await c.closed;
  a.sock.write(encodeFrame(adtA01('LIMIT-1')));
  t.is(msa((await a.waitAcks(1))[0]!).code, 'AA', 'the others keep working');
  a.sock.destroy();
  b.sock.destroy();
  engine.journal.flush();
  const ev = engine.journal.listEvents();
  t.true(ev.some((e) => e.kind === 'connection-refused' && e.code === 'MLLP_TOO_MANY_CONNECTIONS' && e.remoteAddress === '127.0.0.1'));
});

test('an idle connection is closed after idleTimeoutMs and the event recorded', async (t) => {
  const engine = await inProcessEngine(t, { mllp: { idleTimeoutMs: 200 } });
  // Timed from before the connect: the engine's idle timer starts at its accept.
  const started = Date.now();
  const c = await rawClient(engine.mllpPort);
  await c.closed;
  t.true(Date.now() - started >= 150);
  await new Promise((r) => setTimeout(r, 20));
  engine.journal.flush();
  t.true(engine.journal.listEvents().some((e) => e.kind === 'idle-timeout' && e.code === 'MLLP_IDLE_TIMEOUT'));
});

test('graceful close answers every frame already read, then ends the connection', async (t) => {
  const engine = await inProcessEngine(t);
  const c = await rawClient(engine.mllpPort);
  // Start closing while frames are read but not yet committed: from inside the 10th submit.
  const journal = engine.journal;
  const submitAll = journal.submitAll.bind(journal);
  let submitted = 0;
  let closing: Promise<void> | undefined;
  journal.submitAll = (entries, cbs) => {
    submitAll(entries, cbs);
    submitted += entries.length;
    if (submitted === 10) closing = engine.close();
  };
  c.sock.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => encodeFrame(adtA01(`SHUT-${i}`)))));
  await c.closed;
  await closing;
  t.true(submitted >= 10);
  t.is(c.acks.length, submitted, 'every frame read was answered');
  t.true(c.acks.every((a, i) => msa(a).controlId === `SHUT-${i}` && msa(a).code === 'AA'));
  const after = Journal.open({ file: journal.file, readonly: true });
  t.teardown(() => after.close());
  t.is(after.countByStatus().accepted, submitted, 'and every AA is committed');
});

test('TLS listener with a required client certificate', async (t) => {
  const pki = makePki(tempDir(t));
  const engine = await inProcessEngine(t, {
    mllp: { tls: { keyFile: pki.serverKey, certFile: pki.serverCert, caFile: pki.caCert, requireClientCert: true } },
  });
  const tlsBase = { ca: pki.read(pki.caCert), servername: undefined as unknown as string };
  const withCert = await MllpClient.connect({
    host: '127.0.0.1',
    port: engine.mllpPort,
    tls: { ...tlsBase, cert: pki.read(pki.clientCert), key: pki.read(pki.clientKey) },
  });
  const ok = msa(await withCert.send(adtA01('TLS-1')));
  await withCert.close();
  t.is(ok.code, 'AA');
  t.is(engine.journal.list()[0]!.interface, 'mllps');
  // Without a client certificate the handshake (or the first exchange) fails.
  const noCert = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort, tls: tlsBase, ackTimeoutMs: 3000 }).catch((e: Error) => e);
  if (noCert instanceof MllpClient) {
    await t.throwsAsync(noCert.send(adtA01('TLS-2')));
  } else {
    t.regex(noCert.message, /cannot connect|closed/);
  }
  t.is(engine.journal.list().length, 1, 'nothing from the refused client');
});

test('a 5 MB message is framed, journaled in parts and acknowledged; its bytes come back exactly', async (t) => {
  const engine = await inProcessEngine(t);
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort });
  t.teardown(() => client.close());
  const pdf = Buffer.alloc(3_900_000, 'JVBERi0xLjQK').toString(); // base64-looking payload
  const text = adtA01('BIG-5MB').replace(/\r$/, '') + `\rOBX|1|ED|PDF^Report||^AP^PDF^Base64^${pdf}||||||F\r`;
  t.true(text.length > 3_900_000);
  t.is(msa(await client.send(text)).code, 'AA');
  const row = engine.journal.list()[0]!;
  t.is(row.rawSize, Buffer.byteLength(text));
  t.true(row.raw.equals(Buffer.from(text)));
});

test('shutdown does not wait for a TLS client stuck before its handshake', async (t) => {
  const pki = makePki(tempDir(t));
  const engine = await inProcessEngine(t, {
    mllp: { shutdownTimeoutMs: 500, tls: { keyFile: pki.serverKey, certFile: pki.serverCert } },
  });
  const stuck = net.connect({ host: '127.0.0.1', port: engine.mllpPort }); // plain TCP, never says hello
  stuck.on('error', () => {});
  await new Promise<void>((r) => stuck.once('connect', () => r()));
  const started = Date.now();
  await engine.close();
  t.true(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`);
  stuck.destroy();
});

test('the client does not pair later ACKs with the wrong message after a send it could not frame', async (t) => {
  const engine = await inProcessEngine(t);
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort, ackTimeoutMs: 3000 });
  t.teardown(() => client.close());
  const first = client.send(adtA01('ORDER-1'));
  const bad = client.send(adtA01('ORDER-2') + '\x0b');
  const third = client.send(adtA01('ORDER-3'));
  t.is(msa(await first).controlId, 'ORDER-1');
  await t.throwsAsync(bad, { message: /control byte/ });
  t.is(msa(await third).controlId, 'ORDER-3');
});
