// SPDX-License-Identifier: Apache-2.0
/**
 * Radiology decided by MSH-3 (PKB's rule): the per-organisation radiology sending applications in
 * the store, the ORU^R01 category they decide (beside OBR-24), the declared configuration
 * (`access.radiologyApplications`) and the `admin radiology-app` command. Synthetic patients only.
 */
import test from 'ava';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import yargs from 'yargs';
import { SenderStore } from '../../src/authentication/index.js';
import { radiologyAppCommand } from '../../src/cli/admin-record.js';
import type { CliIO } from '../../src/cli/common.js';
import { reportError } from '../../src/cli/main.js';
import { openRecordDb } from '../../src/cli/record-db.js';
import { applyDeclaredRecordConfig } from '../../src/engine/declared-record.js';
import { TributaryError } from '../../src/errors.js';
import { Hl7Message } from '../../src/hl7/index.js';
import { RESULT_HANDLERS, extractReports, type ReportPayload } from '../../src/record/results.js';
import { SqliteRecordStore } from '../../src/record/store.js';
import { tempDir } from '../helpers/engine.js';
import { ORG, OTHER_ORG, applyProv, recordFixture, recordFixtureText, recordService } from '../helpers/record.js';

const RIS = recordFixtureText('oru/radiology-by-application.hl7');
const LAB = recordFixtureText('oru/lab-panel.hl7');
const TEXTUAL = recordFixtureText('oru/textual-report.hl7');

const categoryOf = (f: ReturnType<typeof recordFixture>, key: string, org = ORG): ReportPayload['category'] =>
  (f.store.getItem(f.patientId, 'report', org, key)!.payload as unknown as ReportPayload).category;

test('store: add, list, match ignoring ASCII case, duplicates refused, remove', (t) => {
  const f = recordFixture(t);
  t.deepEqual(f.store.addRadiologyApplication({ organisationId: ORG, application: ' Kestrel_RIS ' }), { organisationId: ORG, application: 'Kestrel_RIS' });
  f.store.addRadiologyApplication({ organisationId: ORG, application: 'CRIS' });
  f.store.addRadiologyApplication({ organisationId: OTHER_ORG, application: 'PACS' });
  t.true(f.store.isRadiologyApplication(ORG, 'KESTREL_RIS'));
  t.true(f.store.isRadiologyApplication(ORG, 'kestrel_ris'));
  t.false(f.store.isRadiologyApplication(ORG, 'KESTREL'), 'the whole value, not a prefix');
  t.false(f.store.isRadiologyApplication(ORG, 'PACS'), 'another organisation\'s application');
  t.false(f.store.isRadiologyApplication(ORG, ''));
  const dup = t.throws(() => f.store.addRadiologyApplication({ organisationId: ORG, application: 'kestrel_ris' }), { instanceOf: TributaryError }) as TributaryError;
  t.is(dup.code, 'ADMIN_DUPLICATE');
  t.is(dup.message, `radiology application "${ORG} Kestrel_RIS" already exists`);
  t.is((t.throws(() => f.store.addRadiologyApplication({ organisationId: ORG, application: '  ' })) as TributaryError).code, 'ADMIN_INVALID');
  t.deepEqual(f.store.listRadiologyApplications(ORG).map((x) => x.application), ['CRIS', 'Kestrel_RIS']);
  t.is(f.store.listRadiologyApplications().length, 3);
  t.true(f.store.removeRadiologyApplication(ORG, 'KESTREL_RIS'));
  t.false(f.store.removeRadiologyApplication(ORG, 'KESTREL_RIS'));
  t.false(f.store.isRadiologyApplication(ORG, 'Kestrel_RIS'), 'removal is seen at once (the memo is dropped)');
});

