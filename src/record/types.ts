// SPDX-License-Identifier: Apache-2.0
/**
 * The aggregated patient record: the shapes every part of `src/record/` shares.
 *
 * The record is a set of patients, their identifiers, and **items** (an allergy, a diagnosis, an
 * encounter, a result, a document…). Every item has the same envelope: who it is about, who sent it
 * (source organisation and team, on whose behalf, author), which message it came from, when it was
 * entered (MSH-7), its privacy label, a version number with history, and a deleted flag. The
 * clinical content is a typed payload per kind (stored as JSON, the way Medplum stores resources),
 * so provenance, versioning, deletion and export work the same way for every kind.
 *
 * Message handlers (ADT, SIU, ORU, MDM…) read and write the record only through {@link RecordStore};
 * nothing outside `src/record/` writes SQL for it, so a PostgreSQL store can follow.
 */
import type { Hl7Message } from '../hl7/index.js';

/** The four privacy labels (domain §3). The same values as the senders model's labels. */
export const RECORD_LABELS = ['GENERAL_HEALTH', 'MENTAL_HEALTH', 'SEXUAL_HEALTH', 'SOCIAL_CARE'] as const;
/** One of {@link RECORD_LABELS}; `null` on an item means "unlabelled". */
export type RecordLabel = (typeof RECORD_LABELS)[number];

/** Kinds of record items. */
export type ItemKind =
  | 'allergy' // AL1
  | 'condition' // DG1
  | 'medication' // ZRX
  | 'next-of-kin' // NK1
  | 'gp' // PD1 / ROL
  | 'encounter' // PV1 (ADT A01…A38)
  | 'appointment' // SIU, ADT A05/A14
  | 'report' // ORU OBR (one panel / lab report)
  | 'result' // ORU OBX (one observation; parentKey = its report's key)
  | 'measurement' // ORU OBX with an agreed SNOMED CT code, unit and number (measurements.ts; parentKey = its report's key)
  | 'document' // MDM T02
  | 'care-plan'; // MDM T02 with TXA-2 = CP

/** Who put an item (or a version of it) into the record, and from which message. */
export interface Provenance {
  /** The acting (data-controller) organisation: the sender's own, or the MSH-4 alias's. */
  organisationId: string;
  /** The acting team, when the alias names one. */
  teamId: string | null;
  /** Organisations the data came through, outermost first ("A on behalf of B": [A]). Empty for a customer sending for itself. */
  onBehalfOf: string[];
  /** Readable chain, e.g. "Acme Integrations on behalf of St Elsewhere (Radiology)". */
  chain: string;
  /** The author the message names (e.g. TXA-5, OBX-16), as sent; null when none. */
  author: string | null;
  /** The sender (authenticated system) id, or null when unauthenticated (replay into a data dir). */
  senderId: string | null;
  /** Journal row of the message. */
  journalId: number;
  /** MSH-10 of the message. */
  controlId: string;
  /** MSH-9 as `TYPE^TRIGGER`. */
  messageType: string;
  /** MSH-7 as an ISO 8601 instant (the PKB "enteredTimestamp"). */
  enteredAt: string;
}

/** A stored item (current version). */
export interface RecordItem<P = Record<string, unknown>> {
  id: number;
  patientId: string;
  kind: ItemKind;
  /**
   * The external key, unique per (patient, kind, source organisation): PV1-19.1 for an encounter,
   * SCH-1.1 for an appointment, the filler order number for a report, `<filler>|<code>|<system>`
   * for a result, TXA-12 for a document, a content key for list items (allergen + date…).
   */
  key: string;
  /** The key of the item this one belongs to (a result's report), or null. */
  parentKey: string | null;
  label: RecordLabel | null;
  /** 1 for the first version; +1 on every change. */
  version: number;
  /** Deleted or corrected-away data is hidden, never removed. */
  deleted: boolean;
  /** When the item's content happened (observation time, admit time, appointment start), ISO 8601; null when unknown. */
  effectiveAt: string | null;
  provenance: Provenance;
  payload: P;
}

/** What a handler asks the store to write. */
export interface ItemWrite<P = Record<string, unknown>> {
  patientId: string;
  kind: ItemKind;
  key: string;
  parentKey?: string | null;
  label: RecordLabel | null;
  effectiveAt?: string | null;
  payload: P;
  /** Write the item as deleted (OBR-25 = R). Default false. */
  deleted?: boolean;
}

/** Result of {@link RecordStore.putItem}. */
export interface PutResult {
  item: RecordItem;
  /** 'created' (new key), 'updated' (a new version), 'unchanged' (same payload, label and deleted flag: no new version). */
  outcome: 'created' | 'updated' | 'unchanged';
}

/** Filter of {@link RecordStore.listItems}. */
export interface ItemQuery {
  kind?: ItemKind;
  /** Only items whose provenance organisation is this one. */
  organisationId?: string;
  parentKey?: string;
  includeDeleted?: boolean;
}

