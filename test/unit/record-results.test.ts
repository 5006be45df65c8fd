// SPDX-License-Identifier: Apache-2.0
/** ORU^R01 → report and result items: keys, payloads, versions, deletion, AR checks. */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hl7Error, Hl7Message, buildAck } from '../../src/hl7/index.js';
import { RESULT_HANDLERS, extractReports, type ReportPayload, type ResultPayload } from '../../src/record/results.js';
import type { HandlerContext, RecordItem } from '../../src/record/types.js';
import { ROOT } from '../helpers/engine.js';
import { OTHER_ORG, recordFixture } from '../helpers/record.js';
import { msa } from '../helpers/messages.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'record', 'oru');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const LAB = fixture('lab-panel.hl7');
const TEXTUAL = fixture('textual-report.hl7');

const handle = RESULT_HANDLERS['ORU^R01']!;
const run = (text: string, context: HandlerContext) => handle(Hl7Message.parse(text), context);

/** Replace one whole segment line (found by its start) in a fixture. */
function replaceLine(text: string, startsWith: string, line: string | null): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith(startsWith));
  if (i < 0) throw new Error(`no line starting ${startsWith}`);
  if (line === null) lines.splice(i, 1);
  else lines[i] = line;
  return lines.join('\n');
}

function arOf(t: import('ava').ExecutionContext, fn: () => unknown): Hl7Error {
  const e = t.throws(fn);
  if (!(e instanceof Hl7Error)) throw new Error(`expected an Hl7Error, got ${String(e)}`);
  return e;
}

const byKey = (items: RecordItem[]) => new Map(items.map((i) => [i.key, i]));

test('a lab panel: one report keyed by the filler number, one result per OBX with exact payloads', (t) => {
  const f = recordFixture(t);
  const out = run(LAB, f.context({ provenance: { messageType: 'ORU^R01' } }));
  t.true(out.changed);
  t.is(out.summary, 'report F55001: 4 results (4 new, 0 changed)');

  const [report, ...others] = f.store.listItems(f.patientId, { kind: 'report' });
  t.is(others.length, 0);
  t.is(report!.key, 'F55001');
  t.is(report!.version, 1);
  t.is(report!.label, 'GENERAL_HEALTH');
  t.is(report!.effectiveAt, '2024-05-01T09:30:00.000Z');
  t.deepEqual(report!.payload as unknown as ReportPayload, {
    fillerOrderNumber: 'F55001',
    placerOrderNumber: 'P9001',
    code: { code: 'UE', display: 'Urea and electrolytes', system: 'WINPATH' },
    observedAt: '2024-05-01T09:30:00.000Z',
    statusChangedAt: '2024-05-01T11:00:00.000Z',
    resultStatus: 'F',
    discipline: 'CH',
    category: 'laboratory',
    delayDays: null,
    releaseAt: null,
    sendingApplication: 'WINPATH',
    comments: ['Sample slightly haemolysed'],
    textual: false,
  });

  const results = byKey(f.store.listItems(f.patientId, { kind: 'result' }));
  t.deepEqual([...results.keys()], ['F55001|2823-3|LN', 'F55001|2951-2|LN', 'F55001|COMMENT|LOCAL', 'F55001|GFR|LOCAL']);
  for (const r of results.values()) t.is(r.parentKey, 'F55001');

  const k = results.get('F55001|2823-3|LN')!;
  t.is(k.effectiveAt, '2024-05-01T09:45:00.000Z');
  t.is(k.provenance.author, 'C123^DOCTOR^DANA');
  t.deepEqual(k.payload as unknown as ResultPayload, {
    fillerOrderNumber: 'F55001',
    code: { code: '2823-3', display: 'Potassium', system: 'LN' },
    valueType: 'NM',
    value: { type: 'numeric', value: 4.6 },
    units: { code: 'mmol/L', display: 'mmol/L', system: 'UCUM' },
    referenceRange: '3.5-5.3',
    abnormalFlags: ['N'],
    status: 'F',
    observedAt: '2024-05-01T09:45:00.000Z',
    performer: 'C123^DOCTOR^DANA',
    comments: [],
    subId: null,
    textual: false,
    releaseAt: null,
  });

  const na = results.get('F55001|2951-2|LN')!;
  const naPayload = na.payload as unknown as ResultPayload;
  t.is(na.effectiveAt, '2024-05-01T09:30:00.000Z', 'no OBX-14: OBR-7');
  t.is(na.provenance.author, null);
  t.deepEqual(naPayload.value, { type: 'numeric', value: 149 });
  t.deepEqual(naPayload.abnormalFlags, ['H']);
  t.deepEqual(naPayload.comments, ['Repeat advised']);
  t.deepEqual((results.get('F55001|COMMENT|LOCAL')!.payload as unknown as ResultPayload).value, {
    type: 'coded',
    coding: { code: 'HAEM', display: 'Haemolysed', system: 'LOCAL' },
  });
  t.deepEqual((results.get('F55001|GFR|LOCAL')!.payload as unknown as ResultPayload).value, {
    type: 'structured-numeric', comparator: '>', value1: 90, separator: null, value2: null,
  });
});

