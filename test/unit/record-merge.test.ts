// SPDX-License-Identifier: Apache-2.0
/** Merges (A40, A34, A35, A18) and unmerge. */
import test from 'ava';
import { Hl7Error, Hl7Message } from '../../src/hl7/index.js';
import { unmerge } from '../../src/record/merge.js';
import type { MessageHandler } from '../../src/record/types.js';
import { ORG, applyProv, hl7, msh, nhsNumber, recordFixture, recordService } from '../helpers/record.js';

const SURVIVOR = nhsNumber(20);
const OLD = nhsNumber(21);
const oruHandler: MessageHandler = (m, c) => {
  c.store.putItem({ patientId: c.patientId, kind: 'report', key: m.get('OBR-3') ?? '', label: null, payload: {} }, c.provenance);
  return { summary: 'report', changed: true };
};

function setup(t: Parameters<typeof recordFixture>[0]) {
  const f = recordFixture(t);
  f.store.addLocalIdType({ organisationId: ORG, authority: 'RXX', typeCode: 'MRN' });
  const svc = recordService(f, { handlers: { 'ORU^R01': oruHandler } });
  const s = svc.apply(Hl7Message.parse(hl7(msh('ADT^A28', 'S'), `PID|||${SURVIVOR}^^^NHS^NH~H1^^^RXX^MRN||Survivor^Sam`, 'AL1|1|DA|PEN')), { provenance: applyProv({ journalId: 1 }) });
  const o = svc.apply(Hl7Message.parse(hl7(msh('ADT^A28', 'O'), `PID|||${OLD}^^^NHS^NH~H2^^^RXX^MRN||Duplicate^Sam`, 'AL1|1|DA|PEN', 'AL1|2|FA|EGG')), { provenance: applyProv({ journalId: 2 }) });
  return { f, svc, survivor: s.patientId!, old: o.patientId! };
}

const a40 = (mrg: string, control = 'M1') => Hl7Message.parse(hl7(msh('ADT^A40', control, '20240601120000'), `PID|||${SURVIVOR}^^^NHS^NH`, `MRG|${mrg}`));

test('A40 moves the old record\'s items to the survivor; a later message for the old id lands on the survivor', (t) => {
  const { f, svc, survivor, old } = setup(t);
  const out = svc.apply(a40('H2^^^RXX^MRN'), { provenance: applyProv({ journalId: 3, controlId: 'M1', messageType: 'ADT^A40' }) });
  t.deepEqual(out, { status: 'applied', patientId: survivor, summary: 'merged 1 record' });
  t.is(f.store.getPatient(old)!.mergedInto, survivor);
  // EGG moved; the old PEN stays behind (the survivor has its own PEN from the same organisation).
  t.deepEqual(f.store.listItems(survivor, { kind: 'allergy' }).map((x) => x.key).sort(), ['EGG|', 'PEN|']);
  t.deepEqual(f.store.listItems(old, { kind: 'allergy' }).map((x) => x.key), ['PEN|']);
  const [m] = f.store.listMerges(survivor);
  t.deepEqual([m!.survivorId, m!.mergedId, m!.provenance.journalId, m!.provenance.controlId, m!.movedItemIds.length], [survivor, old, 3, 'M1', 1]);
  // The old NHS number and the old MRN both find the survivor.
  const r1 = svc.apply(Hl7Message.parse(hl7(msh('ORU^R01', 'R1'), `PID|||${OLD}^^^NHS^NH`, 'OBR|1||F1')), { provenance: applyProv({ journalId: 4 }) });
  const r2 = svc.apply(Hl7Message.parse(hl7(msh('ORU^R01', 'R2'), 'PID|||H2^^^RXX^MRN', 'OBR|1||F2')), { provenance: applyProv({ journalId: 5 }) });
  t.is(r1.patientId, survivor);
  // Local id only, on a record holding an NHS number: review, with the survivor as the candidate.
  t.deepEqual([r2.status, r2.patientId], ['review', survivor]);
  t.deepEqual(f.store.listItems(survivor, { kind: 'report' }).map((x) => x.key), ['F1']);
  // The same merge again changes nothing.
  t.is(svc.apply(a40('H2^^^RXX^MRN', 'M2'), { provenance: applyProv({ journalId: 6 }) }).status, 'skipped');
});

