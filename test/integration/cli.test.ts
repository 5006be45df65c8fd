// SPDX-License-Identifier: Apache-2.0
/** The CLI as a user runs it: real processes, real files, a real engine. */
import test from 'ava';
import { mkdirSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, ROOT, runCli, spawnEngine, tempDir } from '../helpers/engine.js';
import { adtA01 } from '../helpers/messages.js';
import { Journal } from '../../src/journal/journal.js';

async function engineFor(t: import('ava').ExecutionContext) {
  const dataDir = tempDir(t);
  const engine = await spawnEngine(dataDir);
  t.teardown(async () => {
    engine.proc.kill('SIGTERM');
    await engine.exited;
  });
  return { dataDir, engine };
}

test('start prints READY with the ports and logs JSON to stderr without bodies', async (t) => {
  const { engine } = await engineFor(t);
  t.true(engine.mllpPort > 0 && engine.httpPort > 0);
  const res = await fetch(`http://127.0.0.1:${engine.httpPort}/health`);
  t.is(res.status, 200);
  t.is(((await res.json()) as { status: string }).status, 'ok');
  const firstLog = engine.stderr().split('\n')[0]!;
  t.notThrows(() => JSON.parse(firstLog), 'JSON logs when stderr is not a TTY');
});

test('start runs the engine on a thread with a 128 MB-semi-space young generation; SIGTERM still stops it gracefully', async (t) => {
  const dataDir = tempDir(t);
  const engine = await spawnEngine(dataDir);
  const started = engine
    .stderr()
    .split('\n')
    .filter((l) => l.includes('"engine started"'))
    .map((l) => JSON.parse(l) as { youngGenerationMb: number | null });
  t.is(started.length, 1, 'the start is logged before READY');
  t.is(started[0]!.youngGenerationMb, 384);
  engine.proc.kill('SIGTERM');
  const { code } = await engine.exited;
  t.is(code, 0);
  t.regex(engine.stderr(), /"message":"engine stopped"/, 'the engine closed before the process ended');
});

test('logs carry no message bodies unless --log-bodies', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'm.hl7'), adtA01('BODY-1').replace('TESTPATIENT', 'ZZSECRETNAME'));
  for (const withBodies of [false, true]) {
    const engine = await spawnEngine(tempDir(t), withBodies ? ['--log-bodies', '--log-level', 'debug'] : ['--log-level', 'debug']);
    const r = await runCli(['send', join(dir, 'm.hl7'), '--port', String(engine.mllpPort)]);
    t.is(r.code, 0, r.stderr);
    engine.proc.kill('SIGTERM');
    await engine.exited;
    if (withBodies) t.regex(engine.stderr(), /ZZSECRETNAME/, 'bodies logged on request');
    else t.notRegex(engine.stderr(), /ZZSECRETNAME|H123456|19800101/, 'no PHI at debug level (control ids may appear)');
  }
});

test('send of real corpus files: a message and a 124-message batch file are each answered and journaled', async (t) => {
  const { engine } = await engineFor(t);
  const corpus = join(ROOT, 'test', 'fixtures', 'corpus');
  const r = await runCli(['send', join(corpus, 'fhirconv-ADT_A01-01.hl7'), join(corpus, 'oie-ADT-multi-01.hl7'), '--port', String(engine.mllpPort)]);
  const lines = r.stdout.trim().split('\n').map((l) => l.split('\t'));
  t.is(lines.length, 125);
  // These US feeds carry no NHS number (and use A04, which the record does not take): the record
  // refuses them with a reason, and nothing is an unexpected error.
  t.is(r.code, 1);
  t.true(lines.every(([, code]) => code === 'AR'));
  t.is(lines.filter(([, , text]) => /unsupported message type ADT\\S\\A04/.test(text ?? '')).length, 9);
  t.is(lines.filter(([, , text]) => /no patient identifier this organisation can use/.test(text ?? '')).length, 116);
});