test('the same message again changes nothing: no new versions', (t) => {
  const f = recordFixture(t);
  run(LAB, f.context());
  const again = run(LAB, f.context({ provenance: { controlId: 'LAB0002', journalId: 2 } }));
  t.false(again.changed);
  t.is(again.summary, 'report F55001: 4 results (0 new, 0 changed)');
  for (const item of f.store.listItems(f.patientId)) t.is(item.version, 1);
});

test('a changed result is a new version with history; a result left out is not deleted', (t) => {
  const f = recordFixture(t);
  run(LAB, f.context());
  // Later message: potassium corrected, sodium, comment and eGFR left out.
  let later = LAB.replace('||4.6|mmol/L', '||5.9|mmol/L').replace('|N|||F|||2024', '|H|||C|||2024');
  later = replaceLine(later, 'OBX|2|', null);
  later = replaceLine(later, 'NTE|1||Repeat', null);
  later = replaceLine(later, 'OBX|3|', null);
  later = replaceLine(later, 'OBX|4|', null);
  const out = run(later, f.context({ provenance: { controlId: 'LAB0002', journalId: 2 } }));
  t.true(out.changed);
  t.is(out.summary, 'report F55001: 1 results (0 new, 1 changed)');

  const results = byKey(f.store.listItems(f.patientId, { kind: 'result' }));
  t.is(results.size, 4, 'omitted results are still there, not deleted');
  const k = results.get('F55001|2823-3|LN')!;
  t.is(k.version, 2);
  const history = f.store.history(k.id);
  t.deepEqual(history.map((v) => (v.payload as unknown as ResultPayload).value), [
    { type: 'numeric', value: 4.6 },
    { type: 'numeric', value: 5.9 },
  ]);
  t.deepEqual(history.map((v) => v.provenance.controlId), ['MSG0001', 'LAB0002']);
  t.is((history[1]!.payload as unknown as ResultPayload).status, 'C');
  t.is(results.get('F55001|2951-2|LN')!.version, 1);
  t.false(results.get('F55001|2951-2|LN')!.deleted);
});

test('OBR-25 = R deletes the report and all its results, also those not repeated (hidden, kept)', (t) => {
  const f = recordFixture(t);
  run(LAB, f.context());
  let del = LAB.replace('20240501110000||CH|F', '20240501110000||CH|R');
  for (const l of ['OBX|2|', 'NTE|1||Repeat', 'OBX|3|', 'OBX|4|']) del = replaceLine(del, l, null);
  const out = run(del, f.context({ provenance: { controlId: 'LAB0003', journalId: 3 } }));
  t.true(out.changed);
  t.is(f.store.listItems(f.patientId, { kind: 'result' }).length, 0, 'hidden');
  t.is(f.store.listItems(f.patientId, { kind: 'report' }).length, 0, 'hidden');
  const all = f.store.listItems(f.patientId, { kind: 'result', includeDeleted: true });
  t.is(all.length, 4, 'kept');
  for (const r of all) {
    t.true(r.deleted);
    t.is(r.version, 2);
    t.false(f.store.history(r.id)[0]!.deleted);
  }
  const report = f.store.listItems(f.patientId, { kind: 'report', includeDeleted: true })[0]!;
  t.true(report.deleted);
  t.is((report.payload as unknown as ReportPayload).resultStatus, 'R');
});

