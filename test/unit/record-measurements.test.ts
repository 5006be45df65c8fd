// SPDX-License-Identifier: Apache-2.0
/**
 * SNOMED CT measurements (domain §1 ORU^R01): an OBX with an agreed SNOMED CT code, its agreed UCUM
 * unit and a number is a `measurement` item, not a `result`; keys, versions, corrections, OBX-11
 * and OBR-25 deletions follow the result rules; an OBX that changes class moves. Synthetic only.
 */
import test from 'ava';
import { Hl7Message } from '../../src/hl7/index.js';
import { recordSummary, formatSummary } from '../../src/cli/record.js';
import { AGREED_MEASUREMENTS, agreedMeasurement, isSnomedSystem, type MeasurementPayload } from '../../src/record/measurements.js';
import { RESULT_HANDLERS, extractReports, type ResultPayload } from '../../src/record/results.js';
import type { HandlerContext } from '../../src/record/types.js';
import { ORG, recordFixture, recordFixtureText } from '../helpers/record.js';

const VITALS = recordFixtureText('oru/vital-signs.hl7');
const handle = RESULT_HANDLERS['ORU^R01']!;
const run = (text: string, context: HandlerContext) => handle(Hl7Message.parse(text), context);

const kg = { code: 'kg', display: null, system: null };
const weight = { code: '27113001', display: 'Weight', system: 'SCT' };

test('the agreed table: SNOMED CT codes with their UCUM units and the LOINC codes of FHIR R4\'s vital signs', (t) => {
  t.deepEqual(
    AGREED_MEASUREMENTS.map((m) => [m.code, m.unit, m.loinc.map((l) => l.code)]),
    [
      ['27113001', 'kg', ['29463-7']],
      ['50373000', 'cm', ['8302-2']],
      ['60621009', 'kg/m2', ['39156-5']],
      ['271649006', 'mm[Hg]', ['8480-6']],
      ['271650006', 'mm[Hg]', ['8462-4']],
      ['364075005', '/min', ['8867-4']],
      ['86290005', '/min', ['9279-1']],
      ['386725007', 'Cel', ['8310-5']],
      ['431314004', '%', ['2708-6', '59408-5']],
    ],
  );
  for (const name of ['SCT', 'sct', 'SNOMED', 'SNOMED CT', 'snomed ct', 'SNOMEDCT', 'http://snomed.info/sct', ' SCT ']) t.true(isSnomedSystem(name), name);
  for (const name of [null, '', 'LN', 'SNOMED RT', 'http://snomed.info/sct/900000000000207008', 'READ']) t.false(isSnomedSystem(name), String(name));
});

test('agreedMeasurement: code, system, exact unit and a plain number all required', (t) => {
  t.deepEqual(agreedMeasurement(weight, { type: 'numeric', value: 72.4 }, kg), { code: '27113001', name: 'Body weight', value: 72.4, unit: 'kg' });
  t.deepEqual(agreedMeasurement(weight, { type: 'structured-numeric', comparator: '=', value1: 70, separator: null, value2: null }, kg)?.value, 70);
  t.deepEqual(agreedMeasurement(weight, { type: 'structured-numeric', comparator: null, value1: 70, separator: null, value2: null }, kg)?.value, 70);
  // Not a measurement: wrong system, unknown code, wrong or missing unit (no conversion), case of the unit, not a plain number.
  t.is(agreedMeasurement({ ...weight, system: 'LN' }, { type: 'numeric', value: 72 }, kg), undefined);
  t.is(agreedMeasurement({ ...weight, system: null }, { type: 'numeric', value: 72 }, kg), undefined);
  t.is(agreedMeasurement({ ...weight, code: '123' }, { type: 'numeric', value: 72 }, kg), undefined);
  t.is(agreedMeasurement(weight, { type: 'numeric', value: 160 }, { code: 'lb', display: null, system: null }), undefined);
  t.is(agreedMeasurement(weight, { type: 'numeric', value: 72 }, { code: 'KG', display: null, system: null }), undefined);
  t.is(agreedMeasurement(weight, { type: 'numeric', value: 72 }, null), undefined);
  t.is(agreedMeasurement(weight, { type: 'structured-numeric', comparator: '>', value1: 70, separator: null, value2: null }, kg), undefined);
  t.is(agreedMeasurement(weight, { type: 'structured-numeric', comparator: null, value1: 70, separator: '-', value2: 80 }, kg), undefined);
  t.is(agreedMeasurement(weight, { type: 'text', text: '72' }, kg), undefined);
  t.is(agreedMeasurement(weight, { type: 'empty' }, kg), undefined);
});

