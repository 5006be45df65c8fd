// SPDX-License-Identifier: Apache-2.0
/**
 * `tributary review list|show|resolve`: work the record's review queue (messages accepted with
 * `AA` but not applied, because applying them could attach data to the wrong person; see
 * docs/record.md "Resolution, creation and the review queue"). The listing shows no patient data;
 * `show` prints the queued message and is audited as a read; `resolve` applies or dismisses an
 * entry and is audited in the same transaction. Free-text notes stay in the review row; audit
 * rows point at it.
 */
import type { CommandModule } from 'yargs';
import { SenderDirectory } from '../authentication/index.js';
import { createRecordService } from '../engine/record.js';
import { TributaryError } from '../errors.js';
import { Hl7Message } from '../hl7/index.js';
import { type ReviewItem, ReviewQueue } from '../record/index.js';
import type { CliIO } from './common.js';
import { type RecordDb, type Run, dataFlags, jsonLines, nonBlank, positiveId, table, withRecordDb } from './record-db.js';

/** Statuses of `review list --status` (`all`: every entry). */
export const REVIEW_STATUSES = ['open', 'applied', 'dismissed', 'all'] as const;

/** A review entry without the message (the message is patient data: only `review show` prints it). */
export function reviewJson(r: ReviewItem): Record<string, unknown> {
  return {
    id: r.id,
    createdAt: r.createdAt,
    organisationId: r.organisationId,
    teamId: r.teamId,
    reason: r.reason,
    detail: r.detail,
    candidates: r.candidates,
    messageType: r.provenance.messageType,
    controlId: r.provenance.controlId,
    journalId: r.provenance.journalId,
    status: r.status,
    resolvedAt: r.resolvedAt,
    resolvedBy: r.resolvedBy,
    resolutionNote: r.resolutionNote,
    resolvedPatientId: r.resolvedPatientId,
  };
}

/** A review queue over an open data directory (applying uses the engine's own record wiring). */
function queueOf(r: RecordDb): ReviewQueue {
  return new ReviewQueue({ service: createRecordService(r.db, new SenderDirectory(r.db)) });
}

/** Flags of `review list`. */
export interface ReviewListArgs {
  data: string;
  actor?: string;
  status: (typeof REVIEW_STATUSES)[number];
  org?: string;
  json: boolean;
}

/** `review list`: entries, oldest first. */
export function runReviewList(a: ReviewListArgs, io: CliIO): Promise<number> {
  return withRecordDb(a.data, { actor: a.actor }, (r) => {
    const items = r.record.listReviews({ organisationId: a.org, status: a.status === 'all' ? undefined : a.status });
    if (a.json) jsonLines(io, items.map(reviewJson));
    else
      table(
        io,
        ['ID', 'CREATED', 'ORG', 'TYPE', 'REASON', 'STATUS', 'CANDIDATES', 'DETAIL'],
        items.map((x) => [String(x.id), x.createdAt, x.organisationId + (x.teamId ? `/${x.teamId}` : ''), x.provenance.messageType, x.reason, x.status, x.candidates.join(',') || '-', x.detail]),
        a.status === 'open' ? 'no open review items' : 'no review items',
      );
    return 0;
  });
}

/** Flags of `review show`. */
export interface ReviewShowArgs {
  data: string;
  actor?: string;
  id: number;
  json: boolean;
}

/** `review show`: one entry with its message (audited: the message is patient data). */
export function runReviewShow(a: ReviewShowArgs, io: CliIO): Promise<number> {
  return withRecordDb(a.data, { actor: a.actor }, (r) => {
    const id = positiveId('review id', a.id);
    const item = r.record.getReview(id);
    if (item === undefined) throw notFound(id);
    r.audit('review.read', 'review', String(id), { reason: item.reason, status: item.status });
    if (a.json) {
      jsonLines(io, [{ ...reviewJson(item), message: item.message }]);
      return 0;
    }
    const out = [
      `review ${item.id}  ${item.status}`,
      `  created     ${item.createdAt}`,
      `  from        ${item.provenance.chain} (${item.organisationId}${item.teamId ? `/${item.teamId}` : ''}), sender ${item.provenance.senderId ?? '-'}`,
      `  message     ${item.provenance.messageType} MSH-10 ${item.provenance.controlId}, journal ${item.provenance.journalId}, MSH-7 ${item.provenance.enteredAt}`,
      `  reason      ${item.reason}: ${item.detail}`,
      `  candidates  ${item.candidates.join(', ') || '-'}`,
    ];
    if (item.status !== 'open') out.push(`  resolved    ${item.resolvedAt} by ${item.resolvedBy}${item.resolvedPatientId ? `, patient ${item.resolvedPatientId}` : ''}: ${item.resolutionNote ?? ''}`);
    out.push('', 'message:');
    let segments: string[];
    try {
      segments = Hl7Message.parse(item.message).toString().split(/\r\n|\r|\n/);
    } catch {
      segments = item.message.split(/\r\n|\r|\n/);
    }
    for (const s of segments) if (s) out.push(`  ${s}`);
    io.stdout.write(out.join('\n') + '\n');
    return 0;
  });
}

