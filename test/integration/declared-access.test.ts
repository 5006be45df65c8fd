// SPDX-License-Identifier: Apache-2.0
/**
 * Declared access configuration (the config file's `access`), for infrastructure-as-code users:
 * senders and the record's per-organisation settings applied at start, validated like the admin
 * CLI, every problem reported at once with its key path, nothing applied when any is wrong.
 */
import test from 'ava';
import { SqliteRecordStore } from '../../src/record/index.js';
import { inProcessEngine } from '../helpers/engine.js';
import { adminStore } from '../helpers/senders.js';

const ACCESS = {
  organisations: [{ id: 'rxx', name: 'Leeds General', kind: 'customer' }],
  teams: [{ id: 'rxx-gum', organisation: 'rxx', name: 'Sexual health' }],
  senders: [{ id: 'rxx-pas', organisation: 'rxx', name: 'PAS', allowCidrs: ['127.0.0.1/32'] }],
  identifierTypes: [{ organisation: 'rxx', authority: 'RXX', typeCode: 'MRN' }, { organisation: 'rxx', team: 'rxx-gum', authority: '*', typeCode: 'GUMID' }],
  labelMappings: [{ organisation: 'rxx', source: 'PV1-10', code: 'GUM', label: 'sexual-health' }],
};

test('declared organisations, senders, identifier types and label maps are applied at start, and re-applying changes nothing', async (t) => {
  const engine = await inProcessEngine(t, { access: ACCESS });
  const senders = adminStore(engine);
  t.deepEqual(senders.listSenders().map((s) => s.id), ['rxx-pas'], 'no demo sender when access is declared');
  const record = new SqliteRecordStore(engine.journal.database);
  t.deepEqual(record.listLocalIdTypes('rxx').map((x) => [x.teamId, x.authority, x.typeCode]), [
    [null, 'RXX', 'MRN'],
    ['rxx-gum', '*', 'GUMID'],
  ]);
  t.is(record.mappedLabel('rxx', 'PV1-10', 'GUM'), 'SEXUAL_HEALTH');
  const audits = senders.listAudit().filter((a) => a.actor === 'config').length;
  // Applying the same declaration again (a restart) writes nothing.
  const { applyDeclared } = await import('../../src/engine/senders.js');
  const { silentLogger } = await import('../../src/log.js');
  applyDeclared(engine.journal.database, ACCESS, silentLogger);
  t.is(senders.listAudit().filter((a) => a.actor === 'config').length, audits);
  t.is(record.listLocalIdTypes('rxx').length, 2);
});

test('an invalid declaration stops the start with every problem, senders and record alike, and applies nothing', async (t) => {
  const bad = {
    ...ACCESS,
    senders: [{ id: 'rxx-pas', organisation: 'rxx', name: 'PAS', allowCidrs: ['10.0.0.300/8'] }],
    identifierTypes: [{ organisation: 'nope', authority: 'X', typeCode: 'MRN' }, { organisation: 'rxx', authority: 'RXX' }],
    labelMappings: [{ organisation: 'rxx', source: 'PV1-99', code: 'GUM', label: 'purple' }],
  };
  const e = await t.throwsAsync(inProcessEngine(t, { access: bad }));
  t.is((e as { code?: string }).code, 'ADMIN_CONFIG_INVALID');
  const lines = e!.message.split('\n').slice(1).map((l) => l.trim());
  t.true(lines.some((l) => l.startsWith('senders[0].allowCidrs[0]:')), e!.message);
  t.true(lines.includes('identifierTypes[0].organisation: no organisation "nope"'), e!.message);
  t.true(lines.includes('identifierTypes[1].typeCode: must be a non-empty string'), e!.message);
  t.true(lines.some((l) => l.startsWith('labelMappings[0].source: expected one of')), e!.message);
  t.true(lines.some((l) => l.startsWith('labelMappings[0].label: expected one of')), e!.message);
  t.is(lines.length, 5, e!.message);
});