test('extractReports splits an observations panel into measurements and lab results', (t) => {
  const [report] = extractReports(Hl7Message.parse(VITALS));
  t.deepEqual(
    report!.results.map((r) => [r.kind, r.key]),
    [
      ['measurement', 'VS1001|27113001|SCT'],
      ['measurement', 'VS1001|50373000|SNOMED CT'],
      ['measurement', 'VS1001|271649006|SNOMED'],
      ['result', 'VS1001|271650006|SNOMED'], // mmHg is not the agreed mm[Hg]
      ['measurement', 'VS1001|364075005|http://snomed.info/sct'],
      ['measurement', 'VS1001|386725007|SNOMEDCT'],
      ['measurement', 'VS1001|431314004|sct'],
      ['result', 'VS1001|60621009|SCT'], // > 40 is not a measured value
      ['result', 'VS1001|29463-7|LN'], // LOINC: a lab result
    ],
  );
});

test('the handler writes measurement items with the result payload plus the measured value, parent the report', (t) => {
  const f = recordFixture(t);
  const out = run(VITALS, f.context({ provenance: { messageType: 'ORU^R01', controlId: 'OBS0001' } }));
  t.is(out.summary, 'report VS1001: 3 results, 6 measurements (9 new, 0 changed)');
  t.true(out.changed);
  const measurements = f.store.listItems(f.patientId, { kind: 'measurement' });
  t.is(measurements.length, 6);
  t.is(f.store.listItems(f.patientId, { kind: 'result' }).length, 3);
  const w = f.store.getItem(f.patientId, 'measurement', ORG, 'VS1001|27113001|SCT')!;
  t.is(w.parentKey, 'VS1001');
  t.is(w.label, 'GENERAL_HEALTH');
  t.is(w.effectiveAt, '2024-05-04T09:30:00.000Z');
  t.is(w.provenance.author, 'N123^NURSE^NOOR');
  t.deepEqual(w.payload as unknown as MeasurementPayload, {
    fillerOrderNumber: 'VS1001',
    code: { code: '27113001', display: 'Body weight', system: 'SCT' },
    valueType: 'NM',
    value: { type: 'numeric', value: 72.4 },
    units: { code: 'kg', display: 'kilogram', system: 'UCUM' },
    referenceRange: null,
    abnormalFlags: [],
    status: 'F',
    observedAt: '2024-05-04T09:30:00.000Z',
    performer: 'N123^NURSE^NOOR',
    comments: [],
    subId: null,
    textual: false,
    releaseAt: null,
    measurement: { code: '27113001', name: 'Body weight', value: 72.4, unit: 'kg' },
  });
  t.deepEqual((f.store.getItem(f.patientId, 'measurement', ORG, 'VS1001|50373000|SNOMED CT')!.payload as unknown as MeasurementPayload).measurement, {
    code: '50373000',
    name: 'Body height',
    value: 172,
    unit: 'cm',
  });
  const diastolic = f.store.getItem(f.patientId, 'result', ORG, 'VS1001|271650006|SNOMED')!;
  t.deepEqual((diastolic.payload as unknown as ResultPayload).comments, ['Unit not the agreed one: kept as a lab result']);
  t.is(f.store.getItem(f.patientId, 'measurement', ORG, 'VS1001|271650006|SNOMED'), undefined);

  // The same message again: no new versions.
  const again = run(VITALS, f.context({ provenance: { controlId: 'OBS0002', journalId: 2 } }));
  t.false(again.changed);
  for (const item of f.store.listItems(f.patientId)) t.is(item.version, 1);
});

test('a corrected measurement is a new version; OBX-11 D deletes one; OBR-25 R deletes every measurement and result', (t) => {
  const f = recordFixture(t);
  run(VITALS, f.context());
  const corrected = VITALS.replace('||72.4|kg^kilogram^UCUM|||||F|||2024', '||73.0|kg^kilogram^UCUM|||||C|||2024').replace('||71|/min|||||F', '||71|/min|||||D');
  const out = run(corrected, f.context({ provenance: { controlId: 'OBS0002', journalId: 2 } }));
  t.is(out.summary, 'report VS1001: 3 results, 6 measurements (0 new, 2 changed)');
  const w = f.store.getItem(f.patientId, 'measurement', ORG, 'VS1001|27113001|SCT')!;
  t.is(w.version, 2);
  t.deepEqual(f.store.history(w.id).map((v) => (v.payload as unknown as MeasurementPayload).measurement.value), [72.4, 73]);
  t.true(f.store.getItem(f.patientId, 'measurement', ORG, 'VS1001|364075005|http://snomed.info/sct')!.deleted);

  // OBR-25 = R with only the first OBX: the report, every measurement and every result are deleted.
  const lines = VITALS.split('\n');
  const del = [lines[0]!.replace('OBS0001', 'OBS0003'), lines[1]!, lines[2]!.replace('|||F', '|||R'), lines[3]!].join('\n');
  const gone = run(del, f.context({ provenance: { controlId: 'OBS0003', journalId: 3 } }));
  t.is(gone.summary, 'report VS1001 deleted: 0 results, 1 measurements (0 new, 1 changed)');
  t.deepEqual(f.store.listItems(f.patientId), []);
  t.is(f.store.listItems(f.patientId, { includeDeleted: true }).filter((i) => i.deleted).length, 10);
});

