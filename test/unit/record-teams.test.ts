// SPDX-License-Identifier: Apache-2.0
/**
 * Team membership and ZTM (PKB's custom segment of A28/A31): ZTM-1 adds the patient to teams by
 * alias (the default team's alias required), ZTM-2 removes (a team the patient is not in: nothing);
 * every alias a team of the acting organisation; a team in both fields or an unknown alias is an AR
 * that changes nothing. A new record joins the organisation's Patient Record Team. Merges move
 * memberships, unmerges give them back. Synthetic patients only.
 */
import test from 'ava';
import { recordSummary, formatSummary } from '../../src/cli/record.js';
import { Hl7Error, Hl7Message, formatLocation } from '../../src/hl7/index.js';
import { unmerge } from '../../src/record/merge.js';
import { RecordService } from '../../src/record/service.js';
import type { TeamDirectory } from '../../src/record/teams.js';
import type { MessageHandler } from '../../src/record/types.js';
import { DEFAULT_SETTINGS, ORG, OTHER_ORG, applyProv, hl7, msh, nhsNumber, recordFixture, recordFixtureText } from '../helpers/record.js';

const NHS = '9990000018';
const A31_ZTM = recordFixtureText('adt/a31-ztm.hl7');

/** Aliases of the test's senders model: org-a has a Patient Record Team and two clinical teams. */
const ALIASES: Record<string, { organisationId: string; teamId: string | null }> = {
  RXX: { organisationId: ORG, teamId: null },
  RXX_PRT: { organisationId: ORG, teamId: 'prt' },
  RXX_DIABETES: { organisationId: ORG, teamId: 'diabetes' },
  RXX_RENAL: { organisationId: ORG, teamId: 'renal' },
  OTHER_DIAB: { organisationId: OTHER_ORG, teamId: 'other-diabetes' },
};
const directory: TeamDirectory = {
  aliasTarget: (alias) => ALIASES[alias],
  defaultTeam: (organisationId) => (organisationId === ORG ? 'prt' : null),
};

function setup(t: Parameters<typeof recordFixture>[0], teams: TeamDirectory | null = directory) {
  const f = recordFixture(t);
  const probe: MessageHandler = () => ({ summary: 'probe', changed: true });
  const svc = new RecordService({ store: f.store, attachments: f.attachments, handlers: { 'ORU^R01': probe }, settingsFor: () => DEFAULT_SETTINGS, ...(teams === null ? {} : { teams }) });
  let journalId = 0;
  const apply = (text: string, overrides: Parameters<typeof applyProv>[0] = {}) => {
    journalId++;
    const m = Hl7Message.parse(text);
    return svc.apply(m, { provenance: applyProv({ journalId, controlId: m.controlId, messageType: m.messageType, enteredAt: `2024-05-${String(journalId).padStart(2, '0')}T12:00:00.000Z`, ...overrides }) });
  };
  return { f, svc, apply };
}

const a28 = (pid = `PID|||${NHS}^^^NHS^NH||Testperson^Alex`, ...rest: string[]) => hl7(msh('ADT^A28', 'C1'), pid, ...rest);
const a31 = (ztm: string, control = 'U1') => hl7(msh('ADT^A31', control, '20240601120000'), `PID|||${NHS}^^^NHS^NH||Testperson^Alex`, ztm);
const teamsOf = (f: ReturnType<typeof recordFixture>, patientId: string) => f.store.teamMemberships(patientId).map((m) => m.teamId);

function ar(t: import('ava').ExecutionContext, fn: () => unknown): Hl7Error {
  return t.throws(fn, { instanceOf: Hl7Error }) as Hl7Error;
}

test('a new record joins the organisation\'s Patient Record Team, also when the message acts as another team (domain §3)', (t) => {
  const { f, apply } = setup(t);
  const a = apply(a28());
  t.deepEqual(teamsOf(f, a.patientId!), ['prt']);
  const b = apply(a28(`PID|||${nhsNumber(51)}^^^NHS^NH||Otherperson^Bo`), { teamId: 'diabetes' });
  t.deepEqual(teamsOf(f, b.patientId!), ['prt'], 'MSH-4 names the diabetes team: the record still joins the PRT');
  t.like(f.store.teamMemberships(b.patientId!)[0], { organisationId: ORG, addedJournalId: 2, addedAt: '2024-05-02T12:00:00.000Z', removedAt: null });
  // ZTM-1 of the creating message adds the acting team (its default team, which ZTM-1 must name).
  const c = apply(a28(`PID|||${nhsNumber(52)}^^^NHS^NH||Thirdperson^Cy`, 'ZTM|RXX_DIABETES'), { teamId: 'diabetes' });
  t.is(c.summary, 'record created; demographics updated; teams +1 -0');
  t.deepEqual(teamsOf(f, c.patientId!), ['prt', 'diabetes']);
  // An organisation without a Patient Record Team: the record joins no team.
  const none = setup(t, { aliasTarget: directory.aliasTarget, defaultTeam: () => null });
  t.deepEqual(teamsOf(none.f, none.apply(a28()).patientId!), []);
});

