// SPDX-License-Identifier: Apache-2.0
/** MDM^T02 → document and care-plan items: keys, payloads, times, attachments stored once, AR checks. */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hl7Error, Hl7Message } from '../../src/hl7/index.js';
import { DOCUMENT_HANDLERS, extractDocument, type DocumentPayload } from '../../src/record/documents.js';
import type { HandlerContext } from '../../src/record/types.js';
import { ROOT } from '../helpers/engine.js';
import { recordFixture } from '../helpers/record.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'record', 'mdm');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const LETTER = fixture('letter-text.hl7');
const CARE_PLAN = fixture('care-plan.hl7');
const PDF_LETTER = fixture('letter-pdf.hl7');
const ENTERED = '2024-05-01T12:00:00.000Z'; // the fixture provenance's enteredAt

const handle = DOCUMENT_HANDLERS['MDM^T02']!;
const run = (text: string, context: HandlerContext) => handle(Hl7Message.parse(text), context);

function arOf(t: import('ava').ExecutionContext, fn: () => unknown): Hl7Error {
  const e = t.throws(fn);
  if (!(e instanceof Hl7Error)) throw new Error(`expected an Hl7Error, got ${String(e)}`);
  return e;
}

/** An MDM^T02 with one ED OBX holding `bytes` (Base64), document number `docNo`. */
function pdfMessage(bytes: Buffer, docNo: string): string {
  return PDF_LETTER.replace('DOC-3001', docNo).replace(/\^Base64\^[^|]*\|/, `^Base64^${bytes.toString('base64')}|`);
}

async function sha256Of(it: AsyncIterable<Uint8Array>): Promise<{ hash: string; chunks: number }> {
  const h = createHash('sha256');
  let chunks = 0;
  for await (const c of it) {
    h.update(c);
    chunks++;
  }
  return { hash: h.digest('hex'), chunks };
}

test('a text letter: a document keyed by TXA-12 with exact payload and TXA-5 as author', (t) => {
  const f = recordFixture(t, { labels: { 'PV1-10|GEN': 'MENTAL_HEALTH' } });
  const out = run(LETTER, f.context());
  t.deepEqual(out, { summary: 'document DOC-1001 created', changed: true });
  const [doc, ...rest] = f.store.listItems(f.patientId, { kind: 'document' });
  t.is(rest.length, 0);
  t.is(doc!.key, 'DOC-1001');
  t.is(doc!.label, 'MENTAL_HEALTH');
  t.is(doc!.effectiveAt, '2024-05-03T12:00:00.000Z');
  t.is(doc!.provenance.author, 'C789^WRITER^WREN');
  t.deepEqual(doc!.payload as unknown as DocumentPayload, {
    documentNumber: 'DOC-1001',
    documentType: 'CL',
    documentDate: '2024-05-03T12:00:00.000Z',
    dateSource: 'TXA-8',
    author: 'C789^WRITER^WREN',
    fileName: 'clinic-letter.txt',
    completionStatus: 'AU',
    parentDocumentNumber: null,
    text: 'Dear colleague,\nI saw this synthetic patient today.\nKind regards',
    attachment: null,
  });
  t.is(f.store.listItems(f.patientId, { kind: 'care-plan' }).length, 0);
});

test('document time: TXA-8, then TXA-7, TXA-6, TXA-4, then MSH-7', (t) => {
  const parse = (s: string) => extractDocument(Hl7Message.parse(s), ENTERED).payload;
  let s = LETTER;
  t.deepEqual([parse(s).dateSource, parse(s).documentDate], ['TXA-8', '2024-05-03T12:00:00.000Z']);
  s = s.replace('|20240503120000|', '||');
  t.deepEqual([parse(s).dateSource, parse(s).documentDate], ['TXA-7', '2024-05-03T11:00:00.000Z']);
  s = s.replace('|20240503110000|', '||');
  t.deepEqual([parse(s).dateSource, parse(s).documentDate], ['TXA-6', '2024-05-03T10:00:00.000Z']);
  s = s.replace('|20240503100000|', '||');
  t.deepEqual([parse(s).dateSource, parse(s).documentDate], ['TXA-4', '2024-05-03T09:00:00.000Z']);
  s = s.replace('|20240503090000|', '||');
  t.deepEqual([parse(s).dateSource, parse(s).documentDate], ['MSH-7', ENTERED]);
});

