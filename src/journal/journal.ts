// SPDX-License-Identifier: Apache-2.0
/**
 * The journal: every frame Tributary receives, with its raw bytes, where it came from, what was
 * decided and the ACK that was sent. It is the proof behind the ACK contract:
 *
 * - rows are written with SQLite WAL and `synchronous=FULL`, so a commit survives a crash;
 * - rows are committed in groups: everything submitted during one event-loop turn goes into one
 *   transaction, flushed on `setImmediate` (see bench/RESULTS.md observation 6: a timer window is
 *   worse at every concurrency), and the callers' callbacks run only after that commit;
 * - the engine's journal checkpoints the WAL on a worker thread (`checkpointer.ts`) rather than in
 *   its commits (docs/journal.md);
 * - a failed commit reports the error to every caller of the group (they answer `AE`, never `AA`).
 *
 * Duplicate detection: an accepted message whose sender + MSH-10 matches an accepted message inside
 * `duplicateWindowMs` is stored with status `duplicate`, pointing at the first, and gets the first
 * message's ACK again. Only accepted originals count: a message that was rejected or failed may be
 * sent again with the same MSH-10 and is processed anew.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { TributaryError, errorMessage } from '../errors.js';
import { MIGRATIONS, migrate } from './schema.js';
import { Checkpointer } from './checkpointer.js';
import { silentLogger, type Logger } from '../log.js';

/** The outcome of a journaled frame. */
export type MessageStatus = 'accepted' | 'rejected' | 'error' | 'duplicate';

/** One row to write. */
export interface JournalEntry {
  /** Epoch ms when the frame was complete. */
  receivedAt: number;
  /** `mllp`, `mllps` (TLS), `replay`, `http`. */
  interface: string;
  connectionId: string | null;
  remoteAddress: string | null;
  remotePort: number | null;
  /** The bytes exactly as received (for an oversize frame: its first bytes, see rawSize). */
  raw: Uint8Array;
  /** Total size of the frame when `raw` is only a prefix. */
  rawSize?: number;
  charset: string | null;
  /** Who sent it, the duplicate-detection key (MSH-3 and MSH-4 until authenticated senders exist). */
  sender: string | null;
  controlId: string | null;
  messageType: string | null;
  status: MessageStatus;
  /** Catalog error code when not accepted. */
  reasonCode: string | null;
  reason: string | null;
  /** Where in the message the problem is, e.g. `PID-3[2].1`. */
  errorLocation: string | null;
  ackCode: string | null;
  /** The ACK text sent for it. */
  ack: string | null;
  /** FHS/BHS/BTS/FTS segments when the frame or file was a batch. */
  envelope?: string | null;
  /** The acting organisation (authenticated senders). */
  organisationId?: string | null;
  /** Readable "on behalf of" chain, e.g. "Acme on behalf of St Elsewhere". */
  acting?: string | null;
  /** The row this one repeats (a reprocess); such a row is never a duplicate. */
  reprocessOf?: number | null;
  /** Who reprocessed it and why (and whether it was edited). */
  note?: string | null;
  /**
   * The message's effect beyond its journal row (the record, outboxes, channel outcomes, audit
   * rows), run inside the same group transaction right after the row is inserted, so "committed"
   * covers both. Not run for a duplicate. Returning an {@link EntryOverride} stores that outcome
   * instead (e.g. the record refused the message: AR); undoing what it wrote before refusing is the
   * function's own business (a savepoint), so it can still keep rows that explain the refusal. It
   * must not throw (a throw fails the whole group, which answers AE for every message in it).
   */
  apply?: (db: Database.Database, id: number) => EntryOverride | void;
}

/** A different outcome for an entry, decided by its {@link JournalEntry.apply}. */
export interface EntryOverride {
  status: Exclude<MessageStatus, 'accepted' | 'duplicate'>;
  reasonCode: string;
  reason: string;
  errorLocation: string | null;
  ackCode: string;
  ack: string;
}