test('send: one line per message, exit 0 when all AA, 1 when one is refused', async (t) => {
  const { engine } = await engineFor(t);
  const dir = tempDir(t);
  writeFileSync(join(dir, 'good.hl7'), adtA01('SEND-1') + adtA01('SEND-2'));
  const ok = await runCli(['send', join(dir, 'good.hl7'), '--port', String(engine.mllpPort)]);
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(ok.stdout.trim().split('\n').map((l) => l.split('\t').slice(0, 2).join(' ')), ['SEND-1 AA', 'SEND-2 AA']);
  writeFileSync(join(dir, 'bad.hl7'), 'MSH|^~\\&|A|B|C|D|20250101||ADT^A01|\rPID|1\r');
  const bad = await runCli(['send', join(dir, 'bad.hl7'), '--port', String(engine.mllpPort)]);
  t.is(bad.code, 1);
  t.regex(bad.stdout, /\tAR\t.*MSH-10/);
});

test('replay --to a running engine, then messages list --json and show', async (t) => {
  const { engine, dataDir } = await engineFor(t);
  const dir = tempDir(t);
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'a.hl7'), adtA01('REP-1'));
  writeFileSync(join(dir, 'sub', 'b.txt'), adtA01('REP-2') + '\n' + adtA01('REP-3'));
  writeFileSync(join(dir, 'ignored.json'), '{}');
  const r = await runCli(['replay', dir, '--to', `127.0.0.1:${engine.mllpPort}`], { cwd: dir });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /replayed 3 of 3 messages from 2 files: AA 3, AR 0, AE 0, duplicates 0, failed 0/);
  t.false(readdirSync(dir).some((f) => f.startsWith('.tributary-replay-')), 'state removed after a complete run');

  // A replayed duplicate gets the first ACK again; replay recognises it by that ACK's older MSH-7.
  await new Promise((r) => setTimeout(r, 2100));
  const again = await runCli(['replay', dir, '--to', `127.0.0.1:${engine.mllpPort}`], { cwd: dir });
  t.regex(again.stdout, /AA 3, AR 0, AE 0, duplicates 3/, 'a second replay is recognised as duplicates');

  const list = await runCli(['messages', 'list', '--data', dataDir, '--json']);
  t.is(list.code, 0, list.stderr);
  const items = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(items.length, 6);
  t.deepEqual(Object.keys(items[0]!), ['id', 'receivedAt', 'remoteAddress', 'messageType', 'controlId', 'status', 'ackCode', 'reason']);
  t.deepEqual(items.map((i) => i.status), ['accepted', 'accepted', 'accepted', 'duplicate', 'duplicate', 'duplicate']);
  const dups = await runCli(['messages', 'list', '--data', dataDir, '--status', 'duplicate']);
  t.is(dups.stdout.trim().split('\n').length, 4, 'header + 3 rows');

  const show = await runCli(['messages', 'show', String(items[0]!.id), '--data', dataDir]);
  t.is(show.code, 0);
  t.regex(show.stdout, /status {5}accepted/);
  t.regex(show.stdout, /\n {2}PID\|1\|\|H123456/);
  t.regex(show.stdout, /ACK \(AA\):\n {2}MSH\|/);
  const raw = await runCli(['messages', 'show', String(items[0]!.id), '--data', dataDir, '--raw']);
  t.is(raw.stdout, adtA01('REP-1'));
});

test('replay --data ingests without a server and resumes an interrupted run', async (t) => {
  const dataDir = tempDir(t);
  const dir = tempDir(t);
  for (let i = 0; i < 5; i++) writeFileSync(join(dir, `m${i}.hl7`), adtA01(`OFF-${i}`));
  // Simulate an interrupted run: a state file saying the first two files were done.
  const state = join(dir, 'state.log');
  writeFileSync(state, `${join(dir, 'm0.hl7')}\t0\n${join(dir, 'm1.hl7')}\t0\n`);
  const r = await runCli(['replay', dir, '--data', dataDir, '--state', state], { cwd: dir });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /replayed 3 of 5 messages from 5 files \(2 skipped, already replayed\): AA 3/);
  t.false(existsSync(state));
  const list = await runCli(['messages', 'list', '--data', dataDir, '--json']);
  t.deepEqual(list.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { controlId: string }).controlId), ['OFF-2', 'OFF-3', 'OFF-4']);
  const dry = await runCli(['replay', dir, '--dry-run'], { cwd: dir });
  t.regex(dry.stdout, /dry run: 5 files, 5 messages, 0 would be rejected/);
});