test('TXA-2 = CP is a care plan', (t) => {
  const f = recordFixture(t);
  const out = run(CARE_PLAN, f.context());
  t.is(out.summary, 'care-plan CP-2001 created');
  const plans = f.store.listItems(f.patientId, { kind: 'care-plan' });
  t.deepEqual(plans.map((p) => p.key), ['CP-2001']);
  t.is((plans[0]!.payload as unknown as DocumentPayload).text, 'Walk 20 minutes a day.');
  t.is(plans[0]!.label, 'GENERAL_HEALTH');
  t.is(f.store.listItems(f.patientId, { kind: 'document' }).length, 0);
});

test('changed content is a new version; the same content again is not', (t) => {
  const f = recordFixture(t);
  run(LETTER, f.context());
  t.deepEqual(run(LETTER, f.context({ provenance: { controlId: 'DOC0009' } })), { summary: 'document DOC-1001 unchanged', changed: false });
  run(LETTER.replace('Kind regards', 'Best wishes'), f.context({ provenance: { controlId: 'DOC0010' } }));
  const doc = f.store.getItem(f.patientId, 'document', 'org-a', 'DOC-1001')!;
  t.is(doc.version, 2);
  t.deepEqual(f.store.history(doc.id).map((v) => (v.payload as unknown as DocumentPayload).text?.split('\n').at(-1)), ['Kind regards', 'Best wishes']);
});

test('a small PDF attachment: media type from OBX-5.3, bytes streamed back', async (t) => {
  const f = recordFixture(t);
  run(PDF_LETTER, f.context());
  const doc = f.store.getItem(f.patientId, 'document', 'org-a', 'DOC-3001')!;
  const p = doc.payload as unknown as DocumentPayload;
  t.is(p.text, null);
  t.is(p.fileName, 'discharge-summary.pdf');
  t.is(p.attachment!.mediaType, 'application/pdf');
  const chunks: Uint8Array[] = [];
  for await (const c of f.attachments.read(p.attachment!.attachmentId)) chunks.push(c);
  t.is(Buffer.concat(chunks).toString('latin1'), '%PDF-1.4\n% synthetic test document, no patient data\n%%EOF\n');
});

test('a ~3 MB attachment is stored once, reused by a second message, and streamed back equal', async (t) => {
  const f = recordFixture(t);
  const bytes = randomBytes(3 * 1024 * 1024);
  const expected = createHash('sha256').update(bytes).digest('hex');

  run(pdfMessage(bytes, 'DOC-BIG-1'), f.context());
  run(pdfMessage(bytes, 'DOC-BIG-2'), f.context({ provenance: { controlId: 'DOC0011' } }));

  const a = f.store.getItem(f.patientId, 'document', 'org-a', 'DOC-BIG-1')!.payload as unknown as DocumentPayload;
  const b = f.store.getItem(f.patientId, 'document', 'org-a', 'DOC-BIG-2')!.payload as unknown as DocumentPayload;
  t.deepEqual(a.attachment, { attachmentId: a.attachment!.attachmentId, sha256: expected, size: bytes.length, mediaType: 'application/pdf' });
  t.deepEqual(b.attachment, a.attachment, 'the second message reuses the row');
  t.is(f.db.prepare('SELECT count(*) FROM record_attachment').pluck().get(), 1);
  // Decoded from Base64 in whole quanta as it is stored: chunks of 256 KiB - 1 byte, so 13.
  t.is(f.db.prepare('SELECT count(*) FROM record_attachment_chunk').pluck().get(), 13);

  const back = await sha256Of(f.attachments.read(a.attachment!.attachmentId));
  t.deepEqual(back, { hash: expected, chunks: 13 });

  // The same document number with different bytes: a new version, a new attachment row.
  const other = randomBytes(1024);
  run(pdfMessage(other, 'DOC-BIG-1'), f.context({ provenance: { controlId: 'DOC0012' } }));
  const doc = f.store.getItem(f.patientId, 'document', 'org-a', 'DOC-BIG-1')!;
  t.is(doc.version, 2);
  t.is((doc.payload as unknown as DocumentPayload).attachment!.sha256, createHash('sha256').update(other).digest('hex'));
  t.is(f.db.prepare('SELECT count(*) FROM record_attachment').pluck().get(), 2);
});

