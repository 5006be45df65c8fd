// SPDX-License-Identifier: Apache-2.0
/**
 * `tributary outbox list|retry`: what waits for, reached or gave up on an outbound destination
 * (file, MLLP, HTTP), and bringing dead items back. Works on a data directory's database, also
 * while the engine runs (a retried item is picked up at the engine's next poll). See docs/outbox.md.
 */
import Database from 'better-sqlite3';
import type { CommandModule } from 'yargs';
import { OUTBOX_STATUSES, Outbox, type OutboxItem, type OutboxStatus } from '../channels/outbox.js';
import { TributaryError } from '../errors.js';
import { openDatabase, printTable, type CliIO } from './common.js';

type Run = (fn: () => Promise<number> | number) => Promise<void>;

const DATA_OPTION = { type: 'string', default: './data', describe: 'data directory (holds tributary.db)' } as const;

/** Open the data directory's database; the outbox table is never created here. */
function openOutbox(data: string, readonly: boolean): { db: Database.Database; outbox: Outbox } {
  const db = openDatabase(data, { readonly });
  return { db, outbox: new Outbox(db, { migrate: false }) };
}

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** The JSON-lines shape of `outbox list --json` (stable keys; never the payload). */
export function outboxItemJson(i: OutboxItem): Record<string, unknown> {
  return {
    id: i.id,
    destination: i.destination,
    channel: i.channel,
    journalId: i.journalId,
    controlId: i.controlId,
    status: i.status,
    attempts: i.attempts,
    nextAttemptAt: i.status === 'pending' ? iso(i.nextAttemptAt) : null,
    lastCode: i.lastCode,
    lastError: i.lastError,
    createdAt: iso(i.createdAt),
    deliveredAt: iso(i.deliveredAt),
    deadAt: iso(i.deadAt),
  };
}

/** Flags of `outbox list`. */
export interface OutboxListArgs {
  data: string;
  status?: OutboxStatus;
  destination?: string;
  limit?: number;
  json: boolean;
}

/** Print outbox items in delivery order. */
export function runOutboxList(args: OutboxListArgs, io: CliIO): number {
  const { db, outbox } = openOutbox(args.data, true);
  try {
    const items = outbox.exists() ? outbox.list({ status: args.status, destination: args.destination, limit: args.limit }) : [];
    if (args.json) {
      for (const i of items) io.stdout.write(JSON.stringify(outboxItemJson(i)) + '\n');
      return 0;
    }
    const table = [['ID', 'DESTINATION', 'MESSAGE', 'MSH-10', 'STATUS', 'ATTEMPTS', 'WHEN', 'LAST ERROR']];
    for (const i of items) {
      const when = i.status === 'pending' ? `next ${iso(i.nextAttemptAt)}` : i.status === 'delivered' ? iso(i.deliveredAt)! : iso(i.deadAt)!;
      table.push([String(i.id), i.destination, String(i.journalId), i.controlId || '-', i.status, String(i.attempts), when, i.lastError ?? '']);
    }
    printTable(io, table[0]!, table.slice(1), 'no outbox items');
    return 0;
  } finally {
    db.close();
  }
}

/** Flags of `outbox retry`. */
export interface OutboxRetryArgs {
  data: string;
  ids: number[];
  /** Retry every dead item (of `destination` when given) instead of listed ids. */
  allDead: boolean;
  destination?: string;
}

/**
 * Make dead items pending again, all or none: an id that does not exist or is not dead changes
 * nothing and is reported (exit 2).
 * @throws TributaryError `OUTBOX_NOT_FOUND`, `OUTBOX_NOT_DEAD`, `CLI_USAGE`
 */
export function runOutboxRetry(args: OutboxRetryArgs, io: CliIO): number {
  if (args.allDead === (args.ids.length > 0)) {
    throw new TributaryError('CLI_USAGE', { reason: 'outbox retry needs item ids, or --all-dead (optionally with --destination)' });
  }
  if (args.destination !== undefined && !args.allDead) throw new TributaryError('CLI_USAGE', { reason: '--destination goes with --all-dead' });
  for (const id of args.ids) {
    if (!Number.isSafeInteger(id) || id < 1) throw new TributaryError('CLI_USAGE', { reason: `outbox item ids are positive whole numbers, got ${String(id)}` });
  }
  const { db, outbox } = openOutbox(args.data, false);
  try {
    if (!outbox.exists()) {
      if (args.allDead) {
        io.stdout.write('retried 0 items\n');
        return 0;
      }
      throw new TributaryError('OUTBOX_NOT_FOUND', { id: args.ids[0]! });
    }
    const retried = db.transaction((): number[] => {
      let ids = args.ids;
      if (args.allDead) {
        // Paged: the limit of list() must not silently leave dead items behind.
        ids = [];
        for (let after = 0; ; ) {
          const page = outbox.list({ status: 'dead', destination: args.destination, afterId: after, limit: 10_000 });
          if (page.length === 0) break;
          ids.push(...page.map((i) => i.id));
          after = page[page.length - 1]!.id;
        }
      }
      for (const id of ids) {
        const item = outbox.get(id);
        if (item === null) throw new TributaryError('OUTBOX_NOT_FOUND', { id });
        if (!outbox.retry(id)) throw new TributaryError('OUTBOX_NOT_DEAD', { id, status: item.status });
      }
      return ids;
    }).immediate();
    io.stdout.write(`retried ${retried.length} item${retried.length === 1 ? '' : 's'}${retried.length ? `: ${retried.join(' ')}` : ''}\n`);
    return 0;
  } finally {
    db.close();
  }
}

/** The yargs module; main.ts registers it with `.command(outboxCommand(run, io))`. */
export function outboxCommand(run: Run, io: CliIO): CommandModule {
  return {
    command: 'outbox',
    describe: 'inspect the outbound queue (file, MLLP, HTTP destinations) and retry dead items',
    builder: (y) =>
      y
        .command(
          'list',
          'list outbox items in delivery order: destination, journal id, MSH-10, status, attempts, last error',
          (y2) =>
            y2
              .option('data', DATA_OPTION)
              .option('status', { choices: OUTBOX_STATUSES })
              .option('destination', { type: 'string', requiresArg: true, describe: 'destination key, e.g. forward-mllp/gp-system' })
              .option('limit', { type: 'number', requiresArg: true, describe: 'at most N items [default: 1000]' })
              .option('json', {
                type: 'boolean',
                default: false,
                describe: 'JSON lines: id, destination, channel, journalId, controlId, status, attempts, nextAttemptAt, lastCode, lastError, createdAt, deliveredAt, deadAt',
              }),
          (a) => void run(() => runOutboxList({ data: a.data, status: a.status, destination: a.destination, limit: a.limit, json: a.json }, io)),
        )
        .command(
          'retry [ids..]',
          'make dead items pending again (attempts reset); they keep their place in their destination\'s order',
          (y2) =>
            y2
              .positional('ids', { type: 'number', array: true, describe: 'outbox item ids' })
              .option('data', DATA_OPTION)
              .option('all-dead', { type: 'boolean', default: false, describe: 'every dead item (of --destination when given)' })
              .option('destination', { type: 'string', requiresArg: true, describe: 'with --all-dead: only this destination' }),
          (a) =>
            void run(() => runOutboxRetry({ data: a.data, ids: (a.ids as number[] | undefined) ?? [], allDead: a['all-dead'], destination: a.destination }, io)),
        )
        .demandCommand(1, 'outbox needs a subcommand: list or retry')
        .strict(),
    handler: () => {},
  };
}
