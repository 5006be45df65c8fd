// SPDX-License-Identifier: Apache-2.0
/** Helpers shared by the CLI commands: output streams, exit codes, option parsing. */
import { TributaryError } from '../errors.js';

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

/** The process streams. */
export const processIO: CliIO = { stdout: process.stdout, stderr: process.stderr };

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