test('ZTM-1 adds, ZTM-2 removes (kept as history); a message that only changes teams is applied', (t) => {
  const { f, apply } = setup(t);
  const { patientId } = apply(a28());
  const added = apply(a31('ZTM|RXX_PRT~RXX_DIABETES~RXX_RENAL'));
  t.is(added.status, 'applied');
  t.is(added.summary, 'demographics unchanged; teams +2 -0');
  t.deepEqual(teamsOf(f, patientId!), ['prt', 'diabetes', 'renal']);
  // The fixture: adds PRT and diabetes (already in: no change), removes renal.
  const out = apply(A31_ZTM);
  t.is(out.summary, 'demographics updated; teams +0 -1');
  t.deepEqual(teamsOf(f, patientId!), ['prt', 'diabetes']);
  const renal = f.store.teamMemberships(patientId!, true).find((m) => m.teamId === 'renal')!;
  t.deepEqual([renal.removedAt, renal.removedJournalId], ['2024-05-03T12:00:00.000Z', 3]);
  // The same again changes nothing; removing the default team is allowed; re-adding opens a new period.
  t.is(apply(a31('ZTM|RXX_PRT~RXX_DIABETES', 'U2')).summary, 'demographics updated; teams +0 -0');
  t.deepEqual(apply(a31('ZTM|RXX_PRT~RXX_DIABETES', 'U2')).status, 'skipped', 'the same message again: nothing at all');
  apply(a31('ZTM||RXX_PRT', 'U3'));
  t.deepEqual(teamsOf(f, patientId!), ['diabetes']);
  apply(a31('ZTM|RXX_PRT~RXX_RENAL', 'U4'));
  t.deepEqual(teamsOf(f, patientId!), ['diabetes', 'prt', 'renal']);
  t.is(f.store.teamMemberships(patientId!, true).length, 5);
  // record show lists the current teams.
  const s = recordSummary(f.store, patientId!, (id) => ({ diabetes: 'Diabetes clinic' })[id]);
  t.deepEqual(s.teams.map((x) => [x.teamId, x.name]), [
    ['diabetes', 'Diabetes clinic'],
    ['prt', null],
    ['renal', null],
  ]);
  t.regex(formatSummary(s), /^teams\n {2}Diabetes clinic \(org-a\) {2}since 2024-05-02T12:00:00\.000Z$/m);
});

test('ZTM refusals: an AR at the alias, and nothing of the message applied', (t) => {
  const { f, apply } = setup(t);
  const { patientId } = apply(a28());
  const refuse = (ztm: string, location: string, message: string, hl7Code = 102) => {
    const e = ar(t, () => apply(a31(ztm)));
    t.is(e.code, 'RECORD_ZTM_INVALID', ztm);
    t.is(e.hl7Code, hl7Code, ztm);
    t.is(formatLocation(e.location!), location, ztm);
    t.is(e.message, message, ztm);
  };
  refuse('ZTM|RXX_PRT~NOPE', 'ZTM-1[2].1', 'ZTM-1[2]: unknown alias "NOPE"', 204);
  refuse('ZTM|RXX_PRT~RXX', 'ZTM-1[2].1', 'ZTM-1[2]: alias "RXX" names the organisation, not a team');
  refuse('ZTM|RXX_PRT~OTHER_DIAB', 'ZTM-1[2].1', 'ZTM-1[2]: alias "OTHER_DIAB" names another organisation\'s team');
  refuse('ZTM|RXX_DIABETES', 'ZTM-1', 'ZTM-1: must include the alias of the default team when adding to teams', 101);
  refuse('ZTM|RXX_PRT~RXX_DIABETES|RXX_DIABETES', 'ZTM-2.1', 'ZTM-2[1]: "RXX_DIABETES" names a team ZTM-1 adds');
  refuse('ZTM||NOPE', 'ZTM-2.1', 'ZTM-2[1]: unknown alias "NOPE"', 204);
  // Nothing of the refused messages stayed: no team, no demographics version.
  t.deepEqual(teamsOf(f, patientId!), ['prt']);
  t.is(f.store.getPatient(patientId!)!.version, 1);
});

