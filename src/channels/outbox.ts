// SPDX-License-Identifier: Apache-2.0
/**
 * The durable outbox of outbound destinations (file, MLLP, HTTP): storage only, no network.
 *
 * An item is written by {@link Outbox.enqueue} inside the journal's group transaction, right after
 * the inbound message's row, so "the sender got AA" and "the message will be forwarded" are one
 * commit: a rolled-back group leaves no item, a committed one survives a crash. The delivery side
 * (`src/interfaces/outbound.ts`) reads the oldest pending item of each destination and marks it
 * delivered, failed (retried later) or dead.
 *
 * Order per destination: {@link Outbox.next} always returns the oldest pending item (by id, which
 * is the commit order), whether or not its next attempt is due, so a destination never delivers
 * item n+1 before item n is delivered or dead.
 *
 * The table lives in the engine's database (the journal's file); this component tracks its own
 * version in `schema_migrations(component, version)`, row `outbox`. Migrations only add. Times are
 * epoch milliseconds.
 */
import type Database from 'better-sqlite3';
import type { Destination } from './schema.js';

/** Component name in `schema_migrations`. */
export const OUTBOX_COMPONENT = 'outbox';

/** Ordered migrations; index + 1 is the version they produce. */
export const OUTBOX_MIGRATIONS: readonly string[] = [
  `CREATE TABLE outbox (
     id               INTEGER PRIMARY KEY,           -- commit order: the delivery order per destination
     destination      TEXT    NOT NULL,              -- destination key, see destinationKey()
     channel          TEXT    NOT NULL,
     journal_id       INTEGER NOT NULL,              -- message.id of the inbound message (no FK: another component's table)
     control_id       TEXT    NOT NULL,              -- MSH-10 of the outgoing message; the ACK's MSA-2 must match it
     payload          BLOB    NOT NULL,              -- the outgoing message, bytes as sent
     status           TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
     attempts         INTEGER NOT NULL DEFAULT 0,    -- attempts that reached the receiver
     next_attempt_at  INTEGER NOT NULL,
     last_code        TEXT,                          -- catalog code of the last failure
     last_error       TEXT,                          -- its text (may quote the receiver's ACK text)
     created_at       INTEGER NOT NULL,
     delivered_at     INTEGER,
     dead_at          INTEGER
   );
   -- next(): the oldest pending item of a destination; counts(); list by status. One index only:
   -- every index costs pages written per group commit.
   CREATE INDEX outbox_queue ON outbox (destination, status, id);`,
];

/** Create or upgrade the outbox table (idempotent; safe beside the journal's and senders' migrations). Not inside a transaction. */
export function migrateOutbox(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  const read = (): number =>
    (db.prepare('SELECT version FROM schema_migrations WHERE component = ?').get(OUTBOX_COMPONENT) as { version: number } | undefined)?.version ?? 0;
  for (let v = read(); v < OUTBOX_MIGRATIONS.length; v++) {
    db.transaction(() => {
      // Re-read inside the write transaction: another process may have migrated meanwhile.
      if (read() > v) return;
      db.exec(OUTBOX_MIGRATIONS[v]!);
      db.prepare('INSERT INTO schema_migrations (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version').run(OUTBOX_COMPONENT, v + 1);
    }).immediate();
  }
}

/** Status of an outbox item. */
export type OutboxStatus = 'pending' | 'delivered' | 'dead';
/** Every {@link OutboxStatus}, in lifecycle order. */
export const OUTBOX_STATUSES: readonly OutboxStatus[] = ['pending', 'delivered', 'dead'];

/** What {@link Outbox.enqueue} stores. */
export interface EnqueueInput {
  /** Destination key (see {@link destinationKey}). */
  destination: string;
  channel: string;
  /** The inbound message's journal id. */
  journalId: number;
  /** The outgoing message; a string is stored as UTF-8. */
  payload: string | Uint8Array;
  /** MSH-10 of the outgoing message. */
  controlId: string;
}

/** One outbox item as read back. */
export interface OutboxItem {
  id: number;
  destination: string;
  channel: string;
  journalId: number;
  controlId: string;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  lastCode: string | null;
  lastError: string | null;
  createdAt: number;
  deliveredAt: number | null;
  deadAt: number | null;
  /** The outgoing bytes; empty when read without payload (listings). */
  payload: Buffer;
}

