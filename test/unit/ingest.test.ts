// SPDX-License-Identifier: Apache-2.0
/**
 * The Ingestor answers every frame exactly once and never throws, whatever the bytes: found by
 * review, a delimiter set without an escape character once made the ACK builder throw and stop
 * the engine.
 */
import test from 'ava';
import fc from 'fast-check';
import { join } from 'node:path';
import { Ingestor, type IngestResult } from '../../src/ingest/ingest.js';
import { Journal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import { tempDir } from '../helpers/engine.js';
import { msa } from '../helpers/messages.js';

const META = { interface: 'mllp', connectionId: 'c1', remoteAddress: '127.0.0.1', remotePort: 1 };

function setup(t: import('ava').ExecutionContext, maxBatchMessages?: number) {
  const journal = Journal.open({ file: join(tempDir(t), 'j.db'), maxBatchMessages });
  t.teardown(() => journal.close());
  return { journal, ingestor: new Ingestor({ journal, logger: silentLogger }) };
}

const submit = (ingestor: Ingestor, bytes: Buffer): Promise<IngestResult> =>
  new Promise((resolve) => ingestor.submitFrame(bytes, META, resolve));

test('no escape character and an error text full of delimiters: AR, not a crash', async (t) => {
  const { ingestor, journal } = setup(t);
  // MSH-2 "-~&": '-' is the component separator and there is no escape character, while every
  // error location ("MSH-10") contains '-'.
  const r = await submit(ingestor, Buffer.from('MSH|-~&|A|B|||20250101||ADT-A01||P|2.5\rPID|1\r'));
  t.is(r.ackCode, 'AR');
  t.is(msa(r.ack).code, 'AR');
  t.regex(r.ack, /^MSH\|-~&\|TRIBUTARY/);
  t.is(journal.list()[0]!.reasonCode, 'HL7_REQUIRED_FIELD');
});

test('a batch frame whose failing message has delimiters in MSH-10 and no escape character', async (t) => {
  const { ingestor, journal } = setup(t);
  const frame = 'MSH|^~&|A|B|||20250101||ADT^A01|X1|P|2.5\rPID|1\rMSH|^~&|A|B|||20250101|||Y&Z|P|2.5\rPID|1\r';
  const r = await submit(ingestor, Buffer.from(frame));
  t.is(r.ackCode, 'AR');
  t.regex(msa(r.ack).text, /message 2 of 2/);
  t.deepEqual(journal.list().map((x) => x.status), ['accepted', 'rejected']);
});

test('a batch frame is never split across two commits', async (t) => {
  const { ingestor, journal } = setup(t, 2);
  const msgs = Array.from({ length: 5 }, (_, i) => `MSH|^~\\&|A|B|||20250101||ADT^A01|S${i}|P|2.5\rPID|1\r`).join('');
  const r = await submit(ingestor, Buffer.from(msgs));
  t.is(r.ackCode, 'AA');
  t.is(journal.stats.commits, 1, 'five rows, maxBatchMessages 2, still one commit');
  t.is(journal.list().length, 5);
});

test('property: any bytes get exactly one answer, never AA unless journaled, and never a throw', async (t) => {
  const { ingestor, journal } = setup(t);
  const header = fc.record({
    fs: fc.constantFrom('|', '^', '#', '-', '!'),
    enc: fc.constantFrom('^~\\&', '^~&', '-~&', '^~\\&#', '^~}', '~^', '||||', ''),
    ctl: fc.string({ maxLength: 12 }),
    type: fc.constantFrom('ADT^A01', '', 'ORU^R01', 'A|B&C'),
  });
  const frame = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.tuple(header, fc.array(fc.string({ maxLength: 40 }), { maxLength: 4 })).map(([h, segs]) =>
      Buffer.from(`MSH${h.fs}${h.enc}${h.fs}A${h.fs}B${h.fs}${h.fs}${h.fs}20250101${h.fs}${h.fs}${h.type}${h.fs}${h.ctl}${h.fs}P${h.fs}2.5\r${segs.join('\r')}`),
    ),
  );
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(frame, async (bytes) => {
      runs++;
      let calls = 0;
      const before = journal.countByStatus().accepted;
      const r = await new Promise<IngestResult>((resolve) => {
        ingestor.submitFrame(bytes, META, (res) => {
          calls++;
          resolve(res);
        });
      });
      await new Promise((res) => setImmediate(res));
      if (calls !== 1) return false;
      if (!/^MSH/.test(r.ack) || !/\rMSA./.test(r.ack)) return false;
      if (r.ackCode === 'AA' && journal.countByStatus().accepted !== before + 1 && r.status !== 'duplicate') return false;
      return true;
    }),
    { numRuns: 300, seed: 20261125 },
  );
  t.is(runs, 300);
});