/** stderr split into lines; asserts it ends with a newline so a partial line cannot hide. */
function stderrLines(stderr: string): string[] {
  return stderr === '' ? [] : stderr.replace(/\n$/, '').split('\n');
}

test('user errors are one line and a non-zero exit, never a stack trace', async (t) => {
  const dir = tempDir(t);
  // [args, expected stderr, number of stderr lines]
  const cases: Array<[string[], RegExp, number]> = [
    [['start', '--bogus'], /^tributary: Unknown argument: bogus \(see tributary --help\)\n$/, 1],
    [['--bogus'], /^tributary: .*\(see tributary --help\)\n$/, 1],
    [['send', join(dir, 'missing.hl7'), '--port', '1'], /cannot read .*missing\.hl7: ENOENT/, 1],
    [['replay', dir], /^tributary: replay needs --to HOST:PORT or --data DIR \(see tributary --help\)\n$/, 1],
    [['replay', dir, '--to', 'h:1', '--data', join(dir, 'd')], /^tributary: Arguments to and data are mutually exclusive/, 1],
    [['replay', dir, '--to', 'nohostport'], /invalid address "nohostport"/, 1],
    [['messages', 'list', '--data', join(dir, 'nothing')], /no database here/, 1],
    [['messages'], /^tributary: messages needs a subcommand: list, show or reprocess/, 1],
    [['admin', 'org', 'add', '--id', 'x', '--data', join(dir, 'admin')], /^tributary: Missing required argument: name \(see tributary --help\)\n$/, 1],
    [['start', '--config', join(dir, 'nope.json')], /cannot read config file/, 1],
    [['frobnicate'], /^tributary: Unknown argument: frobnicate \(see tributary --help\)\n$/, 1],
  ];
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ mllp: { port: 'x', extra: 1 }, nope: true }));
  cases.push([['start', '--config', join(dir, 'bad.json'), '--data', join(dir, 'd')], /invalid configuration:\n {2}nope: unknown key\n {2}mllp\.extra: unknown key\n {2}mllp\.port: Expected integer/, 4]);
  for (const [args, re, lines] of cases) {
    const what = args.join(' ');
    const r = await runCli(args, { cwd: dir });
    t.is(r.code, 2, what);
    t.regex(r.stderr, re, what);
    t.true(r.stderr.endsWith('\n'), `${what}: stderr ends with a newline`);
    t.is(stderrLines(r.stderr).length, lines, `${what}: exactly ${lines} stderr line(s), got ${JSON.stringify(r.stderr)}`);
    t.notRegex(r.stderr, /internal error/, what);
    t.notRegex(r.stderr, /\n\s+at .+:\d+:\d+/, `no stack trace for ${what}`);
  }
  t.false(existsSync(join(dir, 'admin')), 'a refused admin command never ran (it would create the data directory)');
  t.false(existsSync(join(dir, 'd')), 'a refused replay never ran');
});