test('store: no application declared anywhere is one remembered answer; each spelling of MSH-3.1 is looked up once', (t) => {
  const dir = tempDir(t);
  const executed: string[] = [];
  const db = new Database(join(dir, 'engine.db'), { verbose: (sql) => executed.push(String(sql)) });
  t.teardown(() => db.close());
  const store = new SqliteRecordStore(db);
  store.enableCache();
  const lookups = (): string[] => executed.filter((sql) => sql.includes('FROM record_radiology_application'));
  const message = (fn: () => void): void => {
    store.beginMessage();
    fn();
    store.endMessage(false);
    store.transactionEnded(true);
  };
  message(() => {
    for (const app of ['KESTREL_RIS', 'LAB', 'kestrel_ris', 'PAS']) t.false(store.isRadiologyApplication(ORG, app));
  });
  message(() => t.false(store.isRadiologyApplication(OTHER_ORG, 'CRIS')));
  t.deepEqual(lookups(), ['SELECT 1 FROM record_radiology_application LIMIT 1'], 'none declared: one query for every ORU since');

  // Declared by another process (the admin CLI): seen from the next transaction, as the other rows.
  const other = new SqliteRecordStore(new Database(join(dir, 'engine.db')));
  t.teardown(() => other.db.close());
  other.addRadiologyApplication({ organisationId: ORG, application: 'Kestrel_RIS' });
  executed.length = 0;
  message(() => {
    t.true(store.isRadiologyApplication(ORG, 'KESTREL_RIS'));
    t.true(store.isRadiologyApplication(ORG, 'KESTREL_RIS'));
    t.false(store.isRadiologyApplication(ORG, 'LAB'));
  });
  message(() => t.true(store.isRadiologyApplication(ORG, 'KESTREL_RIS')));
  t.is(lookups().length, 3, 'the "any" answer again, then KESTREL_RIS and LAB once each');
  // Removed through this store: forgotten at once.
  t.true(store.removeRadiologyApplication(ORG, 'kestrel_ris'));
  message(() => t.false(store.isRadiologyApplication(ORG, 'KESTREL_RIS')));
});

test('store: the declared spelling is found the way messages are matched (ASCII case only)', (t) => {
  const f = recordFixture(t);
  f.store.addRadiologyApplication({ organisationId: ORG, application: 'STRASSE' });
  f.store.addRadiologyApplication({ organisationId: ORG, application: 'straße' });
  t.deepEqual(f.store.findRadiologyApplication(ORG, 'strasse'), { organisationId: ORG, application: 'STRASSE' });
  t.deepEqual(f.store.findRadiologyApplication(ORG, 'STRAßE'), { organisationId: ORG, application: 'straße' }, 'ß is not ss: only ASCII letters fold');
  t.deepEqual(f.store.findRadiologyApplication(ORG, ' STRASSE '), { organisationId: ORG, application: 'STRASSE' }, 'trimmed, as added');
  t.is(f.store.findRadiologyApplication(OTHER_ORG, 'STRASSE'), undefined);
  t.is(f.store.findRadiologyApplication(ORG, 'ÉCHO'), undefined);
});

test('extractReports: the organisation\'s radiology application makes every report radiology; otherwise OBR-24 decides', (t) => {
  const msg = Hl7Message.parse(RIS);
  t.is(extractReports(msg)[0]!.payload.category, 'laboratory', 'OBR-24 OTH is not an imaging section');
  t.is(extractReports(msg, { radiologyApplication: true })[0]!.payload.category, 'radiology');
  t.is(extractReports(msg, { radiologyApplication: true })[0]!.payload.sendingApplication, 'KESTREL_RIS');
  // OBR-24 RAD stays radiology without any configuration.
  t.is(extractReports(Hl7Message.parse(TEXTUAL))[0]!.payload.category, 'radiology');
});

