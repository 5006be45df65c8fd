// SPDX-License-Identifier: Apache-2.0
/**
 * The record commands of the CLI (`record show|export|unmerge|invitations`, `review list|show|resolve`,
 * `admin id-type|label-map`) run as `bin/tributary` (dist/, so `npm run build` first) over a data
 * directory filled by a real engine over MLLP with the fixtures in test/fixtures/record. Checked:
 * output (text and JSON shapes), one-line errors with non-zero exits, and the audit rows every
 * read and change writes (never patient data in them). Synthetic patients only.
 */
import test, { type ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import type { Engine } from '../../src/engine/engine.js';
import { MllpClient } from '../../src/interfaces/mllp-client.js';
import { NHS_NUMBER_SYSTEM, SqliteRecordStore } from '../../src/record/index.js';
import { ROOT, inProcessEngine, runCli, tempDir } from '../helpers/engine.js';
import { msa } from '../helpers/messages.js';
import { nhsNumber, recordFixtureText, withMsh } from '../helpers/record.js';
import { addSender, adminStore } from '../helpers/senders.js';

/** The NHS number of the fixtures' patient (test/fixtures/record/adt/a28-full.hl7). */
const NHS = '9990000018';
const fixture = recordFixtureText;


interface Hospital {
  engine: Engine;
  data: string;
  send(text: string, controlId: string): Promise<ReturnType<typeof msa>>;
  /** The fixtures' patient. */
  patientId: string;
  record: SqliteRecordStore;
}

/**
 * A running engine whose organisation st-elsewhere (sender `pas`, with a credential) declared its
 * RXX MRNs with `admin id-type add` and sent the fixtures: A28, admit, a lab panel, a letter, a
 * booked appointment.
 */
async function hospital(t: ExecutionContext): Promise<Hospital> {
  const engine = await inProcessEngine(t);
  const store = adminStore(engine);
  store.removeSender('demo-loopback');
  store.removeOrganisation('demo');
  const pas = addSender(engine, { id: 'pas', organisationId: 'st-elsewhere', credential: true, autoCreate: false });
  const data = engine.config.dataDir;
  const idType = await runCli(['admin', 'id-type', 'add', '--data', data, '--org', 'st-elsewhere', '--authority', 'RXX', '--type-code', 'MRN', '--actor', 'setup']);
  t.is(idType.code, 0, idType.stderr);
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort });
  t.teardown(() => client.close());
  const send = async (text: string, controlId: string) => msa(await client.send(withMsh(text, pas.msh8, controlId)));
  for (const [file, id] of [
    ['adt/a28-full.hl7', 'A28-1'],
    ['encounters/a01-admit.hl7', 'A01-1'],
    ['oru/lab-panel.hl7', 'ORU-1'],
    ['mdm/letter-text.hl7', 'MDM-1'],
    ['siu/s12-book.hl7', 'S12-1'],
  ] as const) {
    const ack = await send(fixture(file), id);
    t.is(ack.code, 'AA', `${file}: ${ack.text}`);
  }
  const record = new SqliteRecordStore(engine.journal.database);
  const patientId = record.findIdentifier('nhs', NHS_NUMBER_SYSTEM, NHS)!.patientId;
  return { engine, data, send, patientId, record };
}