test('numeric options are validated once, in the parser: one line, exit 2, the command never runs', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'm.hl7');
  writeFileSync(file, adtA01('NUM-1'));
  const data = join(dir, 'data');
  const cases: Array<[string[], RegExp]> = [
    [['send', file, '--port', 'abc'], /--port must be a port number from 1 to 65535/],
    [['send', file, '--port', '0'], /--port must be a port number from 1 to 65535, got 0/],
    [['send', file, '--port', '65536'], /--port must be a port number from 1 to 65535, got 65536/],
    [['send', file, '--port', '25.5'], /--port must be .*, got 25\.5/],
    [['send', file, '--port'], /Not enough arguments following: port/],
    [['send', file, '--port', '1', '--port', '2'], /--port given more than once/],
    [['send', file, '--timeout-ms', '0'], /--timeout-ms must be a whole number of milliseconds/],
    [['send', file, '--timeout-ms', 'soon'], /--timeout-ms must be/],
    [['start', '--data', data, '--mllp-port', '-1'], /--mllp-port must be a port number from 0 to 65535/],
    [['start', '--data', data, '--http-port', 'x'], /--http-port must be a port number from 0 to 65535/],
    [['replay', dir, '--data', data, '--rate', '-1'], /--rate must be a number of messages per second, 0 or more/],
    [['replay', dir, '--data', data, '--rate', 'fast'], /--rate must be/],
    [['replay', dir, '--data', data, '--window', '0'], /--window must be a whole number, 1 or more, got 0/],
    [['replay', dir, '--data', data, '--window', '2.5'], /--window must be a whole number/],
    [['replay', dir, '--data', data, '--timeout-ms', '-5'], /--timeout-ms must be/],
    [['messages', 'list', '--data', data, '--limit', '-1'], /--limit must be a whole number, 0 or more, got -1/],
    [['messages', 'list', '--data', data, '--limit', '1.5'], /--limit must be a whole number/],
    [['messages', 'list', '--data', data, '--limit', 'ten'], /--limit must be a whole number/],
    [['messages', 'show', 'abc', '--data', data], /id must be a positive whole number/],
    [['messages', 'show', '0', '--data', data], /id must be a positive whole number, got 0/],
    [['messages', 'show', '2.5', '--data', data], /id must be a positive whole number/],
    [['admin', 'partner-grant', 'show', '--id', 'x', '--data', data], /id must be a positive whole number/],
  ];
  for (const [args, re] of cases) {
    const what = args.join(' ');
    const r = await runCli(args, { cwd: dir });
    t.is(r.code, 2, what);
    t.regex(r.stderr, re, what);
    t.regex(r.stderr, /^tributary: [^\n]+ \(see tributary --help\)\n$/, `${what}: one line, got ${JSON.stringify(r.stderr)}`);
    t.notRegex(r.stderr, /internal error|NaN/, what);
    t.is(r.stdout, '', `${what}: the command did not run`);
  }
  t.false(existsSync(data), 'no command ran (start, replay and admin would create the data directory)');
});

test('a port in use is one clear line', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const r = await runCli(['start', '--data', tempDir(t), '--mllp-port', String(port), '--http-port', '0']);
  t.is(r.code, 2);
  t.regex(r.stderr, new RegExp(`MLLP port ${port} on 127.0.0.1 is already in use`));
});

test('transport failures exit 3: nothing listening (send, replay), no ACK in time', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'm.hl7'), adtA01('X'));
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const r = await runCli(['send', join(dir, 'm.hl7'), '--port', String(port)]);
  t.is(r.code, 3, r.stderr);
  t.is(r.stderr, `tributary: cannot connect to 127.0.0.1:${port}: ECONNREFUSED\n`);

  const replay = await runCli(['replay', dir, '--to', `127.0.0.1:${port}`], { cwd: dir });
  t.is(replay.code, 3, replay.stderr);
  t.regex(replay.stderr, /^tributary: cannot connect to 127\.0\.0\.1:\d+: ECONNREFUSED\n$/);

  // A server that accepts and never answers: NET_ACK_TIMEOUT.
  const silent = net.createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((r) => silent.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  t.teardown(() => silent.close());
  const silentPort = (silent.address() as net.AddressInfo).port;
  const slow = await runCli(['send', join(dir, 'm.hl7'), '--port', String(silentPort), '--timeout-ms', '300']);
  t.is(slow.code, 3, slow.stderr);
  t.regex(slow.stdout, /\tNO-ACK\tno ACK from 127\.0\.0\.1:\d+ within 300 ms/);
});

test('send unwraps a file that still carries MLLP framing (a capture): every frame is a message', async (t) => {
  const { engine } = await engineFor(t);
  const dir = tempDir(t);
  const capture = join(dir, 'capture.hl7');
  // VT message FS CR per frame, as captured on the wire; a newline between frames as some tools write.
  writeFileSync(capture, `\x0b${adtA01('CAP-1')}\x1c\r\n\x0b${adtA01('CAP-2')}\x1c\r\x0b${adtA01('CAP-3')}\x1c\r`);
  const r = await runCli(['send', capture, '--port', String(engine.mllpPort)]);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.deepEqual(r.stdout.trim().split('\n').map((l) => l.split('\t').slice(0, 2).join(' ')), ['CAP-1 AA', 'CAP-2 AA', 'CAP-3 AA']);
  const dry = await runCli(['replay', capture, '--dry-run'], { cwd: dir });
  t.regex(dry.stdout, /dry run: 1 files, 3 messages, 0 would be rejected/);
});

