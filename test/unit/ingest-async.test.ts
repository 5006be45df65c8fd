// SPDX-License-Identifier: Apache-2.0
/**
 * The ingestor's asynchronous path (a channel with a script answers in a later turn): an internal
 * error after the script's answer is that message's own AE with a journal row, and the connection
 * goes on.
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

test('an internal error after a script answered still gives that message its journal row and AE; the next message is served', async (t) => {
  const dir = tempDir(t);
  const channels = join(dir, 'channels');
  mkdirSync(channels);
  writeFileSync(join(channels, 'tag.js'), "export default function (msg) { msg.set('PV1-39', 'TAGGED'); }\n");
  writeFileSync(join(channels, 'scripted.yaml'), "name: scripted\nsource:\n  types: ['ADT^A01']\ntransform:\n  - { type: script, file: tag.js }\ndestinations:\n  - type: record\n");
  const journal = Journal.open({ file: join(dir, 'tributary.db') });
  t.teardown(() => journal.close());
  const { ingestor } = createPipeline({ journal, logger: silentLogger, channels: openChannels(channels, silentLogger) });
  // A bug in the step after the script's answer (white box: the ingestor's entry builder throws once).
  const inner = ingestor as unknown as { planned: (...a: unknown[]) => unknown };
  const planned = inner.planned.bind(ingestor);
  let fail = true;
  inner.planned = (...a: unknown[]) => {
    if (fail) {
      fail = false;
      throw new Error('boom');
    }
    return planned(...a);
  };
  const broken = await ingestor.submit(Buffer.from(adtA01('BUG1')), REPLAY);
  t.is(broken.ackCode, 'AE');
  t.is(broken.reasonCode, 'INTERNAL');
  const row = journal.database.prepare("SELECT status, reason_code, control_id FROM message WHERE control_id = 'BUG1'").get();
  t.deepEqual(row, { status: 'error', reason_code: 'INTERNAL', control_id: 'BUG1' });
  const ok = await ingestor.submit(Buffer.from(adtA01('OK1')), REPLAY);
  t.is(ok.ackCode, 'AA');
});
