// SPDX-License-Identifier: Apache-2.0
/**
 * `tributary replay PATH... (--to HOST:PORT | --data DIR)`: replay message files and folders to a
 * running engine over MLLP, or straight into a data directory without a server.
 *
 * Resuming: every message that got an ACK (AA, AR or AE: it is in the journal either way) is
 * appended to a state file as it completes. An interrupted run started again with the same paths
 * and target skips those messages. The state file is removed when a run completes.
 *
 * Memory: files are read one at a time while sending, so an archive is never held whole in memory
 * (one file's messages at most). A first pass counts each file's messages (read, split, dropped)
 * so the progress bar and the summary know the total before anything is sent.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { Hl7Message } from '../hl7/index.js';
import { MllpClient } from '../interfaces/mllp-client.js';
import { Ingestor } from '../ingest/ingest.js';
import { collectMessageFiles, countMessages, readMessageFile, type FileMessage } from '../ingest/message-files.js';
import { Journal } from '../journal/journal.js';
import { createPipeline, databasePath, openChannels } from '../engine/engine.js';
import { SenderStore } from '../authentication/index.js';
import { silentLogger } from '../log.js';
import { TributaryError, errorMessage, isTributaryError } from '../errors.js';
import { EXIT, parseHostPort, readAck, type CliIO } from './common.js';

/** Flags of `tributary replay`. */
export interface ReplayArgs {
  paths: string[];
  to?: string;
  data?: string;
  /** With `data`: the sender the messages are journaled as (default: the directory's only sender). */
  sender?: string;
  /** With `data`: the channel folder (default ./channels; missing: the built-in record channel). */
  channels?: string;
  /** Messages per second at most; 0 = as fast as possible. */
  rate: number;
  dryRun: boolean;
  /** Messages in flight at once (ACKs still come back in order). */
  window: number;
  /** Resume-state file; default `.tributary-replay-<hash>.log` in the working directory. */
  state?: string;
  /** Ignore an existing state file and replay everything. */
  fresh: boolean;
  timeoutMs: number;
}

/** Counters printed at the end. */
export interface ReplaySummary {
  files: number;
  messages: number;
  sent: number;
  skipped: number;
  AA: number;
  AR: number;
  AE: number;
  duplicates: number;
  failed: number;
  seconds: number;
}

interface Outcome {
  code: string;
  duplicate: boolean;
}

type Sink = { submit(m: FileMessage): Promise<Outcome>; close(): Promise<void> };

async function mllpSink(to: string, timeoutMs: number): Promise<Sink> {
  const { host, port } = parseHostPort(to);
  const client = await MllpClient.connect({ host, port, ackTimeoutMs: timeoutMs });
  const seenAckIds = new Set<string>();
  return {
    async submit(m) {
      const sentAt = Date.now();
      const ack = readAck((await client.send(m.bytes)).toString('utf8'));
      // A duplicate gets the first message's ACK again, byte for byte: an ACK id we have already
      // seen, or an ACK stamped well before we sent the message, is that stored ACK.
      const stamped = Date.parse(ack.timestamp.replace(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2}).*$/, '$1-$2-$3T$4:$5:$6Z'));
      const duplicate = seenAckIds.has(ack.ackId) || (!Number.isNaN(stamped) && stamped < sentAt - 2000);
      seenAckIds.add(ack.ackId);
      return { code: ack.code, duplicate };
    },
    close: () => client.close(),
  };
}

/**
 * Straight into a data directory: the same pipeline as the engine (senders, record, journal). The
 * messages are journaled as sent by `--sender` (the one sender of the directory when there is
 * only one, e.g. the first-run demo sender).
 */
function dataSink(dataDir: string, senderId: string | undefined, channelsDir: string): Sink {
  const journal = Journal.open({ file: databasePath(dataDir) });
  let sender: string;
  let ingestor: Ingestor;
  try {
    const pipeline = createPipeline({ journal, logger: silentLogger, channels: openChannels(channelsDir, silentLogger) });
    const senders = new SenderStore(journal.database).listSenders().filter((s) => s.enabled);
    if (senderId !== undefined) {
      if (!senders.some((s) => s.id === senderId)) throw new TributaryError('CLI_USAGE', { reason: `--sender ${senderId}: no enabled sender with that id in ${dataDir}` });
      sender = senderId;
    } else if (senders.length === 1) {
      sender = senders[0]!.id;
    } else {
      throw new TributaryError('CLI_USAGE', {
        reason: `${dataDir} has ${senders.length} enabled senders: name the one these messages came from with --sender ID`,
      });
    }
    ingestor = pipeline.ingestor;
  } catch (e) {
    journal.close();
    throw e;
  }
  return {
    submit: async (m) => {
      const r = await ingestor.submit(m.bytes, { interface: 'replay', connectionId: null, remoteAddress: null, remotePort: null, senderId: sender });
      return { code: r.ackCode, duplicate: r.status === 'duplicate' };
    },
    close: async () => journal.close(),
  };
}

function stateFileFor(args: ReplayArgs, files: string[]): string {
  if (args.state) return resolve(args.state);
  const target = args.to ? `to:${args.to}` : `data:${resolve(args.data!)}`;
  const hash = createHash('sha256').update(target).update('\n').update(files.join('\n')).digest('hex').slice(0, 12);
  return resolve(`.tributary-replay-${hash}.log`);
}

