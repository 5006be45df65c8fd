// SPDX-License-Identifier: Apache-2.0
/**
 * The record half of `tributary channels test`: a case whose expectation names `ack` or `record`
 * goes through the whole path — the first-run demo sender, this channel alone, the record — in a
 * throw-away data directory, and the ACK code and the resulting record items are compared with
 * what the case expects. A difference is reported as one readable line per item or field.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { DEMO_SENDER_ID } from './senders.js';
import { createPipeline, databasePath } from './engine.js';
import { ChannelRegistry, caseFiles, readExpectation, type Channel, type ChannelTestResult } from '../channels/index.js';
import { errorMessage } from '../errors.js';
import { readMsa } from '../interfaces/outbound.js';
import { Journal } from '../journal/journal.js';
import { silentLogger } from '../log.js';
import { SqliteRecordStore, type RecordItem } from '../record/index.js';

/** Run the `ack`/`record` expectations of every case of these channels. */
export async function runRecordExpectations(channels: readonly Channel[]): Promise<ChannelTestResult[]> {
  const results: ChannelTestResult[] = [];
  for (const channel of channels) {
    for (const file of caseFiles(channel)) {
      const expect = readExpectation(file);
      if (expect.ack === undefined && expect.record === undefined) continue;
      const problems: string[] = [];
      try {
        await runCase(channel, file, expect, problems);
      } catch (e) {
        problems.push(errorMessage(e));
      }
      results.push({ channel: channel.name, file: relative(process.cwd(), file), ok: problems.length === 0, problems });
    }
  }
  return results;
}

async function runCase(channel: Channel, file: string, expect: ReturnType<typeof readExpectation>, problems: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-channel-test-'));
  const journal = Journal.open({ file: databasePath(dir) });
  try {
    // A channel under test runs whether or not it is enabled (examples ship disabled).
    const registry = ChannelRegistry.fixed([{ ...channel, enabled: true } as Channel]);
    const { ingestor } = createPipeline({ journal, logger: silentLogger, channels: registry });
    const result = await ingestor.submit(readFileSync(file), {
      interface: expect.sender?.interface ?? 'mllp',
      connectionId: null,
      remoteAddress: '127.0.0.1',
      remotePort: null,
      senderId: DEMO_SENDER_ID,
    });
    if (expect.ack !== undefined && result.ackCode !== expect.ack) {
      const text = readMsa(result.ack)?.text ?? '';
      problems.push(`ack: expected ${expect.ack}, got ${result.ackCode}${text ? ` (${text})` : ''}`);
    }
    const items = journal.database.prepare('SELECT id FROM record_item ORDER BY id').pluck().all() as number[];
    const store = new SqliteRecordStore(journal.database);
    const all = items.map((id) => store.getItemById(id)!);
    for (const want of expect.record ?? []) {
      const matching = all.filter((i) => i.kind === want.kind && (want.key === undefined || i.key === want.key));
      const what = `record ${want.kind}${want.key !== undefined ? ` ${want.key}` : ''}`;
      if (want.count !== undefined && matching.length !== want.count) problems.push(`${what}: expected ${want.count} item(s), got ${matching.length}`);
      if (matching.length === 0) {
        if (want.count === undefined || want.count > 0) problems.push(`${what}: expected an item, the record has none (it has: ${describe(all)})`);
        continue;
      }
      const item = matching[0]!;
      if (want.label !== undefined && item.label !== want.label) problems.push(`${what}: label expected ${String(want.label)}, got ${String(item.label)}`);
      for (const [path, value] of Object.entries(want.payload ?? {})) {
        const got = (item.payload as Record<string, unknown>)[path];
        if (JSON.stringify(got) !== JSON.stringify(value)) problems.push(`${what}: payload.${path} expected ${JSON.stringify(value)}, got ${JSON.stringify(got ?? null)}`);
      }
    }
  } finally {
    journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function describe(items: RecordItem[]): string {
  return items.length === 0 ? 'nothing' : items.map((i) => `${i.kind} ${i.key}`).join(', ');
}
