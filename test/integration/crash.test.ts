// SPDX-License-Identifier: Apache-2.0
/**
 * "An ACK means durable", proven: 8 connections stream messages into a real engine process, which
 * is killed with SIGKILL mid-stream. After a restart every message that received AA is in the
 * journal exactly once, and its effect is in the record (each message admits its own visit).
 */
import test from 'ava';
import { join } from 'node:path';
import { MllpClient } from '../../src/interfaces/mllp-client.js';
import { Journal } from '../../src/journal/journal.js';
import { spawnEngine, tempDir } from '../helpers/engine.js';
import { adtA01, msa } from '../helpers/messages.js';

test('every AA survives kill -9, exactly once', async (t) => {
  const dataDir = tempDir(t);
  const engine = await spawnEngine(dataDir);
  t.teardown(() => {
    engine.proc.kill('SIGKILL');
  });
  const acked = new Set<string>();
  let sent = 0;
  let stop = false;
  const CONNECTIONS = 8;
  const WINDOW = 4;
  const stream = async (c: number): Promise<void> => {
    const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort, ackTimeoutMs: 5000 });
    let seq = 0;
    const inFlight = new Set<Promise<void>>();
    try {
      while (!stop) {
        const id = `K${c}-${seq++}`;
        sent++;
        const p: Promise<void> = client.send(adtA01(id, { visit: `V-${id}` })).then(
          (ack) => {
            const a = msa(ack);
            if (a.code === 'AA' && a.controlId === id) acked.add(id);
          },
          () => {
            stop = true; // the engine is gone
          },
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= WINDOW) await Promise.race(inFlight);
      }
      await Promise.allSettled(inFlight);
    } catch {
      // connection reset by the kill
    }
  };
  const streams = Array.from({ length: CONNECTIONS }, (_, c) => stream(c));
  // Kill once a good number of messages is through (bounded wait), in the middle of the stream.
  const until = Date.now() + 15_000;
  while (acked.size < 2000 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  engine.proc.kill('SIGKILL');
  const { signal } = await engine.exited;
  stop = true;
  await Promise.allSettled(streams);
  t.is(signal, 'SIGKILL');
  t.true(acked.size >= 500, `enough traffic before the kill (${acked.size} AA of ${sent} sent)`);

  // Restart on the same data directory: WAL recovery must work and the engine must serve again.
  const again = await spawnEngine(dataDir);
  const client = await MllpClient.connect({ host: '127.0.0.1', port: again.mllpPort });
  t.is(msa(await client.send(adtA01('AFTER-RESTART'))).code, 'AA');
  await client.close();
  again.proc.kill('SIGTERM');
  t.is((await again.exited).code, 0, 'graceful stop on SIGTERM');

  const journal = Journal.open({ file: join(dataDir, 'tributary.db'), readonly: true });
  t.teardown(() => journal.close());
  // Count rows of every status: nothing was re-sent, so any second row for an id (even one marked
  // duplicate) would mean the engine wrote a frame twice.
  const counts = new Map<string, number>();
  for (const r of journal.list({ withRaw: false })) {
    if (r.controlId === 'AFTER-RESTART') continue;
    t.is(r.status, 'accepted', `row ${r.id}`);
    counts.set(r.controlId!, (counts.get(r.controlId!) ?? 0) + 1);
  }
  const missing = [...acked].filter((id) => !counts.has(id));
  const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  t.deepEqual(missing, [], 'every AA is in the journal');
  t.deepEqual(twice, [], 'nothing twice');
  // The record committed with the journal: every AA'd message's encounter is there, once.
  const encounters = journal.database.prepare("SELECT key, control_id FROM record_item WHERE kind = 'encounter'").all() as Array<{ key: string; control_id: string }>;
  const byKey = new Map(encounters.map((e) => [e.key, e.control_id]));
  t.is(byKey.size, encounters.length);
  t.deepEqual([...acked].filter((id) => byKey.get(`V-${id}`) !== id), [], 'every AA is in the record');
  t.is(encounters.length, counts.size + 1, 'and nothing else (plus AFTER-RESTART)');
  t.log(`${acked.size} AA before the kill, ${sent} sent, ${counts.size} accepted rows after restart`);
});
