// SPDX-License-Identifier: Apache-2.0
/**
 * Channels on the live message path, over real MLLP into a real engine: routing (and "no channel
 * for this message"), filters, transforms reaching the record, rejections, a looping script costing
 * one AE while the engine keeps serving, enhanced acknowledgment mode, per-channel outcome rows,
 * hot reload on an open connection (a bad edit refused, the old version kept), and a start refused
 * on invalid channels.
 */
import test from 'ava';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { MllpDecoder, encodeFrame } from '../../src/mllp/index.js';
import { join } from 'node:path';
import type { Engine } from '../../src/engine/engine.js';
import { MllpClient } from '../../src/interfaces/mllp-client.js';
import { ROOT, inProcessEngine, runCli, tempDir } from '../helpers/engine.js';
import { adtA01, msa } from '../helpers/messages.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'channels', 'ingest');

async function engineWithChannels(t: Parameters<typeof inProcessEngine>[0]): Promise<{ engine: Engine; dir: string; client: MllpClient }> {
  const dir = tempDir(t);
  cpSync(FIXTURES, dir, { recursive: true });
  const engine = await inProcessEngine(t, { channels: { dir, watch: true } });
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort, ackTimeoutMs: 5000 });
  t.teardown(() => client.close());
  return { engine, dir, client };
}

const send = async (client: MllpClient, message: string): Promise<ReturnType<typeof msa>> => msa(await client.send(message));
const a08 = (id: string, patientClass = 'I'): string => adtA01(id).replace('ADT^A01^ADT_A01', 'ADT^A08^ADT_A01').replace('EVN|A01', 'EVN|A08').replace('PV1|1|I|', `PV1|1|${patientClass}|`);

test('routing, filters, transforms and rejections decide the ACK; each channel outcome is journaled', async (t) => {
  const { engine, dir, client } = await engineWithChannels(t);
  // test-patients (RXX): passes, into the record.
  t.is((await send(client, adtA01('C-1'))).code, 'AA');
  // test-patients: rejected by its reject step.
  const rejected = await send(client, adtA01('C-2', { visit: 'V2' }).replace('TESTPATIENT^ALEX', 'TESTREJECT^ALEX'));
  t.is(rejected.code, 'AR');
  t.is(rejected.text, 'channel test-patients, step transform[0]: rejected: test patients are not accepted');
  // mental-health (PSYCH): PV1-10 MED is filtered (accepted, nothing stored) ...
  t.is((await send(client, adtA01('C-3', { facility: 'PSYCH', visit: 'V3' }))).code, 'AA');
  // ... PV1-10 PSY is labelled by the transform, and the label reaches the record.
  const psy = adtA01('C-4', { facility: 'PSYCH', visit: 'V4' }).replace('|||MED|', '|||PSY|') + 'ZXX|internal audit\r';
  t.is((await send(client, psy)).code, 'AA');
  // No channel takes SIU here.
  const siu = adtA01('C-5').replace('ADT^A01^ADT_A01', 'SIU^S12^SIU_S12');
  const noRoute = await send(client, siu);
  t.is(noRoute.code, 'AR');
  t.regex(noRoute.text, /no channel for this message \(SIU\\S\\S12\) at MSH-9/);

  const rows = engine.journal.list({ withRaw: false });
  t.deepEqual(rows.map((r) => [r.controlId, r.status, r.reasonCode]), [
    ['C-1', 'accepted', null],
    ['C-2', 'rejected', 'CHANNEL_REJECTED'],
    ['C-3', 'accepted', null],
    ['C-4', 'accepted', null],
    ['C-5', 'rejected', 'CHANNEL_NO_ROUTE'],
  ]);
  const outcome = (i: number) => engine.journal.channelOutcomes(rows[i]!.id).map((o) => [o.channel, o.outcome, o.step]);
  t.deepEqual(outcome(0), [['test-patients', 'passed', null]]);
  t.deepEqual(outcome(1), [['test-patients', 'rejected', 'transform[0]']]);
  t.deepEqual(outcome(2), [['mental-health', 'filtered', null]]);
  t.deepEqual(outcome(3), [['mental-health', 'passed', null]]);
  t.deepEqual(outcome(4), []);
  // `channels list` shows what each channel did with the messages of a data directory.
  const listed = await runCli(['channels', 'list', dir, '--json', '--data', engine.config.dataDir]);
  t.is(listed.code, 0, listed.stderr);
  const counters = Object.fromEntries(listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; counters: unknown }).map((c) => [c.name, c.counters]));
  t.deepEqual(counters['test-patients'], { received: 2, passed: 1, filtered: 0, rejected: 1, errored: 0, queued: 0 });
  t.deepEqual(counters['mental-health'], { received: 2, passed: 1, filtered: 1, rejected: 0, errored: 0, queued: 0 });

  const db = engine.journal.database;
  const encounters = db.prepare("SELECT key, label, control_id FROM record_item WHERE kind = 'encounter' ORDER BY id").all();
  t.deepEqual(encounters, [
    { key: 'VIS0001', label: 'GENERAL_HEALTH', control_id: 'C-1' },
    { key: 'V4', label: 'MENTAL_HEALTH', control_id: 'C-4' },
  ]);
  // The journal keeps the message as received (ZXX and all); the transform worked on a copy.
  t.regex(engine.journal.get(rows[3]!.id)!.raw.toString(), /ZXX\|internal audit/);
});

