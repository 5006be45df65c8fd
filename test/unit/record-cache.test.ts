// SPDX-License-Identifier: Apache-2.0
/**
 * The record store's remembered rows (`enableCache`): they must never disagree with the database.
 * A message rolled back to its savepoint, a group transaction that fails to commit, and another
 * connection's commit each make the store read again; the number of rows kept is bounded.
 */
import test from 'ava';
import Database from 'better-sqlite3';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPipeline, openChannels } from '../../src/engine/engine.js';
import { DEMO_SENDER_ID } from '../../src/engine/senders.js';
import { Hl7Error, Hl7ErrorCode, Hl7Message } from '../../src/hl7/index.js';
import type { FrameMeta } from '../../src/ingest/ingest.js';
import { Journal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import { SqliteRecordStore } from '../../src/record/store.js';
import { tempDir } from '../helpers/engine.js';
import { adtA01 } from '../helpers/messages.js';
import { ORG, applyProv, hl7, msh, nhsNumber, prov, recordFixture, recordService } from '../helpers/record.js';

const REPLAY: FrameMeta = { interface: 'replay', connectionId: null, remoteAddress: null, remotePort: null, senderId: DEMO_SENDER_ID };

test('a group transaction that fails to commit leaves nothing remembered: the resent message is applied in full', async (t) => {
  const journal = Journal.open({ file: join(tempDir(t), 'tributary.db') });
  t.teardown(() => journal.close());
  const { ingestor, record } = createPipeline({ journal, logger: silentLogger });
  const db = journal.database;
  const count = (sql: string): number => (db.prepare(sql).pluck().get() as number);

  journal.faultInjector = () => {
    throw new Error('disk full');
  };
  const failed = await ingestor.submit(Buffer.from(adtA01('FAIL1', { visit: 'V-CACHE' })), REPLAY);
  t.is(failed.ackCode, 'AE');
  journal.faultInjector = null;
  t.is(count('SELECT count(*) FROM record_patient'), 0, 'the rollback took the new record with it');

  // The failed group created a patient, its identifiers and an encounter in the store's maps; had
  // they survived the rollback, this message would find "its" encounter unchanged and write nothing.
  const ok = await ingestor.submit(Buffer.from(adtA01('OK2', { visit: 'V-CACHE' })), REPLAY);
  t.is(ok.ackCode, 'AA');
  t.is(count('SELECT count(*) FROM record_patient'), 1);
  t.is(count("SELECT count(*) FROM record_identifier WHERE active = 1"), 1, "the NHS number (the local id type is not configured)");
  t.is(count("SELECT count(*) FROM record_item WHERE kind = 'encounter' AND key = 'V-CACHE'"), 1);
  t.true(record.store.cachedRows().items > 0, 'the engine pipeline keeps rows between messages');

  // And the rows it keeps now are the committed ones: a third A01 changes nothing.
  const again = await ingestor.submit(Buffer.from(adtA01('OK3', { visit: 'V-CACHE' })), REPLAY);
  t.is(again.ackCode, 'AA');
  t.is(count("SELECT version FROM record_item WHERE kind = 'encounter' AND key = 'V-CACHE'"), 1);
});

test('a message whose second record destination refuses it leaves nothing of the first remembered', async (t) => {
  const dir = tempDir(t);
  const channels = join(dir, 'channels');
  mkdirSync(channels);
  // Both take an A28 from TWICE; the second loses PID-3 on the way, so the record refuses its copy
  // (AR) after the first copy was applied, and the savepoint around both destinations undoes it.
  writeFileSync(join(channels, 'a.yaml'), "name: a\nsource:\n  types: ['ADT^A28']\ndestinations:\n  - type: record\n");
  writeFileSync(
    join(channels, 'b.yaml'),
    "name: b\nsource:\n  types: ['ADT^A28']\nfilter: { path: MSH-3, equals: TWICE }\ntransform:\n  - { type: delete, path: PID-3 }\ndestinations:\n  - type: record\n",
  );
  const journal = Journal.open({ file: join(dir, 'tributary.db') });
  t.teardown(() => journal.close());
  const { ingestor } = createPipeline({ journal, logger: silentLogger, channels: openChannels(channels, silentLogger) });
  const patients = (): number => journal.database.prepare('SELECT count(*) FROM record_patient').pluck().get() as number;
  const a28 = (app: string, id: string) =>
    Buffer.from(hl7(`MSH|^~\\&|${app}|RXX|TRIBUTARY|HUB|20240501120000||ADT^A28|${id}|P|2.4`, `PID|||${nhsNumber(77)}^^^NHS^NH||Testperson^Alex||19800101|F`));

  const refused = await ingestor.submit(a28('TWICE', 'T1'), REPLAY);
  t.is(refused.ackCode, 'AR');
  t.is(patients(), 0, 'the first destination\'s record was undone with the message');
  // Had the first copy's patient and identifier stayed in the store's maps, this A28 would find
  // them, call its demographics unchanged and store nothing.
  const ok = await ingestor.submit(a28('PAS', 'T2'), REPLAY);
  t.is(ok.ackCode, 'AA');
  t.is(patients(), 1);
});

test('a message rolled back to its savepoint (AR after writing) leaves nothing remembered', (t) => {
  const f = recordFixture(t);
  f.store.enableCache();
  const nhs = nhsNumber(41);
  let fail = true;
  const svc = recordService(f, {
    settings: { autoCreate: true },
    handlers: {
      'ORU^R01': (_msg, context) => {
        context.store.putItem({ patientId: context.patientId, kind: 'report', key: 'F1', label: null, payload: { n: 1 } }, context.provenance);
        if (fail) throw new Hl7Error('RECORD_FILLER_MISSING', Hl7ErrorCode.RequiredFieldMissing, { where: 'OBR[1]' }, { segment: 'OBR', field: 3 });
        return { summary: 'report', changed: true };
      },
    },
  });
  const oru = (id: string) => Hl7Message.parse(hl7(msh('ORU^R01', id), `PID|||${nhs}^^^NHS^NH||Testperson^Alex||19800101|F`));
  // The group transaction of the journal, with the message inside it.
  f.db.exec('BEGIN');
  t.throws(() => svc.apply(oru('R1'), { provenance: applyProv({ messageType: 'ORU^R01' }) }), { instanceOf: Hl7Error });
  f.db.exec('COMMIT');
  f.store.transactionEnded(true);
  t.is(f.db.prepare('SELECT count(*) FROM record_patient').pluck().get(), 1, 'only the fixture patient');
  t.is(f.store.findIdentifier('nhs', 'https://fhir.nhs.uk/Id/nhs-number', nhs), undefined, 'the identifier written by the AR message is not remembered');

  fail = false;
  f.db.exec('BEGIN');
  const out = svc.apply(oru('R2'), { provenance: applyProv({ messageType: 'ORU^R01', journalId: 2 }) });
  f.db.exec('COMMIT');
  f.store.transactionEnded(true);
  t.is(out.status, 'applied');
  t.is(f.store.listItems(out.patientId!, { kind: 'report' }).length, 1);
  t.is(f.store.getItem(out.patientId!, 'report', ORG, 'F1')?.version, 1);
});

test("another connection's commit is seen from the next transaction on", (t) => {
  const f = recordFixture(t);
  f.store.enableCache();
  f.store.transactionEnded(true);
  f.store.beginMessage();
  t.is(f.store.mappedLabel(ORG, 'PV1-10', 'GUM'), undefined);
  const write = { patientId: f.patientId, kind: 'allergy' as const, key: 'k1', label: null, payload: { text: 'Peanut' } };
  f.store.putItem(write, prov());
  f.store.endMessage(false);
  f.store.transactionEnded(true);

  // The admin CLI: another process, another connection, same file.
  const other = new Database(join(f.dir, 'engine.db'));
  t.teardown(() => other.close());
  const admin = new SqliteRecordStore(other);
  admin.setLabelMapping({ organisationId: ORG, source: 'PV1-10', code: 'GUM', label: 'SEXUAL_HEALTH' });
  admin.putItem({ ...write, payload: { text: 'Peanuts' } }, prov({ journalId: 2 }));

  f.store.beginMessage();
  t.is(f.store.mappedLabel(ORG, 'PV1-10', 'GUM'), 'SEXUAL_HEALTH');
  t.deepEqual(f.store.getItem(f.patientId, 'allergy', ORG, 'k1')?.payload, { text: 'Peanuts' });
  t.is(f.store.getItem(f.patientId, 'allergy', ORG, 'k1')?.version, 2);
  f.store.endMessage(false);
});

test('the rows kept are bounded; an evicted row is read again', (t) => {
  const f = recordFixture(t);
  f.store.enableCache(3);
  f.store.transactionEnded(true);
  f.store.beginMessage();
  for (let i = 0; i < 10; i++) {
    f.store.putItem({ patientId: f.patientId, kind: 'allergy', key: `k${i}`, label: null, payload: { i } }, prov());
  }
  t.is(f.store.cachedRows().items, 3);
  t.deepEqual(f.store.getItem(f.patientId, 'allergy', ORG, 'k0')?.payload, { i: 0 });
  t.is(f.store.putItem({ patientId: f.patientId, kind: 'allergy', key: 'k0', label: null, payload: { i: 0 } }, prov()).outcome, 'unchanged');
  t.is(f.store.cachedRows().items, 3);
  f.store.endMessage(false);
});

test('without enableCache nothing outlives a message, and nothing is kept outside one', (t) => {
  const f = recordFixture(t);
  f.store.beginMessage();
  f.store.putItem({ patientId: f.patientId, kind: 'allergy', key: 'k', label: null, payload: {} }, prov());
  t.true(f.store.cachedRows().items > 0, 'a read and the put that follows share rows within the message');
  f.store.endMessage(false);
  t.deepEqual(f.store.cachedRows(), { items: 0, patients: 0, identifiers: 0 });
  // The CLI reads outside any message: nothing is kept, so a later read sees other writers.
  f.store.getItem(f.patientId, 'allergy', ORG, 'k');
  f.store.getPatient(f.patientId);
  t.deepEqual(f.store.cachedRows(), { items: 0, patients: 0, identifiers: 0 });
});

test('one store per connection keeps rows; a large item is read again rather than kept', (t) => {
  const f = recordFixture(t);
  f.store.enableCache();
  t.throws(() => new SqliteRecordStore(f.db).enableCache(), { message: /another record store already keeps rows/ });
  f.store.transactionEnded(true);
  f.store.beginMessage();
  f.store.putItem({ patientId: f.patientId, kind: 'document', key: 'long', label: null, payload: { text: 'x'.repeat(100_000) } }, prov());
  f.store.putItem({ patientId: f.patientId, kind: 'document', key: 'short', label: null, payload: { text: 'x' } }, prov());
  t.is(f.store.cachedRows().items, 1);
  t.is((f.store.getItem(f.patientId, 'document', ORG, 'long')?.payload as { text: string }).text.length, 100_000);
  f.store.endMessage(false);
});