/** The queue's own not-found error, for a review id. */
const notFound = (id: number): TributaryError => new TributaryError('ADMIN_NOT_FOUND', { what: 'review item', id: String(id) });

/** Flags of `review resolve`. */
export interface ReviewResolveArgs {
  data: string;
  actor?: string;
  id: number;
  apply: boolean;
  dismiss: boolean;
  patient?: string;
  note?: string;
  json: boolean;
}

/** `review resolve`: apply (to `--patient` or as sent) or dismiss, audited in the same transaction. */
export function runReviewResolve(a: ReviewResolveArgs, io: CliIO): Promise<number> {
  return withRecordDb(a.data, { actor: a.actor }, (r) => {
    const id = positiveId('review id', a.id);
    const note = nonBlank('--note', a.note);
    const queue = queueOf(r);
    const result = r.record.transaction(() => {
      const res = a.apply
        ? queue.resolve(id, { action: 'apply', ...(a.patient === undefined ? {} : { patientId: a.patient }), by: r.actor, note })
        : queue.resolve(id, { action: 'dismiss', by: r.actor, note });
      r.audit(a.apply ? 'review.apply' : 'review.dismiss', 'review', String(id), {
        reason: res.review.reason,
        ...(res.review.resolvedPatientId ? { patientId: res.review.resolvedPatientId } : {}),
        ...(a.patient !== undefined ? { chosen: true } : {}),
        ...(res.outcome ? { outcome: res.outcome.status } : {}),
      });
      return res;
    });
    if (a.json) jsonLines(io, [{ ...reviewJson(result.review), ...(result.outcome ? { outcome: result.outcome } : {}) }]);
    else if (a.apply) io.stdout.write(`review ${id} applied to patient ${result.review.resolvedPatientId ?? '-'}: ${result.outcome?.summary ?? ''}\n`);
    else io.stdout.write(`review ${id} dismissed\n`);
    return 0;
  });
}

/**
 * The `review` command module, registered by main.ts. `run` is main's runner (exit codes,
 * one-line user errors).
 */
export function reviewCommand(run: Run, io: CliIO): CommandModule {
  return {
    command: 'review',
    describe: 'work the record\'s review queue: messages accepted but not applied because they might be about the wrong person',
    builder: (y) =>
      y
        .command(
          'list',
          'list review entries, oldest first (no patient data)',
          (y2) =>
            dataFlags(y2)
              .option('status', { choices: REVIEW_STATUSES, default: 'open' as const, describe: 'only entries with this status' })
              .option('org', { type: 'string', requiresArg: true, describe: 'only entries of this organisation' })
              .option('json', { type: 'boolean', default: false, describe: 'JSON lines: id, createdAt, organisationId, teamId, reason, detail, candidates, messageType, controlId, journalId, status, resolved*' }),
          (a) => void run(() => runReviewList({ data: a.data, actor: a.actor, status: a.status, org: a.org, json: a.json }, io)),
        )
        .command(
          'show <id>',
          'show one entry with its queued message (audited: the message is patient data)',
          (y2) =>
            dataFlags(y2)
              .positional('id', { type: 'number', demandOption: true, describe: 'review id' })
              .option('json', { type: 'boolean', default: false, describe: 'one JSON line, the message included' }),
          (a) => void run(() => runReviewShow({ data: a.data, actor: a.actor, id: a.id as number, json: a.json }, io)),
        )
        .command(
          'resolve <id>',
          'apply an open entry (to --patient, or to the record it matches as sent) or dismiss it; says who and why (audited)',
          (y2) =>
            dataFlags(y2)
              .positional('id', { type: 'number', demandOption: true, describe: 'review id' })
              .option('apply', { type: 'boolean', describe: 'apply the message' })
              .option('patient', { type: 'string', requiresArg: true, describe: 'with --apply: to this record (followed through merges) instead of as sent' })
              .option('dismiss', { type: 'boolean', describe: 'close without applying' })
              .option('note', { type: 'string', requiresArg: true, demandOption: true, describe: 'why, kept with the entry' })
              .option('json', { type: 'boolean', default: false, describe: 'JSON output' })
              // No defaults on conflicting booleans: yargs counts a default as given.
              .conflicts('apply', 'dismiss')
              .conflicts('dismiss', 'patient')
              .check((x) => {
                if (!x.apply && !x.dismiss) throw new Error('review resolve needs --apply or --dismiss');
                return true;
              }),
          (a) =>
            void run(() => runReviewResolve({ data: a.data, actor: a.actor, id: a.id as number, apply: a.apply === true, dismiss: a.dismiss === true, patient: a.patient, note: a.note, json: a.json }, io)),
        )
        .demandCommand(1, 'review needs a subcommand: list, show or resolve')
        .strict(),
    handler: () => undefined,
  };
}