test('an OBX that changes class between messages moves: the other kind\'s item is deleted', (t) => {
  const f = recordFixture(t);
  // Sent first in pounds: a lab result.
  const inPounds = VITALS.replace('||72.4|kg^kilogram^UCUM|||||F|||2024', '||160|[lb_av]|||||F|||2024');
  run(inPounds, f.context());
  const key = 'VS1001|27113001|SCT';
  t.false(f.store.getItem(f.patientId, 'result', ORG, key)!.deleted);
  t.is(f.store.getItem(f.patientId, 'measurement', ORG, key), undefined);
  // Corrected to the agreed unit: now a measurement, and the result is superseded (deleted, kept).
  const out = run(VITALS, f.context({ provenance: { controlId: 'OBS0002', journalId: 2 } }));
  t.true(out.changed);
  t.false(f.store.getItem(f.patientId, 'measurement', ORG, key)!.deleted);
  const old = f.store.getItem(f.patientId, 'result', ORG, key)!;
  t.true(old.deleted);
  t.is(old.provenance.controlId, 'OBS0002', 'the message that superseded it');
  t.is(f.store.listItems(f.patientId).filter((i) => i.key === key).length, 1, 'one live value per test code and filler number');
  // And back: the measurement is deleted, the result comes back as a new version.
  run(inPounds.replace('OBS0001', 'OBS0003'), f.context({ provenance: { controlId: 'OBS0003', journalId: 3 } }));
  t.true(f.store.getItem(f.patientId, 'measurement', ORG, key)!.deleted);
  t.false(f.store.getItem(f.patientId, 'result', ORG, key)!.deleted);
});

/** The VITALS header (MSH, PID, OBR) with the given OBX lines, as a new message. */
const vitalsWith = (controlId: string, ...obx: string[]): string => [...VITALS.split('\n').slice(0, 3).map((l) => l.replace('OBS0001', controlId)), ...obx].join('\n');

test('OBX-11 D or W without a value (or unit) for a stored measurement deletes the measurement and creates no result', (t) => {
  for (const status of ['D', 'W']) {
    const f = recordFixture(t);
    run(VITALS, f.context());
    const key = 'VS1001|27113001|SCT';
    const stored = f.store.getItem(f.patientId, 'measurement', ORG, key)!;
    // As deletions are usually sent: OBX-5 empty, no unit (so the OBX does not qualify as a measurement).
    const [report] = extractReports(Hl7Message.parse(vitalsWith('DEL1', `OBX|1|NM|27113001^Body weight^SCT||||||||${status}`)));
    t.is(report!.results[0]!.kind, 'result', 'planned as a result: no value, no unit');
    const out = run(vitalsWith('DEL1', `OBX|1|NM|27113001^Body weight^SCT||||||||${status}`), f.context({ provenance: { controlId: 'DEL1', journalId: 2 } }));
    t.true(out.changed, status);
    t.is(out.summary, 'report VS1001: 0 results, 1 measurements (0 new, 1 changed)', status);
    const m = f.store.getItem(f.patientId, 'measurement', ORG, key)!;
    t.true(m.deleted, status);
    t.is(m.version, 2, status);
    t.is(m.id, stored.id);
    t.is(m.provenance.controlId, 'DEL1', 'deleted by that message');
    t.is((m.payload as unknown as MeasurementPayload).measurement.value, 72.4, 'the deleted version keeps what was measured');
    t.is(f.store.getItem(f.patientId, 'result', ORG, key), undefined, `${status}: no result item that never existed`);
    // Sent again: nothing more happens.
    const again = run(vitalsWith('DEL2', `OBX|1|NM|27113001^Body weight^SCT||||||||${status}`), f.context({ provenance: { controlId: 'DEL2', journalId: 3 } }));
    t.false(again.changed, status);
    t.is(f.store.getItem(f.patientId, 'measurement', ORG, key)!.version, 2);
    t.is(f.store.getItem(f.patientId, 'result', ORG, key), undefined);
  }
});