/** Audit rows of one actor, oldest first. */
function auditOf(data: string, actor: string): Array<{ action: string; objectType: string; objectId: string | null; detail: Record<string, unknown> }> {
  const db = new Database(join(data, 'tributary.db'), { readonly: true });
  try {
    const rows = db.prepare('SELECT action, object_type, object_id, detail FROM audit WHERE actor = ? ORDER BY id').all(actor) as Array<Record<string, string | null>>;
    return rows.map((r) => ({ action: r.action!, objectType: r.object_type!, objectId: r.object_id ?? null, detail: JSON.parse(r.detail!) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

/** A user error: non-zero exit, one line on stderr matching `pattern`, nothing on stdout. */
async function refuses(t: ExecutionContext, args: string[], pattern: RegExp, code = 2): Promise<void> {
  const r = await runCli(args);
  t.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
  t.is(r.stdout, '', args.join(' '));
  t.is(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
  t.regex(r.stderr, /^tributary: /);
  t.regex(r.stderr, pattern);
}

test('record show: a readable summary and --json, each read audited with the patient id and no patient data', async (t) => {
  const h = await hospital(t);
  const text = await runCli(['record', 'show', '--data', h.data, '--nhs', NHS, '--actor', 'alice']);
  t.is(text.code, 0, text.stderr);
  const out = text.stdout;
  t.true(out.startsWith(`patient ${h.patientId}\n`));
  for (const section of ['identifiers', 'open encounters', 'appointments', 'latest results', 'documents', 'who sent what']) t.regex(out, new RegExp(`^${section}`, 'm'), section);
  t.regex(out, /name {8}Mx Alex Quinn TESTPERSON \(L\)/);
  t.regex(out, /NHS number {2}9990000018 \(status 01\)/);
  t.regex(out, /V1001 \(st-elsewhere\) {2}in-progress {2}INPATIENT {2}at Ward 7 bed 12/);
  t.regex(out, /Potassium: 4\.6 mmol\/L N \(F\) {2}report F55001/);
  t.regex(out, /DOC-1001 {2}type CL {2}clinic-letter\.txt/);
  t.regex(out, /2024-07-01T09:30:00\.000Z {2}Diabetes review {2}booked/);
  t.regex(out, /st-elsewhere \(Org st-elsewhere\): demographics, .*encounter 1/);

  const json = await runCli(['record', 'show', '--data', h.data, '--id', h.patientId, '--json', '--actor', 'alice']);
  t.is(json.code, 0, json.stderr);
  const s = JSON.parse(json.stdout) as Record<string, unknown> & { patient: { id: string }; latestResults: unknown[]; openEncounters: Array<Record<string, unknown>> };
  t.deepEqual(Object.keys(s), ['patient', 'identifiers', 'merges', 'teams', 'openEncounters', 'appointments', 'latestResults', 'latestMeasurements', 'documents', 'counts', 'sources']);
  // docs/record-cli.md lists the keys in the order they come.
  const documented = /`--json` keys, in this order:\s*((?:`\w+`,?\s*)+)\./.exec(readFileSync(join(ROOT, 'docs', 'record-cli.md'), 'utf8'));
  t.deepEqual([...(documented?.[1] ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1]), Object.keys(s), 'docs/record-cli.md "--json keys"');
  t.is(s.patient.id, h.patientId);
  t.is(s.latestResults.length, 4);
  t.like(s.openEncounters[0], { organisationId: 'st-elsewhere', visitNumber: 'V1001', status: 'in-progress', location: 'Ward 7 bed 12' });
  t.like(s.counts, { encounter: 1, report: 1, result: 4, document: 1, appointment: 1, allergy: 2 });

  const audit = auditOf(h.data, 'alice');
  t.deepEqual(
    audit.map((a) => [a.action, a.objectType, a.objectId, a.detail]),
    [
      ['record.read', 'patient', h.patientId, { command: 'show', by: 'nhs' }],
      ['record.read', 'patient', h.patientId, { command: 'show', by: 'id' }],
    ],
  );
});

test('record show/export: one-line errors, non-zero exits, nothing read or audited', async (t) => {
  const h = await hospital(t);
  const d = ['--data', h.data, '--actor', 'mallory'];
  await refuses(t, ['record', 'show', ...d, '--nhs', nhsNumber(77)], /no patient record holds this NHS number/);
  await refuses(t, ['record', 'show', ...d, '--nhs', '1234567890'], /--nhs: not a valid NHS number/);
  await refuses(t, ['record', 'show', ...d, '--id', 'no-such-patient'], /no patient record has id "no-such-patient"/);
  await refuses(t, ['record', 'show', ...d, '--nhs', NHS, '--id', h.patientId], /mutually exclusive/);
  await refuses(t, ['record', 'show', ...d], /record show needs --nhs N or --id ID/);
  await refuses(t, ['record', 'export', ...d, '--all'], /record export --all needs --out DIR/);
  await refuses(t, ['record', 'export', ...d, '--all', '--nhs', NHS, '--out', tempDir(t)], /mutually exclusive/);
  await refuses(t, ['record', 'export', ...d], /record export needs --nhs N, --id ID or --all/);
  await refuses(t, ['record', 'export', ...d, '--nhs', nhsNumber(78)], /no patient record holds this NHS number/);
  await refuses(t, ['record', 'show', '--data', join(h.data, 'missing'), '--nhs', NHS], /no database here/);
  await refuses(t, ['record', 'bogus', ...d], /Unknown argument|Unknown command|bogus/);
  // Error lines do not echo the NHS number asked for.
  const r = await runCli(['record', 'show', ...d, '--nhs', nhsNumber(77)]);
  t.false(r.stderr.includes(nhsNumber(77)));
  t.deepEqual(auditOf(h.data, 'mallory'), []);
});

test('record export: one Bundle to stdout, one file with --out, every patient with --all; each read audited', async (t) => {
  const h = await hospital(t);
  // A second patient (an A28 of another synthetic person, with an email of their own: one email per record).
  const other = nhsNumber(501);
  t.is((await h.send(fixture('adt/a28-full.hl7').replaceAll('9990000018', other).replace('H100001', 'H100002').replaceAll('alex@', 'sam@'), 'A28-2')).code, 'AA');
  const otherId = h.record.findIdentifier('nhs', NHS_NUMBER_SYSTEM, other)!.patientId;

  const r = await runCli(['record', 'export', '--data', h.data, '--nhs', NHS, '--actor', 'bob']);
  t.is(r.code, 0, r.stderr);
  const bundle = JSON.parse(r.stdout) as Bundle;
  t.like(bundle, { resourceType: 'Bundle', type: 'transaction', id: `patient-${h.patientId}` });
  const patient = bundle.entry![0]!.resource as Patient;
  t.is(patient.id, h.patientId);
  t.true(bundle.entry!.every((e) => e.request?.method === 'PUT' && e.request.url === `${e.resource!.resourceType}/${e.resource!.id}`));
  const types = new Set(bundle.entry!.map((e) => e.resource!.resourceType));
  for (const type of ['Patient', 'Encounter', 'Appointment', 'DiagnosticReport', 'Observation', 'DocumentReference', 'Provenance', 'AllergyIntolerance']) t.true(types.has(type as never), type);
  // Deterministic: the same record exports to the same bytes.
  t.is((await runCli(['record', 'export', '--data', h.data, '--id', h.patientId, '--actor', 'bob'])).stdout, r.stdout);

  const one = tempDir(t);
  const file = await runCli(['record', 'export', '--data', h.data, '--id', otherId, '--out', one, '--actor', 'bob']);
  t.is(file.code, 0, file.stderr);
  t.deepEqual(readdirSync(one), [`${otherId}.json`]);
  t.regex(file.stdout, /^exported 1 patient record to /);

  const all = tempDir(t);
  const every = await runCli(['record', 'export', '--data', h.data, '--all', '--out', join(all, 'nested'), '--actor', 'bob']);
  t.is(every.code, 0, every.stderr);
  t.deepEqual(readdirSync(join(all, 'nested')).sort(), [`${h.patientId}.json`, `${otherId}.json`].sort());
  t.is(readFileSync(join(all, 'nested', `${h.patientId}.json`), 'utf8'), r.stdout, 'a file holds the same Bundle as stdout');
  t.false(readdirSync(join(all, 'nested')).some((f) => f.includes('.tmp-')));

  const audit = auditOf(h.data, 'bob');
  t.deepEqual(
    audit.map((a) => [a.action, a.objectId, a.detail.command, a.detail.to, a.detail.by]),
    [
      ['record.read', h.patientId, 'export', 'stdout', 'nhs'],
      ['record.read', h.patientId, 'export', 'stdout', 'id'],
      ['record.read', otherId, 'export', 'files', 'id'],
      ['record.read', h.patientId, 'export', 'files', 'all'],
      ['record.read', otherId, 'export', 'files', 'all'],
    ],
  );
  t.false(JSON.stringify(audit).includes(NHS), 'no NHS number in the audit');

  // An --out that cannot be a folder: one line, exit 2.
  const blocker = join(one, `${otherId}.json`);
  await refuses(t, ['record', 'export', '--data', h.data, '--all', '--out', blocker], /cannot write .*(EEXIST|ENOTDIR)/);
});

test('review list, show and resolve (apply and dismiss), audited; a closed entry cannot be resolved again', async (t) => {
  const h = await hospital(t);
  // Only the hospital's MRN, which belongs to a record holding an NHS number: queued for review (AA, not applied).
  const localOnly = (control: string, time: string) =>
    [`MSH|^~\\&|PAS|RXX|TRIBUTARY|HUB|${time}||ADT^A31|${control}|P|2.4`, `EVN|A31|${time}`, 'PID|||H100001^^^RXX^MRN||Testperson^Alex^Quinn^^Mx^^L||19800101|F|||9 New Road^^Testville^^TE9 9NW^GBR^H'].join('\r');
  t.is((await h.send(localOnly('REV-1', '20240601120000'), 'REV-1')).code, 'AA');
  t.is((await h.send(localOnly('REV-2', '20240602120000'), 'REV-2')).code, 'AA');
  const d = ['--data', h.data, '--actor', 'carol'];

  const list = await runCli(['review', 'list', ...d]);
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /^ID +CREATED +ORG +TYPE +REASON +STATUS +CANDIDATES +DETAIL/);
  t.regex(list.stdout, new RegExp(`^1 .* st-elsewhere +ADT\\^A31 +local-id-only +open +${h.patientId}`, 'm'));
  t.false(list.stdout.includes('Testperson'), 'the listing shows no patient data');
  const json = (await runCli(['review', 'list', ...d, '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(json.length, 2);
  t.like(json[0], { id: 1, organisationId: 'st-elsewhere', reason: 'local-id-only', candidates: [h.patientId], messageType: 'ADT^A31', controlId: 'REV-1', status: 'open' });
  t.false('message' in json[0]!);

  const show = await runCli(['review', 'show', '1', ...d]);
  t.is(show.code, 0, show.stderr);
  t.regex(show.stdout, /reason {6}local-id-only/);
  t.regex(show.stdout, /^ {2}PID\|\|\|H100001/m);

  const applied = await runCli(['review', 'resolve', '1', '--apply', '--note', 'same person: checked the MRN', ...d]);
  t.is(applied.code, 0, applied.stderr);
  t.regex(applied.stdout, new RegExp(`^review 1 applied to patient ${h.patientId}`));
  const demographics = h.record.getPatient(h.patientId)!.demographics!;
  t.is(demographics.addresses[0]!.postcode, 'TE9 9NW', 'the reviewed message is in the record');

  const dismissed = await runCli(['review', 'resolve', '2', '--dismiss', '--note', 'duplicate feed', ...d, '--json']);
  t.is(dismissed.code, 0, dismissed.stderr);
  t.like(JSON.parse(dismissed.stdout), { id: 2, status: 'dismissed', resolvedBy: 'carol', resolutionNote: 'duplicate feed' });

  await refuses(t, ['review', 'resolve', '1', '--dismiss', '--note', 'again', ...d], /review item 1 is already applied/);
  await refuses(t, ['review', 'resolve', '9', '--dismiss', '--note', 'x', ...d], /no review item "9"/);
  await refuses(t, ['review', 'resolve', '2', '--apply', '--dismiss', '--note', 'x', ...d], /mutually exclusive/);
  await refuses(t, ['review', 'resolve', '2', ...d, '--note', 'x'], /needs --apply or --dismiss/);
  await refuses(t, ['review', 'resolve', '2', '--dismiss', ...d], /Missing required argument: note/);
  await refuses(t, ['review', 'resolve', '2', '--dismiss', '--note', '  ', ...d], /--note must not be empty/);
  t.deepEqual((await runCli(['review', 'list', ...d])).stdout, 'ID  CREATED  ORG  TYPE  REASON  STATUS  CANDIDATES  DETAIL\n(no open review items)\n');
  t.is((await runCli(['review', 'list', ...d, '--status', 'all', '--json'])).stdout.trim().split('\n').length, 2);

  t.deepEqual(
    auditOf(h.data, 'carol').map((a) => [a.action, a.objectType, a.objectId, a.detail]),
    [
      ['review.read', 'review', '1', { reason: 'local-id-only', status: 'open' }],
      ['review.apply', 'review', '1', { reason: 'local-id-only', patientId: h.patientId, outcome: 'applied' }],
      ['review.dismiss', 'review', '2', { reason: 'local-id-only' }],
    ],
  );
});

test('record unmerge: by merge id, audited; the merged record is separate again; a second unmerge is refused', async (t) => {
  const h = await hospital(t);
  const old = nhsNumber(601);
  t.is((await h.send(fixture('adt/a28-full.hl7').replaceAll('9990000018', old).replace('H100001', 'H100009').replace('alex@example.invalid^NET^Internet^alex@example.invalid', ''), 'A28-OLD')).code, 'AA');
  const oldId = h.record.findIdentifier('nhs', NHS_NUMBER_SYSTEM, old)!.patientId;
  const a40 = ['MSH|^~\\&|PAS|RXX|TRIBUTARY|HUB|20240601120000||ADT^A40|M-1|P|2.4', 'EVN|A40|20240601120000', `PID|||${NHS}^^^NHS^NH`, `MRG|${old}^^^NHS^NH`].join('\r');
  t.is((await h.send(a40, 'M-1')).code, 'AA');
  const d = ['--data', h.data, '--actor', 'dave'];

  // The old NHS number now leads to the survivor; the old record says where it went.
  const viaOld = JSON.parse((await runCli(['record', 'show', ...d, '--nhs', old, '--json'])).stdout) as { patient: { id: string }; merges: Array<{ id: number; mergedId: string }> };
  t.is(viaOld.patient.id, h.patientId);
  t.deepEqual(viaOld.merges.map((m) => [m.id, m.mergedId]), [[1, oldId]]);
  const merged = await runCli(['record', 'show', ...d, '--id', oldId]);
  t.regex(merged.stdout, new RegExp(`^patient ${oldId} {2}\\(merged into ${h.patientId}`), `exit ${merged.code}: ${merged.stderr}`);

  await refuses(t, ['record', 'unmerge', ...d, '--merge', '1'], /Missing required argument: reason/);
  await refuses(t, ['record', 'unmerge', ...d, '--merge', '1', '--patient', oldId, '--reason', 'x'], /mutually exclusive/);
  await refuses(t, ['record', 'unmerge', ...d, '--reason', 'x'], /needs --merge ID or --patient ID/);
  await refuses(t, ['record', 'unmerge', ...d, '--merge', '0', '--reason', 'x'], /--merge must be a positive whole number/);
  await refuses(t, ['record', 'unmerge', ...d, '--merge', '7', '--reason', 'x'], /no merge "7"/);

  const undo = await runCli(['record', 'unmerge', ...d, '--merge', '1', '--reason', 'different people: checked with the ward']);
  t.is(undo.code, 0, undo.stderr);
  t.regex(undo.stdout, new RegExp(`^undid merge 1: patient ${oldId} is separate from ${h.patientId} again`));
  t.is(h.record.survivorOf(oldId), oldId);
  t.is(JSON.parse((await runCli(['record', 'show', ...d, '--nhs', old, '--json'])).stdout).patient.id, oldId);
  await refuses(t, ['record', 'unmerge', ...d, '--patient', oldId, '--reason', 'again'], new RegExp(`no merge "${oldId}"`));
  await refuses(t, ['record', 'unmerge', ...d, '--merge', '1', '--reason', 'again'], /merge 1 has already been undone/);

  const unmerges = auditOf(h.data, 'dave').filter((a) => a.action === 'record.unmerge');
  t.deepEqual(unmerges.map((a) => [a.objectType, a.objectId, a.detail]), [['merge', '1', { survivorId: h.patientId, mergedId: oldId, movedItems: h.record.getMerge(1)!.movedItemIds.length }]]);
  t.is(h.record.getMerge(1)!.unmergeReason, 'different people: checked with the ward');
});

test('admin id-type and label-map: add, list, remove, audited; a running engine uses a label map from the next message', async (t) => {
  const h = await hospital(t);
  const d = ['--data', h.data, '--actor', 'erin'];

  const list = await runCli(['admin', 'id-type', 'list', ...d, '--json']);
  t.deepEqual(list.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown), [{ id: 1, organisationId: 'st-elsewhere', teamId: null, authority: 'RXX', typeCode: 'MRN' }]);
  const added = await runCli(['admin', 'id-type', 'add', ...d, '--org', 'st-elsewhere', '--team', 'st-elsewhere-prt', '--authority', '*', '--type-code', 'PAS']);
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /^2 +st-elsewhere +st-elsewhere-prt +\* +PAS$/m);
  await refuses(t, ['admin', 'id-type', 'add', ...d, '--org', 'st-elsewhere', '--authority', 'RXX', '--type-code', 'MRN'], /local identifier type "RXX\^MRN" already exists/);
  await refuses(t, ['admin', 'id-type', 'add', ...d, '--org', 'nowhere', '--authority', 'RXX', '--type-code', 'MRN'], /no organisation "nowhere"/);
  await refuses(t, ['admin', 'id-type', 'add', ...d, '--org', 'st-elsewhere', '--team', 'nope', '--authority', 'RXX', '--type-code', 'X'], /no team "nope"/);
  await refuses(t, ['admin', 'id-type', 'add', ...d, '--org', 'st-elsewhere', '--authority', 'RXX'], /Missing required argument: type-code/);
  t.is((await runCli(['admin', 'id-type', 'remove', ...d, '--id', '2'])).code, 0);
  await refuses(t, ['admin', 'id-type', 'remove', ...d, '--id', '2'], /no local identifier type "2"/);

  // PV1-10 MED (the admit fixture's hospital service) → MENTAL_HEALTH, from the next message on.
  const map = await runCli(['admin', 'label-map', 'add', ...d, '--org', 'st-elsewhere', '--source', 'PV1-10', '--code', 'MED', '--label', 'mental-health']);
  t.is(map.code, 0, map.stderr);
  t.regex(map.stdout, /^st-elsewhere +PV1-10 +MED +MENTAL_HEALTH$/m);
  t.is((await runCli(['admin', 'label-map', 'add', ...d, '--org', 'st-elsewhere', '--source', 'OBR-4', '--code', 'UE', '--label', 'SOCIAL_CARE'])).code, 0);
  t.is((await runCli(['admin', 'label-map', 'add', ...d, '--org', 'st-elsewhere', '--source', 'OBR-4', '--code', 'UE', '--label', 'SEXUAL_HEALTH'])).code, 0, 'add replaces');
  await refuses(t, ['admin', 'label-map', 'add', ...d, '--org', 'st-elsewhere', '--source', 'PV1-10', '--code', 'X', '--label', 'SECRET'], /--label: expected one of GENERAL_HEALTH/);
  await refuses(t, ['admin', 'label-map', 'add', ...d, '--org', 'st-elsewhere', '--source', 'PID-3', '--code', 'X', '--label', 'SOCIAL_CARE'], /--source: expected one of PV1-10, OBR-4, AL1-3/);
  const maps = (await runCli(['admin', 'label-map', 'list', ...d, '--org', 'st-elsewhere', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
  t.deepEqual(maps, [
    { organisationId: 'st-elsewhere', source: 'OBR-4', code: 'UE', label: 'SEXUAL_HEALTH' },
    { organisationId: 'st-elsewhere', source: 'PV1-10', code: 'MED', label: 'MENTAL_HEALTH' },
  ]);
  t.is((await h.send(fixture('encounters/a01-admit.hl7').replace('V1001', 'V1002'), 'A01-2')).code, 'AA');
  const v2 = h.record.listItems(h.patientId, { kind: 'encounter' }).find((i) => i.key === 'V1002')!;
  t.is(v2.label, 'MENTAL_HEALTH', 'the engine applied the new mapping without a restart');
  t.is((await runCli(['admin', 'label-map', 'remove', ...d, '--org', 'st-elsewhere', '--source', 'OBR-4', '--code', 'UE'])).code, 0);
  await refuses(t, ['admin', 'label-map', 'remove', ...d, '--org', 'st-elsewhere', '--source', 'OBR-4', '--code', 'UE'], /no label mapping "st-elsewhere OBR-4 UE"/);

  t.deepEqual(
    auditOf(h.data, 'erin').map((a) => [a.action, a.objectType, a.objectId]),
    [
      ['add', 'local-id-type', '2'],
      ['remove', 'local-id-type', '2'],
      ['add', 'label-mapping', 'st-elsewhere|PV1-10|MED'],
      ['add', 'label-mapping', 'st-elsewhere|OBR-4|UE'],
      ['update', 'label-mapping', 'st-elsewhere|OBR-4|UE'],
      ['remove', 'label-mapping', 'st-elsewhere|OBR-4|UE'],
    ],
  );
  // The audit log lists them with the other admin changes.
  const auditLog = await runCli(['admin', 'audit', '--data', h.data, '--type', 'label-mapping']);
  t.regex(auditLog.stdout, /erin +update +label-mapping st-elsewhere\|OBR-4\|UE +\{"label":"SEXUAL_HEALTH","previous":"SOCIAL_CARE"\}/);
});

test('admin radiology-app: add, list, remove, audited; a running engine decides radiology by MSH-3 from the next message', async (t) => {
  const h = await hospital(t);
  const d = ['--data', h.data, '--actor', 'erin'];
  const ris = fixture('oru/radiology-by-application.hl7');
  const category = (key: string): unknown => (h.record.getItem(h.patientId, 'report', 'st-elsewhere', key)!.payload as { category: unknown }).category;
  t.is((await h.send(ris, 'RIS-1')).code, 'AA');
  t.is(category('U88001'), 'laboratory', 'nothing declared: OBR-24 decides');
  const added = await runCli(['admin', 'radiology-app', 'add', ...d, '--org', 'st-elsewhere', '--application', 'Kestrel_RIS']);
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /^st-elsewhere +Kestrel_RIS$/m);
  await refuses(t, ['admin', 'radiology-app', 'add', ...d, '--org', 'nowhere', '--application', 'RIS'], /no organisation "nowhere"/);
  const list = (await runCli(['admin', 'radiology-app', 'list', ...d, '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
  t.deepEqual(list, [{ organisationId: 'st-elsewhere', application: 'Kestrel_RIS' }]);
  t.is((await h.send(ris.replace('U88001', 'U88002'), 'RIS-2')).code, 'AA');
  t.is(category('U88002'), 'radiology', 'MSH-3.1 KESTREL_RIS matches without regard to case, without a restart');
  t.is((await runCli(['admin', 'radiology-app', 'remove', ...d, '--org', 'st-elsewhere', '--application', 'kestrel_ris'])).code, 0);
  await refuses(t, ['admin', 'radiology-app', 'remove', ...d, '--org', 'st-elsewhere', '--application', 'kestrel_ris'], /no radiology application "st-elsewhere kestrel_ris"/);
  t.deepEqual(
    auditOf(h.data, 'erin').map((a) => [a.action, a.objectType, a.objectId]),
    [
      ['add', 'radiology-application', 'st-elsewhere|Kestrel_RIS'],
      ['remove', 'radiology-application', 'st-elsewhere|Kestrel_RIS'],
    ],
  );
});

test('record invitations list, mark-sent and cancel: the queue with the addresses, each listing audited as record reads, changes audited', async (t) => {
  const h = await hospital(t);
  // The fixtures' A28 sent alex@example.invalid in PID-13[2]: invitation 1. A second person, invitation 2.
  const other = nhsNumber(801);
  t.is((await h.send(fixture('adt/a28-full.hl7').replaceAll('9990000018', other).replace('H100001', 'H100801').replaceAll('alex@', 'sam@'), 'A28-2')).code, 'AA');
  const otherId = h.record.findIdentifier('nhs', NHS_NUMBER_SYSTEM, other)!.patientId;
  const d = ['--data', h.data, '--actor', 'fran'];

  const list = await runCli(['record', 'invitations', 'list', ...d]);
  t.is(list.code, 0, list.stderr);
  const [header, ...rows] = list.stdout.trimEnd().split('\n');
  t.regex(header!, /^ID +CREATED +ORG +STATUS +PATIENT +SOURCE +MSH-10 +EMAIL$/);
  t.is(rows.length, 2);
  t.regex(rows[0]!, new RegExp(`^1 +\\S+ +st-elsewhere +pending +${h.patientId} +PID-13\\[2\\]\\.4 +A28-1 +alex@example\\.invalid$`));
  t.regex(rows[1]!, new RegExp(`^2 +\\S+ +st-elsewhere +pending +${otherId} +PID-13\\[2\\]\\.4 +A28-2 +sam@example\\.invalid$`));
  const json = (await runCli(['record', 'invitations', 'list', ...d, '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(Object.keys(json[0]!), ['id', 'createdAt', 'patientId', 'email', 'source', 'organisationId', 'teamId', 'journalId', 'controlId', 'status', 'closedAt', 'closedBy', 'closedJournalId']);
  t.like(json[0], { id: 1, patientId: h.patientId, email: 'alex@example.invalid', source: 'PID-13[2].4', organisationId: 'st-elsewhere', teamId: null, controlId: 'A28-1', status: 'pending', closedAt: null, closedBy: null, closedJournalId: null });

  const sent = await runCli(['record', 'invitations', 'mark-sent', '1', ...d]);
  t.is(sent.code, 0, sent.stderr);
  t.is(sent.stdout, 'invitation 1 marked sent\n');
  const cancelled = await runCli(['record', 'invitations', 'cancel', '2', ...d, '--json']);
  t.is(cancelled.code, 0, cancelled.stderr);
  t.like(JSON.parse(cancelled.stdout), { id: 2, status: 'cancelled', closedBy: 'fran' });
  await refuses(t, ['record', 'invitations', 'mark-sent', '1', ...d], /invitation 1 is already sent: only a pending invitation can be marked sent or cancelled/);
  await refuses(t, ['record', 'invitations', 'cancel', '2', ...d], /invitation 2 is already cancelled/);
  await refuses(t, ['record', 'invitations', 'cancel', '9', ...d], /no invitation "9"/);
  await refuses(t, ['record', 'invitations', 'mark-sent', '0', ...d], /id must be a positive whole number, got 0/);
  // yargs's own refusal of a choice (two lines, like `review list --status` gives): exit 2, nothing listed.
  const lost = await runCli(['record', 'invitations', 'list', ...d, '--status', 'lost']);
  t.deepEqual([lost.code, lost.stdout], [2, '']);
  t.regex(lost.stderr, /Given: "lost", Choices: "pending", "sent", "cancelled", "all"/);
  await refuses(t, ['record', 'invitations', ...d], /record invitations needs a subcommand: list, mark-sent or cancel/);

  // Nothing pending any more: an empty listing shows no one and audits no read.
  t.is((await runCli(['record', 'invitations', 'list', ...d])).stdout, 'ID  CREATED  ORG  STATUS  PATIENT  SOURCE  MSH-10  EMAIL\n(no pending invitations)\n');
  const all = (await runCli(['record', 'invitations', 'list', ...d, '--status', 'all', '--org', 'st-elsewhere', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(all.map((i) => [i.id, i.status, i.closedBy]), [[1, 'sent', 'fran'], [2, 'cancelled', 'fran']]);
  t.is((await runCli(['record', 'invitations', 'list', ...d, '--status', 'sent', '--org', 'elsewhere'])).stdout.split('\n')[1], '(no sent invitations)');

  const audit = auditOf(h.data, 'fran');
  t.deepEqual(
    audit.map((a) => [a.action, a.objectType, a.objectId, a.detail]),
    [
      ['record.read', 'patient', h.patientId, { command: 'invitations list', invitations: [1] }],
      ['record.read', 'patient', otherId, { command: 'invitations list', invitations: [2] }],
      ['record.read', 'patient', h.patientId, { command: 'invitations list', invitations: [1] }],
      ['record.read', 'patient', otherId, { command: 'invitations list', invitations: [2] }],
      ['invitation.mark-sent', 'invitation', '1', { patientId: h.patientId, organisationId: 'st-elsewhere' }],
      ['invitation.cancel', 'invitation', '2', { patientId: otherId, organisationId: 'st-elsewhere' }],
      ['record.read', 'patient', h.patientId, { command: 'invitations list', invitations: [1] }],
      ['record.read', 'patient', otherId, { command: 'invitations list', invitations: [2] }],
    ],
  );
  t.false(JSON.stringify(audit).includes('@'), 'no address in the audit');
});

test('--help names every record, review and admin record subcommand', async (t) => {
  const record = await runCli(['record', '--help']);
  for (const c of ['record show', 'record export', 'record unmerge', 'record invitations']) t.true(record.stdout.includes(c), c);
  const invitations = await runCli(['record', 'invitations', '--help']);
  for (const c of ['record invitations list', 'record invitations mark-sent <id>', 'record invitations cancel <id>']) t.true(invitations.stdout.includes(c), c);
  const list = await runCli(['record', 'invitations', 'list', '--help']);
  for (const flag of ['--status', '--org', '--json', '--data', '--actor']) t.true(list.stdout.includes(flag), flag);
  const review = await runCli(['review', '--help']);
  for (const c of ['review list', 'review show <id>', 'review resolve <id>']) t.true(review.stdout.includes(c), c);
  const admin = await runCli(['admin', '--help']);
  for (const c of ['admin id-type', 'admin label-map', 'admin radiology-app']) t.true(admin.stdout.includes(c), c);
  const exportHelp = await runCli(['record', 'export', '--help']);
  for (const flag of ['--nhs', '--id', '--all', '--out', '--include-deleted', '--data', '--actor']) t.true(exportHelp.stdout.includes(flag), flag);
});