test('the handler asks the acting organisation\'s configuration with MSH-3.1, case-insensitively through the store', (t) => {
  const f = recordFixture(t);
  const handle = RESULT_HANDLERS['ORU^R01']!;
  const asked: string[] = [];
  handle(Hl7Message.parse(RIS), f.context({ isRadiologyApplication: (app) => (asked.push(app), false) }));
  t.deepEqual(asked, ['KESTREL_RIS']);
  t.is(categoryOf(f, 'U88001'), 'laboratory');

  // Through the service: the store's table, for the acting organisation only.
  f.store.addRadiologyApplication({ organisationId: ORG, application: 'kestrel_ris' });
  const service = recordService(f, { handlers: RESULT_HANDLERS });
  const apply = (text: string, organisationId: string, journalId: number) =>
    service.apply(Hl7Message.parse(text), { provenance: applyProv({ organisationId, journalId, messageType: 'ORU^R01' }), reviewed: { patientId: f.patientId } });
  apply(RIS.replace('RIS0001', 'RIS0002'), ORG, 2);
  t.is(categoryOf(f, 'U88001'), 'radiology', 'a new version: the category changed');
  t.is(f.store.getItem(f.patientId, 'report', ORG, 'U88001')!.version, 2);
  apply(RIS, OTHER_ORG, 3);
  t.is(categoryOf(f, 'U88001', OTHER_ORG), 'laboratory', 'another organisation sending from an application of that name: OBR-24 decides');
  // The lab's own application is not a radiology one: its lab panel stays laboratory.
  apply(LAB, ORG, 4);
  t.is(categoryOf(f, 'F55001'), 'laboratory');
});

// ---------------------------------------------------------------------------------------------
// Declared configuration and the admin command
// ---------------------------------------------------------------------------------------------

function senderDb(t: Parameters<typeof tempDir>[0]): Database.Database {
  const db = new Database(join(tempDir(t), 'tributary.db'));
  t.teardown(() => db.close());
  new SenderStore(db, { actor: 'setup' }).addOrganisation({ id: 'rxx', name: 'Leeds General', kind: 'customer' });
  return db;
}

test('declared radiologyApplications are applied, audited, and applying again changes nothing', (t) => {
  const db = senderDb(t);
  const declared = { radiologyApplications: [{ organisation: 'rxx', application: 'KESTREL_RIS' }, { organisation: 'rxx', application: 'cris' }] };
  const first = db.transaction(() => applyDeclaredRecordConfig(db, declared, 'config'))();
  t.deepEqual(first, { issues: [], changes: 2 });
  const audit = () => db.prepare("SELECT action, object_id FROM audit WHERE object_type = 'radiology-application' ORDER BY id").all();
  t.deepEqual(audit(), [
    { action: 'add', object_id: 'rxx|KESTREL_RIS' },
    { action: 'add', object_id: 'rxx|cris' },
  ]);
  // The same file again, and the same application in another case: nothing new.
  const again = db.transaction(() => applyDeclaredRecordConfig(db, { radiologyApplications: [...declared.radiologyApplications, { organisation: 'rxx', application: 'Kestrel_Ris' }] }, 'config'))();
  t.deepEqual(again, { issues: [], changes: 0 });
  t.is(audit().length, 2);
});

test('declared radiologyApplications: every problem with its key path', (t) => {
  const db = senderDb(t);
  const r = applyDeclaredRecordConfig(
    db,
    {
      radiologyApplications: [
        { organisation: 'nope', application: 'RIS' },
        { organisation: 'rxx', application: '' },
        { organisation: 'rxx', application: 'RIS', team: 'x' },
        'RIS',
      ],
    },
    'config',
  );
  t.deepEqual(r.issues, [
    'radiologyApplications[0].organisation: no organisation "nope"',
    'radiologyApplications[1].application: must be a non-empty string',
    'radiologyApplications[2].team: unknown key',
    'radiologyApplications[3]: must be an object',
  ]);
  t.deepEqual(applyDeclaredRecordConfig(db, { radiologyApplications: { organisation: 'rxx' } }, 'config').issues, ['radiologyApplications: must be a list']);
});

