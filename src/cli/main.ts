// SPDX-License-Identifier: Apache-2.0
/**
 * The `tributary` command line (yargs). Commands only build option objects, call the library and
 * print; engine configuration is validated in the config layer, numeric flags here (one table,
 * {@link NUMERIC_OPTIONS}, checked once for every command). A user error prints one line and exits
 * non-zero, never a stack trace; a yargs failure never runs the command handler.
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { isTributaryError, errorMessage, type ErrorCode } from '../errors.js';
import { adminCommand } from './admin.js';
import { channelsCommand } from './channels.js';
import { outboxCommand } from './outbox.js';
import { runReprocess } from './reprocess.js';
import { recordCommand } from './record.js';
import { reviewCommand } from './review.js';
import { EXIT, processIO, type CliIO } from './common.js';
import { STATUSES, runList, runShow } from './messages.js';
import { runReplay } from './replay.js';
import { runSend } from './send.js';
import { runStart } from './start.js';

const DATA_OPTION = { type: 'string', default: './data', describe: 'data directory (holds tributary.db)' } as const;

/** A numeric flag's allowed values. */
interface NumericRule {
  min: number;
  max?: number;
  whole: boolean;
  /** How the error names the flag (default `--<key>`). */
  label?: string;
  /** The allowed values, in words. */
  expected: string;
}

/**
 * Every numeric flag of every command, by option name, checked once by a global `.check()`.
 * A name is checked only where it holds a number (`admin org add --id` is a string id).
 */
export const NUMERIC_OPTIONS: Readonly<Record<string, NumericRule>> = {
  port: { min: 1, max: 65535, whole: true, expected: 'a port number from 1 to 65535' },
  'mllp-port': { min: 0, max: 65535, whole: true, expected: 'a port number from 0 to 65535 (0 = any free port)' },
  'http-port': { min: 0, max: 65535, whole: true, expected: 'a port number from 0 to 65535 (0 = any free port)' },
  'timeout-ms': { min: 1, max: 2_147_483_647, whole: true, expected: 'a whole number of milliseconds from 1 to 2147483647' },
  rate: { min: 0, whole: false, expected: 'a number of messages per second, 0 or more (0 = no limit)' },
  window: { min: 1, whole: true, expected: 'a whole number, 1 or more' },
  limit: { min: 0, whole: true, expected: 'a whole number, 0 or more' },
  id: { min: 1, whole: true, label: 'id', expected: 'a positive whole number' },
  'overlap-hours': { min: 0, whole: false, expected: 'a number of hours, 0 or more' },
};

/** The problem with a numeric flag's parsed value, or null when it is allowed. */
export function numericProblem(key: string, value: unknown): string | null {
  const rule = NUMERIC_OPTIONS[key];
  if (!rule || value === undefined) return null;
  const label = rule.label ?? `--${key}`;
  if (Array.isArray(value)) return value.some((v) => typeof v === 'number') ? `${label} given more than once` : null;
  if (typeof value !== 'number') return null;
  const ok = Number.isFinite(value) && value >= rule.min && (rule.max === undefined || value <= rule.max) && (!rule.whole || Number.isInteger(value));
  return ok ? null : `${label} must be ${rule.expected}${Number.isNaN(value) ? '' : `, got ${value}`}`;
}

/** A failure reported by yargs (unknown flag, missing option, bad value): printed as one line, exit 2. */
export class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

/** Error codes that mean the network failed (exit 3; `replay` can be resumed). */
const TRANSPORT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['NET_CONNECT_FAILED', 'NET_ACK_TIMEOUT', 'NET_CONNECTION_CLOSED']);

