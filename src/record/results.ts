// SPDX-License-Identifier: Apache-2.0
/**
 * ORU^R01: lab and radiology reports and their results (domain §1 "ORU^R01"; rules and the FHIR
 * mapping in docs/record.md "Reports and results").
 *
 * Each OBR is one `report` item keyed by its filler order number; each OBX a `result` item keyed
 * `<filler>|<OBX-3.1>|<OBX-3.3>` whose parent is the report, or a `measurement` item with the same
 * key when it is an agreed SNOMED CT measurement (measurements.ts). The handler works in two passes: the
 * whole message is read and checked first ({@link extractReports}, pure), then written, so an `AR`
 * never leaves half a message in the record (the caller's transaction would roll it back anyway;
 * this keeps the store untouched and the failure cheap).
 *
 * Versions come from the store: a result whose payload differs is a new version (a correction), an
 * equal one is not rewritten. Results left out of a later message stay as they are.
 */
import { Hl7Error, Hl7ErrorCode, type Hl7Location, type Hl7Message, type Hl7Path, hl7TimestampToIso } from '../hl7/index.js';
import type { ErrorCode, ErrorParams } from '../errors.js';
import { agreedMeasurement, isAgreedCode, type MeasurementPayload } from './measurements.js';
import type {
  AttachmentInfo,
  EncodedAttachment,
  HandlerContext,
  HandlerResult,
  ItemWrite,
  MessageHandler,
  Provenance,
  RecordLabel,
} from './types.js';

// ---------------------------------------------------------------------------------------------
// Payloads (the FHIR export reads these; docs/record.md has the field → FHIR element table)
// ---------------------------------------------------------------------------------------------

/** A coded value (CE/CWE/CNE): code, display text and coding system, as sent. */
export interface CodedValue {
  /** Component 1 (identifier), e.g. `2823-3`. → FHIR `Coding.code`. */
  code: string;
  /** Component 2 (text), e.g. `Potassium`; null when empty. → `Coding.display`. */
  display: string | null;
  /** Component 3 (name of coding system), e.g. `LN`, `SCT` or a local one; null when empty. → `Coding.system` (mapped by the exporter). */
  system: string | null;
}

/** An attachment stored through the {@link AttachmentStore} (bytes stay in the store). */
export interface AttachmentRef {
  /** Attachment id in the store (`AttachmentStore.read(id)`). */
  attachmentId: number;
  /** Hex SHA-256 of the bytes (an extension in FHIR: R4 `Attachment.hash` is SHA-1, set only when the bytes are inlined). */
  sha256: string;
  /** Bytes. → `Attachment.size`. */
  size: number;
  /** Media type from the ED hints (OBX-5.2/5.3), e.g. `application/pdf`. → `Attachment.contentType`. */
  mediaType: string;
}

/** A result value, typed by OBX-2. → FHIR `Observation.value[x]`. */
export type ResultValue =
  /** NM: a decimal number. → `valueQuantity.value` (with {@link ResultPayload.units}). */
  | { type: 'numeric'; value: number }
  /** ST, TX, FT (and a single textual report): the text, repetitions and lines joined by `\n`. → `valueString`. */
  | { type: 'text'; text: string }
  /** CE, CWE, CNE: the first repetition. → `valueCodeableConcept`. */
  | { type: 'coded'; coding: CodedValue }
  /** SN: `<comparator>^<num1>^<separator>^<num2>`, e.g. `>^10` or `^1^:^128`. → `valueQuantity` (comparator) or `valueRange`/`valueRatio`. */
  | { type: 'structured-numeric'; comparator: string | null; value1: number | null; separator: string | null; value2: number | null }
  /** DT, TS, DTM: an ISO 8601 instant. → `valueDateTime`. */
  | { type: 'datetime'; value: string }
  /** ED: an encapsulated document stored as an attachment. → `valueAttachment` (R5) / a DocumentReference (R4). */
  | { type: 'attachment'; attachment: AttachmentRef }
  /** Any other OBX-2 (e.g. CX, XCN, NA): OBX-5 as sent (unescaped). → `valueString`. */
  | { type: 'other'; valueType: string; raw: string }
  /** OBX-5 empty (e.g. a cancelled test). → no `value[x]` (`dataAbsentReason` by the exporter). */
  | { type: 'empty' };

/**
 * Payload of a `report` item (one OBR). → FHIR R4 `DiagnosticReport`.
 */