test('acting as a team (MSH-4 alias), that team is the default one ZTM-1 must include', (t) => {
  const { f, apply } = setup(t);
  const { patientId } = apply(a28());
  const e = ar(t, () => apply(a31('ZTM|RXX_PRT~RXX_RENAL'), { teamId: 'diabetes' }));
  t.is(e.message, 'ZTM-1: must include the alias of the default team when adding to teams');
  apply(a31('ZTM|RXX_DIABETES~RXX_RENAL'), { teamId: 'diabetes' });
  t.deepEqual(teamsOf(f, patientId!), ['prt', 'diabetes', 'renal']);
});

test('without a team directory ZTM is not read; an older A31 changes no team either', (t) => {
  const plain = setup(t, null);
  const a = plain.apply(a28());
  t.is(plain.apply(a31('ZTM|NOPE|ALSO_NOPE')).status, 'skipped', 'no AR: ZTM is not read');
  t.deepEqual(teamsOf(plain.f, a.patientId!), []);

  const { f, apply } = setup(t);
  const { patientId } = apply(a28());
  const older = apply(a31('ZTM|RXX_PRT~RXX_RENAL'), { enteredAt: '2024-04-01T00:00:00.000Z' });
  t.is(older.status, 'skipped');
  t.deepEqual(teamsOf(f, patientId!), ['prt']);
  // ZTM is an A28/A31 segment: another message type's ZTM is not read.
  t.is(apply(hl7(msh('ORU^R01', 'R1'), `PID|||${NHS}^^^NHS^NH`, 'ZTM|NOPE|RXX_RENAL')).status, 'applied');
  t.deepEqual(teamsOf(f, patientId!), ['prt']);
});

test('ZTM-2 naming a team the patient is not in changes nothing, like ZTM-1 naming one it is in: no AR', (t) => {
  const { f, apply } = setup(t);
  const { patientId } = apply(a28());
  const out = apply(a31('ZTM||RXX_RENAL'));
  t.is(out.status, 'skipped');
  t.is(out.summary, 'demographics unchanged; teams +0 -0');
  t.deepEqual(teamsOf(f, patientId!), ['prt']);
  // A removal applied, then repeated (a resent message, or two systems discharging): the second is a no-op.
  apply(a31('ZTM|RXX_PRT~RXX_RENAL', 'U2'));
  t.is(apply(a31('ZTM||RXX_RENAL', 'U3')).summary, 'demographics unchanged; teams +0 -1');
  t.is(apply(a31('ZTM||RXX_RENAL', 'U4')).summary, 'demographics unchanged; teams +0 -0');
  t.deepEqual(teamsOf(f, patientId!), ['prt']);
  t.is(f.store.teamMemberships(patientId!, true).length, 2, 'no row written for the no-op');
  // Removals mixed with a real one and an add: only the real changes count.
  t.is(apply(a31('ZTM|RXX_PRT~RXX_DIABETES|RXX_RENAL', 'U5')).summary, 'demographics unchanged; teams +1 -0');
});

test('a record without memberships (created before they were kept, or without a directory) takes ZTM: removals are no-ops, adds apply', (t) => {
  const plain = setup(t, null);
  const { patientId } = plain.apply(a28());
  t.deepEqual(teamsOf(plain.f, patientId!), []);
  // The same database, now read by a service with the team directory.
  const svc = new RecordService({ store: plain.f.store, attachments: plain.f.attachments, handlers: {}, settingsFor: () => DEFAULT_SETTINGS, teams: directory });
  const send = (text: string, journalId: number) => {
    const m = Hl7Message.parse(text);
    return svc.apply(m, { provenance: applyProv({ journalId, controlId: m.controlId, messageType: m.messageType, enteredAt: `2024-06-0${journalId}T12:00:00.000Z` }) });
  };
  t.is(send(a31('ZTM||RXX_PRT~RXX_RENAL'), 2).summary, 'demographics unchanged; teams +0 -0');
  t.is(send(a31('ZTM|RXX_PRT~RXX_DIABETES|RXX_RENAL', 'U2'), 3).summary, 'demographics unchanged; teams +2 -0');
  t.deepEqual(teamsOf(plain.f, patientId!), ['prt', 'diabetes']);
});