function progress(io: CliIO, done: number, total: number, started: number): void {
  const width = 30;
  const filled = total ? Math.round((done / total) * width) : width;
  const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
  io.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${Math.round(rate)} msg/s`);
}

/** Run a replay; returns the exit code. */
export async function runReplay(args: ReplayArgs, io: CliIO): Promise<number> {
  const files = collectMessageFiles(args.paths);
  // First pass: how many messages each file holds (nothing kept but the counts).
  const counts = files.map((f) => countMessages(f));
  let total = 0;
  for (const n of counts) total += n;
  const summary: ReplaySummary = { files: files.length, messages: total, sent: 0, skipped: 0, AA: 0, AR: 0, AE: 0, duplicates: 0, failed: 0, seconds: 0 };

  if (args.dryRun) {
    let bad = 0;
    for (const f of files) {
      for (const m of readMessageFile(f).messages) {
        try {
          Hl7Message.parse(m.text);
        } catch (e) {
          bad++;
          io.stdout.write(`${m.file}#${m.index + 1}\twould be rejected: ${errorMessage(e)}\n`);
        }
      }
    }
    io.stdout.write(`dry run: ${files.length} files, ${total} messages, ${bad} would be rejected by the parser; nothing sent\n`);
    return EXIT.ok;
  }

  const stateFile = stateFileFor(args, files);
  const done = new Set<string>();
  if (!args.fresh && existsSync(stateFile)) {
    for (const line of readFileSync(stateFile, 'utf8').split('\n')) if (line) done.add(line);
  } else if (args.fresh) {
    rmSync(stateFile, { force: true });
  }
  const key = (file: string, index: number): string => `${file}\t${index}`;
  for (let f = 0; f < files.length; f++) for (let i = 0; i < counts[f]!; i++) if (done.has(key(files[f]!, i))) summary.skipped++;
  if (summary.skipped > 0) io.stderr.write(`resuming: ${summary.skipped} messages already replayed (state ${stateFile})\n`);

  const sink = args.to ? await mllpSink(args.to, args.timeoutMs) : dataSink(args.data!, args.sender, args.channels ?? './channels');
  const started = Date.now();
  const tty = !!io.stderr.isTTY;
  let lastDraw = 0;
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSigint);
  const inFlight: Array<Promise<void>> = [];
  let transportError: string | null = null;
  const stopped = (): boolean => interrupted || transportError !== null;
  const submit = async (m: FileMessage): Promise<void> => {
    if (args.rate > 0) {
      const due = started + (summary.sent * 1000) / args.rate;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    summary.sent++;
    const p = sink.submit(m).then(
      (o) => {
        if (o.duplicate) summary.duplicates++;
        if (o.code === 'AA' || o.code === 'CA') summary.AA++;
        else if (o.code === 'AR' || o.code === 'CR') summary.AR++;
        else summary.AE++;
        appendFileSync(stateFile, `${key(m.file, m.index)}\n`);
      },
      (e: unknown) => {
        summary.failed++;
        transportError ??= isTributaryError(e) ? e.message : errorMessage(e);
      },
    );
    inFlight.push(p);
    if (inFlight.length >= Math.max(1, args.window)) await inFlight.shift();
    if (tty && Date.now() - lastDraw > 100) {
      lastDraw = Date.now();
      progress(io, summary.skipped + summary.sent, total, started);
    }
  };
  try {
    // Second pass: one file in memory at a time.
    for (let f = 0; f < files.length && !stopped(); f++) {
      if (counts[f] === 0) continue;
      const { messages } = readMessageFile(files[f]!);
      for (let i = 0; i < messages.length && !stopped(); i++) {
        const m = messages[i]!;
        if (!done.has(key(m.file, m.index))) await submit(m);
      }
    }
    await Promise.all(inFlight);
  } finally {
    process.off('SIGINT', onSigint);
    await sink.close();
  }
  summary.seconds = (Date.now() - started) / 1000;
  if (tty) {
    progress(io, summary.skipped + summary.sent, total, started);
    io.stderr.write('\n');
  }
  const complete = !interrupted && !transportError;
  if (complete) rmSync(stateFile, { force: true });
  const rate = summary.sent / Math.max(0.001, summary.seconds);
  io.stdout.write(
    `replayed ${summary.sent} of ${summary.messages} messages from ${summary.files} files` +
      (summary.skipped ? ` (${summary.skipped} skipped, already replayed)` : '') +
      `: AA ${summary.AA}, AR ${summary.AR}, AE ${summary.AE}, duplicates ${summary.duplicates}, failed ${summary.failed}; ` +
      `${summary.seconds.toFixed(1)} s, ${Math.round(rate)} msg/s\n`,
  );
  if (transportError) {
    io.stderr.write(`tributary: ${transportError}; run the same command again to resume\n`);
    return EXIT.transport;
  }
  if (interrupted) {
    io.stderr.write('tributary: interrupted; run the same command again to resume\n');
    return EXIT.transport;
  }
  return summary.AR + summary.AE > 0 ? EXIT.notAccepted : EXIT.ok;
}