export interface ReportPayload {
  /** ORC-3.1 or OBR-3.1 (equal when both are sent); also the item key. → `DiagnosticReport.identifier`. */
  fillerOrderNumber: string;
  /** ORC-2.1, else OBR-2.1; null when neither. → `DiagnosticReport.basedOn` identifier. */
  placerOrderNumber: string | null;
  /** OBR-4 universal service identifier (test or panel). → `DiagnosticReport.code`. */
  code: CodedValue | null;
  /** OBR-7 observation date/time, ISO 8601; null when absent. → `DiagnosticReport.effectiveDateTime`. */
  observedAt: string | null;
  /** OBR-22 results report/status change time, ISO 8601; null when absent. → `DiagnosticReport.issued`. */
  statusChangedAt: string | null;
  /** OBR-25 result status as sent (`F`, `P`, `C`, `R`…); null when absent. → `DiagnosticReport.status` (F→final, P→preliminary, C→corrected, R→entered-in-error…). */
  resultStatus: string | null;
  /** OBR-24.1 diagnostic service section (discipline, e.g. `CH`, `HM`, `RAD`); null when absent. → `DiagnosticReport.category`. */
  discipline: string | null;
  /**
   * `radiology` when MSH-3.1 is one of the acting organisation's radiology sending applications
   * (PKB's rule) or OBR-24 names an imaging section (RAD, RX, CT, NMR, NMS, US…), else
   * `laboratory`. → `DiagnosticReport.category` (LAB / RAD).
   */
  category: 'laboratory' | 'radiology';
  /** OBR-13 read as the patient delay in whole days (PKB's use); null when OBR-13 is not a plain number. */
  delayDays: number | null;
  /** Observation time + {@link delayDays}: content is hidden from the patient and carers before this instant. Null when no delay. */
  releaseAt: string | null;
  /** MSH-3.1 as sent; null when empty. Decides {@link category} for organisations that declared it a radiology application. */
  sendingApplication: string | null;
  /** NTE-3 lines between the OBR and its first OBX, one entry per NTE. → `DiagnosticReport.conclusion` / extension. */
  comments: string[];
  /** True when the OBR's OBX lines form a single textual report (kept as one result). → `DiagnosticReport.presentedForm`/`conclusion`. */
  textual: boolean;
}

/**
 * Payload of a `result` item (one OBX, or the lines of a single textual report). → FHIR R4
 * `Observation` (referenced from `DiagnosticReport.result`).
 */
export interface ResultPayload {
  /** The report's filler order number (also the item's `parentKey`). → `DiagnosticReport.result` membership. */
  fillerOrderNumber: string;
  /** OBX-3 observation identifier: code and coding system key the result (case-sensitive). → `Observation.code`. */
  code: CodedValue;
  /** OBX-2 value type as sent, e.g. `NM`, `TX`, `CWE` (upper-cased; `''` when not sent). */
  valueType: string;
  /** OBX-5 typed by OBX-2. → `Observation.value[x]`. */
  value: ResultValue;
  /** OBX-6 units; null when empty. → `valueQuantity.unit`/`code`. */
  units: CodedValue | null;
  /** OBX-7 reference range as sent, e.g. `3.5-5.3`; null when empty. → `Observation.referenceRange.text` (low/high when parseable). */
  referenceRange: string | null;
  /** OBX-8 abnormal flags (every repetition), e.g. `["H"]`. → `Observation.interpretation` (table 0078). */
  abnormalFlags: string[];
  /** OBX-11 observation result status (`F`, `P`, `C`, `D`, `W`…); null when empty. → `Observation.status`. */
  status: string | null;
  /** OBX-14, else OBR-7, as ISO 8601 (also the item's `effectiveAt`). → `Observation.effectiveDateTime`. */
  observedAt: string;
  /** OBX-16 responsible observer, first repetition as sent (`id^family^given…`); null when empty. Also the provenance author. → `Observation.performer`. */
  performer: string | null;
  /** NTE-3 lines following the OBX, one entry per NTE. → `Observation.note`. */
  comments: string[];
  /** OBX-4 observation sub-ID; null when empty. */
  subId: string | null;
  /** True for the single result kept for a textual report (all its lines and NTEs in `value.text`). */
  textual: boolean;
  /** Patient release time of the content (observation time + OBR-13 days); null when no delay. */
  releaseAt: string | null;
}

// ---------------------------------------------------------------------------------------------
// Shared reading helpers (documents.ts uses them too)
// ---------------------------------------------------------------------------------------------

/** OBX-2 types whose value is text. */
export const TEXT_TYPES: ReadonlySet<string> = new Set(['TX', 'FT', 'ST']);

