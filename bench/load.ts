// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench`: an MLLP load generator that verifies every ACK.
 *
 *   npm run bench -- --port 2575 [--connections 8] [--messages 20000] [--pipeline 1]
 *   npm run bench -- --spawn --connections 32 --json
 *
 * Each message gets a unique MSH-10; an ACK counts only when MSA-1 is AA or CA and MSA-2 is the
 * MSH-10 of the oldest frame in flight on its connection. See docs/benchmarks.md.
 */
import { parseFlags, usage as usageOf } from './lib/cli.js';
import { performance } from 'node:perf_hooks';
import { LoadClient, type PhaseResult } from './lib/load-client.js';
import { templatesFor, type Mix } from './lib/messages.js';
import { busiestThreadMs, readProc, type ProcSample } from './lib/proc.js';
import { spawnEngine, type SpawnedEngine } from './lib/engine.js';
import { formatTable, r3, summarizeLatency, thousands } from './lib/stats.js';

const HELP = `usage: npm run bench -- (--port N | --spawn) [options]

  --host H            server address (default 127.0.0.1)
  --port N            MLLP port of a running server
  --spawn             start bin/tributary on a temporary data directory, measure it, stop it
  --connections N     persistent connections (default 8)
  --messages M        measured messages in total (default 20000)
  --pipeline K        frames in flight per connection (default 1: send, wait for ACK, send)
  --mix adt|oru|mixed ADT^A01 ~1.1 KB, ORU^R01 ~3 KB, or alternating (default adt)
  --file f.hl7        use this message as the template (MSH-10 is replaced per message)
  --warmup N          messages sent first and not counted (default 2000)
  --max-seconds S     hard bound on the whole run, warm-up included (default 60)
  --timeout-ms T      a frame without its ACK after T ms fails as timeout (default 5000)
  --abort-on-errors N stop once N messages failed (default 1000, 0 = never)
  --server-pid PID    report server CPU per message and peak RSS from /proc/PID
  --engine-node-arg A with --spawn: extra Node flag for the engine (repeatable),
                      e.g. --engine-node-arg=--cpu-prof --engine-node-arg=--cpu-prof-dir=/tmp/prof
  --engine-arg A      with --spawn: extra argument for "tributary start" (repeatable),
                      e.g. --engine-arg=--channels --engine-arg=bench/channels/steps
  --label L           name recorded in the JSON output
  --json              print one JSON line instead of the table`;

interface Options {
  host: string;
  port: number;
  spawn: boolean;
  connections: number;
  messages: number;
  pipeline: number;
  mix: Mix;
  file: string | undefined;
  warmup: number;
  maxSeconds: number;
  timeoutMs: number;
  abortOnErrors: number;
  serverPid: number | undefined;
  engineNodeArgs: string[];
  engineArgs: string[];
  label: string | undefined;
  json: boolean;
}

function usage(message: string): never {
  return usageOf(HELP, `${message}`);
}