test('a looping script costs one AE with the channel and step; the engine keeps serving the same connection', async (t) => {
  const { engine, client } = await engineWithChannels(t);
  t.is((await send(client, adtA01('L-0'))).code, 'AA');
  const looped = await send(client, a08('L-1', 'X'));
  t.is(looped.code, 'AE');
  t.regex(looped.text, /channel slow, step transform\[0\]: script exceeded its time limit of 50 ms/);
  t.is((await send(client, a08('L-2'))).code, 'AA', 'the next message through the same script passes');
  t.is((await send(client, adtA01('L-3', { visit: 'V9' }))).code, 'AA');
  const rows = engine.journal.list({ withRaw: false });
  t.deepEqual(rows.map((r) => [r.controlId, r.status, r.reasonCode]), [
    ['L-0', 'accepted', null],
    ['L-1', 'error', 'CHANNEL_SCRIPT_TIMEOUT'],
    ['L-2', 'accepted', null],
    ['L-3', 'accepted', null],
  ]);
  t.deepEqual(engine.journal.channelOutcomes(rows[1]!.id).map((o) => [o.channel, o.outcome, o.code]), [['slow', 'error', 'CHANNEL_SCRIPT_TIMEOUT']]);
});

test('enhanced mode: MSH-15 alone gets commit codes (CA/CR); MSH-16 AL gets the application ACK', async (t) => {
  const { client } = await engineWithChannels(t);
  t.is((await send(client, adtA01('E-1', { ackModes: 'AL|NE' }))).code, 'CA');
  t.is((await send(client, adtA01('E-2', { ackModes: 'AL|AL', visit: 'V2' }))).code, 'AA');
  const refused = adtA01('E-3', { ackModes: 'AL|NE', visit: 'V3' }).replace('TESTPATIENT^ALEX', 'TESTREJECT^ALEX');
  t.is((await send(client, refused)).code, 'CR');
  t.is((await send(client, adtA01('E-4', { ackModes: '|' }))).code, 'AA', 'original mode');
});

test('hot reload on an open connection: a valid edit applies to the next message, an invalid one is refused and the old version runs on', async (t) => {
  const { engine, dir, client } = await engineWithChannels(t);
  const file = join(dir, 'test-patients.yaml');
  const original = readFileSync(file, 'utf8');
  t.is((await send(client, adtA01('H-1'))).code, 'AA');
  const v1 = engine.journal.channelOutcomes(engine.journal.list({ withRaw: false })[0]!.id)[0]!.version;

  // Now refuse every admission from RXX.
  writeFileSync(file, original.replace("when: { path: PID-5.1, matches: '^TESTREJECT' }", "when: { path: PID-5.1, exists: true }"));
  const v2 = await waitFor(async () => {
    const v = (await health(engine)).channels.versions['test-patients'];
    return v !== v1 ? v : undefined;
  });
  t.is((await send(client, adtA01('H-2', { visit: 'V2' }))).code, 'AR');

  // An invalid edit (unknown step type) is refused: the previous version keeps running.
  writeFileSync(file, original.replace('type: reject', 'type: rejekt'));
  await new Promise((r) => setTimeout(r, 1000));
  t.is((await health(engine)).channels.versions['test-patients'], v2);
  t.is((await send(client, adtA01('H-3', { visit: 'V3' }))).code, 'AR', 'still the edited (valid) version');
  const rows = engine.journal.list({ withRaw: false });
  t.deepEqual(rows.map((r) => engine.journal.channelOutcomes(r.id)[0]!.version), [v1, v2, v2]);
  t.true(rows.every((r) => r.connectionId === rows[0]!.connectionId), 'one connection throughout');
});