/** Filters of {@link Outbox.list}. */
export interface OutboxListFilter {
  destination?: string;
  status?: OutboxStatus;
  /** At most this many items (default 1000). */
  limit?: number;
  /** Items with an id greater than this (paging). */
  afterId?: number;
}

/** Item counts of one destination. */
export interface OutboxCounts {
  pending: number;
  delivered: number;
  dead: number;
}

/** Options of {@link Outbox}. */
export interface OutboxOptions {
  /** Create or upgrade the table (default true). The CLI passes false and works on what is there. */
  migrate?: boolean;
  /** Clock (tests). */
  now?: () => number;
}

interface Row {
  id: number;
  destination: string;
  channel: string;
  journal_id: number;
  control_id: string;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: number;
  last_code: string | null;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
  dead_at: number | null;
  payload?: Buffer;
}

const META = 'id, destination, channel, journal_id, control_id, status, attempts, next_attempt_at, last_code, last_error, created_at, delivered_at, dead_at';
const EMPTY = Buffer.alloc(0);

function toItem(r: Row): OutboxItem {
  return {
    id: r.id,
    destination: r.destination,
    channel: r.channel,
    journalId: r.journal_id,
    controlId: r.control_id,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastCode: r.last_code,
    lastError: r.last_error,
    createdAt: r.created_at,
    deliveredAt: r.delivered_at,
    deadAt: r.dead_at,
    payload: r.payload ?? EMPTY,
  };
}

/**
 * The outbox table on a better-sqlite3 connection (normally the journal's, `journal.database`).
 * Every method is synchronous and runs in the caller's transaction when there is one; none opens
 * a transaction of its own.
 */
export class Outbox {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private stmts: ReturnType<Outbox['prepare']> | null = null;

  /** @param db - the engine's database; migrated here unless `options.migrate` is false (so not inside a transaction) */
  constructor(db: Database.Database, options: OutboxOptions = {}) {
    this.db = db;
    this.now = options.now ?? Date.now;
    if (options.migrate ?? true) migrateOutbox(db);
  }

  /** True when the outbox table exists (a database the engine never opened with this version has none). */
  exists(): boolean {
    return this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").get() !== undefined;
  }

  // Prepared lazily: a read-only CLI on a database without the table must still be able to ask exists().
  private prepare() {
    const db = this.db;
    return {
      insert: db.prepare(
        'INSERT INTO outbox (destination, channel, journal_id, control_id, payload, status, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, \'pending\', 0, ?, ?)',
      ),
      next: db.prepare(`SELECT ${META}, payload FROM outbox WHERE destination = ? AND status = 'pending' ORDER BY id LIMIT 1`),
      get: db.prepare(`SELECT ${META} FROM outbox WHERE id = ?`),
      getWithPayload: db.prepare(`SELECT ${META}, payload FROM outbox WHERE id = ?`),
      delivered: db.prepare("UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, last_code = NULL, last_error = NULL WHERE id = ? AND status = 'pending'"),
      failed: db.prepare("UPDATE outbox SET attempts = attempts + ?, next_attempt_at = ?, last_code = ?, last_error = ? WHERE id = ? AND status = 'pending'"),
      dead: db.prepare("UPDATE outbox SET status = 'dead', attempts = attempts + ?, dead_at = ?, last_code = ?, last_error = ? WHERE id = ? AND status = 'pending'"),
      retry: db.prepare("UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, dead_at = NULL WHERE id = ? AND status = 'dead'"),
      counts: db.prepare('SELECT destination, status, count(*) AS n FROM outbox GROUP BY destination, status'),
      purge: db.prepare("DELETE FROM outbox WHERE status = 'delivered' AND delivered_at < ?"),
    };
  }

  private get s(): ReturnType<Outbox['prepare']> {
    return (this.stmts ??= this.prepare());
  }

  /**
   * Add an item, pending and due now. Synchronous; runs in the caller's transaction (the journal's
   * group transaction, from `JournalEntry.apply`), so it is committed or rolled back with the
   * inbound message. Returns the item id.
   */
  enqueue(input: EnqueueInput): number {
    const payload = typeof input.payload === 'string' ? Buffer.from(input.payload, 'utf8') : input.payload;
    const t = this.now();
    return Number(this.s.insert.run(input.destination, input.channel, input.journalId, input.controlId, payload, t, t).lastInsertRowid);
  }