/** Run `admin radiology-app ...` through the command module, as main.ts registers it; returns the exit code and output. */
async function admin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const io: CliIO = { stdout: out, stderr: err };
  let pending: Promise<number> = Promise.resolve(-1);
  const run = (fn: () => Promise<number> | number): Promise<void> => {
    pending = Promise.resolve().then(fn).catch((e: unknown) => reportError(e, io));
    return pending.then(() => undefined);
  };
  await yargs(args).command(radiologyAppCommand(run, io)).strict().exitProcess(false).parseAsync();
  const code = await pending;
  return { code, stdout, stderr };
}

test('admin radiology-app add, list, remove: audited with the actor; errors are one line and exit 2', async (t) => {
  const data = tempDir(t);
  const setup = openRecordDb(data, { create: true, actor: 'setup' });
  setup.senders.addOrganisation({ id: 'rxx', name: 'Leeds General', kind: 'customer' });
  setup.close();
  const base = ['--data', data, '--actor', 'alice'];

  const add = await admin(['radiology-app', 'add', ...base, '--org', 'rxx', '--application', 'Kestrel_RIS']);
  t.is(add.code, 0, add.stderr);
  t.regex(add.stdout, /^ORG\s+APPLICATION\nrxx\s+Kestrel_RIS\n$/);
  const dup = await admin(['radiology-app', 'add', ...base, '--org', 'rxx', '--application', 'KESTREL_RIS']);
  t.is(dup.code, 2);
  t.is(dup.stderr, 'tributary: radiology application "rxx Kestrel_RIS" already exists\n');
  const noOrg = await admin(['radiology-app', 'add', ...base, '--org', 'nope', '--application', 'RIS']);
  t.is(noOrg.code, 2);
  t.is(noOrg.stderr, 'tributary: no organisation "nope"\n');

  const list = await admin(['radiology-app', 'list', ...base, '--json']);
  t.deepEqual(list.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown), [{ organisationId: 'rxx', application: 'Kestrel_RIS' }]);

  const remove = await admin(['radiology-app', 'remove', ...base, '--org', 'rxx', '--application', 'kestrel_ris']);
  t.is(remove.code, 0, remove.stderr);
  t.is(remove.stdout, 'removed radiology application rxx Kestrel_RIS\n');
  const again = await admin(['radiology-app', 'remove', ...base, '--org', 'rxx', '--application', 'kestrel_ris']);
  t.is(again.code, 2);
  t.is(again.stderr, 'tributary: no radiology application "rxx kestrel_ris"\n');

  // Two applications whose names differ only beyond ASCII (ß): remove takes the one messages match, not a Unicode upper-casing's.
  t.is((await admin(['radiology-app', 'add', ...base, '--org', 'rxx', '--application', 'STRASSE'])).code, 0);
  t.is((await admin(['radiology-app', 'add', ...base, '--org', 'rxx', '--application', 'straße'])).code, 0);
  const removeSharp = await admin(['radiology-app', 'remove', ...base, '--org', 'rxx', '--application', 'STRAßE']);
  t.is(removeSharp.code, 0, removeSharp.stderr);
  t.is(removeSharp.stdout, 'removed radiology application rxx straße\n');

  const r = openRecordDb(data, { actor: 'check' });
  t.teardown(() => r.close());
  const rows = r.db.prepare("SELECT actor, action, object_id, detail FROM audit WHERE object_type = 'radiology-application' ORDER BY id").all();
  t.deepEqual(rows.slice(0, 2), [
    { actor: 'alice', action: 'add', object_id: 'rxx|Kestrel_RIS', detail: JSON.stringify({ organisationId: 'rxx', application: 'Kestrel_RIS' }) },
    { actor: 'alice', action: 'remove', object_id: 'rxx|Kestrel_RIS', detail: JSON.stringify({ organisationId: 'rxx', application: 'Kestrel_RIS' }) },
  ]);
  t.like(rows[4], { action: 'remove', object_id: 'rxx|straße' });
  t.deepEqual(r.record.listRadiologyApplications(), [{ organisationId: 'rxx', application: 'STRASSE' }]);
});
