// SPDX-License-Identifier: Apache-2.0
/**
 * Growth: does the per-message ingest cost stay flat while the database grows?
 *
 *   node --import=tsx bench/growth.ts                                   # 10,000 patients, 100,000 messages
 *   node --import=tsx bench/growth.ts --messages 1000000                # the 1M run
 *   node --import=tsx bench/growth.ts --patients 1000 --messages 20000 --window 2000 --json
 *
 * Synthetic messages (invented patients TESTPERSON^P000123, NHS numbers in the 999 test range
 * with a valid modulus 11 check digit; no real data) are generated in memory and fed through the
 * real pipeline in-process, exactly as `tributary replay --data` does: `Journal.open` on a fresh
 * data directory, `createPipeline` with the channel folder, `Ingestor.submitFrame` as the
 * first-run demo sender (`demo-loopback`, whose organisation auto-creates records), with a window
 * of frames in flight so that group commits form.
 *
 * The stream: first one ADT^A28 per patient (the record is created), then a mix over random
 * patients: ADT^A01 admit with a new visit number when the patient is not in hospital, ADT^A03
 * discharge of that visit when they are, and ORU^R01 with 3 OBX and a new filler number (so the
 * number of record items keeps growing). MSH-7 increases by one second per message and every
 * MSH-10 is unique. Every ACK must be AA.
 *
 * Each window of `--window` messages is generated before its clock starts (generation is not
 * measured), then reports wall msg/s, process CPU µs/msg (`process.cpuUsage`: user + system, all
 * threads) and messages per group commit. At 10k, 100k, 1M and the end it reports the database
 * size (file + WAL) and row counts (counted outside the measured windows).
 *
 * Options:
 *   --patients P     patients (default 10000; 1..900000)
 *   --messages M     messages in total, the P A28s included (default 100000; >= P)
 *   --window W       messages per reported window (default 10000)
 *   --in-flight K    frames submitted and not yet answered (default 256, as replay --data)
 *   --data DIR       data directory (must not hold a database yet; default: a fresh temp dir, removed after)
 *   --channels DIR   channel folder (default: the built-in one, i.e. channels/record.yaml)
 *   --seed N         seed of the patient/type choice (default 1)
 *   --json           print one JSON object instead of the tables
 */
import { parseFlags, usage as usageOf } from './lib/cli.js';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BUILTIN_CHANNELS_DIR, createPipeline, databasePath, openChannels } from '../src/engine/engine.js';
import { DEMO_SENDER_ID } from '../src/engine/senders.js';
import { Journal } from '../src/journal/journal.js';
import type { FrameMeta, Ingestor } from '../src/ingest/ingest.js';
import { silentLogger } from '../src/log.js';
import { machineFacts } from './lib/proc.js';

const HELP = `usage: node --import=tsx bench/growth.ts [--patients P] [--messages M] [--window W] [--in-flight K] [--data DIR] [--channels DIR] [--seed N] [--json]`;

interface Options {
  patients: number;
  messages: number;
  window: number;
  inFlight: number;
  data: string | undefined;
  channels: string;
  seed: number;
  json: boolean;
}

function usage(message: string): never {
  return usageOf(HELP, `growth: ${message}`);
}

function parseOptions(argv: string[]): Options {
  const v = parseFlags(
    argv,
    {
      patients: { type: 'string', default: '10000' },
      messages: { type: 'string', default: '100000' },
      window: { type: 'string', default: '10000' },
      'in-flight': { type: 'string', default: '256' },
      data: { type: 'string' },
      channels: { type: 'string' },
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    HELP,
  );
  const int = (name: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) usage(`--${name}: expected an integer in ${min}..${max}, got ${raw}`);
    return n;
  };
  const patients = int('patients', v.patients, 1, 900_000);
  const messages = int('messages', v.messages, 1, 100_000_000);
  if (messages < patients) usage(`--messages ${messages} is fewer than --patients ${patients}: every patient gets an A28 first`);
  if (v.data !== undefined && existsSync(databasePath(v.data))) usage(`--data ${v.data} already holds a database; growth needs a fresh directory`);
  if (v.channels !== undefined && !existsSync(v.channels)) usage(`--channels ${v.channels}: no such folder`);
  return {
    patients,
    messages,
    window: int('window', v.window, 1, 100_000_000),
    inFlight: int('in-flight', v['in-flight'], 1, 100_000),
    data: v.data,
    channels: v.channels ?? BUILTIN_CHANNELS_DIR,
    seed: int('seed', v.seed, 0, 2 ** 31),
    json: v.json,
  };
}