  /**
   * The oldest pending item of a destination, with its payload, whether or not its next attempt is
   * due (the caller waits for `nextAttemptAt`): nothing newer may overtake it.
   */
  next(destination: string): OutboxItem | null {
    const r = this.s.next.get(destination) as Row | undefined;
    return r ? toItem(r) : null;
  }

  /** One item (payload only when asked for). */
  get(id: number, options: { payload?: boolean } = {}): OutboxItem | null {
    const r = (options.payload ? this.s.getWithPayload : this.s.get).get(id) as Row | undefined;
    return r ? toItem(r) : null;
  }

  /** The attempt succeeded. False when the item was no longer pending. */
  markDelivered(id: number): boolean {
    return this.s.delivered.run(this.now(), id).changes > 0;
  }

  /**
   * The attempt failed; try again at `nextAttemptAt`. `countAttempt: false` for failures where the
   * receiver never got the message (it could not be reached): those do not use up attempts.
   * False when the item was no longer pending.
   */
  markFailed(id: number, error: { code: string; message: string }, nextAttemptAt: number, options: { countAttempt?: boolean } = {}): boolean {
    const add = options.countAttempt === false ? 0 : 1;
    return this.s.failed.run(add, nextAttemptAt, error.code, error.message, id).changes > 0;
  }

  /** Give up on the item (dead letter): kept with its error until retried. False when it was no longer pending. */
  markDead(id: number, error: { code: string; message: string }, options: { countAttempt?: boolean } = {}): boolean {
    const add = options.countAttempt === false ? 0 : 1;
    return this.s.dead.run(add, this.now(), error.code, error.message, id).changes > 0;
  }

  /**
   * Make a dead item pending again (attempts reset, due now). It keeps its place: it is the oldest
   * pending item of its destination unless an older one is pending too. False when the item is not dead.
   */
  retry(id: number): boolean {
    return this.s.retry.run(this.now(), id).changes > 0;
  }

  /** Items in id order (without payloads). */
  list(filter: OutboxListFilter = {}): OutboxItem[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.destination !== undefined) {
      where.push('destination = ?');
      params.push(filter.destination);
    }
    if (filter.status !== undefined) {
      where.push('status = ?');
      params.push(filter.status);
    }
    if (filter.afterId !== undefined) {
      where.push('id > ?');
      params.push(filter.afterId);
    }
    params.push(filter.limit ?? 1000);
    const sql = `SELECT ${META} FROM outbox${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`;
    return (this.db.prepare(sql).all(...params) as Row[]).map(toItem);
  }

  /** Item counts by destination and status (destinations with items only). */
  counts(): Record<string, OutboxCounts> {
    const out: Record<string, OutboxCounts> = {};
    for (const r of this.s.counts.all() as Array<{ destination: string; status: OutboxStatus; n: number }>) {
      (out[r.destination] ??= { pending: 0, delivered: 0, dead: 0 })[r.status] = r.n;
    }
    return out;
  }

  /** Delete delivered items delivered before `before` (epoch ms); the journal keeps the inbound message. Returns how many. */
  purgeDelivered(before: number): number {
    return this.s.purge.run(before).changes;
  }
}

/** An outbound destination as the delivery side needs it: the channel's declaration, with its outbox key as `name`. */
export type OutboundDestination = Exclude<Destination, { type: 'record' }> & {
  /** The outbox key (see {@link destinationKey}). */
  name: string;
  /** The channel that declared it. */
  channel: string;
};

/**
 * The outbox key of a channel's destination: `<channel>/<name>`, or `<channel>/<type>-<n>` (n
 * counted from 1 in the channel's `destinations` list) when it has no `name`. Scoped per channel,
 * so two channels never share a queue (or its order) by accident. Give destinations a `name`:
 * an unnamed one changes key when the list is reordered, and its pending items are then orphaned.
 */
export function destinationKey(channel: string, destination: Pick<Destination, 'type' | 'name'>, index: number): string {
  return `${channel}/${destination.name ?? `${destination.type}-${index + 1}`}`;
}

/** The outbound (non-record) destinations of some channels, keyed by {@link destinationKey}. */
export function outboundDestinations(channels: ReadonlyArray<{ name: string; definition: { destinations: readonly Destination[] } }>): OutboundDestination[] {
  const out: OutboundDestination[] = [];
  for (const c of channels) {
    c.definition.destinations.forEach((d, i) => {
      if (d.type === 'record') return;
      out.push({ ...d, name: destinationKey(c.name, d, i), channel: c.name });
    });
  }
  return out;
}