test('A34, A35 and A18 merge the same way; MRG-1 may be an NHS number', (t) => {
  for (const type of ['ADT^A34', 'ADT^A35', 'ADT^A18']) {
    const { f, svc, survivor, old } = setup(t);
    const out = svc.apply(Hl7Message.parse(hl7(msh(type, 'M'), `PID|||H1^^^RXX^MRN`, `MRG|${OLD}^^^NHS^NH`)), { provenance: applyProv({ journalId: 3 }) });
    t.is(out.status, 'applied', type);
    t.is(f.store.getPatient(old)!.mergedInto, survivor, type);
  }
});

test('merge errors: unknown old id, unknown survivor, same record, missing MRG', (t) => {
  const { svc, survivor } = setup(t);
  const p = { provenance: applyProv({ journalId: 3 }) };
  t.is((t.throws(() => svc.apply(a40('H9^^^RXX^MRN'), p)) as Hl7Error).code, 'RECORD_MERGE_UNKNOWN');
  t.is((t.throws(() => svc.apply(a40(`${SURVIVOR}^^^NHS^NH`), p)) as Hl7Error).code, 'RECORD_MERGE_SAME');
  t.is((t.throws(() => svc.apply(a40('H2^^^RXX^MRN~123^^^NHS^NH'), p)) as Hl7Error).code, 'RECORD_INVALID_NHS_NUMBER');
  const noSurvivor = Hl7Message.parse(hl7(msh('ADT^A40'), `PID|||${nhsNumber(29)}^^^NHS^NH`, 'MRG|H2^^^RXX^MRN'));
  t.is((t.throws(() => svc.apply(noSurvivor, p)) as Hl7Error).code, 'RECORD_UNKNOWN_PATIENT');
  const noMrg = Hl7Message.parse(hl7(msh('ADT^A40'), `PID|||${SURVIVOR}^^^NHS^NH`));
  const e = t.throws(() => svc.apply(noMrg, p)) as Hl7Error;
  t.is(e.code, 'HL7_REQUIRED_FIELD');
  t.is(e.message, 'required field MRG-1 is missing');
  t.is(survivor.length, 36);
});

test('unmerge moves back what moved and restores the old identifier', (t) => {
  const { f, svc, survivor, old } = setup(t);
  svc.apply(a40('H2^^^RXX^MRN'), { provenance: applyProv({ journalId: 3 }) });
  const m = unmerge(f.store, { patientId: old, by: 'admin', reason: 'wrong person' });
  t.deepEqual([m.unmergedBy, m.unmergeReason, typeof m.unmergedAt], ['admin', 'wrong person', 'string']);
  t.is(f.store.getPatient(old)!.mergedInto, null);
  t.deepEqual(f.store.listItems(old, { kind: 'allergy' }).map((x) => x.key).sort(), ['EGG|', 'PEN|']);
  t.deepEqual(f.store.listItems(survivor, { kind: 'allergy' }).map((x) => x.key), ['PEN|']);
  const r = svc.apply(Hl7Message.parse(hl7(msh('ORU^R01', 'R3'), 'PID|||H2^^^RXX^MRN', 'OBR|1||F3')), { provenance: applyProv({ journalId: 4 }) });
  t.is(r.patientId, old);
  t.is((t.throws(() => unmerge(f.store, { mergeId: m.id, by: 'admin', reason: 'again' })) as Error & { code: string }).code, 'RECORD_NOT_MERGED');
  t.is((t.throws(() => unmerge(f.store, { mergeId: 999, by: 'admin', reason: 'x' })) as Error & { code: string }).code, 'ADMIN_NOT_FOUND');
});