/** OBR-24 diagnostic service sections (HL7 table 0074) that are imaging, plus the word itself. */
const RADIOLOGY_SECTIONS = new Set(['RAD', 'RADIOLOGY', 'RX', 'CT', 'NMR', 'NMS', 'US', 'VUS', 'OUS', 'CUS', 'XRC', 'MR', 'MRI']);

/** An AR: catalog code, table 0357 code, params, location. */
export function reject(code: ErrorCode, hl7Code: number, params: ErrorParams, location: Hl7Location): Hl7Error {
  return new Hl7Error(code, hl7Code, params, location);
}

/** A value read by path, trimmed; null when absent or blank. */
export function text(message: Hl7Message, path: string | Hl7Path): string | null {
  const v = message.get(path)?.trim();
  return v === undefined || v === '' ? null : v;
}

/**
 * Field `field` (or one of its components) of the `occurrence`-th `segment`, as a parsed path: the
 * OBX loop of a 20-result ORU reads about 300 values, and building and parsing a path string for
 * each was a fifth of the message's record cost.
 */
function at(segment: string, occurrence: number, field: number, component?: number): Hl7Path {
  return component === undefined ? { segment, occurrence, field } : { segment, occurrence, field, component };
}

/** A CE/CWE field (first repetition) of one segment occurrence as a {@link CodedValue}; null when component 1 is empty. */
function codedAt(message: Hl7Message, segment: string, occurrence: number, field: number): CodedValue | null {
  const code = text(message, at(segment, occurrence, field, 1));
  if (code === null) return null;
  return { code, display: text(message, at(segment, occurrence, field, 2)), system: text(message, at(segment, occurrence, field, 3)) };
}

/**
 * A timestamp field as ISO 8601, null when empty.
 * @throws Hl7Error RECORD_BAD_TIMESTAMP (102) at `location` when present but not a timestamp
 */
export function timestamp(message: Hl7Message, path: string | Hl7Path, where: string, field: string, location: Hl7Location): string | null {
  const v = text(message, path);
  if (v === null) return null;
  // The results of a report usually share one OBX-14: convert it once.
  if (v === lastStamp.text) return lastStamp.iso;
  const iso = hl7TimestampToIso(v);
  if (iso === undefined) throw reject('RECORD_BAD_TIMESTAMP', Hl7ErrorCode.DataType, { where, field }, location);
  lastStamp = { text: v, iso };
  return lastStamp.iso;
}

/** The last timestamp {@link timestamp} converted (text as sent, ISO 8601). */
let lastStamp = { text: '', iso: '' };

/** Every repetition of a text field (unescaped, `\.br\` already a line feed), joined by `\n`. */
export function textValue(message: Hl7Message, path: string | Hl7Path): string {
  return message.getAll(path).join('\n');
}

/** The NTE-3 text of the n-th NTE (repetitions joined by `\n`). */
function noteText(message: Hl7Message, occurrence: number): string {
  return textValue(message, at('NTE', occurrence, 3));
}

const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;
/** Base64 without whitespace: the usual case, stored as it is. */
const BASE64_PLAIN = /^[A-Za-z0-9+/]*={0,2}$/;
const HEX = /^(?:[0-9A-Fa-f]{2})*$/;

/** Media type from the ED "type of data" (OBX-5.2) and "data subtype" (OBX-5.3) hints. */
export function mediaTypeOf(typeOfData: string | null, subtype: string | null): string {
  const s = (subtype ?? '').trim();
  if (s.includes('/')) return s.toLowerCase(); // already a MIME type (common in practice)
  switch (s.toUpperCase()) {
    case 'PDF': return 'application/pdf';
    case 'JPEG': case 'JPG': return 'image/jpeg';
    case 'PNG': return 'image/png';
    case 'GIF': return 'image/gif';
    case 'TIFF': case 'TIF': return 'image/tiff';
    case 'RTF': return 'application/rtf';
    case 'HTML': return 'text/html';
    case 'XML': return 'application/xml';
    case 'DICOM': return 'application/dicom';
    case 'MSWORD': case 'DOC': return 'application/msword';
    case 'DOCX': return 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
    case 'PLAIN': case 'TEXT': case 'TXT': return 'text/plain';
    default:
      return (typeOfData ?? '').toUpperCase() === 'TEXT' ? 'text/plain' : 'application/octet-stream';
  }
}

/** An encapsulated value, checked, still encoded: the attachment store decodes it as it stores it. */
export interface EncapsulatedContent {
  content: EncodedAttachment;
  mediaType: string;
}