test('the memberships are read only for an A28/A31 with a ZTM, once, and not for a record the message creates', (t) => {
  const { f, apply } = setup(t);
  let reads = 0;
  const read = f.store.teamMemberships.bind(f.store);
  f.store.teamMemberships = (...args) => {
    reads++;
    return read(...args);
  };
  const { patientId } = apply(a28());
  t.is(reads, 0, 'a new record: its team is the one it was just given');
  apply(hl7(msh('ADT^A31', 'U1', '20240601120000'), `PID|||${NHS}^^^NHS^NH||Testperson^Alex`));
  apply(hl7(msh('ADT^A28', 'U2', '20240601120000'), `PID|||${NHS}^^^NHS^NH||Testperson^Alex`, 'PV1|1|O'));
  t.is(reads, 0, 'no ZTM: no read');
  apply(a31('ZTM|RXX_PRT~RXX_DIABETES|RXX_RENAL', 'U3'));
  t.is(reads, 1, 'adds and removals decided from one read');
  apply(a31('ZTM|', 'U4'));
  t.is(reads, 1, 'a ZTM without an alias: no read');
  apply(a28(`PID|||${nhsNumber(53)}^^^NHS^NH||Newperson^Di`, 'ZTM|RXX_PRT~RXX_DIABETES'));
  t.is(reads, 1, 'ZTM on a record the message creates: no read');
  t.deepEqual(teamsOf(f, patientId!), ['prt', 'diabetes']);
});

test('merges move current memberships to the survivor (one it has is closed); ZTM works on them; an unmerge gives them back', (t) => {
  const { f, apply } = setup(t);
  const NHS_B = nhsNumber(61);
  const a = apply(a28()).patientId!;
  apply(a31('ZTM|RXX_PRT~RXX_DIABETES', 'U1'));
  const b = apply(a28(`PID|||${NHS_B}^^^NHS^NH||Otherperson^Bo`)).patientId!;
  const b31 = (ztm: string, control: string, time: string) => hl7(msh('ADT^A31', control, time), `PID|||${NHS_B}^^^NHS^NH||Otherperson^Bo`, ztm);
  apply(b31('ZTM|RXX_PRT~RXX_RENAL', 'B1', '20240601120000'));
  t.deepEqual(teamsOf(f, b), ['prt', 'renal']);

  // A40: B into A (journal id 5).
  const merged = apply(hl7(msh('ADT^A40', 'M1', '20240602120000'), `PID|||${NHS}^^^NHS^NH`, `MRG|${NHS_B}^^^NHS^NH`));
  t.is(merged.summary, 'merged 1 record');
  t.deepEqual(teamsOf(f, a), ['prt', 'diabetes', 'renal'], 'renal moved; the survivor\'s own PRT period goes on');
  t.deepEqual(teamsOf(f, b), []);
  const closed = f.store.teamMemberships(b, true).find((m) => m.teamId === 'prt')!;
  t.deepEqual([closed.removedAt, closed.removedJournalId], ['2024-05-05T12:00:00.000Z', 5], 'B\'s PRT row closed by the merge message');

  // ZTM after the merge, through the old record's NHS number (it lands on the survivor): the moved team can be removed.
  t.regex(apply(b31('ZTM||RXX_DIABETES', 'B2', '20240603120000')).summary, /; teams \+0 -1$/);
  t.deepEqual(teamsOf(f, a), ['prt', 'renal']);

  // Unmerge: renal goes back to B, B's PRT period is open again; A keeps what it had (diabetes removed since).
  const mergeId = f.store.listMerges(b)[0]!.id;
  unmerge(f.store, { mergeId, by: 'test', reason: 'different people' });
  t.deepEqual(teamsOf(f, a), ['prt']);
  t.deepEqual(teamsOf(f, b), ['prt', 'renal']);
  t.like(f.store.teamMemberships(b).find((m) => m.teamId === 'prt'), { removedAt: null, removedJournalId: null, addedJournalId: 3 });

  // ZTM after the unmerge: each record's own teams.
  t.regex(apply(b31('ZTM||RXX_RENAL', 'B3', '20240604120000')).summary, /; teams \+0 -1$/);
  t.deepEqual(teamsOf(f, b), ['prt']);
  t.regex(apply(a31('ZTM||RXX_RENAL', 'U9')).summary, /; teams \+0 -0$/, 'A was never in renal of its own');
  t.deepEqual(teamsOf(f, a), ['prt']);
});

