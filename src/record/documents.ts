// SPDX-License-Identifier: Apache-2.0
/**
 * MDM^T02: documents and care plans (domain §1 "MDM^T02"; rules and the FHIR mapping in
 * docs/record.md).
 *
 * TXA-2 = `CP` makes a `care-plan` item, anything else a `document`; both are keyed by TXA-12.1
 * and carry a {@link DocumentPayload}. The content is the text of the TX/FT/ST OBX lines, and/or
 * one encapsulated (ED) attachment, read from OBX-5.5 and handed, still encoded, to the attachment
 * store, which decodes it a chunk at a time and keeps the bytes once per content hash; the payload holds only its reference. So a re-sent
 * document with the same bytes is `unchanged`, and changed content is a new version.
 */
import { Hl7ErrorCode, type Hl7Location, type Hl7Message } from '../hl7/index.js';
import {
  type AttachmentRef,
  type EncapsulatedContent,
  TEXT_TYPES,
  attachmentRef,
  readEncapsulated,
  reject,
  text,
  textValue,
  timestamp,
} from './results.js';
import type { HandlerResult, ItemKind, MessageHandler, Provenance } from './types.js';

/**
 * Payload of a `document` or `care-plan` item (one MDM^T02). → FHIR R4 `DocumentReference`
 * (a care plan: `CarePlan` with the document as its `text`/supporting info; see docs/record.md).
 */
export interface DocumentPayload {
  /** TXA-12.1 unique document number; also the item key. → `DocumentReference.identifier` (`masterIdentifier`). */
  documentNumber: string;
  /** TXA-2.1 document type as sent (code set PKBCS05; `CP` = care plan). → `DocumentReference.type`. */
  documentType: string;
  /** The document time, ISO 8601: TXA-8, else TXA-7, TXA-6, TXA-4, else MSH-7 (also the item's `effectiveAt`). → `DocumentReference.date`. */
  documentDate: string;
  /** Which field {@link documentDate} came from. */
  dateSource: 'TXA-8' | 'TXA-7' | 'TXA-6' | 'TXA-4' | 'MSH-7';
  /** TXA-5 originator, first repetition as sent (`id^family^given…`); null when empty. Also the provenance author. → `DocumentReference.author`. */
  author: string | null;
  /** TXA-16 unique document file name; null when empty. → `DocumentReference.content.attachment.title`. */
  fileName: string | null;
  /** TXA-17 completion status: always `AU` (anything else is rejected). → `DocumentReference.docStatus` = final. */
  completionStatus: 'AU';
  /** TXA-13.1 parent document number; null when empty. → `DocumentReference.relatesTo` (replaces). */
  parentDocumentNumber: string | null;
  /** The TX/FT/ST OBX lines joined by `\n`; null when there are none. → `content.attachment` (`text/plain`, `data`). */
  text: string | null;
  /** The encapsulated OBX-5 (ED) content, stored in the attachment store; null when none. → `content.attachment` (`contentType`, `size`, `url`; the SHA-256 as an extension). */
  attachment: AttachmentRef | null;
}

/** A checked MDM^T02, not yet written. */
export interface PlannedDocument {
  kind: Extract<ItemKind, 'document' | 'care-plan'>;
  key: string;
  effectiveAt: string;
  /** The payload without its attachment reference (set when the bytes are stored). */
  payload: DocumentPayload;
  encapsulated: EncapsulatedContent | null;
}

const TIME_FIELDS = [8, 7, 6, 4] as const;

/**
 * Read and check an MDM^T02 (no store access). Rules: docs/record.md.
 *
 * @throws Hl7Error (answered AR) RECORD_SEGMENT_MISSING, RECORD_DOCUMENT_NUMBER_MISSING,
 *   RECORD_DOCUMENT_NOT_AUTHENTICATED, RECORD_BAD_TIMESTAMP, RECORD_DOCUMENT_NO_CONTENT,
 *   RECORD_BAD_ATTACHMENT
 */