/**
 * Read and check an ED value (OBX-5: source^type^subtype^encoding^data) of the `occurrence`-th
 * OBX, straight from the field's text: the data component is read raw (Base64 and hex contain no
 * delimiter or escape character, so there is nothing to unescape and no second copy of a multi-MB
 * string is made), unescaped only if it holds the escape character. It is not decoded here: the
 * store decodes it a chunk at a time when the item is written (a decoded copy of a 5 MB PDF was
 * 3.75 MB of a big message's peak memory).
 *
 * @throws Hl7Error RECORD_BAD_ATTACHMENT (102) at OBX-5
 */
export function readEncapsulated(message: Hl7Message, occurrence: number, where: string): EncapsulatedContent {
  const location: Hl7Location = { segment: 'OBX', sequence: occurrence, field: 5 };
  const path = `OBX[${occurrence}]-5`;
  let data = message.get(`${path}.5`, { raw: true }) ?? '';
  if (data.includes(message.delimiters.escape) && message.delimiters.escape !== '') data = message.get(`${path}.5`) ?? '';
  if (data.trim() === '') throw reject('RECORD_BAD_ATTACHMENT', Hl7ErrorCode.DataType, { where, reason: 'has no data (OBX-5.5)' }, location);
  const encoding = (text(message, `${path}.4`) ?? 'Base64').toUpperCase();
  let content: EncodedAttachment;
  if (encoding === 'BASE64') {
    // Whitespace may sit anywhere in Base64 (line breaks); the store slices it in whole quanta, so
    // only then is a copy without it made.
    if (!BASE64_PLAIN.test(data)) {
      if (!BASE64.test(data)) throw reject('RECORD_BAD_ATTACHMENT', Hl7ErrorCode.DataType, { where, reason: 'is not valid Base64' }, location);
      data = data.replace(/\s+/g, '');
    }
    // Text that decodes to zero bytes (`==`, a lone `A`) has no data either: its length without
    // padding * 3 / 4, floored, is the decoded length.
    let chars = data.length;
    while (chars > 0 && data.charCodeAt(chars - 1) === 61 /* = */) chars--;
    if (Math.floor((chars * 3) / 4) === 0) throw reject('RECORD_BAD_ATTACHMENT', Hl7ErrorCode.DataType, { where, reason: 'has no data (OBX-5.5)' }, location);
    content = { text: data, encoding: 'base64' };
  } else if (encoding === 'HEX') {
    if (!HEX.test(data)) throw reject('RECORD_BAD_ATTACHMENT', Hl7ErrorCode.DataType, { where, reason: 'is not valid hex' }, location);
    content = { text: data, encoding: 'hex' };
  } else {
    throw reject('RECORD_BAD_ATTACHMENT', Hl7ErrorCode.DataType, { where, reason: `has an unsupported encoding (OBX-5.4) "${encoding}"` }, location);
  }
  return { content, mediaType: mediaTypeOf(text(message, `${path}.2`), text(message, `${path}.3`)) };
}

/** An {@link AttachmentInfo} as stored in a payload. */
export function attachmentRef(info: AttachmentInfo): AttachmentRef {
  return { attachmentId: info.id, sha256: info.sha256, size: info.size, mediaType: info.mediaType };
}

// ---------------------------------------------------------------------------------------------
// Extraction (pure: message in, plan out)
// ---------------------------------------------------------------------------------------------

/** One result (or measurement) to write. */
export interface PlannedResult {
  /** `measurement` for an agreed SNOMED CT code, unit and number (payload a {@link MeasurementPayload}); else `result`. */
  kind: 'result' | 'measurement';
  key: string;
  effectiveAt: string;
  deleted: boolean;
  /** OBX-16 (the provenance author of this result), null when none. */
  author: string | null;
  /** A {@link MeasurementPayload} when `kind` is `measurement`. */
  payload: ResultPayload | MeasurementPayload;
  /** An ED value's bytes, stored (and put into `payload.value`) at write time. */
  encapsulated?: EncapsulatedContent;
}

/** One report (OBR) with its results, to write. */
export interface PlannedReport {
  key: string;
  effectiveAt: string | null;
  /** OBR-25 = R: the report and all its results are written deleted. */
  deleted: boolean;
  payload: ReportPayload;
  results: PlannedResult[];
}

interface ObxRef {
  occurrence: number;
  notes: number[];
}