/**
 * The valid NHS number of patient `n` (0-based): `999` + six digits + the modulus 11 check digit
 * (weights 10..2; 11 → 0; nine-digit stems whose check would be 10 are skipped). Ascending and
 * distinct for n in 0..~900,000.
 */
export function syntheticNhsNumber(n: number): string {
  // About 1 stem in 11 has no valid check digit, so stems are taken from a table built once.
  while (STEMS.length <= n) {
    const stem = `999${String(nextStem++).padStart(6, '0')}`;
    if (nextStem > 999_999) throw new Error('synthetic NHS numbers exhausted');
    let sum = 0;
    for (let i = 0; i < 9; i++) sum += (stem.charCodeAt(i) - 48) * (10 - i);
    const check = 11 - (sum % 11);
    if (check === 10) continue;
    STEMS.push(stem + String(check === 11 ? 0 : check));
  }
  return STEMS[n]!;
}
const STEMS: string[] = [];
let nextStem = 0;


const BASE_MS = Date.UTC(2024, 0, 1);

/** HL7 DTM of BASE + `seconds`. */
function dtm(seconds: number): string {
  return new Date(BASE_MS + seconds * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** Counts of the generated message types. */
type TypeCounts = { A28: number; A01: number; A03: number; ORU: number };

/** The message stream: message `i` is a pure function of the generator's state (deterministic for a seed). */
/** mulberry32: a small deterministic PRNG, so runs are repeatable (the tests' split generator is the same). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Generator {
  private readonly random: () => number;
  /** Per patient: the open visit number, or 0 (not in hospital); and visits so far. */
  private readonly openVisit: Uint32Array;
  private readonly visits: Uint32Array;
  private filler = 0;
  readonly counts: TypeCounts = { A28: 0, A01: 0, A03: 0, ORU: 0 };

  constructor(private readonly patients: number, seed: number) {
    this.random = mulberry32(seed);
    this.openVisit = new Uint32Array(patients);
    this.visits = new Uint32Array(patients);
  }

  private pid(p: number): string {
    const tag = `P${String(p).padStart(6, '0')}`;
    return `PID|1||${syntheticNhsNumber(p)}^^^NHS^NH~H${tag}^^^RXX^MR||TESTPERSON^${tag}^^^Mx||19800101|U`;
  }

  /** The ER7 text of message `i` (0-based). */
  message(i: number): string {
    const ts = dtm(i);
    const id = `GRW${String(i).padStart(8, '0')}`;
    if (i < this.patients) {
      this.counts.A28++;
      return [`MSH|^~\\&|PAS|RXX|TRIBUTARY|TRIBUTARY|${ts}||ADT^A28^ADT_A05|${id}|P|2.4`, `EVN|A28|${ts}`, this.pid(i), 'PD1|||Test Surgery^^T99999'].join('\r') + '\r';
    }
    const p = Math.floor(this.random() * this.patients);
    const pv1 = (visit: number, cls: string, discharged?: string): string =>
      `PV1|1|${cls}|WARD7^BED${(p % 30) + 1}^A^RXX||||C1001^TESTDOC^JO^^^DR|||MED|||||||||V${p}-${visit}^^^RXX^VN|||||||||||||||||||||||||${ts}${discharged ? `|${discharged}` : ''}`;
    if (this.random() < 0.5) {
      const visit = this.openVisit[p]!;
      if (visit === 0) {
        this.counts.A01++;
        const v = ++this.visits[p]!;
        this.openVisit[p] = v;
        return [`MSH|^~\\&|PAS|RXX|TRIBUTARY|TRIBUTARY|${ts}||ADT^A01^ADT_A01|${id}|P|2.4`, `EVN|A01|${ts}`, this.pid(p), pv1(v, 'I')].join('\r') + '\r';
      }
      this.counts.A03++;
      this.openVisit[p] = 0;
      return [`MSH|^~\\&|PAS|RXX|TRIBUTARY|TRIBUTARY|${ts}||ADT^A03^ADT_A03|${id}|P|2.4`, `EVN|A03|${ts}`, this.pid(p), pv1(visit, 'I', ts)].join('\r') + '\r';
    }
    this.counts.ORU++;
    const f = ++this.filler;
    const k = 3.5 + (f % 15) / 10;
    return (
      [
        `MSH|^~\\&|WINPATH|LAB|TRIBUTARY|TRIBUTARY|${ts}||ORU^R01|${id}|P|2.4`,
        this.pid(p),
        'PV1|1|O|CLINIC1|||||||GEN',
        `ORC|RE||F${f}`,
        `OBR|1|P${f}|F${f}|UE^Urea and electrolytes^WINPATH|||${ts}|||||||||||||||${ts}||CH|F`,
        `OBX|1|NM|2823-3^Potassium^LN||${k.toFixed(1)}|mmol/L^mmol/L^UCUM|3.5-5.3|N|||F|||${ts}`,
        `OBX|2|NM|2951-2^Sodium^LN||${135 + (f % 12)}|mmol/L|133-146|N|||F`,
        `OBX|3|NM|3094-0^Urea^LN||${(4 + (f % 40) / 10).toFixed(1)}|mmol/L|2.5-7.8|N|||F`,
      ].join('\r') + '\r'
    );
  }
}

interface WindowRow {
  /** Messages ingested at the end of the window. */
  upTo: number;
  messages: number;
  wallS: number;
  msgPerS: number;
  cpuUsPerMsg: number;
  msgPerCommit: number;
}

interface Checkpoint {
  messages: number;
  dbBytes: number;
  walBytes: number;
  journalRows: number;
  patients: number;
  items: number;
  itemVersions: number;
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Feed frames through the ingestor with at most `inFlight` unanswered; resolves when all are answered. */
function feed(ingestor: Ingestor, frames: Buffer[], inFlight: number, meta: FrameMeta, onNotAccepted: (i: number, code: string, reason: string | null) => void): Promise<void> {
  return new Promise((resolveAll) => {
    let next = 0;
    let pending = 0;
    const pump = (): void => {
      while (pending < inFlight && next < frames.length) {
        const i = next++;
        pending++;
        ingestor.submitFrame(frames[i]!, meta, (r) => {
          pending--;
          if (r.ackCode !== 'AA') onNotAccepted(i, r.ackCode, r.reasonCode);
          if (next < frames.length) pump();
          else if (pending === 0) resolveAll();
        });
      }
    };
    pump();
    if (frames.length === 0) resolveAll();
  });
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const dataDir = o.data !== undefined ? resolve(o.data) : mkdtempSync(join(tmpdir(), 'tributary-growth-'));
  const file = databasePath(dataDir);
  const journal = Journal.open({ file });
  const log = (s: string): void => {
    if (!o.json) process.stdout.write(s);
  };
  try {
    const { ingestor } = createPipeline({ journal, logger: silentLogger, channels: openChannels(o.channels, silentLogger) });
    const db = journal.database;
    const meta: FrameMeta = { interface: 'replay', connectionId: null, remoteAddress: null, remotePort: null, senderId: DEMO_SENDER_ID };
    const gen = new Generator(o.patients, o.seed);
    const checkpointsAt = new Set([10_000, 100_000, 1_000_000, o.messages]);
    const windows: WindowRow[] = [];
    const checkpoints: Checkpoint[] = [];
    const notAccepted: Array<{ i: number; code: string; reason: string | null }> = [];
    let notAcceptedCount = 0;
    const count = (table: string): number => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    const checkpoint = (messages: number): void => {
      const c: Checkpoint = {
        messages,
        dbBytes: fileSize(file),
        walBytes: fileSize(`${file}-wal`),
        journalRows: count('message'),
        patients: count('record_patient'),
        items: count('record_item'),
        itemVersions: count('record_item_version'),
      };
      checkpoints.push(c);
      log(
        `checkpoint ${c.messages.toLocaleString('en-US')}: db ${(c.dbBytes / 1e6).toFixed(1)} MB + WAL ${(c.walBytes / 1e6).toFixed(1)} MB; ` +
          `journal ${c.journalRows}, patients ${c.patients}, record_item ${c.items}, record_item_version ${c.itemVersions}\n`,
      );
    };
    log(`growth: ${o.patients} patients, ${o.messages} messages, window ${o.window}, ${o.inFlight} in flight, data ${dataDir}\n`);
    log('| messages | wall s | msg/s | CPU µs/msg | msg/commit |\n|---:|---:|---:|---:|---:|\n');
    const started = performance.now();
    let done = 0;
    let genMs = 0;
    while (done < o.messages) {
      // Stop the window at the next checkpoint too, so checkpoints fall between windows.
      let end = Math.min(o.messages, done + o.window);
      for (const c of checkpointsAt) if (c > done && c < end) end = c;
      const g0 = performance.now();
      const frames: Buffer[] = new Array(end - done);
      for (let i = done; i < end; i++) frames[i - done] = Buffer.from(gen.message(i), 'latin1');
      genMs += performance.now() - g0;
      const commits0 = journal.stats.commits;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await feed(ingestor, frames, o.inFlight, meta, (i, code, reason) => {
        notAcceptedCount++;
        if (notAccepted.length < 5) notAccepted.push({ i: done + i, code, reason });
      });
      const wallS = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const n = end - done;
      const row: WindowRow = {
        upTo: end,
        messages: n,
        wallS: Math.round(wallS * 1000) / 1000,
        msgPerS: Math.round(n / wallS),
        cpuUsPerMsg: Math.round(((cpu.user + cpu.system) / n) * 10) / 10,
        msgPerCommit: Math.round((n / Math.max(1, journal.stats.commits - commits0)) * 10) / 10,
      };
      windows.push(row);
      done = end;
      log(`| ${row.upTo.toLocaleString('en-US')} | ${row.wallS.toFixed(2)} | ${row.msgPerS.toLocaleString('en-US')} | ${row.cpuUsPerMsg.toFixed(1)} | ${row.msgPerCommit} |\n`);
      if (notAcceptedCount >= 1000) {
        process.stderr.write(`growth: ${notAcceptedCount} messages not accepted, stopping; first: ${JSON.stringify(notAccepted)}\n`);
        return 1;
      }
      if (checkpointsAt.has(done)) checkpoint(done);
    }
    const totalS = (performance.now() - started - genMs) / 1000;
    // The claim: the cost per message at the end is within 1.5x of the cost near the start. The
    // first windows are all A28 (another mix), so "the start" is the first window of the mixed stream.
    const early = windows.find((w) => w.upTo - w.messages >= o.patients) ?? windows[0]!;
    const last = windows[windows.length - 1]!;
    const result = {
      tool: 'tributary-growth',
      machine: machineFacts(),
      options: { ...o, data: o.data ?? null, channels: o.channels === BUILTIN_CHANNELS_DIR ? 'built-in' : o.channels },
      generated: gen.counts,
      notAccepted: { count: notAcceptedCount, samples: notAccepted },
      overall: { messages: done, seconds: Math.round(totalS * 10) / 10, msgPerS: Math.round(done / totalS) },
      windows,
      checkpoints,
      ratio: { earlyWindowUpTo: early.upTo, earlyCpuUs: early.cpuUsPerMsg, lastWindowUpTo: last.upTo, lastCpuUs: last.cpuUsPerMsg, cpu: Math.round((last.cpuUsPerMsg / early.cpuUsPerMsg) * 100) / 100, wall: Math.round((early.msgPerS / last.msgPerS) * 100) / 100 },
    };
    if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      log(`generated: ${JSON.stringify(gen.counts)}; not accepted: ${notAcceptedCount}${notAccepted.length ? ` ${JSON.stringify(notAccepted)}` : ''}\n`);
      log(`overall: ${done} messages in ${result.overall.seconds} s of ingest, ${result.overall.msgPerS} msg/s\n`);
      log(
        `CPU µs/msg, window ending ${early.upTo} → window ending ${last.upTo}: ${early.cpuUsPerMsg} → ${last.cpuUsPerMsg} (${result.ratio.cpu}x; wall ${result.ratio.wall}x)\n`,
      );
    }
    return notAcceptedCount === 0 ? 0 : 1;
  } finally {
    journal.close();
    if (o.data === undefined) rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`growth: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