function parseOptions(argv: string[]): Options {
  const v = parseFlags(
    argv,
    {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      spawn: { type: 'boolean', default: false },
      connections: { type: 'string', short: 'c', default: '8' },
      messages: { type: 'string', short: 'n', default: '20000' },
      pipeline: { type: 'string', short: 'k', default: '1' },
      mix: { type: 'string', default: 'adt' },
      file: { type: 'string' },
      warmup: { type: 'string', default: '2000' },
      'max-seconds': { type: 'string', default: '60' },
      'timeout-ms': { type: 'string', default: '5000' },
      'abort-on-errors': { type: 'string', default: '1000' },
      'server-pid': { type: 'string' },
      'engine-node-arg': { type: 'string', multiple: true, default: [] },
      'engine-arg': { type: 'string', multiple: true, default: [] },
      label: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    HELP,
  );
  const int = (name: string, raw: string | undefined, min: number, max: number): number => {
    const n = Number(raw);
    if (raw === undefined || !Number.isSafeInteger(n) || n < min || n > max) usage(`--${name}: expected an integer in ${min}..${max}, got ${String(raw)}`);
    return n;
  };
  const num = (name: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) usage(`--${name}: expected a number in ${min}..${max}, got ${raw}`);
    return n;
  };
  const mix = v.mix;
  if (mix !== 'adt' && mix !== 'oru' && mix !== 'mixed') usage(`--mix: expected adt, oru or mixed, got ${mix}`);
  if (!v.spawn && v.port === undefined) usage('give --port N or --spawn');
  if (!v.spawn && (v['engine-arg'].length > 0 || v['engine-node-arg'].length > 0)) usage('--engine-arg and --engine-node-arg need --spawn');
  if (v.spawn && (v.port !== undefined || v['server-pid'] !== undefined)) usage('--spawn picks the port and pid itself; drop --port/--server-pid');
  return {
    host: v.host,
    port: v.port === undefined ? 0 : int('port', v.port, 1, 65535),
    spawn: v.spawn,
    connections: int('connections', v.connections, 1, 10_000),
    messages: int('messages', v.messages, 1, 100_000_000),
    pipeline: int('pipeline', v.pipeline, 1, 1024),
    mix,
    file: v.file,
    warmup: int('warmup', v.warmup, 0, 100_000_000),
    maxSeconds: num('max-seconds', v['max-seconds'], 0.1, 86_400),
    timeoutMs: int('timeout-ms', v['timeout-ms'], 1, 3_600_000),
    abortOnErrors: int('abort-on-errors', v['abort-on-errors'], 0, Number.MAX_SAFE_INTEGER),
    serverPid: v['server-pid'] === undefined ? undefined : int('server-pid', v['server-pid'], 1, 2 ** 31),
    engineNodeArgs: v['engine-node-arg'],
    engineArgs: v['engine-arg'],
    label: v.label,
    json: v.json,
  };
}

/** The JSON result (also the source of the table). */
function buildResult(o: Options, target: string, pid: number | undefined, warm: PhaseResult | null, m: PhaseResult, before: ProcSample | null, after: ProcSample | null, reconnects: number) {
  const latency = summarizeLatency(m.latenciesMs);
  const errorTotal = Object.values(m.errors).reduce((a, b) => a + (b ?? 0), 0);
  const server =
    before && after
      ? {
          pid,
          cpu_ms: r3(after.cpuMs - before.cpuMs),
          cpu_us_per_msg: m.ok ? r3(((after.cpuMs - before.cpuMs) * 1000) / m.ok) : null,
          cpu_util: r3((after.cpuMs - before.cpuMs) / 1000 / m.wallS),
          // The busiest thread: the engine's event loop (bench/lib/proc.ts).
          engine_thread_cpu_us_per_msg: m.ok ? r3((busiestThreadMs(before, after) * 1000) / m.ok) : null,
          engine_thread_util: r3(busiestThreadMs(before, after) / 1000 / m.wallS),
          rss_mb: r3(after.rssKb / 1024),
          peak_rss_mb: r3(after.hwmKb / 1024),
        }
      : pid
        ? { pid, alive_after: after !== null }
        : undefined;
  return {
    tool: 'tributary-bench',
    label: o.label,
    target,
    spawned: o.spawn,
    mix: o.file ?? o.mix,
    avg_message_bytes: m.ok ? Math.round(m.okMessageBytes / m.ok) : null,
    connections: o.connections,
    pipeline: o.pipeline,
    warmup: warm ? { requested: warm.requested, ok: warm.ok, failed: warm.failed } : null,
    requested: m.requested,
    sent: m.sent,
    ok: m.ok,
    failed: m.failed,
    unfinished: m.unfinished,
    complete: m.ok === m.requested,
    stopped_by_deadline: m.stoppedByDeadline,
    aborted_on_errors: m.abortedOnErrors,
    duration_s: r3(m.durationS),
    msgs_per_s: Math.round(m.ok / m.durationS),
    mb_per_s: r3(m.okMessageBytes / m.durationS / 1e6),
    latency_ms: latency,
    errors: { total: errorTotal, kinds: m.errors },
    unsolicited_acks: m.unsolicitedAcks,
    error_samples: m.errorSamples.length ? m.errorSamples : undefined,
    reconnects,
    client_cpu_us_per_msg: m.ok ? r3(m.clientCpuUs / m.ok) : null,
    server,
  };
}

