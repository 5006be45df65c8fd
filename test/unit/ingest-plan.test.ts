// SPDX-License-Identifier: Apache-2.0
/**
 * Which channels decide the ACK (`deliversToRecord` in src/ingest/plan.ts, docs/channels.md): when
 * a message matches channels that deliver to the record and channels that do not, only the record
 * channels decide its ACK code and its acknowledgment mode; the others' rejections are journaled
 * as their outcomes and stop only their own destinations.
 */
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPipeline, openChannels } from '../../src/engine/engine.js';
import { DEMO_SENDER_ID } from '../../src/engine/senders.js';
import type { FrameMeta } from '../../src/ingest/ingest.js';
import { Journal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import { tempDir } from '../helpers/engine.js';
import { adtA01 } from '../helpers/messages.js';

const REPLAY: FrameMeta = { interface: 'replay', connectionId: null, remoteAddress: null, remotePort: null, senderId: DEMO_SENDER_ID };

test('only the channels that deliver to the record decide the ACK; an outbound channel\'s rejection does not', async (t) => {
  const dir = tempDir(t);
  const channels = join(dir, 'channels');
  mkdirSync(channels);
  // First in folder order: an outbound channel (A01 and A08) in enhanced mode that refuses MSH-10 REJ-*.
  writeFileSync(
    join(channels, 'a-forward.yaml'),
    [
      'name: a-forward',
      'source:',
      "  types: ['ADT^A01', 'ADT^A08']",
      'transform:',
      '  - type: reject',
      '    reason: not for the GP',
      "    when: { path: MSH-10, matches: '^REJ' }",
      'destinations:',
      '  - type: mllp',
      '    name: gp',
      '    host: 127.0.0.1',
      '    port: 9',
      'ack:',
      '  mode: enhanced',
      '',
    ].join('\n'),
  );
  // Second: the record channel (A01 only), in original mode, that passes everything.
  writeFileSync(join(channels, 'b-record.yaml'), "name: b-record\nsource:\n  types: ['ADT^A01']\ndestinations:\n  - type: record\nack:\n  mode: original\n");
  const journal = Journal.open({ file: join(dir, 'tributary.db') });
  t.teardown(() => journal.close());
  const { ingestor, outbox } = createPipeline({ journal, logger: silentLogger, channels: openChannels(channels, silentLogger) });
  const outcomes = (id: number) => journal.channelOutcomes(id).map((o) => [o.channel, o.outcome]);

  // The outbound channel rejects: the record channel passed, so AA (not AR, nor CR in a-forward's mode).
  const rejected = await ingestor.submit(Buffer.from(adtA01('REJ-1', { ackModes: 'AL|NE' })), REPLAY);
  t.is(rejected.ackCode, 'AA');
  t.is(rejected.status, 'accepted');
  t.deepEqual(outcomes(rejected.ids[0]!), [['a-forward', 'rejected'], ['b-record', 'passed']]);
  t.is(journal.database.prepare("SELECT count(*) FROM record_item WHERE control_id = 'REJ-1'").pluck().get(), 1, 'in the record');
  t.is(outbox.list().length, 0, 'nothing for the channel that rejected it');

  // Both pass: the record channel's original mode answers (AA, not CA), and both destinations get it.
  const passed = await ingestor.submit(Buffer.from(adtA01('OK-1', { ackModes: 'AL|NE', visit: 'V2' })), REPLAY);
  t.is(passed.ackCode, 'AA');
  t.deepEqual(outcomes(passed.ids[0]!), [['a-forward', 'passed'], ['b-record', 'passed']]);
  t.deepEqual(outbox.list().map((o) => [o.destination, o.controlId]), [['a-forward/gp', 'OK-1']]);

  // A message that no record channel takes (A08) is decided by the others: CR, in a-forward's mode.
  const a08 = adtA01('REJ-2', { ackModes: 'AL|NE', visit: 'V3' }).replace('ADT^A01^ADT_A01', 'ADT^A08^ADT_A01').replace('EVN|A01', 'EVN|A08');
  const onlyOutbound = await ingestor.submit(Buffer.from(a08), REPLAY);
  t.is(onlyOutbound.ackCode, 'CR');
  t.is(onlyOutbound.reasonCode, 'CHANNEL_REJECTED');
  t.deepEqual(outcomes(onlyOutbound.ids[0]!), [['a-forward', 'rejected']]);
});
