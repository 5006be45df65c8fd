// SPDX-License-Identifier: Apache-2.0
/**
 * `tributary messages reprocess ID... [--channel C] [--edit FILE --reason TEXT]`: send stored
 * messages through the current channels again, into the same data directory (beside a running
 * engine or not). Each run is a new journal row pointing at the original (`reprocess_of`); the
 * original row is never changed. An edited reprocess (one message, its text replaced by a file)
 * needs a reason, and the audit log records who changed which message, and why.
 */
import { readFileSync } from 'node:fs';
import { defaultActor, writeAudit } from '../authentication/index.js';
import { createPipeline, databasePath, openChannels } from '../engine/engine.js';
import { TributaryError, errorMessage } from '../errors.js';
import { Journal } from '../journal/journal.js';
import { silentLogger } from '../log.js';
import { EXIT, readAck, type CliIO } from './common.js';

/** Flags of `messages reprocess`. */
export interface ReprocessArgs {
  data: string;
  ids: number[];
  /** Only this channel (it must still take the message). */
  channel?: string;
  /** Replace the (single) message's text by this file's. */
  edit?: string;
  /** Why (required with `edit`). */
  reason?: string;
  actor?: string;
  /** Channel folder (default ./channels; missing: the built-in record channel). */
  channels: string;
}

/** Reprocess messages; prints `ID -> NEW-ID  ACK-CODE  text` per message. Exit 1 unless all accepted. */
export async function runReprocess(args: ReprocessArgs, io: CliIO): Promise<number> {
  if (args.edit !== undefined && args.ids.length !== 1) throw new TributaryError('CLI_USAGE', { reason: '--edit replaces one message: give exactly one ID' });
  if (args.edit !== undefined && !args.reason?.trim()) throw new TributaryError('CLI_USAGE', { reason: '--edit needs --reason: say why the message was changed' });
  let edited: Buffer | undefined;
  if (args.edit !== undefined) {
    try {
      edited = readFileSync(args.edit);
    } catch (e) {
      throw new TributaryError('CLI_FILE_UNREADABLE', { file: args.edit, reason: (e as NodeJS.ErrnoException).code ?? errorMessage(e) });
    }
  }
  const file = databasePath(args.data);
  const journal = Journal.open({ file, readonly: false });
  const actor = args.actor ?? defaultActor();
  let exit: number = EXIT.ok;
  try {
    // Everything is checked before anything is sent.
    const rows = args.ids.map((id) => {
      const row = journal.get(id);
      if (!row) throw new TributaryError('JOURNAL_NOT_FOUND', { id, file });
      if (!row.sender || !row.organisationId) {
        throw new TributaryError('CLI_USAGE', { reason: `message ${id} came from no authenticated sender (status ${row.status}); it cannot be reprocessed` });
      }
      return row;
    });
    const channels = openChannels(args.channels, silentLogger);
    if (args.channel !== undefined && !channels.get(args.channel)) {
      throw new TributaryError('CLI_USAGE', { reason: `--channel ${args.channel}: no such channel in ${args.channels}` });
    }
    const { ingestor } = createPipeline({ journal, logger: silentLogger, channels });
    for (const row of rows) {
      const note = [
        `reprocessed by ${actor}`,
        args.channel !== undefined ? `through channel ${args.channel}` : null,
        edited ? `edited (${args.edit}): ${args.reason!.trim()}` : args.reason?.trim() ? `reason: ${args.reason.trim()}` : null,
      ]
        .filter((x) => x !== null)
        .join('; ');
      const result = await ingestor.submit(edited ?? row.raw, {
        interface: row.interface,
        connectionId: null,
        remoteAddress: row.remoteAddress,
        remotePort: null,
        senderId: row.sender,
        reprocess: { of: row.id, note, channel: args.channel },
      });
      const newId = result.ids[0];
      // Who changed what and why: in the audit log beside the admin changes (the reason is the
      // operator's words; the message content stays in the journal).
      journal.database.transaction(() =>
        writeAudit(journal.database, {
          at: Date.now(),
          actor,
          action: edited ? 'message.edit-reprocess' : 'message.reprocess',
          objectType: 'message',
          objectId: String(row.id),
          detail: { newId: newId ?? null, channel: args.channel ?? null, edited: edited !== undefined, reason: args.reason?.trim() ?? null, ackCode: result.ackCode },
        }),
      )();
      io.stdout.write(`${row.id} -> ${newId ?? '-'}\t${result.ackCode}\t${readAck(result.ack).text}\n`);
      if (result.ackCode !== 'AA' && result.ackCode !== 'CA') exit = EXIT.notAccepted;
    }
  } finally {
    journal.close();
  }
  return exit;
}
