// SPDX-License-Identifier: Apache-2.0
/**
 * The review queue (the PKB "org admin queue"): messages accepted with `AA` but not applied,
 * because applying them could attach data to the wrong person (domain §1; reasons in
 * {@link ReviewReason}). An administrator applies one (to a chosen record, or as sent) or
 * dismisses it, saying who and why.
 */
import { TributaryError } from '../errors.js';
import type { ApplyOutcome, RecordService } from './service.js';
import type { ReviewItem, ReviewReason, SqliteRecordStore } from './store.js';

export type { ReviewItem, ReviewReason };

/** How to resolve a review item. */
export type ReviewResolution =
  /** Apply the message to `patientId` (followed through merges), or as sent when omitted. */
  | { action: 'apply'; patientId?: string; by: string; note: string }
  /** Close it without applying. */
  | { action: 'dismiss'; by: string; note: string };

/** Review queue operations over a record store and service. */
export class ReviewQueue {
  private readonly store: SqliteRecordStore;
  private readonly service: RecordService;

  /** @param options - the service that applies resolved messages (and its store) */
  constructor(options: { service: RecordService }) {
    this.service = options.service;
    this.store = options.service.store;
  }

  /** Entries, oldest first (open ones by default). */
  list(filter: { organisationId?: string; status?: ReviewItem['status'] } = { status: 'open' }): ReviewItem[] {
    return this.store.listReviews(filter);
  }

  /** One entry, or undefined. */
  get(id: number): ReviewItem | undefined {
    return this.store.getReview(id);
  }

  /**
   * Apply or dismiss an open entry, in one transaction: when applying fails (the message is now an
   * `AR`, e.g. its email is taken meanwhile) the entry stays open and the error is thrown.
   *
   * @throws TributaryError ADMIN_NOT_FOUND, RECORD_REVIEW_CLOSED; Hl7Error from applying
   */
  resolve(id: number, resolution: ReviewResolution): { review: ReviewItem; outcome?: ApplyOutcome } {
    return this.store.transaction(() => {
      const item = this.store.getReview(id);
      if (item === undefined) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'review item', id: String(id) });
      if (item.status !== 'open') throw new TributaryError('RECORD_REVIEW_CLOSED', { id, status: item.status });
      if (resolution.action === 'dismiss') {
        this.store.closeReview(id, { status: 'dismissed', by: resolution.by, note: resolution.note, patientId: null });
        return { review: this.store.getReview(id)! };
      }
      const outcome = this.service.applyText(item.message, {
        provenance: item.provenance,
        reviewed: resolution.patientId === undefined ? {} : { patientId: resolution.patientId },
      });
      this.store.closeReview(id, { status: 'applied', by: resolution.by, note: resolution.note, patientId: outcome.patientId ?? null });
      return { review: this.store.getReview(id)!, outcome };
    });
  }
}
