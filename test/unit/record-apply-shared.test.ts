// SPDX-License-Identifier: Apache-2.0
/**
 * What the record's apply path shares instead of building it again per message: the frozen local
 * identifier types, the provenance copy, and the handler context class. Each is checked against
 * the behaviour it replaces (fresh rows, the spread, the closures).
 */
import test from 'ava';
import { Hl7Message } from '../../src/hl7/index.js';
import { RecordService } from '../../src/record/service.js';
import type { Provenance } from '../../src/record/types.js';
import { DEFAULT_SETTINGS, ORG, applyProv, hl7, msh, nhsNumber, prov, recordFixture } from '../helpers/record.js';

test('localIdTypesOf is listLocalIdTypes of the organisation, frozen; the list stays a copy to change', (t) => {
  const f = recordFixture(t);
  f.store.enableCache();
  f.store.addLocalIdType({ organisationId: ORG, authority: 'RXX', typeCode: 'MR' });
  f.store.addLocalIdType({ organisationId: ORG, teamId: 'team-1', authority: '*', typeCode: 'PI' });
  f.store.addLocalIdType({ organisationId: 'org-b', authority: 'RYY', typeCode: 'MR' });
  const shared = f.store.localIdTypesOf(ORG);
  t.deepEqual([...shared], f.store.listLocalIdTypes(ORG));
  t.is(f.store.localIdTypesOf(ORG), shared);
  t.true(Object.isFrozen(shared) && shared.every((x) => Object.isFrozen(x)));
  const listed = f.store.listLocalIdTypes(ORG);
  listed[0]!.authority = 'changed';
  t.is(f.store.localIdTypesOf(ORG)[0]!.authority, 'RXX');
  f.store.addLocalIdType({ organisationId: ORG, authority: 'RZZ', typeCode: 'MR' });
  t.deepEqual(f.store.localIdTypesOf(ORG).map((x) => x.authority), ['RXX', '*', 'RZZ']);
});

test("the provenance handed to the record has the input's keys in its order, then author null", (t) => {
  const f = recordFixture(t);
  const svc = new RecordService({ store: f.store, attachments: f.attachments, handlers: {}, settingsFor: () => DEFAULT_SETTINGS });
  const p = applyProv();
  const shuffled = Object.fromEntries(Object.entries(p).reverse()) as typeof p;
  const withAuthor = { ...p, author: 'Dr Sent' } as typeof p;
  for (const [i, input] of [p, shuffled, withAuthor].entries()) {
    const out = svc.apply(Hl7Message.parse(hl7(msh('ADT^A28', `M${i}`), `PID|||${nhsNumber(600 + i)}^^^NHS^NH||Testperson^Alex||19800101|F`)), { provenance: input });
    const stored = f.db.prepare('SELECT provenance FROM record_patient_version WHERE patient_id = ?').pluck().get(out.patientId) as string;
    t.is(stored, JSON.stringify({ ...input, author: null }));
  }
});

test('the handler context labels as the closures it replaces did', (t) => {
  const f = recordFixture(t, { labels: { 'PV1-10|GUM': 'SEXUAL_HEALTH' } });
  f.store.addRadiologyApplication({ organisationId: ORG, application: 'RIS' });
  const svc = new RecordService({ store: f.store, attachments: f.attachments, handlers: {}, settingsFor: () => DEFAULT_SETTINGS });
  const provenance: Provenance = prov();
  for (const settings of [DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS, defaultLabel: null }]) {
    for (const label of [undefined, 'MENTAL_HEALTH'] as const) {
      const context = svc.contextFor(f.patientId, provenance, settings, label);
      // The closure of the earlier contextFor, as the reference.
      const reference = (code: string | undefined) =>
        label ?? (code === undefined || code === '' ? undefined : f.store.mappedLabel(ORG, 'PV1-10', code)) ?? settings.defaultLabel;
      for (const code of [undefined, '', 'GUM', 'MED']) t.is(context.labelFor('PV1-10', code), reference(code), `${label} ${code}`);
      t.deepEqual(context.settings, label === undefined ? settings : { ...settings, defaultLabel: label });
      t.deepEqual([context.patientId, context.provenance, context.store, context.isRadiologyApplication?.('ris')], [f.patientId, provenance, f.store, true]);
      t.false(context.isRadiologyApplication!('LAB'));
    }
  }
});
