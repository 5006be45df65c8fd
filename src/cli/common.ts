// SPDX-License-Identifier: Apache-2.0
/** Helpers shared by the CLI commands: output streams, exit codes, option parsing, tables, the database. */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { databasePath } from '../engine/engine.js';
import { TributaryError, errorMessage } from '../errors.js';
import { processStream } from '../log.js';

/** Process exit codes of the CLI (documented in README "CLI"). */
export const EXIT = {
  ok: 0,
  /** Some message was not accepted (AR/AE). */
  notAccepted: 1,
  /** A user error: bad flag, unreadable file, port in use, bad config. */
  usage: 2,
  /** Transport failure: could not connect, no ACK. */
  transport: 3,
} as const;

/** Where commands write; injectable for tests. */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** The process streams (written directly when the CLI runs on the engine thread, see log.ts `processStream`). */
export const processIO: CliIO = { stdout: processStream(1), stderr: processStream(2) };

/**
 * Parse HOST:PORT (IPv6 as [::1]:2575).
 * @throws TributaryError `CLI_BAD_ADDRESS`
 */
export function parseHostPort(value: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:]+):(\d+)$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new TributaryError('CLI_BAD_ADDRESS', { value });
  return { host: m[1]!, port };
}

/**
 * Parse `--since`: an ISO date/time, or a duration back from now (`30s`, `10m`, `2h`, `7d`).
 * @throws TributaryError `CLI_USAGE`
 */
export function parseSince(value: string, now = Date.now()): number {
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return now - Number(rel[1]) * unit;
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new TributaryError('CLI_USAGE', { reason: `--since: "${value}" is neither a date nor a duration like 10m, 2h, 7d` });
  return t;
}

/** Read MSA-1/MSA-2/MSA-3 and the ACK's MSH-7/MSH-10 from an ACK text (any delimiters). */
export function readAck(text: string): { code: string; controlId: string; text: string; timestamp: string; ackId: string } {
  const segs = text.split(/\r\n|\r|\n/);
  const msh = segs.find((s) => s.startsWith('MSH')) ?? '';
  const fs = msh.charAt(3) || '|';
  const mshFields = msh.split(fs);
  const msa = (segs.find((s) => s.startsWith('MSA')) ?? '').split(fs);
  return { code: msa[1] ?? '', controlId: msa[2] ?? '', text: msa[3] ?? '', timestamp: mshFields[6] ?? '', ackId: mshFields[9] ?? '' };
}

/** Print a table: a header, padded columns (the last one free), and `(empty)` when there are no rows. */
export function printTable(io: CliIO, header: string[], rows: string[][], empty: string): void {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  for (const r of all) io.stdout.write(r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd() + '\n');
  if (rows.length === 0) io.stdout.write(`(${empty})\n`);
}

/**
 * Open the engine database of a data directory from a CLI command, beside a running engine (WAL,
 * waits for its group commit). `create`: make the directory and file if missing (configuring before
 * the first start); otherwise a missing database is a one-line error. `readonly` opens it read-only.
 * @throws TributaryError `JOURNAL_OPEN_FAILED`
 */
export function openDatabase(data: string, options: { create?: boolean; readonly?: boolean } = {}): Database.Database {
  const file = databasePath(data);
  if (!options.create && !existsSync(file)) {
    throw new TributaryError('JOURNAL_OPEN_FAILED', { file, reason: 'no database here (has the engine run with this --data?)' });
  }
  try {
    if (options.create) mkdirSync(resolve(data), { recursive: true });
    const db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: !options.create });
    // A running engine holds the same file: wait for its group commit instead of failing.
    db.pragma('busy_timeout = 5000');
    if (!options.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    return db;
  } catch (e) {
    throw new TributaryError('JOURNAL_OPEN_FAILED', { file, reason: errorMessage(e) }, { cause: e });
  }
}