interface ObrGroup {
  /** 1-based OBR number in the message (also its occurrence). */
  index: number;
  orc: number | undefined;
  notes: number[];
  obx: ObxRef[];
}

/** Split the message into OBR groups (ORC before an OBR belongs to it; NTE to the OBR or OBX before it). */
function groups(message: Hl7Message): ObrGroup[] {
  const out: ObrGroup[] = [];
  const seen = new Map<string, number>();
  let pendingOrc: number | undefined;
  let current: ObrGroup | undefined;
  for (const name of message.segmentNames()) {
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    if (name === 'ORC') {
      pendingOrc = n;
    } else if (name === 'OBR') {
      current = { index: n, orc: pendingOrc, notes: [], obx: [] };
      pendingOrc = undefined;
      out.push(current);
    } else if (name === 'OBX') {
      if (current === undefined) {
        throw reject('RECORD_SEGMENT_ORDER', Hl7ErrorCode.SegmentSequence, { where: `OBX[${n}]`, segment: 'OBX' }, { segment: 'OBX', sequence: n });
      }
      current.obx.push({ occurrence: n, notes: [] });
    } else if (name === 'NTE' && current !== undefined) {
      // NTEs before the first OBR are patient notes: not part of any report.
      const last = current.obx[current.obx.length - 1];
      (last === undefined ? current.notes : last.notes).push(n);
    }
  }
  return out;
}

