// SPDX-License-Identifier: Apache-2.0
/** The SQLite record store: migrations, items with versions and history, replace-all per organisation, configuration. */
import test from 'ava';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { RECORD_MIGRATIONS, migrateRecord } from '../../src/record/schema.js';
import { SqliteRecordStore } from '../../src/record/store.js';
import { tempDir } from '../helpers/engine.js';
import { ORG, OTHER_ORG, prov, recordFixture } from '../helpers/record.js';

test('migrations are recorded under component "record" and re-opening changes nothing', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'engine.db');
  const db = new Database(file);
  const store = new SqliteRecordStore(db);
  const id = store.createPatient();
  db.close();
  const again = new Database(file);
  t.teardown(() => again.close());
  migrateRecord(again);
  const row = again.prepare("SELECT version FROM schema_migrations WHERE component = 'record'").get() as { version: number };
  t.is(row.version, RECORD_MIGRATIONS.length);
  t.is(new SqliteRecordStore(again).getPatient(id)?.id, id);
});

test('migrating inside a caller transaction uses a savepoint', (t) => {
  const db = new Database(':memory:');
  t.teardown(() => db.close());
  db.transaction(() => migrateRecord(db))();
  t.is((db.prepare("SELECT version FROM schema_migrations WHERE component = 'record'").get() as { version: number }).version, RECORD_MIGRATIONS.length);
});

test('putItem creates, updates with a new version, and reports unchanged content', (t) => {
  const f = recordFixture(t);
  const write = { patientId: f.patientId, kind: 'allergy' as const, key: 'k1', label: null, payload: { text: 'Peanut' } };
  const a = f.store.putItem(write, prov({ journalId: 10, controlId: 'A' }));
  t.is(a.outcome, 'created');
  t.is(a.item.version, 1);
  t.deepEqual(a.item.payload, { text: 'Peanut' });
  t.is(a.item.provenance.journalId, 10);
  t.is(a.item.provenance.organisationId, ORG);

  const same = f.store.putItem(write, prov({ journalId: 11, controlId: 'B' }));
  t.is(same.outcome, 'unchanged');
  t.is(same.item.version, 1);
  t.is(same.item.provenance.journalId, 10);

  const b = f.store.putItem({ ...write, label: 'MENTAL_HEALTH', payload: { text: 'Peanuts' } }, prov({ journalId: 12, controlId: 'C', author: 'Dr Test' }));
  t.is(b.outcome, 'updated');
  t.is(b.item.id, a.item.id);
  t.is(b.item.version, 2);
  t.is(b.item.label, 'MENTAL_HEALTH');
  t.is(b.item.provenance.author, 'Dr Test');

  const h = f.store.history(a.item.id);
  t.deepEqual(
    h.map((v) => [v.version, v.payload['text'], v.provenance.controlId, v.label]),
    [
      [1, 'Peanut', 'A', null],
      [2, 'Peanuts', 'C', 'MENTAL_HEALTH'],
    ],
  );
});

test('deleteItem hides with a new version; a second delete is a no-op', (t) => {
  const f = recordFixture(t);
  const { item } = f.store.putItem({ patientId: f.patientId, kind: 'condition', key: 'c', label: null, payload: { code: 'X' } }, prov());
  f.store.deleteItem(item.id, prov({ journalId: 2 }));
  f.store.deleteItem(item.id, prov({ journalId: 3 }));
  const got = f.store.getItem(f.patientId, 'condition', ORG, 'c')!;
  t.true(got.deleted);
  t.is(got.version, 2);
  t.is(got.provenance.journalId, 2);
  t.deepEqual(f.store.listItems(f.patientId), []);
  t.is(f.store.listItems(f.patientId, { includeDeleted: true }).length, 1);
  t.deepEqual(f.store.history(item.id).map((v) => v.deleted), [false, true]);
});