export function extractDocument(message: Hl7Message, enteredAt: string): PlannedDocument {
  if (message.countSegments('TXA') === 0) {
    throw reject('RECORD_SEGMENT_MISSING', Hl7ErrorCode.SegmentSequence, { segment: 'TXA' }, { segment: 'TXA' });
  }
  const txa = (field: number): Hl7Location => ({ segment: 'TXA', field });
  const documentNumber = text(message, 'TXA-12.1');
  if (documentNumber === null) throw reject('RECORD_DOCUMENT_NUMBER_MISSING', Hl7ErrorCode.RequiredFieldMissing, {}, txa(12));
  const status = text(message, 'TXA-17.1') ?? '';
  if (status.toUpperCase() !== 'AU') {
    throw reject('RECORD_DOCUMENT_NOT_AUTHENTICATED', Hl7ErrorCode.TableValueNotFound, { status }, txa(17));
  }
  const documentType = text(message, 'TXA-2.1') ?? '';

  let documentDate: string | null = null;
  let dateSource: DocumentPayload['dateSource'] = 'MSH-7';
  for (const f of TIME_FIELDS) {
    const t = timestamp(message, `TXA-${f}`, 'TXA', `TXA-${f}`, txa(f));
    if (t !== null) {
      documentDate = t;
      dateSource = `TXA-${f}`;
      break;
    }
  }
  // MSH-7 was checked by ingest and is in the provenance as an ISO instant already.
  documentDate ??= enteredAt;

  const lines: string[] = [];
  let encapsulated: EncapsulatedContent | null = null;
  const count = message.countSegments('OBX');
  for (let occ = 1; occ <= count; occ++) {
    const type = (text(message, `OBX[${occ}]-2.1`) ?? '').toUpperCase();
    if (TEXT_TYPES.has(type)) {
      lines.push(textValue(message, `OBX[${occ}]-5`));
    } else if (type === 'ED') {
      if (encapsulated !== null) {
        throw reject('RECORD_BAD_ATTACHMENT', Hl7ErrorCode.DataType, { where: `OBX[${occ}]`, reason: 'is a second attachment (one per document)' },
          { segment: 'OBX', sequence: occ, field: 5 });
      }
      encapsulated = readEncapsulated(message, occ, `OBX[${occ}]`);
    }
    // Other types (e.g. RP, a pointer to a document elsewhere) carry no content we can keep.
  }
  if (encapsulated === null && lines.length === 0) {
    throw reject('RECORD_DOCUMENT_NO_CONTENT', Hl7ErrorCode.RequiredFieldMissing, {}, { segment: 'OBX', field: 5 });
  }

  return {
    kind: documentType.toUpperCase() === 'CP' ? 'care-plan' : 'document',
    key: documentNumber,
    effectiveAt: documentDate,
    encapsulated,
    payload: {
      documentNumber,
      documentType,
      documentDate,
      dateSource,
      author: text(message, 'TXA-5'),
      fileName: text(message, 'TXA-16'),
      completionStatus: 'AU',
      parentDocumentNumber: text(message, 'TXA-13.1'),
      text: lines.length === 0 ? null : lines.join('\n'),
      attachment: null,
    },
  };
}

/**
 * MDM^T02: write one document or care plan (see {@link extractDocument}). The label is the
 * organisation's PV1-10 mapping (documents have no coded field of their own), else the default.
 */
export const handleMdmT02: MessageHandler = (message, context): HandlerResult => {
  const { provenance } = context;
  const doc = extractDocument(message, provenance.enteredAt);
  if (doc.encapsulated !== null) {
    const info = context.attachments.put(doc.encapsulated.content, doc.encapsulated.mediaType);
    doc.payload.attachment = attachmentRef(info);
    doc.encapsulated = null; // the store has the bytes; do not keep a second reference around
  }
  const authored: Provenance = doc.payload.author === null ? provenance : { ...provenance, author: doc.payload.author };
  const out = context.store.putItem(
    {
      patientId: context.patientId,
      kind: doc.kind,
      key: doc.key,
      parentKey: null,
      label: context.labelFor('PV1-10', text(message, 'PV1-10.1') ?? undefined),
      effectiveAt: doc.effectiveAt,
      payload: doc.payload as unknown as Record<string, unknown>,
    },
    authored,
  );
  return { summary: `${doc.kind} ${doc.key} ${out.outcome}`, changed: out.outcome !== 'unchanged' };
};

/** Handlers of this module by message type (MSH-9 as `TYPE^TRIGGER`). */
export const DOCUMENT_HANDLERS: Readonly<Record<string, MessageHandler>> = { 'MDM^T02': handleMdmT02 };