function addDays(iso: string | null, days: number | null): string | null {
  if (iso === null || days === null || days <= 0) return null;
  return new Date(Date.parse(iso) + days * 86_400_000).toISOString();
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

function numberOrNull(s: string | null): number | null | undefined {
  if (s === null) return null;
  return NUMBER.test(s) ? Number(s) : undefined;
}

/** OBX-5 of one OBX typed by OBX-2 (ED is decoded separately). */
function readValue(message: Hl7Message, occ: number, valueType: string, where: string): ResultValue {
  const path = at('OBX', occ, 5);
  const location: Hl7Location = { segment: 'OBX', sequence: occ, field: 5 };
  const bad = (): Hl7Error => reject('RECORD_BAD_VALUE', Hl7ErrorCode.DataType, { where, type: valueType }, location);
  if (message.getAll(path, { raw: true }).every((r) => r.trim() === '')) return { type: 'empty' };
  switch (valueType) {
    case 'NM': {
      const v = numberOrNull(text(message, path));
      if (v === undefined || v === null) throw bad();
      return { type: 'numeric', value: v };
    }
    case 'ST': case 'TX': case 'FT':
      return { type: 'text', text: textValue(message, path) };
    case 'CE': case 'CWE': case 'CNE': {
      const c = codedAt(message, 'OBX', occ, 5);
      return c === null ? { type: 'empty' } : { type: 'coded', coding: c };
    }
    case 'SN': {
      const value1 = numberOrNull(text(message, at('OBX', occ, 5, 2)));
      const value2 = numberOrNull(text(message, at('OBX', occ, 5, 4)));
      if (value1 === undefined || value2 === undefined) throw bad();
      return { type: 'structured-numeric', comparator: text(message, at('OBX', occ, 5, 1)), value1, separator: text(message, at('OBX', occ, 5, 3)), value2 };
    }
    case 'DT': case 'TS': case 'DTM': {
      const iso = hl7TimestampToIso(text(message, at('OBX', occ, 5, 1)) ?? '');
      if (iso === undefined) throw bad();
      return { type: 'datetime', value: iso };
    }
    default:
      return { type: 'other', valueType, raw: textValue(message, path) };
  }
}

/** Options of {@link extractReports}: what the organisation's configuration decided about the message. */
export interface ExtractOptions {
  /** MSH-3.1 is one of the acting organisation's radiology sending applications: every report is radiology. */
  radiologyApplication?: boolean;
}

/**
 * Read and check every report and result of an ORU^R01 (no store access). Rules: docs/record.md.
 *
 * @throws Hl7Error (answered AR) RECORD_SEGMENT_MISSING, RECORD_SEGMENT_ORDER,
 *   RECORD_FILLER_MISSING, RECORD_FILLER_MISMATCH, RECORD_DUPLICATE_REPORT,
 *   RECORD_RESULT_CODE_MISSING, RECORD_DUPLICATE_RESULT, RECORD_OBSERVATION_TIME_MISSING,
 *   RECORD_BAD_TIMESTAMP, RECORD_BAD_VALUE, RECORD_BAD_ATTACHMENT
 */
export function extractReports(message: Hl7Message, options: ExtractOptions = {}): PlannedReport[] {
  const obrs = groups(message);
  if (obrs.length === 0) throw reject('RECORD_SEGMENT_MISSING', Hl7ErrorCode.SegmentSequence, { segment: 'OBR' }, { segment: 'OBR' });
  const sendingApplication = text(message, 'MSH-3.1');
  const fillers = new Set<string>();
  const resultKeys = new Set<string>();
  const reports: PlannedReport[] = [];
  for (const g of obrs) {
    const where = `OBR[${g.index}]`;
    const obr = (field: number | string): string => `OBR[${g.index}]-${field}`;
    const obrLoc = (field: number): Hl7Location => ({ segment: 'OBR', sequence: g.index, field });

    const orcFiller = g.orc === undefined ? null : text(message, `ORC[${g.orc}]-3.1`);
    const obrFiller = text(message, obr('3.1'));
    if (orcFiller !== null && obrFiller !== null && orcFiller !== obrFiller) {
      throw reject('RECORD_FILLER_MISMATCH', Hl7ErrorCode.DataType, { where, orc: orcFiller, obr: obrFiller }, obrLoc(3));
    }
    const filler = obrFiller ?? orcFiller;
    if (filler === null) throw reject('RECORD_FILLER_MISSING', Hl7ErrorCode.RequiredFieldMissing, { where }, obrLoc(3));
    if (fillers.has(filler)) throw reject('RECORD_DUPLICATE_REPORT', Hl7ErrorCode.DuplicateKeyIdentifier, { where, filler }, obrLoc(3));
    fillers.add(filler);

    const obrTime = timestamp(message, obr(7), where, 'OBR-7', obrLoc(7));
    const statusChangedAt = timestamp(message, obr(22), where, 'OBR-22', obrLoc(22));
    const resultStatus = text(message, obr('25.1'));
    const deleted = resultStatus?.toUpperCase() === 'R';
    const discipline = text(message, obr('24.1'));
    const delayText = text(message, obr(13));
    // OBR-13 is "relevant clinical information" in the standard; only a plain number is a delay.
    const delayDays = delayText !== null && /^\d{1,5}$/.test(delayText) ? Number(delayText) : null;

    // A single textual report: ≥2 OBX, all TX/FT/ST, all with the same OBX-3 code and system.
    const types = g.obx.map((o) => (text(message, at('OBX', o.occurrence, 2, 1)) ?? '').toUpperCase());
    const ids = g.obx.map((o) => `${text(message, at('OBX', o.occurrence, 3, 1)) ?? ''}|${text(message, at('OBX', o.occurrence, 3, 3)) ?? ''}`);
    const textual = g.obx.length >= 2 && types.every((t) => TEXT_TYPES.has(t)) && ids.every((id) => id === ids[0]);

    const results: PlannedResult[] = [];
    const units = textual ? [g.obx] : g.obx.map((o) => [o]);
    for (const lines of units) {
      const first = lines[0]!;
      const j = g.obx.indexOf(first) + 1;
      const obxWhere = `${where}.OBX[${j}]`;
      const obxLoc = (field: number): Hl7Location => ({ segment: 'OBX', sequence: first.occurrence, field });

      const code = codedAt(message, 'OBX', first.occurrence, 3);
      if (code === null) throw reject('RECORD_RESULT_CODE_MISSING', Hl7ErrorCode.RequiredFieldMissing, { where: obxWhere }, obxLoc(3));
      const key = `${filler}|${code.code}|${code.system ?? ''}`;
      if (resultKeys.has(key)) {
        throw reject('RECORD_DUPLICATE_RESULT', Hl7ErrorCode.DuplicateKeyIdentifier, { where: obxWhere, code: code.code, filler }, obxLoc(3));
      }
      resultKeys.add(key);

      let observedAt: string | null = null;
      for (const l of lines) {
        const k = g.obx.indexOf(l) + 1;
        observedAt ??= timestamp(message, at('OBX', l.occurrence, 14), `${where}.OBX[${k}]`, 'OBX-14', { segment: 'OBX', sequence: l.occurrence, field: 14 });
      }
      observedAt ??= obrTime;
      if (observedAt === null) throw reject('RECORD_OBSERVATION_TIME_MISSING', Hl7ErrorCode.RequiredFieldMissing, { where: obxWhere }, obxLoc(14));

      const valueType = types[j - 1]!;
      let value: ResultValue;
      let encapsulated: EncapsulatedContent | undefined;
      let comments: string[];
      if (textual) {
        // One document-like result: every line, with the NTEs that follow it, in message order.
        const parts: string[] = [];
        for (const l of lines) {
          parts.push(textValue(message, at('OBX', l.occurrence, 5)));
          for (const nte of l.notes) parts.push(noteText(message, nte));
        }
        value = { type: 'text', text: parts.join('\n') };
        comments = [];
      } else if (valueType === 'ED') {
        encapsulated = readEncapsulated(message, first.occurrence, obxWhere);
        value = { type: 'empty' }; // replaced by the stored attachment at write time
        comments = first.notes.map((n) => noteText(message, n));
      } else {
        value = readValue(message, first.occurrence, valueType, obxWhere);
        comments = first.notes.map((n) => noteText(message, n));
      }
      const status = text(message, at('OBX', first.occurrence, 11, 1));
      const performer = lines.map((l) => text(message, at('OBX', l.occurrence, 16))).find((p) => p !== null) ?? null;
      const payload: ResultPayload = {
        fillerOrderNumber: filler,
        code,
        valueType,
        value,
        units: textual ? null : codedAt(message, 'OBX', first.occurrence, 6),
        referenceRange: textual ? null : text(message, at('OBX', first.occurrence, 7)),
        abnormalFlags: textual ? [] : message.getAll(at('OBX', first.occurrence, 8)).map((f) => f.trim()).filter((f) => f !== ''),
        status,
        observedAt,
        performer,
        comments,
        subId: textual ? null : text(message, at('OBX', first.occurrence, 4)),
        textual,
        releaseAt: addDays(observedAt, delayDays),
      };
      // OBX-11 D (delete) and W (wrong, e.g. wrong patient) hide this one result; OBR-25 R all.
      const statusDeletes = status === 'D' || status === 'W';
      // An agreed SNOMED CT code, in its agreed unit, with a number: a measurement, not a lab result.
      const measurement = textual ? undefined : agreedMeasurement(code, value, payload.units);
      const planned: PlannedResult =
        measurement === undefined
          ? { kind: 'result', key, effectiveAt: observedAt, deleted: deleted || statusDeletes, author: performer, payload }
          : { kind: 'measurement', key, effectiveAt: observedAt, deleted: deleted || statusDeletes, author: performer, payload: { ...payload, measurement } satisfies MeasurementPayload };
      if (encapsulated !== undefined) planned.encapsulated = encapsulated;
      results.push(planned);
    }

    const effectiveAt = obrTime ?? results[0]?.effectiveAt ?? null;
    const disciplineUpper = discipline?.toUpperCase() ?? '';
    reports.push({
      key: filler,
      effectiveAt,
      deleted,
      results,
      payload: {
        fillerOrderNumber: filler,
        placerOrderNumber: (g.orc === undefined ? null : text(message, `ORC[${g.orc}]-2.1`)) ?? text(message, obr('2.1')),
        code: codedAt(message, 'OBR', g.index, 4),
        observedAt: obrTime,
        statusChangedAt,
        resultStatus,
        discipline,
        category: options.radiologyApplication === true || RADIOLOGY_SECTIONS.has(disciplineUpper) ? 'radiology' : 'laboratory',
        delayDays,
        releaseAt: addDays(effectiveAt, delayDays),
        sendingApplication,
        comments: g.notes.map((n) => noteText(message, n)),
        textual,
      },
    });
  }
  return reports;
}

// ---------------------------------------------------------------------------------------------
// Handler
// ---------------------------------------------------------------------------------------------

/**
 * The label of a report and its results: the organisation's OBR-4 mapping when it maps the code
 * to something other than the default, else the PV1-10 (hospital service) mapping, which itself
 * falls back to the default label. (`labelFor` returns the default when nothing matches, so "a
 * mapping matched" can only be seen as "differs from the default".)
 */
function reportLabel(message: Hl7Message, context: HandlerContext, obr4: string | undefined): RecordLabel | null {
  const byService = context.labelFor('OBR-4', obr4);
  if (byService !== context.settings.defaultLabel) return byService;
  return context.labelFor('PV1-10', text(message, 'PV1-10.1') ?? undefined);
}

/** The other kind an OBX may be stored as (an OBX that changes class between messages moves). */
const OTHER_KIND = { result: 'measurement', measurement: 'result' } as const;

/** ORU^R01: write every report, result and measurement of the message (see {@link extractReports}). */
export const handleOruR01: MessageHandler = (message, context): HandlerResult => {
  const application = text(message, 'MSH-3.1');
  const reports = extractReports(message, { radiologyApplication: application !== null && context.isRadiologyApplication?.(application) === true });
  const { store, patientId, provenance } = context;
  const organisationId = provenance.organisationId;
  const summaries: string[] = [];
  let changed = false;
  for (const report of reports) {
    const label = reportLabel(message, context, report.payload.code?.code);
    const reportWrite: ItemWrite = {
      patientId,
      kind: 'report',
      key: report.key,
      parentKey: null,
      label,
      effectiveAt: report.effectiveAt,
      payload: report.payload as unknown as Record<string, unknown>,
      deleted: report.deleted,
    };
    const r = store.putItem(reportWrite, provenance);
    changed ||= r.outcome !== 'unchanged';
    // Only an OBX with an agreed SNOMED CT code can be (or have been) stored as the other kind.
    const mayMove = (result: PlannedResult): boolean => result.kind === 'measurement' || isAgreedCode(result.payload.code);
    // One range query per kind for the report's stored results (and measurements, when any OBX may
    // be one), instead of one per OBX in the puts and look-ups below.
    if (report.results.length > 1) {
      store.prefetch?.(patientId, 'result', organisationId, `${report.key}|`);
      if (report.results.some(mayMove)) store.prefetch?.(patientId, 'measurement', organisationId, `${report.key}|`);
    }
    let created = 0;
    let corrected = 0;
    let measurements = 0;
    let moved = 0;
    for (const result of report.results) {
      if (result.encapsulated !== undefined) {
        const info = context.attachments.put(result.encapsulated.content, result.encapsulated.mediaType);
        result.payload.value = { type: 'attachment', attachment: attachmentRef(info) };
      }
      const resultProvenance: Provenance = result.author === null ? provenance : { ...provenance, author: result.author };
      const other = mayMove(result) ? store.getItem(patientId, OTHER_KIND[result.kind], organisationId, result.key) : undefined;
      const own = result.deleted && other !== undefined ? store.getItem(patientId, result.kind, organisationId, result.key) : undefined;
      if (result.deleted && other !== undefined && (own === undefined || own.deleted)) {
        // A deletion (OBX-11 D/W, OBR-25 R) of an OBX the record holds live only as the other kind
        // (its own kind absent, or deleted when the OBX moved): a deletion is usually sent without
        // the value or unit that made it a measurement, so it is planned as a result. It deletes
        // the stored item and writes nothing of its own kind (no new version of a deleted one).
        if (!other.deleted) {
          store.deleteItem(other.id, resultProvenance);
          corrected++;
        }
        if (other.kind === 'measurement') measurements++;
        continue;
      }
      const out = store.putItem(
        {
          patientId,
          kind: result.kind,
          key: result.key,
          parentKey: report.key,
          label,
          effectiveAt: result.effectiveAt,
          payload: result.payload as unknown as Record<string, unknown>,
          deleted: result.deleted,
        },
        resultProvenance,
      );
      if (out.outcome === 'created') created++;
      else if (out.outcome === 'updated') corrected++;
      if (result.kind === 'measurement') measurements++;
      // One value per test code and filler order number: the same OBX stored as the other kind
      // before (its unit was not the agreed one then, or is not now) is superseded, so deleted.
      if (other !== undefined && !other.deleted) {
        store.deleteItem(other.id, resultProvenance);
        moved++;
      }
    }
    let deletedOthers = 0;
    if (report.deleted) {
      // OBR-25 = R hides every result and measurement of the report, also those this message does not repeat.
      const sent = new Set(report.results.map((x) => `${x.kind}|${x.key}`));
      for (const kind of ['result', 'measurement'] as const) {
        for (const item of store.listItems(patientId, { kind, organisationId, parentKey: report.key })) {
          if (!sent.has(`${kind}|${item.key}`) && !item.deleted) {
            store.deleteItem(item.id, provenance);
            deletedOthers++;
          }
        }
      }
    }
    changed ||= created > 0 || corrected > 0 || deletedOthers > 0 || moved > 0;
    const counts = measurements === 0 ? `${report.results.length} results` : `${report.results.length - measurements} results, ${measurements} measurements`;
    summaries.push(`report ${report.key}${report.deleted ? ' deleted' : ''}: ${counts} (${created} new, ${corrected} changed)`);
  }
  return { summary: summaries.join('; '), changed };
};

/** Handlers of this module by message type (MSH-9 as `TYPE^TRIGGER`). */
export const RESULT_HANDLERS: Readonly<Record<string, MessageHandler>> = { 'ORU^R01': handleOruR01 };