/** What the journal decided and stored. */
export interface CommitResult {
  id: number;
  status: MessageStatus;
  ackCode: string | null;
  ack: string | null;
  /** The first message's id when this one is a duplicate. */
  duplicateOf: number | null;
}

/** Callback of {@link Journal.submit}: exactly one of error / result. */
export type CommitCallback = (error: Error | null, result: CommitResult | null) => void;

/** A stored row as read back. */
export interface JournalRow extends Omit<JournalEntry, 'raw' | 'rawSize' | 'envelope' | 'apply'> {
  id: number;
  /** The bytes exactly as received (reassembled when stored in parts). */
  raw: Buffer;
  rawSize: number;
  duplicateOf: number | null;
  envelope: string | null;
}

/** What one channel did with one message (table message_channel). */
export interface ChannelOutcomeRow {
  channel: string;
  /** The channel's version (content hash) that ran. */
  version: string;
  outcome: 'passed' | 'filtered' | 'rejected' | 'error';
  step: string | null;
  code: string | null;
  detail: string | null;
}

/** A transport-level event with no message (a refused connection, an idle timeout…). */
export interface TransportEvent {
  at: number;
  kind: string;
  remoteAddress: string | null;
  connectionId: string | null;
  code: string;
  detail: string;
}

/** Options of {@link Journal.open}. */
export interface JournalOptions {
  /** The database file; its folder is created. */
  file: string;
  /** Duplicate window; 0 disables duplicate detection. */
  duplicateWindowMs?: number;
  /** Flush early when this many rows wait. */
  maxBatchMessages?: number;
  /** Open read-only (CLI inspection); no writes, no migrations. */
  readonly?: boolean;
  /** Where a throwing commit callback is reported (it must never stop the rest of the group). */
  logger?: Logger;
  /**
   * Checkpoint the write-ahead log on a worker thread instead of inside the commits (see
   * `checkpointer.ts`); for the long-running engine. Default false.
   */
  backgroundCheckpoints?: boolean;
}

/** Filters of {@link Journal.list}. */
export interface ListFilter {
  status?: MessageStatus;
  /** Epoch ms: rows received at or after. */
  since?: number;
  limit?: number;
  /** Rows with an id greater than this. */
  afterId?: number;
  /** Read the raw bytes too (default true); listings of metadata pass false and get empty Buffers. */
  withRaw?: boolean;
}

interface Pending {
  entry: JournalEntry;
  cb: CommitCallback;
  id: number;
  duplicateOfId: number | null;
}

const COLUMNS =
  'received_at, interface, connection_id, remote_address, remote_port, raw, raw_size, charset, sender, control_id, ' +
  'message_type, status, reason_code, reason, error_location, ack_code, ack, duplicate_of, envelope, raw_parts, organisation_id, acting, reprocess_of, note';

/**
 * Raw frames larger than this are stored in parts of this size (message_raw_part): binding one
 * multi-MB blob makes SQLite copy it twice (the bound value and the record), which dominated the
 * peak memory of a 5 MB message.
 */
export const RAW_PART_BYTES = 256 * 1024;
const EMPTY = Buffer.alloc(0);
/** Channel outcome rows per multi-row INSERT, and the values of one row. */
const OUTCOME_CHUNK = 16;
const OUTCOME_COLUMNS = 7;
/** How long a statement waits for another connection's lock. */
const BUSY_TIMEOUT_MS = 5000;
/** The longest wait between two tries of a RESTART checkpoint that was busy. */
const RESTART_RETRY_MS = 1000;