test('a deletion without value after an OBX moved from result to measurement deletes the measurement; the deleted result gets no new version', (t) => {
  const f = recordFixture(t);
  const key = 'VS1001|271650006|SNOMED';
  const versions = () => (['result', 'measurement'] as const).map((k) => { const i = f.store.getItem(f.patientId, k, ORG, key); return [k, i?.version, i?.deleted]; });
  run(vitalsWith('A', 'OBX|1|NM|271650006^Diastolic^SNOMED||84|mmHg|||||F'), f.context());
  run(vitalsWith('B', 'OBX|1|NM|271650006^Diastolic^SNOMED||85|mm[Hg]|||||F'), f.context({ provenance: { journalId: 2, controlId: 'B' } }));
  t.deepEqual(versions(), [['result', 2, true], ['measurement', 1, false]]);
  const out = run(vitalsWith('C', 'OBX|1|NM|271650006^Diastolic^SNOMED||||||||D'), f.context({ provenance: { journalId: 3, controlId: 'C' } }));
  t.true(out.changed);
  t.is(out.summary, 'report VS1001: 0 results, 1 measurements (0 new, 1 changed)');
  t.deepEqual(versions(), [['result', 2, true], ['measurement', 2, true]]);
  const again = run(vitalsWith('D', 'OBX|1|NM|271650006^Diastolic^SNOMED||||||||D'), f.context({ provenance: { journalId: 4, controlId: 'D' } }));
  t.false(again.changed);
  t.deepEqual(versions(), [['result', 2, true], ['measurement', 2, true]]);
});

test('OBX-11 D or W without a value for a stored result deletes the result (a new version), also for an agreed SNOMED CT code', (t) => {
  for (const status of ['D', 'W']) {
    const f = recordFixture(t);
    run(VITALS, f.context());
    // A LOINC lab result, and an agreed code stored as a result (mmHg is not the agreed unit).
    for (const [code, key] of [
      ['29463-7^Body weight^LN', 'VS1001|29463-7|LN'],
      ['271650006^Diastolic blood pressure^SNOMED', 'VS1001|271650006|SNOMED'],
    ] as const) {
      const out = run(vitalsWith(`DEL-${key}`, `OBX|1|NM|${code}||||||||${status}`), f.context({ provenance: { controlId: 'DEL', journalId: 2 } }));
      t.is(out.summary, 'report VS1001: 1 results (0 new, 1 changed)', `${status} ${key}`);
      const r = f.store.getItem(f.patientId, 'result', ORG, key)!;
      t.true(r.deleted, `${status} ${key}`);
      t.is(r.version, 2);
      t.deepEqual((r.payload as unknown as ResultPayload).value, { type: 'empty' });
      t.is((r.payload as unknown as ResultPayload).status, status);
      t.is(f.store.getItem(f.patientId, 'measurement', ORG, key), undefined, `${status} ${key}: no measurement created`);
    }
    // A deletion of an OBX the record never held is kept as a deleted result, as before.
    run(vitalsWith('DEL3', `OBX|1|NM|86290005^Respiratory rate^SCT||||||||${status}`), f.context({ provenance: { controlId: 'DEL3', journalId: 3 } }));
    t.true(f.store.getItem(f.patientId, 'result', ORG, 'VS1001|86290005|SCT')!.deleted);
    t.is(f.store.getItem(f.patientId, 'measurement', ORG, 'VS1001|86290005|SCT'), undefined);
  }
});

test('a deletion that qualifies as a measurement, for an OBX stored as a result, deletes the result and creates no measurement', (t) => {
  const f = recordFixture(t);
  const key = 'VS1001|27113001|SCT';
  run(VITALS.replace('||72.4|kg^kilogram^UCUM|||||F|||2024', '||160|[lb_av]|||||F|||2024'), f.context());
  t.false(f.store.getItem(f.patientId, 'result', ORG, key)!.deleted);
  run(vitalsWith('DEL1', 'OBX|1|NM|27113001^Body weight^SCT||72.4|kg|||||D'), f.context({ provenance: { controlId: 'DEL1', journalId: 2 } }));
  t.true(f.store.getItem(f.patientId, 'result', ORG, key)!.deleted);
  t.is(f.store.getItem(f.patientId, 'measurement', ORG, key), undefined);
});

test('record show lists the latest measurements apart from the lab results', (t) => {
  const f = recordFixture(t);
  run(VITALS, f.context());
  const s = recordSummary(f.store, f.patientId);
  t.deepEqual(
    s.latestMeasurements.map((m) => [m.name, m.value, m.unit]),
    // Newest first, then by code.
    [
      ['Body weight', 72.4, 'kg'],
      ['Systolic blood pressure', 128, 'mm[Hg]'],
      ['Heart rate', 71, '/min'],
      ['Body temperature', 37.1, 'Cel'],
      ['Peripheral oxygen saturation', 97, '%'],
      ['Body height', 172, 'cm'],
    ],
  );
  t.is(s.latestResults.length, 3);
  t.is(s.counts.measurement, 6);
  t.regex(formatSummary(s), /^latest measurements\n {2}2024-05-04T09:30:00.000Z {2}Body weight: 72.4 kg \(F\) {2}report VS1001 \(org-a\) \[GENERAL_HEALTH\]$/m);
});