test('OBX-11 = D hides that one result only', (t) => {
  const f = recordFixture(t);
  run(LAB.replace('|H|||F', '|H|||D'), f.context());
  const visible = f.store.listItems(f.patientId, { kind: 'result' }).map((r) => r.key);
  t.deepEqual(visible, ['F55001|2823-3|LN', 'F55001|COMMENT|LOCAL', 'F55001|GFR|LOCAL']);
});

test('ORC-3 and OBR-3 differ: AR at OBR-3, nothing written', (t) => {
  const f = recordFixture(t);
  const e = arOf(t, () => run(LAB.replace('ORC|RE||F55001', 'ORC|RE||F55999'), f.context()));
  t.is(e.code, 'RECORD_FILLER_MISMATCH');
  t.is(e.hl7Code, 102);
  t.deepEqual(e.location, { segment: 'OBR', sequence: 1, field: 3 });
  t.is(e.message, 'OBR[1]: ORC-3.1 "F55999" and OBR-3.1 "F55001" must be equal');
  t.is(f.store.listItems(f.patientId, { includeDeleted: true }).length, 0);
});

test('the filler number may come from ORC-3 alone; neither gives AR', (t) => {
  const f = recordFixture(t);
  const orcOnly = LAB.replace('OBR|1|P9001|F55001|', 'OBR|1|P9001||');
  run(orcOnly, f.context());
  t.deepEqual(f.store.listItems(f.patientId, { kind: 'report' }).map((r) => r.key), ['F55001']);
  const e = arOf(t, () => extractReports(Hl7Message.parse(orcOnly.replace('ORC|RE||F55001', 'ORC|RE||'))));
  t.is(e.code, 'RECORD_FILLER_MISSING');
  t.is(e.hl7Code, 101);
  t.deepEqual(e.location, { segment: 'OBR', sequence: 1, field: 3 });
});

test('no observation time in OBX-14 or OBR-7: AR naming OBR[1].OBX[2] with its location', (t) => {
  const f = recordFixture(t);
  const text = LAB.replace('|||20240501093000|', '|||||');
  const e = arOf(t, () => run(text, f.context()));
  t.is(e.code, 'RECORD_OBSERVATION_TIME_MISSING');
  t.is(e.message, 'OBR[1].OBX[2]: No observation timestamp in OBX or OBR');
  t.deepEqual(e.location, { segment: 'OBX', sequence: 2, field: 14 });
  const ack = msa(buildAck(Hl7Message.parse(text).ackRequest(), { code: 'AR', error: e, controlId: 'A1', timestamp: new Date(0) }));
  t.is(ack.code, 'AR');
  t.is(ack.text, 'OBR[1].OBX[2]: No observation timestamp in OBX or OBR at OBX[2]-14');
  t.is(f.store.listItems(f.patientId, { includeDeleted: true }).length, 0, 'checked before any write');
});

test('a bad timestamp is AR at its field', (t) => {
  const e = arOf(t, () => extractReports(Hl7Message.parse(LAB.replace('20240501094500', '2024-05-01'))));
  t.is(e.code, 'RECORD_BAD_TIMESTAMP');
  t.deepEqual(e.location, { segment: 'OBX', sequence: 1, field: 14 });
});

test('the same test code twice in one OBR is AR; the same code in another coding system is not', (t) => {
  const dup = LAB.trimEnd() + '\nOBX|5|NM|2823-3^Potassium again^LN||4.7|mmol/L|||||F\n';
  const e = arOf(t, () => extractReports(Hl7Message.parse(dup)));
  t.is(e.code, 'RECORD_DUPLICATE_RESULT');
  t.is(e.hl7Code, 205);
  t.deepEqual(e.location, { segment: 'OBX', sequence: 5, field: 3 });
  t.is(e.message, 'OBR[1].OBX[5]: test code "2823-3" appears more than once for filler order number "F55001"');

  const otherSystem = LAB.trimEnd() + '\nOBX|5|NM|2823-3^Potassium^ln||4.7|mmol/L|||||F\n';
  const keys = extractReports(Hl7Message.parse(otherSystem))[0]!.results.map((r) => r.key);
  t.true(keys.includes('F55001|2823-3|LN') && keys.includes('F55001|2823-3|ln'), 'case-sensitive system');
});