const a28For = (nhs: string, ztm?: string) => hl7(msh('ADT^A28', `C${nhs}`), `PID|||${nhs}^^^NHS^NH||Testperson^Alex`, ...(ztm === undefined ? [] : [ztm]));
const a40For = (survivor: string, merged: string) => hl7(msh('ADT^A40', `M${merged}`, '20240701120000'), `PID|||${survivor}^^^NHS^NH`, `MRG|${merged}^^^NHS^NH`);
const unmergeCode = (f: ReturnType<typeof recordFixture>, mergeId: number) =>
  (t0: import('ava').ExecutionContext) => (t0.throws(() => unmerge(f.store, { mergeId, by: 'test', reason: 'r' })) as Error & { code: string }).code;

test('out-of-order unmerges are refused (RECORD_UNMERGE_ORDER): the later merge is undone first, and every membership goes home', (t) => {
  const { f, apply } = setup(t);
  const [NX, NM, NS] = [nhsNumber(11), nhsNumber(12), nhsNumber(13)];
  const x = apply(a28For(NX, 'ZTM|RXX_PRT~RXX_RENAL')).patientId!;
  const m = apply(a28For(NM)).patientId!;
  const s = apply(a28For(NS, 'ZTM|RXX_PRT~RXX_RENAL')).patientId!;
  apply(a40For(NM, NX));
  apply(a40For(NS, NM));
  const m1 = f.store.listMerges(x)[0]!.id;
  const m2 = f.store.listMerges(m).find((r) => r.mergedId === m)!.id;
  t.is(unmergeCode(f, m1)(t), 'RECORD_UNMERGE_ORDER');
  t.is(f.store.getMerge(m1)!.unmergedAt, null, 'nothing changed');
  t.is(f.store.survivorOf(x), s);
  unmerge(f.store, { mergeId: m2, by: 'test', reason: 'r' });
  unmerge(f.store, { mergeId: m1, by: 'test', reason: 'r' });
  t.deepEqual(teamsOf(f, x).sort(), ['prt', 'renal']);
  t.deepEqual(teamsOf(f, m), ['prt']);
  t.deepEqual(teamsOf(f, s).sort(), ['prt', 'renal']);
});

test('unmerging a merge whose survivor was merged onward is refused until the later merge is undone', (t) => {
  const { f, apply } = setup(t);
  const [NM, NS, NZ] = [nhsNumber(21), nhsNumber(22), nhsNumber(23)];
  const m = apply(a28For(NM, 'ZTM|RXX_PRT~RXX_RENAL')).patientId!;
  const s = apply(a28For(NS)).patientId!;
  const z = apply(a28For(NZ)).patientId!;
  apply(a40For(NS, NM));
  apply(a40For(NZ, NS));
  const m1 = f.store.listMerges(m)[0]!.id;
  const m2 = f.store.listMerges(s).find((r) => r.mergedId === s)!.id;
  const e = t.throws(() => unmerge(f.store, { patientId: m, by: 'test', reason: 'r' })) as Error & { code: string };
  t.is(e.code, 'RECORD_UNMERGE_ORDER');
  t.is(e.message, `merge ${m1} cannot be undone: its surviving record was merged into another record since (merge ${m2}); undo that merge first`);
  t.deepEqual(teamsOf(f, z).sort(), ['prt', 'renal']);
  unmerge(f.store, { mergeId: m2, by: 'test', reason: 'r' });
  unmerge(f.store, { mergeId: m1, by: 'test', reason: 'r' });
  t.deepEqual(teamsOf(f, m).sort(), ['prt', 'renal']);
  t.deepEqual(teamsOf(f, s), ['prt']);
  t.deepEqual(teamsOf(f, z), ['prt']);
});

test('a patient\'s memberships, current or all, are read through an index (no table scan)', (t) => {
  const { f } = setup(t);
  for (const includeRemoved of [false, true]) {
    const plan = f.db
      .prepare(`EXPLAIN QUERY PLAN SELECT * FROM record_team_member WHERE patient_id = ?${includeRemoved ? '' : ' AND removed_at IS NULL'} ORDER BY id`)
      .all('p') as { detail: string }[];
    const details = plan.map((p) => p.detail).join('; ');
    t.regex(details, /USING (COVERING )?INDEX record_team_member_/, details);
    t.notRegex(details, /^SCAN record_team_member\b|; SCAN record_team_member\b/, details);
  }
});
