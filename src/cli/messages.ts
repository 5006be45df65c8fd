// SPDX-License-Identifier: Apache-2.0
/** `tributary messages list|show`: what arrived, read from a data directory's journal. */
import { existsSync } from 'node:fs';
import { Hl7Message, decodeHl7Bytes } from '../hl7/index.js';
import { Journal, type JournalRow, type MessageStatus } from '../journal/journal.js';
import { databasePath } from '../engine/engine.js';
import { TributaryError } from '../errors.js';
import { parseSince, printTable, type CliIO } from './common.js';

/** Statuses accepted by `--status`. */
export const STATUSES: readonly MessageStatus[] = ['accepted', 'rejected', 'error', 'duplicate'];

function openJournal(dataDir: string): Journal {
  const file = databasePath(dataDir);
  if (!existsSync(file)) {
    throw new TributaryError('JOURNAL_OPEN_FAILED', { file, reason: 'no database here (has the engine run with this --data?)' });
  }
  return Journal.open({ file, readonly: true });
}

/** The JSON-lines shape of `messages list --json` (stable keys). */
export function listItem(r: JournalRow): Record<string, unknown> {
  return {
    id: r.id,
    receivedAt: new Date(r.receivedAt).toISOString(),
    remoteAddress: r.remoteAddress,
    messageType: r.messageType,
    controlId: r.controlId,
    status: r.status,
    ackCode: r.ackCode,
    reason: r.reason,
  };
}

/** Flags of `messages list`. */
export interface ListArgs {
  data: string;
  status?: MessageStatus;
  since?: string;
  limit?: number;
  json: boolean;
}

/** Print journal rows. */
export function runList(args: ListArgs, io: CliIO): number {
  const journal = openJournal(args.data);
  try {
    // Metadata only: the raw bytes (up to megabytes each) are not read for a listing.
    const rows = journal.list({ status: args.status, since: args.since ? parseSince(args.since) : undefined, limit: args.limit, withRaw: false });
    if (args.json) {
      for (const r of rows) io.stdout.write(JSON.stringify(listItem(r)) + '\n');
      return 0;
    }
    const table = [['ID', 'RECEIVED', 'FROM', 'TYPE', 'MSH-10', 'STATUS', 'ACK', 'REASON']];
    for (const r of rows) {
      table.push([
        String(r.id),
        new Date(r.receivedAt).toISOString(),
        r.remoteAddress ?? r.interface,
        r.messageType ?? '-',
        r.controlId ?? '-',
        r.status,
        r.ackCode ?? '-',
        r.reason ?? '',
      ]);
    }
    printTable(io, table[0]!, table.slice(1), 'no messages');
    return 0;
  } finally {
    journal.close();
  }
}

/** Show control characters other than the segment breaks, so a terminal shows them instead of acting on them. */
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `<0x${c.charCodeAt(0).toString(16).padStart(2, '0')}>`);
}

/** Flags of `messages show`. */
export interface ShowArgs {
  data: string;
  id: number;
  raw: boolean;
}

/** Print one message: metadata, decoded segments, the ACK (or only the raw bytes with --raw). */
export function runShow(args: ShowArgs, io: CliIO): number {
  const journal = openJournal(args.data);
  try {
    const r = journal.get(args.id);
    if (!r) throw new TributaryError('JOURNAL_NOT_FOUND', { id: args.id, file: journal.file });
    if (args.raw) {
      io.stdout.write(r.raw);
      return 0;
    }
    const out: string[] = [];
    out.push(`message ${r.id}`);
    out.push(`  received   ${new Date(r.receivedAt).toISOString()} via ${r.interface}${r.remoteAddress ? ` from ${r.remoteAddress}:${r.remotePort}` : ''}${r.connectionId ? ` (connection ${r.connectionId})` : ''}`);
    out.push(`  type       ${r.messageType ?? '-'}    MSH-10 ${r.controlId ?? '-'}    sender ${r.sender ?? '-'}`);
    if (r.reprocessOf) out.push(`  reprocess  of message ${r.reprocessOf}${r.note ? `: ${r.note}` : ''}`);
    if (r.acting) out.push(`  for        ${r.acting}${r.organisationId ? ` (${r.organisationId})` : ''}`);
    out.push(`  status     ${r.status}${r.reasonCode ? ` (${r.reasonCode})` : ''}${r.duplicateOf ? `, duplicate of ${r.duplicateOf}` : ''}`);
    if (r.reason) out.push(`  reason     ${r.reason}${r.errorLocation ? ` at ${r.errorLocation}` : ''}`);
    out.push(`  bytes      ${r.rawSize}${r.rawSize > r.raw.length ? ` (first ${r.raw.length} kept)` : ''}, charset ${r.charset ?? 'unknown'}`);
    if (r.envelope) out.push(`  batch      ${printable(r.envelope).split('\r').join(' | ')}`);
    for (const c of journal.channelOutcomes(r.id)) {
      const where = c.step ? ` at ${c.step}` : '';
      out.push(`  channel    ${c.channel} (${c.version}): ${c.outcome}${where}${c.detail ? ` - ${c.detail}` : ''}`);
    }
    out.push('', 'segments (decoded to UTF-8):');
    let text: string;
    try {
      text = decodeHl7Bytes(r.raw).text;
    } catch {
      text = r.raw.toString('latin1');
    }
    let segments: string[];
    try {
      const msg = Hl7Message.parse(text);
      segments = msg.toString().split(/\r\n|\r|\n/);
    } catch {
      segments = text.split(/\r\n|\r|\n/);
    }
    for (const s of segments) if (s.length) out.push(`  ${printable(s)}`);
    out.push('', `ACK (${r.ackCode ?? 'none'}):`);
    for (const s of (r.ack ?? '').split('\r')) if (s.length) out.push(`  ${printable(s)}`);
    io.stdout.write(out.join('\n') + '\n');
    return 0;
  } finally {
    journal.close();
  }
}