test('a single textual report is one result: lines and NTEs joined by newlines', (t) => {
  const f = recordFixture(t);
  const out = run(TEXTUAL, f.context());
  t.is(out.summary, 'report R77001: 1 results (1 new, 0 changed)');
  const results = f.store.listItems(f.patientId, { kind: 'result' });
  t.is(results.length, 1);
  const r = results[0]!;
  t.is(r.key, 'R77001|XCHES|CRIS');
  t.is(r.effectiveAt, '2024-05-02T09:00:00.000Z');
  t.is(r.provenance.author, 'R456^RADIOLOGIST^ROBIN');
  const p = r.payload as unknown as ResultPayload;
  t.true(p.textual);
  t.deepEqual(p.value, {
    type: 'text',
    text: 'Clinical details: cough.\nHeart size normal.\nLungs clear.\nReported by a trainee\nConclusion: no acute abnormality.',
  });
  const report = f.store.listItems(f.patientId, { kind: 'report' })[0]!.payload as unknown as ReportPayload;
  t.is(report.category, 'radiology');
  t.true(report.textual);
  t.is(report.sendingApplication, 'CRIS');
});

test('text lines that do not all share one code are discrete results (so a repeated code is AR)', (t) => {
  const mixed = TEXTUAL.replace('OBX|3|FT|XCHES^Chest X-ray report^CRIS', 'OBX|3|FT|XCONC^Conclusion^CRIS');
  const e = arOf(t, () => extractReports(Hl7Message.parse(mixed)));
  t.is(e.code, 'RECORD_DUPLICATE_RESULT');
  t.deepEqual(e.location, { segment: 'OBX', sequence: 2, field: 3 });
  const distinct = mixed.replace('OBX|2|TX|XCHES^Chest X-ray report^CRIS', 'OBX|2|TX|XFIND^Findings^CRIS');
  const [report] = extractReports(Hl7Message.parse(distinct));
  t.false(report!.payload.textual);
  t.deepEqual(report!.results.map((r) => r.key), ['R77001|XCHES|CRIS', 'R77001|XFIND|CRIS', 'R77001|XCONC|CRIS']);
  t.deepEqual(report!.results[1]!.payload.value, { type: 'text', text: 'Heart size normal.\nLungs clear.' });
  t.deepEqual(report!.results[1]!.payload.comments, ['Reported by a trainee']);
});

test('another organisation with the same filler number gets its own report', (t) => {
  const f = recordFixture(t);
  run(LAB, f.context());
  run(LAB.replace('||4.6|mmol/L', '||9.9|mmol/L'), f.context({ provenance: { organisationId: OTHER_ORG } }));
  const reports = f.store.listItems(f.patientId, { kind: 'report' });
  t.is(reports.length, 2);
  t.deepEqual(reports.map((r) => r.provenance.organisationId).sort(), ['org-a', OTHER_ORG].sort());
  const mine = f.store.getItem(f.patientId, 'result', 'org-a', 'F55001|2823-3|LN')!;
  const theirs = f.store.getItem(f.patientId, 'result', OTHER_ORG, 'F55001|2823-3|LN')!;
  t.is(mine.version, 1);
  t.deepEqual((mine.payload as unknown as ResultPayload).value, { type: 'numeric', value: 4.6 });
  t.deepEqual((theirs.payload as unknown as ResultPayload).value, { type: 'numeric', value: 9.9 });
});

test('label: OBR-4 mapping first, then PV1-10, else the default', (t) => {
  const f = recordFixture(t, { labels: { 'OBR-4|UE': 'SEXUAL_HEALTH', 'PV1-10|GEN': 'MENTAL_HEALTH' } });
  run(LAB, f.context());
  for (const i of f.store.listItems(f.patientId)) t.is(i.label, 'SEXUAL_HEALTH');

  const g = recordFixture(t, { labels: { 'PV1-10|GEN': 'MENTAL_HEALTH' } });
  run(LAB, g.context());
  for (const i of g.store.listItems(g.patientId)) t.is(i.label, 'MENTAL_HEALTH');
});

