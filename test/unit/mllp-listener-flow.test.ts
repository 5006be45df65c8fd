// SPDX-License-Identifier: Apache-2.0
/**
 * Backpressure of the MLLP listener, driven through a typed fake socket: loopback TCP buffers are
 * too large (autotuned to tens of MB) to make `write()` return false reliably in a test.
 */
import test from 'ava';
import { Duplex } from 'node:stream';
import type net from 'node:net';
import { join } from 'node:path';
import { Ingestor } from '../../src/ingest/ingest.js';
import { MllpListener } from '../../src/interfaces/mllp-listener.js';
import { Journal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import { MllpPayloadDecoder, encodeFrame } from '../../src/mllp/index.js';
import { tempDir } from '../helpers/engine.js';
import { adtA01, msa } from '../helpers/messages.js';

/** A socket whose outgoing side is "full" until the test says otherwise. */
class FakeSocket extends Duplex {
  remoteAddress = '127.0.0.9';
  remotePort = 40000;
  full = false;
  readonly written: Buffer[] = [];
  constructor() {
    super({ allowHalfOpen: true });
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.written.push(chunk);
    cb();
  }
  override write(chunk: Buffer | string): boolean {
    super.write(chunk);
    return !this.full;
  }
  setNoDelay(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  /** Bytes from the sender arrive. */
  receive(bytes: Buffer): void {
    this.push(bytes);
  }
}

async function setup(t: import('ava').ExecutionContext, maxInFlightPerConnection: number) {
  const journal = Journal.open({ file: join(tempDir(t), 'j.db') });
  const listener = await MllpListener.listen({
    host: '127.0.0.1',
    port: 0,
    ingestor: new Ingestor({ journal, logger: silentLogger }),
    journal,
    logger: silentLogger,
    maxFrameBytes: 1 << 20,
    oversizePrefixBytes: 1024,
    idleTimeoutMs: 0,
    maxConnections: 10,
    maxConnectionsPerIp: 10,
    maxInFlightPerConnection,
  });
  t.teardown(async () => {
    await listener.close(0);
    journal.close();
  });
  const sock = new FakeSocket();
  listener.adopt(sock as unknown as net.Socket);
  return { journal, listener, sock };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('reading pauses while ACKs cannot be written and resumes on drain, ACKs in order', async (t) => {
  const { listener, sock } = await setup(t, 64);
  sock.full = true;
  sock.receive(Buffer.concat([encodeFrame(adtA01('W1')), encodeFrame(adtA01('W2'))]));
  await tick();
  await tick();
  t.is(listener.pausedConnections, 1, 'paused: write() returned false');
  t.true(sock.isPaused());
  sock.full = false;
  sock.emit('drain');
  t.is(listener.pausedConnections, 0, 'resumed on drain');
  const dec = new MllpPayloadDecoder();
  const acks = sock.written.flatMap((b) => dec.push(b));
  t.deepEqual(acks.map((a) => msa(a).controlId), ['W1', 'W2']);
});

test('reading pauses while too many frames wait for their ACK', async (t) => {
  const { listener, sock, journal } = await setup(t, 4);
  sock.receive(Buffer.concat(Array.from({ length: 6 }, (_, i) => encodeFrame(adtA01(`F${i}`)))));
  await new Promise((r) => process.nextTick(r));
  t.is(journal.pendingCount, 6, 'frames read, not yet committed');
  t.is(listener.pausedConnections, 1, 'over maxInFlightPerConnection: paused');
  // Answered once the group has committed (a few turns; not a fixed number of them).
  for (let i = 0; i < 500 && listener.pausedConnections !== 0; i++) await new Promise((r) => setTimeout(r, 2));
  t.is(listener.pausedConnections, 0, 'answered: reading again');
  const dec = new MllpPayloadDecoder();
  t.is(sock.written.flatMap((b) => dec.push(b)).length, 6);
});