function printTable(r: ReturnType<typeof buildResult>): void {
  const lat = r.latency_ms;
  const kinds = Object.entries(r.errors.kinds).map(([k, n]) => `${k} ${n}`).join(', ');
  const rows: Array<[string, string]> = [
    ['target', `${r.target}${r.spawned ? ' (spawned engine)' : ''}`],
    ['load', `${r.connections} connection(s) × ${r.pipeline} in flight, ${r.mix} (~${r.avg_message_bytes ?? '?'} bytes)`],
    ['verified', `${thousands(r.ok)} / ${thousands(r.requested)}${r.stopped_by_deadline ? ' (stopped by --max-seconds)' : ''}${r.aborted_on_errors ? ' (aborted on errors)' : ''}`],
    ['throughput', `${thousands(r.msgs_per_s)} msg/s verified (${r.mb_per_s} MB/s) over ${r.duration_s} s`],
    ['latency ms', `p50 ${lat.p50}  p95 ${lat.p95}  p99 ${lat.p99}  max ${lat.max}`],
    ['errors', r.errors.total === 0 ? 'none' : `${r.errors.total} (${kinds})`],
  ];
  if (r.unsolicited_acks) rows.push(['unsolicited ACKs', String(r.unsolicited_acks)]);
  if (r.reconnects) rows.push(['reconnects', String(r.reconnects)]);
  rows.push(['client CPU', `${r.client_cpu_us_per_msg} µs/msg`]);
  if (r.server && 'cpu_us_per_msg' in r.server) {
    rows.push(['server CPU', `${r.server.cpu_us_per_msg} µs/msg (${r.server.cpu_util} cores busy), pid ${r.server.pid}`]);
    rows.push(['engine thread', `${r.server.engine_thread_cpu_us_per_msg} µs/msg (${r.server.engine_thread_util} busy)`]);
    rows.push(['server RSS', `${r.server.rss_mb} MB now, ${r.server.peak_rss_mb} MB peak (VmHWM)`]);
  } else if (r.server) {
    rows.push(['server', `pid ${r.server.pid} ${r.server.alive_after ? 'alive' : 'not readable after the run'}`]);
  }
  process.stdout.write(`${formatTable(rows)}\n`);
  for (const s of r.error_samples ?? []) process.stdout.write(`  sample: ${s}\n`);
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const tStart = performance.now();
  const deadline = tStart + o.maxSeconds * 1000;
  // Last resort: whatever happens, the process does not outlive its bound by much.
  setTimeout(() => {
    process.stderr.write('bench: hard time limit reached; exiting\n');
    void engine?.stop(2000).finally(() => process.exit(3));
  }, o.maxSeconds * 1000 + Math.min(o.timeoutMs, 3000) + 30_000).unref();

  let templates;
  try {
    templates = templatesFor(o.mix, o.file);
  } catch (e) {
    usage((e as Error).message);
  }

  let engine: SpawnedEngine | undefined;
  let port = o.port;
  let pid = o.serverPid;
  if (o.spawn) {
    engine = await spawnEngine({ nodeArgs: o.engineNodeArgs, args: o.engineArgs });
    port = engine.mllpPort;
    pid = engine.pid;
    if (!o.json) process.stderr.write(`bench: engine pid ${pid} on mllp port ${port}\n`);
  }
  const onSignal = (): void => {
    client?.close();
    void (engine ? engine.stop(5000) : Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let client: LoadClient | undefined;
  try {
    client = new LoadClient({
      host: o.host,
      port,
      connections: o.connections,
      pipeline: o.pipeline,
      templates,
      timeoutMs: o.timeoutMs,
      abortOnErrors: o.abortOnErrors,
    });
    await client.connect();
    let warm: PhaseResult | null = null;
    if (o.warmup > 0) {
      warm = await client.run(o.warmup, deadline);
      if (warm.stoppedByDeadline || warm.abortedOnErrors) {
        process.stderr.write(`bench: warm-up did not finish (${warm.ok}/${warm.requested} ok, errors ${JSON.stringify(warm.errors)}); ${warm.errorSamples.join(' | ')}\n`);
        return 1;
      }
    }
    const before = readProc(pid);
    const measured = await client.run(o.messages, deadline);
    const after = readProc(pid);
    const result = buildResult(o, `${o.host}:${port}`, pid, warm, measured, before, after, client.reconnections);
    if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else printTable(result);
    return result.complete && result.errors.total === 0 ? 0 : 1;
  } finally {
    client?.close();
    if (engine) {
      const exit = await engine.stop();
      if (exit.code !== 0 && !o.json) process.stderr.write(`bench: engine exited with code ${exit.code} signal ${exit.signal}\n${engine.stderrTail().slice(-2000)}\n`);
    }
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