test('OBR-13 delay days give releaseAt = observation time + days', (t) => {
  // OBR-13 is the 6th field after OBR-7.
  const delayed = LAB.replace('|20240501093000||||||', '|20240501093000||||||3');
  const [report] = extractReports(Hl7Message.parse(delayed));
  t.is(report!.payload.delayDays, 3);
  t.is(report!.payload.releaseAt, '2024-05-04T09:30:00.000Z');
  t.is(report!.results[0]!.payload.releaseAt, '2024-05-04T09:45:00.000Z');
  const textual = extractReports(Hl7Message.parse(LAB.replace('|20240501093000||||||', '|20240501093000||||||fasting')));
  t.is(textual[0]!.payload.delayDays, null, 'clinical text in OBR-13 is not a delay');
});

test('an NM value that is not a number is AR at OBX-5', (t) => {
  const e = arOf(t, () => extractReports(Hl7Message.parse(LAB.replace('||149|', '||<5|'))));
  t.is(e.code, 'RECORD_BAD_VALUE');
  t.deepEqual(e.location, { segment: 'OBX', sequence: 2, field: 5 });
});

test('structure: no OBR, an OBX before the OBR, two OBRs with one filler', (t) => {
  const noObr = 'MSH|^~\\&|LAB|X|HL7API|PKB|20240501120000||ORU^R01|M1|P|2.4\nPID|||1\n';
  t.is(arOf(t, () => extractReports(Hl7Message.parse(noObr))).code, 'RECORD_SEGMENT_MISSING');
  const early = noObr + 'OBX|1|NM|A^A^L||1|||||F|||20240501\nOBR|1||F1|X\n';
  const e = arOf(t, () => extractReports(Hl7Message.parse(early)));
  t.is(e.code, 'RECORD_SEGMENT_ORDER');
  t.deepEqual(e.location, { segment: 'OBX', sequence: 1 });
  const twice = noObr + 'OBR|1||F1|X|||20240501\nOBR|2||F1|Y|||20240501\n';
  const d = arOf(t, () => extractReports(Hl7Message.parse(twice)));
  t.is(d.code, 'RECORD_DUPLICATE_REPORT');
  t.deepEqual(d.location, { segment: 'OBR', sequence: 2, field: 3 });
});

test('two OBRs are two reports, each with its own results', (t) => {
  const f = recordFixture(t);
  const two = LAB.trimEnd() + '\nORC|RE||F55002\nOBR|2||F55002|FBC^Full blood count^WINPATH|||20240501093000\nOBX|1|NM|718-7^Haemoglobin^LN||135|g/L|||||F\n';
  const out = run(two, f.context());
  t.is(out.summary, 'report F55001: 4 results (4 new, 0 changed); report F55002: 1 results (1 new, 0 changed)');
  t.deepEqual(f.store.listItems(f.patientId, { kind: 'result', parentKey: 'F55002' }).map((r) => r.key), ['F55002|718-7|LN']);
});

test('an encapsulated (ED) result is stored as an attachment', async (t) => {
  const f = recordFixture(t);
  const pdf = Buffer.from('%PDF-1.4 synthetic');
  const ed = LAB.trimEnd() + `\nOBX|5|ED|PDF^Report PDF^LOCAL||LAB^AP^PDF^Base64^${pdf.toString('base64')}||||||F\n`;
  run(ed, f.context());
  const r = f.store.getItem(f.patientId, 'result', 'org-a', 'F55001|PDF|LOCAL')!;
  const value = (r.payload as unknown as ResultPayload).value;
  if (value.type !== 'attachment') return t.fail('not an attachment');
  t.is(value.attachment.mediaType, 'application/pdf');
  t.is(value.attachment.size, pdf.length);
  const chunks: Uint8Array[] = [];
  for await (const c of f.attachments.read(value.attachment.attachmentId)) chunks.push(c);
  t.deepEqual(Buffer.concat(chunks), pdf);
});