/** The message journal on one SQLite file. */
export class Journal {
  /** The database file. */
  readonly file: string;
  private readonly db: Database.Database;
  private readonly duplicateWindowMs: number;
  private readonly maxBatch: number;
  private queue: Pending[] = [];
  private events: TransportEvent[] = [];
  private writes: Array<(db: Database.Database) => void> = [];
  private scheduled = false;
  private closed = false;
  private readonly insertStmt: Database.Statement | undefined;
  private readonly insertEventStmt: Database.Statement | undefined;
  private readonly findOriginalStmt: Database.Statement | undefined;
  private readonly insertIfNewStmt: Database.Statement | undefined;
  private readonly expireKeyStmt: Database.Statement | undefined;
  private readonly insertPartStmt: Database.Statement | undefined;
  private readonly overrideStmt: Database.Statement | undefined;
  private readonly channelStmt: Database.Statement | undefined;
  private readonly channelChunkStmt: Database.Statement | undefined;
  /** Channel outcome rows of the current group, flat, {@link OUTCOME_COLUMNS} values each. */
  private outcomes: unknown[] = [];
  /** Checkpoints on a worker thread ({@link JournalOptions.backgroundCheckpoints}). */
  private checkpointer: Checkpointer | null = null;
  /** A RESTART was busy: not tried again before this time (epoch ms). */
  private restartNotBefore = 0;
  /** RESTARTs busy in a row (the worker's round, or a reader on an older snapshot). */
  private restartBusy = 0;
  /** Run after the current group has committed ({@link whenDurable}); null outside a group. */
  private groupAfter: Array<() => void> | null = null;
  private readonly flushBound = (): void => this.flush();
  private readonly logger: Logger;
  /** Counters since open. */
  readonly stats = { commits: 0, rows: 0, failedCommits: 0, duplicates: 0 };
  /** Told after every group transaction whether it committed (see {@link onGroupEnd}). */
  private readonly groupEndListeners: Array<(committed: boolean) => void> = [];
  /** Test hook: when set, called inside each group transaction before it commits. */
  faultInjector: (() => void) | null = null;