test('an outbound MLLP destination: delivered from the outbox after the commit, transformed, in order; the ACK reflects the record', async (t) => {
  // A downstream system on loopback that answers AA to everything and keeps what it got.
  const received: string[] = [];
  const server = net.createServer((sock) => {
    const decoder = new MllpDecoder({ maxFrameBytes: 1 << 20, oversizePrefixBytes: 1024 });
    sock.on('data', (chunk) => {
      for (const ev of decoder.push(chunk)) {
        if (ev.kind !== 'frame') continue;
        const text = ev.payload.toString('utf8');
        received.push(text);
        const id = text.split('\r')[0]!.split('|')[9];
        sock.write(encodeFrame(`MSH|^~\\&|GP|GP|||20250101000000||ACK|X${received.length}|P|2.5\rMSA|AA|${id}\r`));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;

  const dir = tempDir(t);
  cpSync(FIXTURES, dir, { recursive: true });
  writeFileSync(
    join(dir, 'forward.yaml'),
    ['name: forward', 'source:', "  types: ['ORU^R01']", 'transform:', '  - type: set', '    path: MSH-5', '    value: GPSYS', 'destinations:', '  - type: mllp', '    name: gp', '    host: 127.0.0.1', `    port: ${port}`, ''].join('\n'),
  );
  const engine = await inProcessEngine(t, { channels: { dir, watch: false } });
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort, ackTimeoutMs: 5000 });
  t.teardown(() => client.close());
  const oru = (id: string): string =>
    ['MSH|^~\\&|LAB|RXX|TRIBUTARY|TRIBUTARY|20250314093005||ORU^R01|' + id + '|P|2.5', 'PID|1||9434765919^^^NHS^NH||TESTPATIENT^ALEX||19800101|U', `OBR|1||F-${id}|UE^U and E^L|||20250314081500|||||||||||||||20250314093000||CH|F`, 'OBX|1|NM|K^Potassium^L||4.2|mmol/L|||||F|||20250314081500'].join('\r') + '\r';
  t.is((await send(client, adtA01('F-0'))).code, 'AA', 'the patient (auto-created by the demo organisation)');
  for (const id of ['F-1', 'F-2', 'F-3']) t.is((await send(client, oru(id))).code, 'AA');
  await waitFor(async () => (received.length >= 3 ? true : undefined));
  t.deepEqual(received.map((m) => m.split('\r')[0]!.split('|')[9]), ['F-1', 'F-2', 'F-3'], 'in order');
  t.true(received.every((m) => m.split('\r')[0]!.split('|')[4] === 'GPSYS'), 'the transformed copy is what goes out');
  const rows = engine.journal.database.prepare("SELECT destination, status, control_id FROM outbox ORDER BY id").all();
  await waitFor(async () => ((engine.journal.database.prepare("SELECT count(*) FROM outbox WHERE status = 'delivered'").pluck().get() as number) === 3 ? true : undefined));
  t.deepEqual(rows.map((r) => (r as { destination: string }).destination), ['forward/gp', 'forward/gp', 'forward/gp']);
  // The ORUs also went into the record (the record channel), which decided the ACK.
  t.is(engine.journal.database.prepare("SELECT count(*) FROM record_item WHERE kind = 'report'").pluck().get(), 3);
});

test('tributary start refuses invalid channels with every problem, one per line', async (t) => {
  const r = await runCli(['start', '--data', tempDir(t), '--mllp-port', '0', '--http-port', '0', '--channels', join(ROOT, 'test', 'fixtures', 'channels', 'broken')]);
  t.is(r.code, 2);
  t.regex(r.stderr, /^tributary: invalid channels \(16 problems\):\n/);
  t.regex(r.stderr, /adt\.yaml: source\.types\[1\]: invalid message type pattern "adt\^a01"/);
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
});

async function health(engine: Engine): Promise<{ channels: { versions: Record<string, string> } }> {
  const r = await fetch(`http://127.0.0.1:${engine.httpPort}/health`);
  return (await r.json()) as { channels: { versions: Record<string, string> } };
}

async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('messages reprocess: a refused message, sent again after the channel is fixed, and an edited one; originals kept, audited', async (t) => {
  const { engine, dir, client } = await engineWithChannels(t);
  const refused = adtA01('R-1', { visit: 'V7' }).replace('TESTPATIENT^ALEX', 'TESTREJECT^ALEX');
  t.is((await send(client, refused)).code, 'AR');
  const original = engine.journal.list({ withRaw: false })[0]!;
  // The analyst fixes the channel (test patients are fine after all), then reprocesses.
  const file = join(dir, 'test-patients.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace("matches: '^TESTREJECT'", "matches: '^NEVERMATCHES'"));
  await client.close();
  await engine.close(); // the CLI may also run beside a live engine; closed here to keep the test's counts exact
  const data = engine.config.dataDir;
  const again = await runCli(['messages', 'reprocess', String(original.id), '--data', data, '--channels', dir, '--actor', 'ana']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, new RegExp(`^${original.id} -> ${original.id + 1}\\tAA\\t\\n$`));

  // An edited reprocess: the message with another visit number, and a reason.
  const edit = join(tempDir(t), 'fixed.hl7');
  writeFileSync(edit, refused.replace('V7^^^RXX', 'V8^^^RXX'));
  const noReason = await runCli(['messages', 'reprocess', String(original.id), '--data', data, '--channels', dir, '--edit', edit]);
  t.is(noReason.code, 2);
  t.is(noReason.stderr, 'tributary: --edit needs --reason: say why the message was changed\n');
  const edited = await runCli(['messages', 'reprocess', String(original.id), '--data', data, '--channels', dir, '--edit', edit, '--reason', 'wrong visit number', '--actor', 'ana']);
  t.is(edited.code, 0, edited.stderr);

  const { Journal } = await import('../../src/journal/journal.js');
  const journal = Journal.open({ file: join(data, 'tributary.db'), readonly: true });
  t.teardown(() => journal.close());
  const rows = journal.list();
  t.deepEqual(rows.map((r) => [r.controlId, r.status, r.reprocessOf]), [
    ['R-1', 'rejected', null],
    ['R-1', 'accepted', original.id],
    ['R-1', 'accepted', original.id],
  ]);
  t.is(rows[0]!.reasonCode, 'CHANNEL_REJECTED', 'the original row is unchanged');
  t.is(rows[1]!.note, 'reprocessed by ana');
  t.is(rows[2]!.note, `reprocessed by ana; edited (${edit}): wrong visit number`);
  t.regex(rows[2]!.raw.toString(), /V8\^\^\^RXX/);
  const visits = journal.database.prepare("SELECT key FROM record_item WHERE kind = 'encounter' ORDER BY id").pluck().all();
  t.deepEqual(visits, ['V7', 'V8']);
  const audit = journal.database.prepare("SELECT actor, action, object_id, detail FROM audit WHERE action LIKE 'message.%' ORDER BY id").all() as Array<{ actor: string; action: string; object_id: string; detail: string }>;
  t.deepEqual(audit.map((a) => [a.actor, a.action, a.object_id, (JSON.parse(a.detail) as { reason: string | null }).reason]), [
    ['ana', 'message.reprocess', String(original.id), null],
    ['ana', 'message.edit-reprocess', String(original.id), 'wrong visit number'],
  ]);
  const shown = await runCli(['messages', 'show', String(rows[2]!.id), '--data', data]);
  t.regex(shown.stdout, new RegExp(`reprocess  of message ${original.id}: reprocessed by ana; edited`));
});

test('channels test checks the record too: a wrong expectation fails with a readable line, the fix passes', async (t) => {
  const dir = tempDir(t);
  cpSync(join(ROOT, 'channels', 'record.yaml'), join(dir, 'record.yaml'));
  const cases = join(dir, 'tests', 'record');
  cpSync(join(ROOT, 'channels', 'tests', 'record'), cases, { recursive: true });
  const expectFile = join(cases, 'adt-a01.expect.yaml');
  writeFileSync(expectFile, readFileSync(expectFile, 'utf8').replace('label: GENERAL_HEALTH', 'label: MENTAL_HEALTH'));
  const failing = await runCli(['channels', 'test', dir]);
  t.is(failing.code, 1);
  t.regex(failing.stdout, /adt-a01\.hl7: record encounter VIS0001: label expected MENTAL_HEALTH, got GENERAL_HEALTH\n/);
  writeFileSync(expectFile, readFileSync(expectFile, 'utf8').replace('label: MENTAL_HEALTH', 'label: GENERAL_HEALTH'));
  const passing = await runCli(['channels', 'test', dir]);
  t.is(passing.code, 0, passing.stdout);
});

test('channels list counts what waits in the outbox for a destination that is down (queued)', async (t) => {
  // A port nothing listens on: delivery keeps retrying (connect failures never dead-letter).
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const dir = tempDir(t);
  writeFileSync(join(dir, 'record.yaml'), readFileSync(join(FIXTURES, 'record.yaml')));
  writeFileSync(join(dir, 'test-patients.yaml'), readFileSync(join(FIXTURES, 'test-patients.yaml')));
  writeFileSync(join(dir, 'forward.yaml'), ['name: forward', 'source:', "  types: ['ADT^A01']", 'destinations:', '  - type: mllp', '    name: down', '    host: 127.0.0.1', `    port: ${port}`, ''].join('\n'));
  const engine = await inProcessEngine(t, { channels: { dir, watch: false } });
  const client = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort, ackTimeoutMs: 5000 });
  t.teardown(() => client.close());
  t.is((await send(client, adtA01('Q-1'))).code, 'AA', 'accepted: the record took it, the forward waits in the outbox');
  t.is((await send(client, adtA01('Q-2', { visit: 'V2' }))).code, 'AA');
  const listed = await runCli(['channels', 'list', dir, '--json', '--data', engine.config.dataDir]);
  const forward = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; counters: { queued: number; passed: number } }).find((c) => c.name === 'forward')!;
  t.deepEqual([forward.counters.passed, forward.counters.queued], [2, 2]);
});