/** A past version of an item (the current one included), oldest first. */
export interface ItemVersion<P = Record<string, unknown>> {
  version: number;
  deleted: boolean;
  label: RecordLabel | null;
  effectiveAt: string | null;
  provenance: Provenance;
  payload: P;
}

/**
 * The item half of the record store: what message handlers use. Every method runs synchronously
 * inside the caller's transaction (the journal's group commit), so a message's record change and
 * its journal row commit together.
 */
export interface ItemStore {
  /** The current version of an item of this organisation, deleted ones included; undefined when none. A new object each call (the caller may change it). */
  getItem(patientId: string, kind: ItemKind, organisationId: string, key: string): RecordItem | undefined;
  /** Current versions matching the query, in insertion order. */
  listItems(patientId: string, query?: ItemQuery): RecordItem[];
  /** Insert, or write a new version when the payload, label, effective time or deleted flag differ. */
  putItem(write: ItemWrite, provenance: Provenance): PutResult;
  /** Mark deleted (a new version); a no-op on an already deleted item. */
  deleteItem(itemId: number, provenance: Provenance): void;
  /**
   * Replace this organisation's whole list of `kind` for the patient (domain §3 "replace-all"):
   * items whose key is in `writes` are put, this organisation's other items of the kind are
   * deleted; other organisations' items are untouched.
   */
  replaceList(patientId: string, kind: ItemKind, writes: ItemWrite[], provenance: Provenance): void;
  /** Every version of an item, oldest first. */
  history(itemId: number): ItemVersion[];
  /**
   * Optional: read the items of a kind whose key starts with `keyPrefix` in one query, so that the
   * puts that follow (a report's results) need no query each. A hint; correctness never depends on it.
   */
  prefetch?(patientId: string, kind: ItemKind, organisationId: string, keyPrefix: string): number;
}

/** Per-organisation record settings the record layer gets from the senders model (injected, not imported). */
export interface OrganisationSettings {
  /** Any message may create a record (with a verified national id, names, birth date and sex). */
  autoCreate: boolean;
  /** NHS number status other than 01 goes to the review queue. */
  nhsStatusCheck: boolean;
  /** The acting team's default label (or the organisation's record team's), applied when no mapping matches. */
  defaultLabel: RecordLabel | null;
}

/** Which coded field a label mapping reads (domain §1 "Coded fields, privacy labels"). */
export type LabelSource = 'PV1-10' | 'OBR-4' | 'AL1-3';

/** A stored attachment (an MDM document's encapsulated content). */
export interface AttachmentInfo {
  id: number;
  /** Hex SHA-256 of the bytes: the same content is stored once. */
  sha256: string;
  size: number;
  mediaType: string;
}

/**
 * Attachment content still in its transfer encoding (an ED value's data as sent): the store decodes
 * it a chunk at a time, so a multi-MB document is never held decoded in memory whole.
 */
export interface EncodedAttachment {
  /** The encoded characters, without whitespace (validated by the caller). */
  text: string;
  encoding: 'base64' | 'hex';
}

/**
 * Attachment bytes, stored once (by content hash) and read back as a stream, so a large document
 * is never held in memory twice.
 */
export interface AttachmentStore {
  /** Store bytes, or encoded content decoded as it is stored (or reuse the row holding the same bytes). */
  put(content: Uint8Array | EncodedAttachment, mediaType: string): AttachmentInfo;
  /** Metadata, or undefined. */
  info(id: number): AttachmentInfo | undefined;
  /** The bytes, chunk by chunk. */
  read(id: number): AsyncIterable<Uint8Array>;
}

/** What a message handler gets besides the message. */
export interface HandlerContext {
  store: ItemStore;
  attachments: AttachmentStore;
  /** The resolved patient (after merges: the survivor). */
  patientId: string;
  provenance: Provenance;
  settings: OrganisationSettings;
  /** The privacy label for a coded value, through the organisation's mapping; else the default label. */
  labelFor(source: LabelSource, code: string | undefined): RecordLabel | null;
  /**
   * Whether a sending application (MSH-3.1) is one of the acting organisation's radiology
   * applications (PKB decides radiology by MSH-3). Absent: the organisation has none.
   */
  isRadiologyApplication?(application: string): boolean;
}

/**
 * Applies one message type's effect to the record. Throws an `Hl7Error` (catalog code, 0357 code,
 * location) for anything the sender must be told with `AR`; returns a short summary for the journal.
 */
export type MessageHandler = (message: Hl7Message, context: HandlerContext) => HandlerResult;

/** What a handler did, for logs, the journal and tests (no PHI: keys and counts only). */
export interface HandlerResult {
  /** e.g. "encounter V123 admit", "report F55: 3 results (1 corrected)". */
  summary: string;
  /** False when the message changed nothing (older than the record, duplicate content, A08 with no matching event). */
  changed: boolean;
}