test('replaceList replaces this organisation\'s list and leaves other organisations\' untouched', (t) => {
  const f = recordFixture(t);
  const w = (key: string) => ({ patientId: f.patientId, kind: 'medication' as const, key, label: null, payload: { product: key } });
  f.store.replaceList(f.patientId, 'medication', [w('a1'), w('a2')], prov());
  f.store.replaceList(f.patientId, 'medication', [w('b1')], prov({ organisationId: OTHER_ORG }));
  f.store.replaceList(f.patientId, 'medication', [w('a2'), w('a3')], prov({ journalId: 2 }));
  const live = f.store.listItems(f.patientId, { kind: 'medication' }).map((i) => `${i.provenance.organisationId}:${i.key}`);
  t.deepEqual(live, [`${ORG}:a2`, `${OTHER_ORG}:b1`, `${ORG}:a3`]);
  t.true(f.store.getItem(f.patientId, 'medication', ORG, 'a1')!.deleted);
  t.is(f.store.getItem(f.patientId, 'medication', ORG, 'a2')!.version, 1);
  // An empty list deletes this organisation's items only.
  f.store.replaceList(f.patientId, 'medication', [], prov({ journalId: 3 }));
  t.deepEqual(f.store.listItems(f.patientId, { kind: 'medication' }).map((i) => i.key), ['b1']);
  // A key deleted earlier and sent again comes back as a new version.
  f.store.replaceList(f.patientId, 'medication', [w('a1')], prov({ journalId: 4 }));
  const a1 = f.store.getItem(f.patientId, 'medication', ORG, 'a1')!;
  t.false(a1.deleted);
  t.is(a1.version, 3);
});

test('listItems filters by kind, organisation and parent key, in insertion order', (t) => {
  const f = recordFixture(t);
  const put = (kind: 'report' | 'result', key: string, parentKey: string | null, org = ORG) =>
    f.store.putItem({ patientId: f.patientId, kind, key, parentKey, label: null, payload: {} }, prov({ organisationId: org }));
  put('report', 'R1', null);
  put('result', 'R1|a', 'R1');
  put('result', 'R2|a', 'R2');
  put('result', 'R1|b', 'R1', OTHER_ORG);
  t.deepEqual(f.store.listItems(f.patientId, { parentKey: 'R1' }).map((i) => i.key), ['R1|a', 'R1|b']);
  t.deepEqual(f.store.listItems(f.patientId, { kind: 'result', organisationId: ORG }).map((i) => i.key), ['R1|a', 'R2|a']);
  t.deepEqual(f.store.listItems(f.patientId, { kind: 'report' }).map((i) => i.key), ['R1']);
});

test('local identifier types and label mappings: add, list, remove', (t) => {
  const f = recordFixture(t, { labels: { 'AL1-3|DA': 'MENTAL_HEALTH' } });
  const a = f.store.addLocalIdType({ organisationId: ORG, authority: '*', typeCode: 'MRN' });
  f.store.addLocalIdType({ organisationId: ORG, teamId: 'team-x', authority: 'RXX', typeCode: 'PAS' });
  t.deepEqual(
    f.store.listLocalIdTypes(ORG).map((x) => [x.teamId, x.authority, x.typeCode]),
    [
      [null, '*', 'MRN'],
      ['team-x', 'RXX', 'PAS'],
    ],
  );
  t.is(t.throws(() => f.store.addLocalIdType({ organisationId: ORG, authority: '*', typeCode: 'MRN' }))?.message, 'local identifier type "*^MRN" already exists');
  t.true(f.store.removeLocalIdType(a.id));
  t.false(f.store.removeLocalIdType(a.id));
  t.is(f.store.listLocalIdTypes(ORG).length, 1);

  t.is(f.store.mappedLabel(ORG, 'AL1-3', 'DA'), 'MENTAL_HEALTH');
  f.store.setLabelMapping({ organisationId: ORG, source: 'AL1-3', code: 'DA', label: 'SOCIAL_CARE' });
  t.is(f.store.mappedLabel(ORG, 'AL1-3', 'DA'), 'SOCIAL_CARE');
  t.is(f.store.mappedLabel(OTHER_ORG, 'AL1-3', 'DA'), undefined);
  t.is(f.context().labelFor('AL1-3', 'DA'), 'SOCIAL_CARE');
  t.is(f.context().labelFor('AL1-3', 'FA'), 'GENERAL_HEALTH');
  t.true(f.store.removeLabelMapping(ORG, 'AL1-3', 'DA'));
  t.deepEqual(f.store.listLabelMappings(ORG), []);
});
