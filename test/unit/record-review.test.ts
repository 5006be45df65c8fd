// SPDX-License-Identifier: Apache-2.0
/** The review queue: which messages go there (accepted, not applied), and applying or dismissing them. */
import test from 'ava';
import { Hl7Message } from '../../src/hl7/index.js';
import { ReviewQueue } from '../../src/record/review.js';
import type { MessageHandler } from '../../src/record/types.js';
import { ORG, applyProv, hl7, msh, nhsNumber, recordFixture, recordService } from '../helpers/record.js';

const NHS = nhsNumber(30);
const OTHER_NHS = nhsNumber(31);
const reports: MessageHandler = (m, c) => {
  c.store.putItem({ patientId: c.patientId, kind: 'report', key: m.get('OBR-3') ?? '', label: null, payload: {} }, c.provenance);
  return { summary: 'report', changed: true };
};

function setup(t: Parameters<typeof recordFixture>[0], nhsStatusCheck = false) {
  const f = recordFixture(t);
  f.store.addLocalIdType({ organisationId: ORG, authority: 'RXX', typeCode: 'MRN' });
  const svc = recordService(f, { settings: { nhsStatusCheck }, handlers: { 'ORU^R01': reports } });
  const a = svc.apply(Hl7Message.parse(hl7(msh('ADT^A28'), `PID|||${NHS}^^^NHS^NH~H1^^^RXX^MRN||Testperson^Alex`)), { provenance: applyProv() });
  return { f, svc, queue: new ReviewQueue({ service: svc }), patientId: a.patientId! };
}
const oru = (pid: string, filler = 'F1') => Hl7Message.parse(hl7(msh('ORU^R01', filler), pid, `OBR|1||${filler}`));

test('NHS status 02/03 with status checking goes to review, not applied', (t) => {
  const { f, svc, queue, patientId } = setup(t, true);
  const out = svc.apply(oru(`PID|||${NHS}^^^NHS^NH{status:02}`), { provenance: applyProv({ journalId: 2 }) });
  t.deepEqual(out, { status: 'review', summary: 'queued for review: nhs-status', reviewId: 1, patientId });
  t.deepEqual(f.store.listItems(patientId, { kind: 'report' }), []);
  const [item] = queue.list();
  t.deepEqual([item!.reason, item!.detail, item!.candidates, item!.provenance.journalId, item!.status], ['nhs-status', 'NHS number status 02', [patientId], 2, 'open']);
  // Without status checking the same message applies.
  t.is(recordService(f, { handlers: { 'ORU^R01': reports } }).apply(oru(`PID|||${NHS}^^^NHS^NH{status:03}`, 'F2'), { provenance: applyProv() }).status, 'applied');
});

test('a local id matching a record with a different NHS number goes to review; applied as sent it changes the NHS number', (t) => {
  const { f, svc, queue, patientId } = setup(t);
  const out = svc.apply(oru(`PID|||H1^^^RXX^MRN~${OTHER_NHS}^^^NHS^NH`), { provenance: applyProv({ journalId: 2 }) });
  t.is(out.status, 'review');
  t.is(queue.get(out.reviewId!)!.reason, 'nhs-mismatch');
  const { review, outcome } = queue.resolve(out.reviewId!, { action: 'apply', by: 'admin', note: 'confirmed new NHS number' });
  t.deepEqual([review.status, review.resolvedBy, review.resolutionNote, review.resolvedPatientId], ['applied', 'admin', 'confirmed new NHS number', patientId]);
  t.is(outcome!.status, 'applied');
  t.deepEqual(f.store.identifiers(patientId).filter((x) => x.kind === 'nhs').map((x) => x.value), [OTHER_NHS]);
  t.deepEqual(f.store.listItems(patientId, { kind: 'report' }).map((x) => [x.key, x.provenance.journalId]), [['F1', 2]]);
  t.is((t.throws(() => queue.resolve(out.reviewId!, { action: 'dismiss', by: 'admin', note: 'x' })) as Error).message, 'review item 1 is already applied');
});

test('a local-id-only message matching a record that holds an NHS number goes to review; dismiss applies nothing', (t) => {
  const { f, svc, queue, patientId } = setup(t);
  const out = svc.apply(oru('PID|||H1^^^RXX^MRN'), { provenance: applyProv({ journalId: 2 }) });
  t.is(out.status, 'review');
  t.is(queue.get(out.reviewId!)!.reason, 'local-id-only');
  const { review } = queue.resolve(out.reviewId!, { action: 'dismiss', by: 'admin', note: 'not ours' });
  t.deepEqual([review.status, review.resolvedBy, review.resolvedPatientId], ['dismissed', 'admin', null]);
  t.deepEqual(f.store.listItems(patientId, { kind: 'report' }), []);
  t.deepEqual(queue.list(), []);
  t.is(queue.list({ status: 'dismissed' }).length, 1);
});

test('identifiers matching two records go to review; applied to a chosen record', (t) => {
  const { f, svc, queue } = setup(t);
  const other = svc.apply(Hl7Message.parse(hl7(msh('ADT^A28', 'B'), `PID|||${OTHER_NHS}^^^NHS^NH~H2^^^RXX^MRN||Otherperson^Bo`)), { provenance: applyProv() });
  const out = svc.apply(oru(`PID|||${NHS}^^^NHS^NH~H2^^^RXX^MRN`), { provenance: applyProv({ journalId: 3 }) });
  t.is(out.status, 'review');
  t.is(queue.get(out.reviewId!)!.candidates.length, 2);
  const { outcome } = queue.resolve(out.reviewId!, { action: 'apply', patientId: other.patientId!, by: 'admin', note: 'it is Bo' });
  t.is(outcome!.patientId, other.patientId);
  t.deepEqual(f.store.listItems(other.patientId!, { kind: 'report' }).map((x) => x.key), ['F1']);
  // The chosen record keeps its own NHS number.
  t.deepEqual(f.store.identifiers(other.patientId!).filter((x) => x.kind === 'nhs').map((x) => x.value), [OTHER_NHS]);
});
