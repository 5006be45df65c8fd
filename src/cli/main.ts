// SPDX-License-Identifier: Apache-2.0
/**
 * The `tributary` command line (yargs). Commands only build option objects, call the library and
 * print; validation lives in the config layer. A user error prints one line and exits non-zero,
 * never a stack trace.
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { isTributaryError, errorMessage } from '../errors.js';
import { adminCommand } from './admin.js';
import { EXIT, processIO, type CliIO } from './common.js';
import { STATUSES, runList, runShow } from './messages.js';
import { runReplay } from './replay.js';
import { runSend } from './send.js';
import { runStart } from './start.js';

const DATA_OPTION = { type: 'string', default: './data', describe: 'data directory (holds tributary.db)' } as const;

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
          .option('mllp-port', { type: 'number', describe: 'MLLP port, 0 = any free port [default: 2575]' })
          .option('http-port', { type: 'number', describe: 'HTTP port, 0 = any free port [default: 8080]' })
          .option('log-bodies', { type: 'boolean', describe: 'log message bodies (contains PHI; debugging only)' })
          .option('log-level', { choices: ['error', 'warn', 'info', 'debug'] as const, describe: 'log level [default: info]' }),
      (a) =>
        void run(() =>
          runStart(
            { config: a.config, data: a.data, host: a.host, mllpPort: a['mllp-port'], httpPort: a['http-port'], logBodies: a['log-bodies'], logLevel: a['log-level'] },
            io,
          ),
        ),
    )
    .command(
      'send <files..>',
      'send message files over MLLP; one line per message: MSH-10, ACK code, ACK text',
      (y) =>
        y
          .positional('files', { type: 'string', array: true, demandOption: true, describe: 'files or folders (.hl7/.txt); batches are split' })
          .option('host', { type: 'string', default: '127.0.0.1' })
          .option('port', { type: 'number', default: 2575 })
          .option('timeout-ms', { type: 'number', default: 10_000, describe: 'wait this long for each ACK' }),
      (a) => void run(() => runSend({ files: a.files as string[], host: a.host, port: a.port, timeoutMs: a['timeout-ms'] }, io)),
    )
    .command(
      'replay <paths..>',
      'replay files and folders to a running engine (--to) or straight into a data directory (--data); resumable',
      (y) =>
        y
          .positional('paths', { type: 'string', array: true, demandOption: true })
          .option('to', { type: 'string', describe: 'HOST:PORT of a running engine' })
          .option('data', { type: 'string', describe: 'data directory to ingest into, without a server' })
          .option('rate', { type: 'number', default: 0, describe: 'at most N messages per second (0 = no limit)' })
          .option('window', { type: 'number', default: 16, describe: 'messages in flight at once' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'read and parse only; send nothing' })
          .option('state', { type: 'string', describe: 'resume-state file [default: .tributary-replay-<hash>.log]' })
          .option('fresh', { type: 'boolean', default: false, describe: 'ignore the resume state and replay everything' })
          .option('timeout-ms', { type: 'number', default: 10_000 })
          .conflicts('to', 'data')
          .check((a) => {
            if (!a['dry-run'] && !a.to && !a.data) throw new Error('replay needs --to HOST:PORT or --data DIR');
            return true;
          }),
      (a) =>
        void run(() =>
          runReplay(
            { paths: a.paths as string[], to: a.to, data: a.data, rate: a.rate, window: a.window, dryRun: a['dry-run'], state: a.state, fresh: a.fresh, timeoutMs: a['timeout-ms'] },
            io,
          ),
        ),
    )
    .command('messages', 'inspect the journal of a data directory', (y) =>
      y
        .command(
          'list',
          'list received messages in order',
          (y2) =>
            y2
              .option('data', DATA_OPTION)
              .option('status', { choices: STATUSES })
              .option('since', { type: 'string', describe: 'ISO time, or a duration back from now: 30s, 10m, 2h, 7d' })
              .option('limit', { type: 'number' })
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
        .demandCommand(1, 'messages needs a subcommand: list or show')
        .strict(),
    )
    .command(adminCommand(run, io))
    .demandCommand(1, 'give a command: start, send, replay or messages')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err, y) => {
      if (err && !isTributaryError(err) && !msg) throw err;
      io.stderr.write(`tributary: ${msg || errorMessage(err)}\n(see tributary --help)\n`);
      void y;
      finish(EXIT.usage);
    });
}

/** Print an error the way a user should see it; returns the exit code. */
export function reportError(e: unknown, io: CliIO): number {
  if (isTributaryError(e) && e.isUserError) {
    io.stderr.write(`tributary: ${e.message}\n`);
    return EXIT.usage;
  }
  const detail = e instanceof Error && process.env.TRIBUTARY_DEBUG ? `\n${e.stack ?? ''}` : '';
  io.stderr.write(`tributary: internal error: ${errorMessage(e)}${detail}\n`);
  return 1;
}

/** Entry point used by bin/tributary. */
export function main(argv: string[] = hideBin(process.argv)): void {
  let finished = false;
  const finish = (code: number): void => {
    if (finished) return;
    finished = true;
    process.exitCode = code;
    // Commands close what they opened; a lingering handle must not keep a finished CLI alive.
    setTimeout(() => process.exit(code), 200).unref();
  };
  void buildCli(argv, processIO, finish).parseAsync();
}
