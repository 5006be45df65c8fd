// SPDX-License-Identifier: Apache-2.0
/**
 * `tributary channels validate|list|test [DIR]`: check a channel folder before it runs (CI, a
 * pre-commit hook), see what is in it, and run its test cases. Exit 0 when all is well, 1 with
 * every problem (or failed case) on its own line.
 */
import type { CommandModule } from 'yargs';
import { Outbox, channelJsonSchema, compileChannels, formatIssue, runChannelTests } from '../channels/index.js';
import { openDatabase, printTable, type CliIO } from './common.js';
import { existsSync } from 'node:fs';
import { databasePath } from '../engine/engine.js';
import { runRecordExpectations } from '../engine/channel-tests.js';
import { Journal } from '../journal/journal.js';

type Run = (fn: () => Promise<number> | number) => Promise<void>;

const DIR = { type: 'string', default: './channels', describe: 'channel folder' } as const;

/** `channels validate`: one OK line, or every problem as `file: key.path: message`. */
export function runValidate(dir: string, io: CliIO): number {
  const { channels, issues } = compileChannels(dir);
  if (issues.length > 0) {
    for (const i of issues) io.stdout.write(formatIssue(i) + '\n');
    io.stderr.write(`tributary: ${issues.length} problem${issues.length === 1 ? '' : 's'} in ${dir}\n`);
    return 1;
  }
  const enabled = channels.filter((c) => c.enabled).length;
  io.stdout.write(`OK: ${channels.length} channel${channels.length === 1 ? '' : 's'} (${enabled} enabled) in ${dir}\n`);
  return 0;
}

/** Per-channel counters of a data directory (all time, from the journal); empty when it has none yet. */
function countersOf(dataDir: string | undefined): Record<string, { received: number; passed: number; filtered: number; rejected: number; errored: number; queued: number }> {
  if (dataDir === undefined || !existsSync(databasePath(dataDir))) return {};
  const journal = Journal.open({ file: databasePath(dataDir), readonly: true });
  try {
    const out: ReturnType<typeof countersOf> = {};
    for (const [name, c] of Object.entries(journal.channelCounts())) {
      out[name] = { received: c.passed + c.filtered + c.rejected + c.error, passed: c.passed, filtered: c.filtered, rejected: c.rejected, errored: c.error, queued: 0 };
    }
    // Queued: outbound messages still waiting for delivery (outbox keys are `<channel>/<destination>`).
    let outbox: Record<string, { pending: number }> = {};
    try {
      outbox = new Outbox(journal.database, { migrate: false }).counts();
    } catch {
      // A data directory from before the outbox: nothing queued.
    }
    for (const [key, n] of Object.entries(outbox)) {
      const name = key.split('/')[0]!;
      (out[name] ??= { received: 0, passed: 0, filtered: 0, rejected: 0, errored: 0, queued: 0 }).queued += n.pending;
    }
    return out;
  } finally {
    journal.close();
  }
}

/**
 * `channels list`: name, enabled, version, message types, and what each channel did with the
 * messages of a data directory (received, passed, filtered, rejected, errored) — or `--json` lines.
 */
export function runListChannels(dir: string, json: boolean, io: CliIO, dataDir?: string): number {
  const { channels, issues } = compileChannels(dir);
  const counters = countersOf(dataDir);
  const zero = { received: 0, passed: 0, filtered: 0, rejected: 0, errored: 0, queued: 0 };
  if (json) {
    for (const c of channels) {
      io.stdout.write(
        JSON.stringify({
          name: c.name,
          enabled: c.enabled,
          version: c.version,
          file: c.file,
          types: c.definition.source.types,
          destinations: c.definition.destinations.map((d) => d.type),
          counters: counters[c.name] ?? zero,
        }) + '\n',
      );
    }
  } else {
    const rows = [['NAME', 'ENABLED', 'VERSION', 'TYPES', 'DESTINATIONS', 'RECEIVED', 'PASSED', 'FILTERED', 'REJECTED', 'ERRORED', 'QUEUED', 'FILE']];
    for (const c of channels) {
      const n = counters[c.name] ?? zero;
      rows.push([
        c.name,
        c.enabled ? 'yes' : 'no',
        c.version,
        c.definition.source.types.join(','),
        c.definition.destinations.map((d) => d.type).join(','),
        String(n.received),
        String(n.passed),
        String(n.filtered),
        String(n.rejected),
        String(n.errored),
        String(n.queued),
        c.file,
      ]);
    }
printTable(io, rows[0]!, rows.slice(1), 'no channels');
  }
  // A listing still shows the valid channels; the problems go to stderr and make the exit code.
  for (const i of issues) io.stderr.write(`tributary: ${formatIssue(i)}\n`);
  return issues.length > 0 ? 1 : 0;
}

/**
 * `channels test`: run every case of every channel's tests folder: the channel alone, and, for
 * cases that expect an `ack` or `record` items, the whole path into a throw-away record.
 */
export async function runTestChannels(dir: string, io: CliIO): Promise<number> {
  const { channels, issues } = compileChannels(dir);
  if (issues.length > 0) {
    for (const i of issues) io.stdout.write(formatIssue(i) + '\n');
    return 1;
  }
  const results = [...runChannelTests(channels), ...(await runRecordExpectations(channels))];
  const failed = results.filter((r) => !r.ok);
  for (const r of failed) for (const p of r.problems) io.stdout.write(`${r.file}: ${p}\n`);
  io.stdout.write(`${failed.length === 0 ? 'OK' : 'FAILED'}: ${results.length - failed.length} of ${results.length} channel test cases passed\n`);
  return failed.length === 0 ? 0 : 1;
}

/** The yargs module; main.ts registers it with `.command(channelsCommand(run, io))`. */
export function channelsCommand(run: Run, io: CliIO): CommandModule {
  return {
    command: 'channels',
    describe: 'check, list and test the channel files (which messages go where, and how they are changed)',
    builder: (y) =>
      y
        .command(
          'validate [dir]',
          'check every channel file; prints OK or every problem as file: key.path: message (exit 1)',
          (y2) => y2.positional('dir', DIR),
          (a) => void run(() => runValidate(String(a.dir), io)),
        )
        .command(
          'list [dir]',
          'list the channels: name, enabled, version hash, message types, destinations, and their counters in a data directory',
          (y2) =>
            y2
              .positional('dir', DIR)
              .option('json', { type: 'boolean', default: false, describe: 'JSON lines' })
              .option('data', { type: 'string', default: './data', describe: 'data directory whose counters to show' }),
          (a) => void run(() => runListChannels(String(a.dir), a.json === true, io, a.data)),
        )
        .command(
          'test [dir]',
          'run the test cases in each channel\'s tests/ folder (<case>.hl7 + <case>.expect.yaml)',
          (y2) => y2.positional('dir', DIR),
          (a) => void run(() => runTestChannels(String(a.dir), io)),
        )
        .command(
          'schema',
          'print the channel file format as a JSON Schema, for editors (YAML: # yaml-language-server: $schema=FILE)',
          (y2) => y2,
          () => void run(() => {
            io.stdout.write(`${JSON.stringify(channelJsonSchema(), null, 2)}\n`);
            return 0;
          }),
        )
        .demandCommand(1, 'channels needs a subcommand: validate, list, test or schema')
        .strict(),
    handler: () => {},
  };
}