/** Build the yargs parser; `finish` receives each command's exit code. */
export function buildCli(argv: string[], io: CliIO, finish: (code: number) => void): Argv {
  const run = (fn: () => Promise<number> | number): Promise<void> =>
    Promise.resolve()
      .then(fn)
      .then(finish, (e: unknown) => {
        finish(reportError(e, io));
      });
  return yargs(argv)
    .scriptName('tributary')
    .usage('$0 <command> [options]\n\nHL7 v2 integration engine: MLLP in, durable journal, aggregated patient record.')
    .command(
      'start',
      'start the engine (MLLP + HTTP); prints "READY mllp=<port> http=<port>" when it accepts connections',
      (y) =>
        y
          .option('config', { type: 'string', describe: 'engine config file (JSON)' })
          .option('data', { type: 'string', describe: 'data directory [default: ./data, or dataDir from --config]' })
          .option('host', { type: 'string', describe: 'address to bind [default: 127.0.0.1]' })
          .option('mllp-port', { type: 'number', requiresArg: true, describe: 'MLLP port, 0 = any free port [default: 2575]' })
          .option('http-port', { type: 'number', requiresArg: true, describe: 'HTTP port, 0 = any free port [default: 8080]' })
          .option('log-bodies', { type: 'boolean', describe: 'log message bodies (contains PHI; debugging only)' })
          .option('log-level', { choices: ['error', 'warn', 'info', 'debug'] as const, describe: 'log level [default: info]' })
          .option('channels', { type: 'string', requiresArg: true, describe: 'channel folder, reloaded on change; invalid channels stop the start [default: ./channels]' }),
      (a) =>
        void run(() =>
          runStart(
            { config: a.config, data: a.data, host: a.host, mllpPort: a['mllp-port'], httpPort: a['http-port'], logBodies: a['log-bodies'], logLevel: a['log-level'], channels: a.channels },
            io,
          ),
        ),
    )
    .command(
      'send <files..>',
      'send message files over MLLP; one line per message: MSH-10, ACK code, ACK text',
      (y) =>
        y
          .positional('files', { type: 'string', array: true, demandOption: true, describe: 'files or folders (.hl7/.txt); batches and MLLP captures (VT ... FS CR) are split' })
          .option('host', { type: 'string', default: '127.0.0.1' })
          .option('port', { type: 'number', requiresArg: true, default: 2575 })
          .option('timeout-ms', { type: 'number', requiresArg: true, default: 10_000, describe: 'wait this long for each ACK' })
          .option('security', { type: 'string', requiresArg: true, describe: 'set MSH-8 of every message to this credential (USER:SECRET)' }),
      (a) => void run(() => runSend({ files: a.files as string[], host: a.host, port: a.port, timeoutMs: a['timeout-ms'], security: a.security }, io)),
    )
    .command(
      'replay <paths..>',
      'replay files and folders to a running engine (--to) or straight into a data directory (--data); resumable',
      (y) =>
        y
          .positional('paths', { type: 'string', array: true, demandOption: true })
          .option('to', { type: 'string', describe: 'HOST:PORT of a running engine' })
          .option('data', { type: 'string', describe: 'data directory to ingest into, without a server' })
          .option('sender', { type: 'string', requiresArg: true, describe: 'with --data: the sender id the messages came from [default: the only sender]' })
          .option('channels', { type: 'string', requiresArg: true, describe: 'with --data: the channel folder [default: ./channels]' })
          .option('rate', { type: 'number', requiresArg: true, default: 0, describe: 'at most N messages per second (0 = no limit)' })
          .option('window', { type: 'number', requiresArg: true, default: 16, describe: 'messages in flight at once' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'read and parse only; send nothing' })
          .option('state', { type: 'string', describe: 'resume-state file [default: .tributary-replay-<hash>.log]' })
          .option('fresh', { type: 'boolean', default: false, describe: 'ignore the resume state and replay everything' })
          .option('timeout-ms', { type: 'number', requiresArg: true, default: 10_000, describe: 'wait this long for each ACK' })
          .conflicts('to', 'data')
          .check((a) => {
            if (!a['dry-run'] && !a.to && !a.data) throw new Error('replay needs --to HOST:PORT or --data DIR');
            return true;
          }),
      (a) =>
        void run(() =>
          runReplay(
            { paths: a.paths as string[], to: a.to, data: a.data, sender: a.sender, channels: a.channels, rate: a.rate, window: a.window, dryRun: a['dry-run'], state: a.state, fresh: a.fresh, timeoutMs: a['timeout-ms'] },
            io,
          ),
        ),
    )
    .command('messages', 'inspect the journal of a data directory; send stored messages through the channels again', (y) =>
      y
        .command(
          'list',
          'list received messages in order',
          (y2) =>
            y2
              .option('data', DATA_OPTION)
              .option('status', { choices: STATUSES })
              .option('since', { type: 'string', describe: 'ISO time, or a duration back from now: 30s, 10m, 2h, 7d' })
              .option('limit', { type: 'number', requiresArg: true, describe: 'at most N messages' })
              .option('json', { type: 'boolean', default: false, describe: 'JSON lines: id, receivedAt, remoteAddress, messageType, controlId, status, ackCode, reason' }),
          (a) => void run(() => runList({ data: a.data, status: a.status, since: a.since, limit: a.limit, json: a.json }, io)),
        )
        .command(
          'show <id>',
          'show one message: metadata, segments decoded to UTF-8, the ACK',
          (y2) =>
            y2
              .positional('id', { type: 'number', demandOption: true })
              .option('data', DATA_OPTION)
              .option('raw', { type: 'boolean', default: false, describe: 'write only the bytes exactly as received' }),
          (a) => void run(() => runShow({ data: a.data, id: a.id as number, raw: a.raw }, io)),
        )
        .command(
          'reprocess <ids..>',
          'send stored messages through the current channels again (new journal rows; the originals are kept)',
          (y2) =>
            y2
              .positional('ids', { type: 'number', array: true, demandOption: true, describe: 'journal ids (messages list)' })
              .option('data', DATA_OPTION)
              .option('channel', { type: 'string', requiresArg: true, describe: 'only through this channel' })
              .option('edit', { type: 'string', requiresArg: true, describe: 'replace the message (exactly one ID) by this file; needs --reason' })
              .option('reason', { type: 'string', requiresArg: true, describe: 'why (recorded in the journal row and the audit log)' })
              .option('actor', { type: 'string', requiresArg: true, describe: 'who is acting [default: the OS user]' })
              .option('channels', { type: 'string', default: './channels', describe: 'channel folder' }),
          (a) =>
            void run(() =>
              runReprocess(
                { data: a.data, ids: a.ids as number[], channel: a.channel, edit: a.edit, reason: a.reason, actor: a.actor, channels: a.channels },
                io,
              ),
            ),
        )
        .demandCommand(1, 'messages needs a subcommand: list, show or reprocess')
        .strict(),
    )
    .command(adminCommand(run, io))
    .command(channelsCommand(run, io))
    .command(outboxCommand(run, io))
    .command(recordCommand(run, io))
    .command(reviewCommand(run, io))
    .demandCommand(1, 'give a command: start, send, replay, messages, admin, channels, outbox, record or review')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .check((a) => {
      // Every numeric flag of every command, once (NUMERIC_OPTIONS); `global` so subcommands get it too.
      for (const key of Object.keys(NUMERIC_OPTIONS)) {
        const problem = numericProblem(key, a[key]);
        if (problem) throw new CliUsageError(problem);
      }
      return true;
    }, true)
    .fail((msg, err) => {
      // Throwing stops yargs: the command handler never runs. main() prints it as one line.
      if (err && !msg && !isTributaryError(err) && !(err instanceof CliUsageError)) throw err;
      throw new CliUsageError(msg || errorMessage(err));
    });
}

