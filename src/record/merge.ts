// SPDX-License-Identifier: Apache-2.0
/**
 * Merges (ADT A40 merge patient, A34/A35 merge patient id / account, A18 merge patient
 * information) and the admin unmerge. PKB rejects merges; we support them.
 *
 * Each PID/MRG pair names the surviving record (PID) and the merged one (MRG-1 identifiers). The
 * merged record's items and current team memberships move to the survivor (see
 * {@link SqliteRecordStore.merge}), its identifiers stay where they are and a link
 * (`merged_into`) makes them find the survivor, so a later message for an old identifier lands on
 * the survivor. The merge is recorded with its message (provenance) and the items and memberships
 * it moved, so an unmerge can move exactly those back.
 */
import { TributaryError } from '../errors.js';
import { Hl7Error, Hl7ErrorCode, type Hl7Message } from '../hl7/index.js';
import { type IdentifierScope, type MessageIdentifier, readIdentifiers } from './identifiers.js';
import type { ApplyOutcome } from './service.js';
import type { MergeRecord, SqliteRecordStore } from './store.js';
import type { Provenance } from './types.js';

/** Message types handled as merges. */
export const MERGE_TYPES: ReadonlySet<string> = new Set(['ADT^A40', 'ADT^A34', 'ADT^A35', 'ADT^A18']);

/**
 * The one record identifiers name (following merges), or undefined; several records → the NHS
 * number's, else another national number's (CHI, H&C), else the first found.
 */
function recordOf(store: SqliteRecordStore, ids: readonly MessageIdentifier[]): string | undefined {
  let found: string | undefined;
  let byNational: string | undefined;
  for (const id of ids) {
    if (id.kind === 'email') continue;
    const owner = id.kind === 'pkb' ? id.value : store.findIdentifier(id.kind, id.system, id.value)?.patientId;
    const survivor = owner === undefined ? undefined : store.survivorOf(owner);
    if (survivor === undefined) continue;
    if (id.kind === 'nhs') return survivor;
    if (id.kind === 'national') byNational ??= survivor;
    found ??= survivor;
  }
  return byNational ?? found;
}

/**
 * Apply a merge message: every PID/MRG pair in order.
 *
 * @throws Hl7Error RECORD_UNKNOWN_PATIENT (PID), RECORD_MERGE_UNKNOWN (MRG-1), RECORD_MERGE_SAME,
 *   HL7_REQUIRED_FIELD (no MRG), RECORD_INVALID_NHS_NUMBER, RECORD_INVALID_NATIONAL_ID
 */
export function applyMerge(store: SqliteRecordStore, message: Hl7Message, provenance: Provenance, scope: IdentifierScope): ApplyOutcome {
  const pairs = message.countSegments('MRG');
  if (pairs === 0) throw new Hl7Error('HL7_REQUIRED_FIELD', Hl7ErrorCode.RequiredFieldMissing, { field: 'MRG-1' }, { segment: 'MRG', field: 1 });
  let survivor: string | undefined;
  let merged = 0;
  for (let i = 1; i <= pairs; i++) {
    const pidIds = readIdentifiers(message, scope, { occurrence: i });
    const oldIds = readIdentifiers(message, scope, { segment: 'MRG', occurrence: i, fields: [1] });
    if (oldIds.length === 0) throw new Hl7Error('HL7_REQUIRED_FIELD', Hl7ErrorCode.RequiredFieldMissing, { field: 'MRG-1' }, { segment: 'MRG', sequence: i, field: 1 });
    survivor = recordOf(store, pidIds);
    if (survivor === undefined) {
      throw new Hl7Error('RECORD_UNKNOWN_PATIENT', Hl7ErrorCode.UnknownKeyIdentifier, { type: message.messageType, why: ' (the surviving record must exist)' }, { segment: 'PID', sequence: i, field: 3 });
    }
    const rawOld = oldIds.map((id) => (id.kind === 'pkb' ? id.value : store.findIdentifier(id.kind === 'email' ? 'email' : id.kind, id.system, id.value)?.patientId));
    const oldRecord = rawOld.find((x) => x !== undefined && store.getPatient(x) !== undefined);
    if (oldRecord === undefined) throw new Hl7Error('RECORD_MERGE_UNKNOWN', Hl7ErrorCode.UnknownKeyIdentifier, {}, { segment: 'MRG', sequence: i, field: 1 });
    // Merge the record the old identifier currently leads to (it may itself have been merged before).
    const from = store.survivorOf(oldRecord)!;
    if (from === survivor) {
      if (oldRecord !== survivor) continue; // already merged (a repeated message): nothing to do
      throw new Hl7Error('RECORD_MERGE_SAME', Hl7ErrorCode.DuplicateKeyIdentifier, {}, { segment: 'MRG', sequence: i, field: 1 });
    }
    store.merge(survivor, from, provenance);
    merged++;
  }
  return merged === 0
    ? { status: 'skipped', patientId: survivor!, summary: 'already merged' }
    : { status: 'applied', patientId: survivor!, summary: `merged ${merged} record${merged === 1 ? '' : 's'}` };
}

/** Input of {@link unmerge}: the merge (by id), or the merged-away patient's latest merge. */
export interface UnmergeInput {
  mergeId?: number;
  /** The merged-away record. */
  patientId?: string;
  /** Who (audit). */
  by: string;
  /** Why (audit). */
  reason: string;
}

/**
 * Undo a merge (admin: `tributary record unmerge`): the items and team memberships it moved go
 * back to the merged record (memberships it closed are open again), the link is removed, the merge
 * is marked undone (kept). Items and memberships the survivor received after the merge (also
 * through the old identifiers) stay with the survivor. Registration invitations the merge
 * cancelled stay cancelled. A merge whose survivor has been merged into another record since is
 * refused: the later merges are undone first (newest first). Runs in its own transaction.
 *
 * @throws TributaryError ADMIN_NOT_FOUND, RECORD_NOT_MERGED, RECORD_UNMERGE_ORDER
 */
export function unmerge(store: SqliteRecordStore, input: UnmergeInput): MergeRecord {
  return store.transaction(() => {
    const m = input.mergeId !== undefined ? store.getMerge(input.mergeId) : input.patientId !== undefined ? store.activeMergeOf(input.patientId) : undefined;
    if (m === undefined) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'merge', id: String(input.mergeId ?? input.patientId ?? '') });
    if (m.unmergedAt !== null) throw new TributaryError('RECORD_NOT_MERGED', { id: m.id });
    // The survivor merged away since: what this merge moved now sits with (or went on to) a later
    // survivor, so moving it back would lose or misplace it. Later merges are undone first.
    const later = store.activeMergeOf(m.survivorId);
    if (later !== undefined) throw new TributaryError('RECORD_UNMERGE_ORDER', { id: m.id, later: later.id });
    return store.unmerge(m.id, input.by, input.reason);
  });
}
