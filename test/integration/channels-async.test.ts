// SPDX-License-Identifier: Apache-2.0
/**
 * Script steps on the live path run asynchronously and in batches (src/channels/executor.ts), over
 * real MLLP into a real engine: the frames of one socket read share one round trip to the script
 * worker; a connection's ACKs and journal rows keep its order when scripted and unscripted messages
 * are mixed; a looping script costs one AE while other connections are answered, and the engine
 * thread is not blocked for the script's time limit. Serial: the engine's script worker is the
 * process's, and its counters are compared before and after.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { defaultScriptExecutor } from '../../src/channels/index.js';
import type { Engine } from '../../src/engine/engine.js';
import { MllpDecoder, encodeFrame } from '../../src/mllp/index.js';
import { inProcessEngine, tempDir } from '../helpers/engine.js';
import { adtA01, msa } from '../helpers/messages.js';

/** A01 through a script (loops when PV1-2 is X, within 1.5 s), A08 through no script; both into the record. */
async function engine(t: Parameters<typeof inProcessEngine>[0]): Promise<Engine> {
  const dir = tempDir(t);
  writeFileSync(
    join(dir, 'tag.js'),
    "export default function (msg) { if (msg.get('PV1-2') === 'X') { for (;;) {} } msg.set('PV1-39', 'TAGGED-' + msg.controlId); }\n",
  );
  writeFileSync(
    join(dir, 'scripted.yaml'),
    "name: scripted\nsource: { types: ['ADT^A01'] }\nlimits: { scriptTimeoutMs: 1500 }\ntransform:\n  - { type: script, file: tag.js }\ndestinations:\n  - type: record\n",
  );
  writeFileSync(join(dir, 'plain.yaml'), "name: plain\nsource: { types: ['ADT^A08'] }\ndestinations:\n  - type: record\n");
  return inProcessEngine(t, { channels: { dir, watch: false } });
}

const a01 = (id: string, patientClass = 'I'): string => adtA01(id, { visit: `V-${id}` }).replace('PV1|1|I|', `PV1|1|${patientClass}|`);
const a08 = (id: string): string => adtA01(id, { visit: `V-${id}` }).replace('ADT^A01^ADT_A01', 'ADT^A08^ADT_A01').replace('EVN|A01', 'EVN|A08');

/** A raw MLLP connection: write any number of frames in one write, read ACKs in order as they come. */
async function connect(t: Parameters<typeof inProcessEngine>[0], port: number): Promise<{ write(messages: string[]): void; next(): Promise<string> }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  t.teardown(() => sock.destroy());
  const decoder = new MllpDecoder();
  const acks: string[] = [];
  const waiting: Array<(ack: string) => void> = [];
  sock.on('data', (chunk) => {
    for (const ev of decoder.push(chunk)) {
      if (ev.kind !== 'frame') continue;
      const ack = ev.payload.toString('utf8');
      const w = waiting.shift();
      if (w) w(ack);
      else acks.push(ack);
    }
  });
  return {
    write: (messages) => void sock.write(Buffer.concat(messages.map((m) => encodeFrame(m)))),
    next: () => (acks.length > 0 ? Promise.resolve(acks.shift()!) : new Promise((resolve) => waiting.push(resolve))),
  };
}

test.serial('the frames of one socket read go to the script worker in one round trip', async (t) => {
  const e = await engine(t);
  const c = await connect(t, e.mllpPort);
  c.write([a01('W-0')]);
  t.is(msa(await c.next()).code, 'AA'); // the worker is up and the path warm
  const before = defaultScriptExecutor().stats();
  c.write([0, 1, 2, 3, 4].map((i) => a01(`B-${i}`)));
  const acks = [];
  for (let i = 0; i < 5; i++) acks.push(msa(await c.next()));
  t.deepEqual(acks.map((a) => [a.controlId, a.code]), [0, 1, 2, 3, 4].map((i) => [`B-${i}`, 'AA']));
  const after = defaultScriptExecutor().stats();
  t.is(after.calls - before.calls, 5);
  t.is(after.batches - before.batches, 1, 'five calls, one round trip');
});

test.serial('a connection keeps its order: ACKs and journal rows, scripted and unscripted messages mixed', async (t) => {
  const e = await engine(t);
  const c = await connect(t, e.mllpPort);
  const ids = Array.from({ length: 30 }, (_, i) => `O-${i}`);
  // Scripted A01s and unscripted A08s alternate: an A08 is ready at once, the A01 before it is not.
  c.write(ids.map((id, i) => (i % 2 === 0 ? a01(id) : a08(id))));
  const acks = [];
  for (let i = 0; i < ids.length; i++) acks.push(msa(await c.next()));
  t.deepEqual(acks.map((a) => a.controlId), ids);
  t.true(acks.every((a) => a.code === 'AA'), JSON.stringify(acks.filter((a) => a.code !== 'AA')));
  const rows = e.journal.list({ withRaw: false }).filter((r) => r.controlId?.startsWith('O-'));
  t.deepEqual(rows.map((r) => r.controlId), ids, 'journal ids in the order sent');
});

test.serial('a looping script costs one AE; other connections are answered meanwhile, and later scripted messages run on the new worker', async (t) => {
  const e = await engine(t);
  const looping = await connect(t, e.mllpPort);
  const other = await connect(t, e.mllpPort);
  other.write([a01('P-0')]);
  t.is(msa(await other.next()).code, 'AA');
  const stats0 = defaultScriptExecutor().stats();
  const sent = performance.now();
  looping.write([a01('L-1', 'X')]);
  const loopAck = looping.next().then((a) => ({ ack: msa(a), at: performance.now() - sent }));
  await new Promise((r) => setTimeout(r, 100));
  // Unscripted messages on another connection: answered while the script loops (the engine
  // thread is not waiting for the worker).
  for (let i = 0; i < 5; i++) {
    other.write([a08(`P-${i + 1}`)]);
    t.is(msa(await other.next()).code, 'AA');
  }
  const othersDoneAt = performance.now() - sent;
  // A scripted message now waits for the worker: it runs again on the replacement.
  other.write([a01('P-6')]);
  const { ack, at } = await loopAck;
  t.true(othersDoneAt < 1000, `the other connection was answered after ${othersDoneAt} ms`);
  t.is(ack.code, 'AE');
  t.regex(ack.text, /channel scripted, step transform\[0\]: script exceeded its time limit of 1500 ms/);
  t.true(at >= 1499, `the looping message was answered after ${at} ms`);
  t.is(msa(await other.next()).code, 'AA');
  const stats1 = defaultScriptExecutor().stats();
  t.is(stats1.stoppedForTime - stats0.stoppedForTime, 1);
  const rows = e.journal.list({ withRaw: false });
  t.deepEqual(
    rows.filter((r) => r.controlId === 'L-1' || r.controlId === 'P-6').map((r) => [r.controlId, r.status, r.reasonCode]),
    [
      ['L-1', 'error', 'CHANNEL_SCRIPT_TIMEOUT'],
      ['P-6', 'accepted', null],
    ],
  );
});