  private constructor(options: JournalOptions, db: Database.Database, wal: boolean) {
    this.file = options.file;
    this.db = db;
    this.duplicateWindowMs = options.duplicateWindowMs ?? 24 * 60 * 60 * 1000;
    this.maxBatch = options.maxBatchMessages ?? 2000;
    this.logger = options.logger ?? silentLogger;
    if (!options.readonly) {
      this.insertStmt = db.prepare(`INSERT INTO message (${COLUMNS}) VALUES (${COLUMNS.split(',').map(() => '?').join(',')})`);
      this.insertEventStmt = db.prepare(
        'INSERT INTO transport_event (at, kind, remote_address, connection_id, code, detail) VALUES (?, ?, ?, ?, ?, ?)',
      );
      this.findOriginalStmt = db.prepare('SELECT id, ack, ack_code, received_at FROM message WHERE dedup_key = ?');
      // The common case is one plain INSERT; the unique dedup key makes a duplicate fail with a
      // constraint error (rare, handled below). Measured cheaper than INSERT ... ON CONFLICT.
      this.insertIfNewStmt = db.prepare(`INSERT INTO message (${COLUMNS}, dedup_key) VALUES (${COLUMNS.split(',').map(() => '?').join(',')}, ?)`);
      // An original older than the window no longer makes duplicates: release its key (only the
      // index helper column changes; the stored message stays as it was).
      this.expireKeyStmt = db.prepare('UPDATE message SET dedup_key = NULL WHERE id = ?');
      this.insertPartStmt = db.prepare('INSERT INTO message_raw_part (message_id, seq, bytes) VALUES (?, ?, ?)');
      this.channelStmt = db.prepare(
        'INSERT OR REPLACE INTO message_channel (message_id, channel, version, outcome, step, code, detail) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      this.channelChunkStmt = db.prepare(
        `INSERT OR REPLACE INTO message_channel (message_id, channel, version, outcome, step, code, detail) VALUES ${Array.from({ length: OUTCOME_CHUNK }, () => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      );
      this.overrideStmt = db.prepare(
        'UPDATE message SET status = ?, reason_code = ?, reason = ?, error_location = ?, ack_code = ?, ack = ?, dedup_key = NULL WHERE id = ?',
      );
    }
    // Last: nothing above can fail and leave the worker running.
    if (wal && !options.readonly && options.backgroundCheckpoints) {
      db.pragma('wal_autocheckpoint = 0');
      this.checkpointer = new Checkpointer({
        file: options.file,
        onError: (err) =>
          this.logger.error('background checkpoints stopped; commits checkpoint again', { code: 'INTERNAL', reason: errorMessage(err) }),
      });
    }
  }

  /**
   * Open (and create or migrate) a journal.
   * @throws TributaryError `JOURNAL_OPEN_FAILED`
   */
  static open(options: JournalOptions): Journal {
    let db: Database.Database | undefined;
    try {
      if (!options.readonly) mkdirSync(dirname(options.file), { recursive: true });
      db = new Database(options.file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      let wal = false;
      if (!options.readonly) {
        wal = db.pragma('journal_mode = WAL', { simple: true }) === 'wal';
        // FULL: a commit is on disk before the ACK goes out (NORMAL in WAL mode may lose the last
        // commits on power loss, which would break "an ACK means durable").
        db.pragma('synchronous = FULL');
        // 1 MiB page cache (default 2 MiB): the journal appends, so it needs few hot pages, and a
        // multi-MB frame's pages would otherwise sit in the cache after its commit. Measured: same
        // insert cost, and a 5 MB message's peak RSS growth 4.2x -> 3.3x its size.
        db.pragma('cache_size = -1024');
        migrate(db);
      } else if ((db.pragma('user_version', { simple: true }) as number) < MIGRATIONS.length) {
        throw new Error('it was written by an older Tributary; start the engine on it once to upgrade it');
      }
      // Statements are prepared here too, so a file with an unexpected schema is a clear
      // JOURNAL_OPEN_FAILED, not an internal error later.
      return new Journal(options, db, wal);
    } catch (e) {
      db?.close();
      throw new TributaryError('JOURNAL_OPEN_FAILED', { file: options.file, reason: errorMessage(e) }, { cause: e });
    }
  }

  /** The underlying connection, for layers that share the file (record, audit). */
  get database(): Database.Database {
    return this.db;
  }

  /**
   * Queue a row for the next group commit. `cb` runs after the commit (or its failure), in
   * submission order. Accepted entries are checked for duplicates when the group is written.
   */
  submit(entry: JournalEntry, cb: CommitCallback): void {
    this.submitAll([entry], [cb]);
  }

  /**
   * Queue the rows of one frame together: they are always committed in the same transaction (an
   * early flush for `maxBatchMessages` happens only between frames), so a frame is never half stored.
   */
  submitAll(entries: readonly JournalEntry[], cbs: readonly CommitCallback[]): void {
    if (this.closed) {
      for (const cb of cbs) cb(new TributaryError('JOURNAL_CLOSED'), null);
      return;
    }
    for (let i = 0; i < entries.length; i++) this.queue.push({ entry: entries[i]!, cb: cbs[i]!, id: 0, duplicateOfId: null });
    if (this.queue.length >= this.maxBatch) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushBound);
    }
  }

  private markDuplicate(e: JournalEntry, ack: string | null, ackCode: string | null, originalId: number): void {
    const err = new TributaryError('JOURNAL_DUPLICATE', { originalId: originalId || 'in the same batch', windowMs: this.duplicateWindowMs });
    e.status = 'duplicate';
    e.reasonCode = err.code;
    e.reason = err.message;
    e.ack = ack;
    e.ackCode = ackCode;
  }

  /** Record a transport event (written with the next group commit; no callback). */
  recordEvent(event: TransportEvent): void {
    if (this.closed) return;
    this.events.push(event);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushBound);
    }
  }

  /**
   * One group's writes, as a transaction. Wrapped once: `db.transaction()` builds four wrapper
   * functions and defines their properties on every call, about 17 µs a group in a profile.
   */
  private readonly groupTransaction = (() => {
    const tx = (batch: Pending[], events: TransportEvent[], writes: Array<(db: Database.Database) => void>): void => {
      for (const p of batch) this.insert(p);
      for (const ev of events) {
        this.insertEventStmt!.run(ev.at, ev.kind, ev.remoteAddress, ev.connectionId, ev.code, ev.detail);
      }
      for (const w of writes) {
        try {
          w(this.db);
        } catch (err) {
          this.logger.error('journal side write failed', { code: 'INTERNAL', reason: errorMessage(err) });
        }
      }
      this.writeOutcomes();
      if (this.faultInjector) this.faultInjector();
    };
    let wrapped: ((...args: Parameters<typeof tx>) => void) | undefined;
    return (...args: Parameters<typeof tx>): void => (wrapped ??= this.db.transaction(tx))(...args);
  })();

  /** Commit everything queued now (normally called on setImmediate). */
  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0 && this.events.length === 0 && this.writes.length === 0) return;
    const batch = this.queue;
    const events = this.events;
    const writes = this.writes;
    this.queue = [];
    this.events = [];
    this.writes = [];
    const after: Array<() => void> = [];
    this.groupAfter = after;
    try {
      this.groupTransaction(batch, events, writes);
    } catch (e) {
      this.stats.failedCommits++;
      this.groupEnded(false);
      const err = e instanceof TributaryError ? e : new TributaryError('JOURNAL_WRITE_FAILED', { reason: errorMessage(e) }, { cause: e });
      for (const p of batch) this.callback(p, err, null);
      return;
    } finally {
      this.groupAfter = null;
      this.outcomes = [];
    }
    this.groupEnded(true);
    this.stats.commits++;
    this.stats.rows += batch.length;
    if (this.checkpointer !== null && (this.checkpointer.failed || this.checkpointer.restartDue)) this.checkpointHere(this.checkpointer);
    this.answer(batch, after);
  }

  /**
   * Run `fn` once what the current group wrote has committed, i.e. is on disk (outbox deliveries
   * read the rows outside the group). Inside a group transaction (from a {@link JournalEntry.apply})
   * it runs after that group's callers are answered, and not at all if the group rolls back;
   * outside one, on the next turn.
   */
  whenDurable(fn: () => void): void {
    if (this.groupAfter) this.groupAfter.push(fn);
    else setImmediate(fn);
  }

  /**
   * Restart the log once it has grown past the checkpointer's bound: a RESTART checkpoint copies
   * what the worker's last round left (little), so the next group writes from the start of the file.
   * It never waits (see below). A failed worker gives the checkpoints back to SQLite for good.
   */
  private checkpointHere(cp: Checkpointer): void {
    if (cp.failed) {
      this.checkpointer = null;
      this.db.pragma('wal_autocheckpoint = 1000');
      return;
    }
    if (Date.now() < this.restartNotBefore) return;
    let busy = 1;
    try {
      // Without waiting: a reader on an older snapshot (a long export, a backup, a shell with a
      // transaction open) would otherwise hold this thread for the whole busy timeout, group after
      // group. Busy (that reader, or the worker's round), it copies what it can, as PASSIVE does,
      // and the next try waits 25 ms, doubling up to a second.
      this.db.pragma('busy_timeout = 0');
      busy = (this.db.pragma('wal_checkpoint(RESTART)') as Array<{ busy: number }>)[0]!.busy;
    } catch (e) {
      this.logger.warn('restarting the write-ahead log failed', { code: 'INTERNAL', reason: errorMessage(e) });
    } finally {
      this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
    if (busy !== 0) {
      this.restartBusy++;
      this.restartNotBefore = Date.now() + Math.min(RESTART_RETRY_MS, 25 * 2 ** (this.restartBusy - 1));
      // The worker's round is over in milliseconds; this many in a row is a reader (logged once).
      if (this.restartBusy === 12) {
        this.logger.warn('the write-ahead log cannot start again while a reader holds an older snapshot; retrying every second', { code: 'INTERNAL' });
      }
      return;
    }
    this.restartBusy = 0;
    cp.restarted();
  }

  /** Tell a committed group's callers, then run what waited for the group ({@link whenDurable}). */
  private answer(batch: readonly Pending[], after: ReadonlyArray<() => void>): void {
    for (const p of batch) {
      const e = p.entry;
      if (e.status === 'duplicate') this.stats.duplicates++;
      this.callback(p, null, { id: p.id, status: e.status, ackCode: e.ackCode, ack: e.ack, duplicateOf: p.duplicateOfId });
    }
    for (const fn of after) this.guarded(fn);
  }

  /** Run an after-commit action; a throw is logged and never keeps the others from running. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.logger.error('journal after-commit action failed', { code: 'INTERNAL', reason: errorMessage(e) });
    }
  }

  /**
   * Call `listener` after every group transaction, with whether it committed: state kept beside the
   * database about rows written in the group (the record's row cache) must not outlive a rollback.
   */
  onGroupEnd(listener: (committed: boolean) => void): void {
    this.groupEndListeners.push(listener);
  }

  private groupEnded(committed: boolean): void {
    for (const l of this.groupEndListeners) {
      try {
        l(committed);
      } catch (e) {
        this.logger.error('journal group listener failed', { code: 'INTERNAL', reason: errorMessage(e) });
      }
    }
  }

  /** Run one caller's callback; a throw is logged and never keeps the rest of the group from being answered. */
  private callback(p: Pending, err: Error | null, res: CommitResult | null): void {
    try {
      p.cb(err, res);
    } catch (e) {
      this.logger.error('journal commit callback failed', { code: 'INTERNAL', reason: errorMessage(e) });
    }
  }

  private insert(p: Pending): void {
    const e = p.entry;
    const size = e.raw.byteLength;
    const parts = size > RAW_PART_BYTES ? Math.ceil(size / RAW_PART_BYTES) : 0;
    const inlineRaw = parts > 0 ? EMPTY : e.raw;
    // Positional arguments, no spread: this runs once per message on the hot path.
    insert: {
      // A reprocess repeats a message on purpose: it is never a duplicate of its original.
      if (e.status === 'accepted' && this.duplicateWindowMs > 0 && e.controlId && !e.reprocessOf) {
        const key = `${e.sender ?? ''}\u0000${e.controlId}`;
        for (let attempt = 0; attempt < 2; attempt++) {
          try {
            p.id = Number(
              this.insertIfNewStmt!.run(
                e.receivedAt, e.interface, e.connectionId, e.remoteAddress, e.remotePort, inlineRaw, e.rawSize ?? size,
                e.charset, e.sender, e.controlId, e.messageType, e.status, e.reasonCode, e.reason, e.errorLocation, e.ackCode,
                e.ack, null, e.envelope ?? null, parts, e.organisationId ?? null, e.acting ?? null, null, null, key,
              ).lastInsertRowid,
            );
            break insert;
          } catch (err) {
            // A constraint failure undoes only this statement; the group transaction goes on.
            if ((err as { code?: string }).code !== 'SQLITE_CONSTRAINT_UNIQUE') throw err;
          }
          const first = this.findOriginalStmt!.get(key) as { id: number; ack: string | null; ack_code: string | null; received_at: number };
          if (first.received_at >= e.receivedAt - this.duplicateWindowMs) {
            this.markDuplicate(e, first.ack, first.ack_code, first.id);
            p.duplicateOfId = first.id;
            break;
          }
          this.expireKeyStmt!.run(first.id);
        }
      }
      p.id = Number(
        this.insertStmt!.run(
          e.receivedAt, e.interface, e.connectionId, e.remoteAddress, e.remotePort, inlineRaw, e.rawSize ?? size,
          e.charset, e.sender, e.controlId, e.messageType, e.status, e.reasonCode, e.reason, e.errorLocation, e.ackCode,
          e.ack, p.duplicateOfId, e.envelope ?? null, parts, e.organisationId ?? null, e.acting ?? null, e.reprocessOf ?? null, e.note ?? null,
        ).lastInsertRowid,
      );
    }
    for (let i = 0; i < parts; i++) {
      this.insertPartStmt!.run(p.id, i, e.raw.subarray(i * RAW_PART_BYTES, Math.min(size, (i + 1) * RAW_PART_BYTES)));
    }
    if (e.apply && e.status !== 'duplicate') this.applyEffects(p, e.apply);
  }

  /** Run an entry's effects and store the outcome they decided. */
  private applyEffects(p: Pending, apply: NonNullable<JournalEntry['apply']>): void {
    const e = p.entry;
    const override = apply(this.db, p.id);
    if (!override) return;
    e.status = override.status;
    e.reasonCode = override.reasonCode;
    e.reason = override.reason;
    e.errorLocation = override.errorLocation;
    e.ackCode = override.ackCode;
    e.ack = override.ack;
    // A refused message must not make a corrected resend look like a duplicate: release its key.
    this.overrideStmt!.run(e.status, e.reasonCode, e.reason, e.errorLocation, e.ackCode, e.ack, p.id);
  }

  /**
   * Record what a channel did with a message. Call it only inside the group transaction (from a
   * {@link JournalEntry.apply}), so it commits with the message.
   */
  writeChannelOutcome(messageId: number, o: ChannelOutcomeRow): void {
    // Inside a group the rows wait for its end and go in by the dozen (one statement per
    // OUTCOME_CHUNK rows instead of one per message); nothing reads them before the commit.
    if (this.groupAfter !== null) this.outcomes.push(messageId, o.channel, o.version, o.outcome, o.step, o.code, o.detail);
    else this.channelStmt!.run(messageId, o.channel, o.version, o.outcome, o.step, o.code, o.detail);
  }

  /** Write the channel outcomes the group collected (inside its transaction, before the commit). */
  private writeOutcomes(): void {
    const rows = this.outcomes;
    if (rows.length === 0) return;
    this.outcomes = [];
    const chunk = OUTCOME_CHUNK * OUTCOME_COLUMNS;
    let i = 0;
    // Spread, not the array: better-sqlite3 binds positional arguments about a third faster than
    // the elements of an array argument (measured: 400 -> 280 ns a row).
    for (; i + chunk <= rows.length; i += chunk) this.channelChunkStmt!.run(...rows.slice(i, i + chunk));
    for (; i < rows.length; i += OUTCOME_COLUMNS) this.channelStmt!.run(...rows.slice(i, i + OUTCOME_COLUMNS));
  }

  /** The channel outcomes of a message, by channel name. */
  channelOutcomes(messageId: number): ChannelOutcomeRow[] {
    return this.db
      .prepare('SELECT channel, version, outcome, step, code, detail FROM message_channel WHERE message_id = ? ORDER BY channel')
      .all(messageId) as ChannelOutcomeRow[];
  }

  /** Per channel, how many messages ended in each outcome (all time). */
  channelCounts(): Record<string, Record<ChannelOutcomeRow['outcome'], number>> {
    const out: Record<string, Record<ChannelOutcomeRow['outcome'], number>> = {};
    for (const r of this.db.prepare('SELECT channel, outcome, count(*) AS n FROM message_channel GROUP BY channel, outcome').all() as Array<{
      channel: string;
      outcome: ChannelOutcomeRow['outcome'];
      n: number;
    }>) {
      (out[r.channel] ??= { passed: 0, filtered: 0, rejected: 0, error: 0 })[r.outcome] = r.n;
    }
    return out;
  }

  /**
   * Run `write` inside the next group transaction (audit rows that belong to no message, e.g. a
   * refused connection). A failing write is logged and does not fail the group.
   */
  enqueueWrite(write: (db: Database.Database) => void): void {
    if (this.closed) return;
    this.writes.push(write);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushBound);
    }
  }

  /** Rows waiting for the next commit. */
  get pendingCount(): number {
    return this.queue.length;
  }

  /** Read one row. */
  get(id: number): JournalRow | undefined {
    const r = this.db.prepare(`SELECT id, ${COLUMNS} FROM message WHERE id = ?`).get(id) as Record<string, unknown> | undefined;
    return r ? this.toRow(r) : undefined;
  }

  /** List rows in receive order. */
  list(filter: ListFilter = {}): JournalRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.status) {
      where.push('status = ?');
      args.push(filter.status);
    }
    if (filter.since !== undefined) {
      where.push('received_at >= ?');
      args.push(filter.since);
    }
    if (filter.afterId !== undefined) {
      where.push('id > ?');
      args.push(filter.afterId);
    }
    const withRaw = filter.withRaw ?? true;
    const limit = filter.limit;
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
      throw new TributaryError('CLI_USAGE', { reason: `--limit must be a whole number, got ${limit}` });
    }
    const columns = withRaw ? COLUMNS : COLUMNS.replace('raw, raw_size', "x'' AS raw, raw_size").replace(', raw_parts', ', 0 AS raw_parts');
    const sql =
      `SELECT id, ${columns} FROM message` +
      (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
      ' ORDER BY id' +
      (limit !== undefined ? ` LIMIT ${limit}` : '');
    return (this.db.prepare(sql).all(...args) as Record<string, unknown>[]).map((r) => this.toRow(r));
  }

  /** Count rows by status. */
  countByStatus(): Record<MessageStatus, number> {
    const out: Record<MessageStatus, number> = { accepted: 0, rejected: 0, error: 0, duplicate: 0 };
    for (const r of this.db.prepare('SELECT status, count(*) AS n FROM message GROUP BY status').all() as Array<{
      status: MessageStatus;
      n: number;
    }>) {
      out[r.status] = r.n;
    }
    return out;
  }

  /** Transport events in order. */
  listEvents(limit = 1000): TransportEvent[] {
    return (
      this.db
        .prepare('SELECT at, kind, remote_address, connection_id, code, detail FROM transport_event ORDER BY id LIMIT ?')
        .all(limit) as Array<Record<string, unknown>>
    ).map((r) => ({
      at: r.at as number,
      kind: r.kind as string,
      remoteAddress: (r.remote_address as string | null) ?? null,
      connectionId: (r.connection_id as string | null) ?? null,
      code: r.code as string,
      detail: r.detail as string,
    }));
  }

  private toRow(r: Record<string, unknown>): JournalRow {
    if (!((r.raw_parts as number) > 0)) return toRow(r, r.raw as Buffer);
    const parts = this.db.prepare('SELECT bytes FROM message_raw_part WHERE message_id = ? ORDER BY seq').pluck().all(r.id) as Buffer[];
    return toRow(r, Buffer.concat(parts));
  }

  /** Commit what is queued and close the file. Later submits fail with `JOURNAL_CLOSED`. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    void this.checkpointer?.stop();
    this.db.close();
  }
}

function toRow(r: Record<string, unknown>, raw: Buffer): JournalRow {
  return {
    id: r.id as number,
    receivedAt: r.received_at as number,
    interface: r.interface as string,
    connectionId: r.connection_id as string | null,
    remoteAddress: r.remote_address as string | null,
    remotePort: r.remote_port as number | null,
    raw,
    rawSize: r.raw_size as number,
    charset: r.charset as string | null,
    sender: r.sender as string | null,
    controlId: r.control_id as string | null,
    messageType: r.message_type as string | null,
    status: r.status as MessageStatus,
    reasonCode: r.reason_code as string | null,
    reason: r.reason as string | null,
    errorLocation: r.error_location as string | null,
    ackCode: r.ack_code as string | null,
    ack: r.ack as string | null,
    duplicateOf: r.duplicate_of as number | null,
    envelope: r.envelope as string | null,
    organisationId: (r.organisation_id as string | null) ?? null,
    acting: (r.acting as string | null) ?? null,
    reprocessOf: (r.reprocess_of as number | null) ?? null,
    note: (r.note as string | null) ?? null,
  };
}