test('replay of a file with 200,000 messages: no stack overflow, files streamed', async (t) => {
  const dir = tempDir(t);
  const lines: string[] = [];
  for (let i = 0; i < 200_000; i++) lines.push(`MSH|^~\\&|PAS|RXX|TRIBUTARY|TRIBUTARY|20250314081530||ADT^A01|BIG-${i}|P|2.5.1\rPID|1||H${i}\r`);
  writeFileSync(join(dir, 'big.hl7'), lines.join(''));
  writeFileSync(join(dir, 'small.hl7'), adtA01('SMALL-1'));
  const dry = await runCli(['replay', dir, '--dry-run'], { cwd: dir, timeoutMs: 120_000 });
  t.is(dry.code, 0, dry.stderr);
  t.notRegex(dry.stderr, /Maximum call stack/);
  t.regex(dry.stdout, /^dry run: 2 files, 200001 messages, 0 would be rejected by the parser; nothing sent\n$/);
});

test('replay on a terminal shows a progress bar and honours --rate', async (t) => {
  const dir = tempDir(t);
  for (let i = 0; i < 20; i++) writeFileSync(join(dir, `m${String(i).padStart(2, '0')}.hl7`), adtA01(`TTY-${i}`));
  const dataDir = join(tempDir(t), 'data');
  // `script` (util-linux) runs the CLI on a pseudo-terminal, as a user at a shell would.
  const started = Date.now();
  const r = await new Promise<{ out: string; code: number | null }>((resolvePromise) => {
    const proc = spawn('script', ['-qec', `${process.execPath} ${BIN} replay ${dir} --data ${dataDir} --rate 50`, '/dev/null'], { cwd: dir });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('close', (code) => resolvePromise({ out, code }));
  });
  const elapsed = Date.now() - started;
  t.is(r.code, 0, r.out);
  t.regex(r.out, /\[#+\.*\] \d+\/20 \d+ msg\/s/);
  t.regex(r.out, /\[#{30}\] 20\/20/);
  t.regex(r.out, /replayed 20 of 20 messages from 20 files: AA 20/);
  t.true(elapsed >= 380, `20 messages at 50/s take at least 0.38 s (took ${elapsed} ms)`);
});

test('replay --data goes through senders and the record; with several senders it asks for --sender', async (t) => {
  const data = tempDir(t);
  const dir = tempDir(t);
  writeFileSync(join(dir, 'a.hl7'), adtA01('RD-1') + adtA01('RD-2', { visit: 'VIS0002' }));
  const first = await runCli(['replay', dir, '--data', data, '--fresh']);
  t.is(first.code, 0, first.stderr);
  t.is((await runCli(['admin', 'org', 'add', '--id', 'lab', '--name', 'Lab', '--data', data])).code, 0);
  t.is((await runCli(['admin', 'sender', 'add', '--id', 'lab-feed', '--org', 'lab', '--name', 'Lab feed', '--allow', '10.0.0.0/8', '--data', data])).code, 0);
  const ambiguous = await runCli(['replay', dir, '--data', data, '--fresh']);
  t.is(ambiguous.code, 2);
  t.is(ambiguous.stderr, `tributary: ${data} has 2 enabled senders: name the one these messages came from with --sender ID\n`);
  const named = await runCli(['replay', dir, '--data', data, '--fresh', '--sender', 'lab-feed']);
  t.is(named.code, 0, 'the patient exists now (the demo sender created it): the lab adds its own encounters');
  const journal = Journal.open({ file: join(data, 'tributary.db'), readonly: true });
  t.teardown(() => journal.close());
  t.deepEqual(journal.list({ withRaw: false }).map((r) => [r.controlId, r.sender, r.status]), [
    ['RD-1', 'demo-loopback', 'accepted'],
    ['RD-2', 'demo-loopback', 'accepted'],
    ['RD-1', 'lab-feed', 'accepted'],
    ['RD-2', 'lab-feed', 'accepted'],
  ]);
  const encounters = journal.database.prepare("SELECT organisation_id, key FROM record_item WHERE kind = 'encounter' ORDER BY id").all();
  t.deepEqual(encounters, [
    { organisation_id: 'demo', key: 'VIS0001' },
    { organisation_id: 'demo', key: 'VIS0002' },
    { organisation_id: 'lab', key: 'VIS0001' },
    { organisation_id: 'lab', key: 'VIS0002' },
  ]);
});