/** Print an error the way a user should see it; returns the exit code. */
export function reportError(e: unknown, io: CliIO): number {
  if (e instanceof CliUsageError) {
    io.stderr.write(`tributary: ${e.message} (see tributary --help)\n`);
    return EXIT.usage;
  }
  if (isTributaryError(e) && TRANSPORT_CODES.has(e.code)) {
    io.stderr.write(`tributary: ${e.message}\n`);
    return EXIT.transport;
  }
  if (isTributaryError(e) && e.isUserError) {
    io.stderr.write(`tributary: ${e.message}\n`);
    return EXIT.usage;
  }
  const detail = e instanceof Error && process.env.TRIBUTARY_DEBUG ? `\n${e.stack ?? ''}` : '';
  io.stderr.write(`tributary: internal error: ${errorMessage(e)}${detail}\n`);
  return 1;
}

/**
 * Parse and run one command line; resolves with the exit code once the command has finished (or
 * yargs refused the arguments). `--help` and `--version` print and exit the process (yargs).
 */
export function runCli(argv: string[], io: CliIO): Promise<number> {
  return new Promise((resolvePromise) => {
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      resolvePromise(code);
    };
    // A yargs failure is thrown from our fail handler, synchronously or as a rejection.
    Promise.resolve()
      .then(() => buildCli(argv, io, finish).parseAsync())
      .catch((e: unknown) => finish(reportError(e, io)));
  });
}

/** Entry point used by bin/tributary. */
export function main(argv: string[] = hideBin(process.argv)): void {
  // `tributary messages list | head`: the reader went away; that is the end of the output, not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  void runCli(argv, processIO).then((code) => {
    process.exitCode = code;
    // Commands close what they opened; a lingering handle must not keep a finished CLI alive.
    setTimeout(() => process.exit(code), 200).unref();
  });
}