test('TXA-17 other than AU is AR at TXA-17; nothing written', (t) => {
  const f = recordFixture(t);
  const e = arOf(t, () => run(LETTER.replace('clinic-letter.txt|AU', 'clinic-letter.txt|IP'), f.context()));
  t.is(e.code, 'RECORD_DOCUMENT_NOT_AUTHENTICATED');
  t.is(e.hl7Code, 103);
  t.deepEqual(e.location, { segment: 'TXA', field: 17 });
  t.is(e.message, 'TXA-17 (completion status) is "IP": only authenticated (AU) documents are accepted');
  t.is(f.store.listItems(f.patientId, { includeDeleted: true }).length, 0);
  t.is(arOf(t, () => run(LETTER.replace('clinic-letter.txt|AU', 'clinic-letter.txt|'), f.context())).code, 'RECORD_DOCUMENT_NOT_AUTHENTICATED');
});

test('TXA-12 missing is AR at TXA-12', (t) => {
  const e = arOf(t, () => extractDocument(Hl7Message.parse(LETTER.replace('DOC-1001', '')), ENTERED));
  t.is(e.code, 'RECORD_DOCUMENT_NUMBER_MISSING');
  t.is(e.hl7Code, 101);
  t.deepEqual(e.location, { segment: 'TXA', field: 12 });
});

test('no TXA, no content, bad Base64, two attachments: AR', (t) => {
  const noTxa = LETTER.split('\n').filter((l) => !l.startsWith('TXA')).join('\n');
  t.is(arOf(t, () => extractDocument(Hl7Message.parse(noTxa), ENTERED)).code, 'RECORD_SEGMENT_MISSING');

  const empty = LETTER.split('\n').filter((l) => !l.startsWith('OBX')).join('\n');
  t.is(arOf(t, () => extractDocument(Hl7Message.parse(empty), ENTERED)).code, 'RECORD_DOCUMENT_NO_CONTENT');

  const bad = arOf(t, () => extractDocument(Hl7Message.parse(PDF_LETTER.replace(/\^Base64\^[^|]*\|/, '^Base64^not*base64!|')), ENTERED));
  t.is(bad.code, 'RECORD_BAD_ATTACHMENT');
  t.deepEqual(bad.location, { segment: 'OBX', sequence: 1, field: 5 });

  // Data that decodes to zero bytes has no data, like an empty OBX-5.5.
  for (const zero of ['==', 'A', 'A==']) {
    const none = arOf(t, () => extractDocument(Hl7Message.parse(PDF_LETTER.replace(/\^Base64\^[^|]*\|/, `^Base64^${zero}|`)), ENTERED));
    t.is(none.code, 'RECORD_BAD_ATTACHMENT', zero);
    t.regex(none.message, /has no data \(OBX-5\.5\)/, zero);
  }

  const obx = PDF_LETTER.split('\n').find((l) => l.startsWith('OBX'))!;
  const two = arOf(t, () => extractDocument(Hl7Message.parse(`${PDF_LETTER.trimEnd()}\n${obx.replace('OBX|1|', 'OBX|2|')}\n`), ENTERED));
  t.is(two.code, 'RECORD_BAD_ATTACHMENT');
  t.deepEqual(two.location, { segment: 'OBX', sequence: 2, field: 5 });
});

test('hex-encoded ED data and a MIME type in OBX-5.3 are understood', (t) => {
  const hex = PDF_LETTER.replace(/\^AP\^PDF\^Base64\^[^|]*\|/, `^AP^image/png^Hex^${Buffer.from('png!').toString('hex')}|`);
  const doc = extractDocument(Hl7Message.parse(hex), ENTERED);
  t.is(doc.encapsulated!.mediaType, 'image/png');
  t.deepEqual(doc.encapsulated!.content, { text: Buffer.from('png!').toString('hex'), encoding: 'hex' });
});

test('Base64 with line breaks and spaces is stored as the bytes it encodes', async (t) => {
  const bytes = Buffer.from('%PDF-1.4 a letter with some length to wrap over several lines of Base64');
  const b64 = bytes.toString('base64');
  const wrapped = `${b64.slice(0, 20)} ${b64.slice(20, 40)}\\X0A\\${b64.slice(40)}`;
  const doc = extractDocument(Hl7Message.parse(PDF_LETTER.replace(/\^Base64\^[^|]*\|/, `^Base64^${wrapped}|`)), ENTERED);
  t.deepEqual(doc.encapsulated!.content, { text: b64, encoding: 'base64' }, 'unescaped, then the whitespace taken out');
});
