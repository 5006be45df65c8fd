// SPDX-License-Identifier: Apache-2.0
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Hl7Error, Hl7ErrorCode, Hl7Message, formatLocation } from '../../src/hl7/index.js';

const ADT = readFileSync(new URL('../fixtures/hl7/adt-a01-synthetic.hl7', import.meta.url), 'latin1');
const seg = (...s: string[]): string => s.join('\r') + '\r';
const MSH = 'MSH|^~\\&|APP|FAC|RAPP|RFAC|20250101120000||ADT^A01|C1|P|2.5.1';

/** Run fn, expect an Hl7Error, return it. */
function hl7Error(t: { fail(m: string): void }, fn: () => unknown): Hl7Error {
  try {
    fn();
  } catch (e) {
    if (e instanceof Hl7Error) return e;
    throw e;
  }
  t.fail('expected an Hl7Error');
  throw new Error('unreachable');
}

test('MSH fields use HL7 numbering, raw', (t) => {
  const m = Hl7Message.parse(ADT);
  t.is(m.msh(1), '|');
  t.is(m.msh(2), '^~\\&');
  t.is(m.msh(3), 'PASSYS');
  t.is(m.msh(9), 'ADT^A01^ADT_A01');
  t.is(m.msh(10), 'CTL0001');
  t.is(m.msh(40), '');
  t.is(m.msh(0), '');
  t.is(m.controlId, 'CTL0001');
  t.is(m.messageType, 'ADT^A01');
  t.is(m.version, '2.5.1');
  t.is(m.charset, 'UNICODE UTF-8');
  t.is(m.segmentCount, 7);
  t.deepEqual(m.segmentNames(), ['MSH', 'EVN', 'PID', 'PV1', 'OBX', 'OBX', 'OBX']);
  t.is(m.countSegments('OBX'), 3);
  t.is(m.toString(), ADT);
  t.is(m.encode({ rebuild: true }), ADT);
});

test('messageType without a trigger, version with components, MSH-9/MSH-10 missing still parse', (t) => {
  const m = Hl7Message.parse(seg('MSH|^~\\&|A|B|C|D|20250101||ACK|||2.5^FRA^2.5', 'MSA|AA|X'));
  t.is(m.messageType, 'ACK');
  t.is(m.version, '2.5');
  t.is(m.controlId, '');
  const m2 = Hl7Message.parse(seg('MSH|^~\\&|A', 'PID|1'));
  t.is(m2.messageType, '');
  t.is(m2.controlId, '');
  t.is(m2.msh(10), '');
  t.is(Hl7Message.parse(seg('MSH|^~\\&|||||||ORU^^ORU_R01|1', 'PID')).messageType, 'ORU');
});

test('ackRequest returns the raw MSH fields', (t) => {
  const m = Hl7Message.parse(seg('MSH|^~\\&|APP^X|FAC|RAPP|RFAC|20250101||ORU^R01^ORU_R01|C\\F\\1^Z|T|2.3.1|||AL|NE', 'PID|1'));
  const r = m.ackRequest();
  t.is(r.sendingApplication, 'APP^X');
  t.is(r.sendingFacility, 'FAC');
  t.is(r.receivingApplication, 'RAPP');
  t.is(r.receivingFacility, 'RFAC');
  t.is(r.messageType, 'ORU^R01^ORU_R01');
  t.is(r.triggerEvent, 'R01');
  t.is(r.controlId, 'C\\F\\1');
  t.is(r.processingId, 'T');
  t.is(r.version, '2.3.1');
  t.is(r.acceptAckType, 'AL');
  t.is(r.applicationAckType, 'NE');
  t.is(r.delimiters, m.delimiters);
});

test('delimiters: 5 encoding characters carry the v2.7 truncation character', (t) => {
  const text = seg('MSH|^~\\&#|A|B|C|D|20250101||ORU^R01|1|P|2.7', 'OBX|1|ST|X||abc\\P\\def#');
  const m = Hl7Message.parse(text);
  t.deepEqual(m.delimiters, { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&', truncation: '#' });
  t.is(m.get('OBX-5'), 'abc#def#');
  t.is(m.encode({ rebuild: true }), text);
});

test('delimiters: 3 encoding characters (^~}) have no escape character', (t) => {
  const text = 'MSH|^~}|ADMISSION|ADT1|||19930502185327||BAR^P01|9085|P|2.4||\nPID||^^|479305169^1^M10|A}B\\F\\C\n';
  const m = Hl7Message.parse(text);
  t.deepEqual(m.delimiters, { field: '|', component: '^', repetition: '~', escape: '', subcomponent: '}', truncation: '' });
  t.is(m.get('PID-4.1.2'), 'B\\F\\C', 'no escape character: backslashes are data');
  t.is(m.encode({ rebuild: true }), text);
  t.is(hl7Error(t, () => m.set('PID-5', 'a^b')).code, 'HL7_BAD_ESCAPE');
  m.set('PID-5', 'plain');
  t.is(m.get('PID-5'), 'plain');
});

test('delimiters: any valid set, e.g. field ^ and repetition | (HAPI A24 sample)', (t) => {
  const text = 'MSH^~|\\&^APP^FAC^^^20010101^^ADT~A24^1^P^2.4\r\nPID^^^111~~~MRN|222~~~NHS\r\n';
  const m = Hl7Message.parse(text);
  t.is(m.delimiters.field, '^');
  t.is(m.delimiters.component, '~');
  t.is(m.delimiters.repetition, '|');
  t.is(m.messageType, 'ADT^A24');
  t.deepEqual(m.getAll('PID-3.1'), ['111', '222']);
  t.is(m.get('MSH-1'), '^');
  t.is(m.encode({ rebuild: true }), text);
});

test('bad delimiters: duplicates, alphanumerics, too few, CR/LF, field separator reused', (t) => {
  for (const [text, field] of [
    ['MSH|^~\\\\&|A\rPID|1\r', 2], // doubled escape (Java string literal pasted as text)
    ['MSH|^~\\^|A\rPID|1\r', 2],
    ['MSH|^~0&|A\rPID|1\r', 2],
    ['MSH|^~|A\rPID|1\r', 2],
    ['MSH||A\rPID|1\r', 2],
    ['MSH|^~\\&&#x|A\rPID|1\r', 2],
    ['MSH|^|\\&|A\rPID|1\r', 2],
    ['MSHA^~\\&A\rPID|1\r', 1],
    ['MSH \r', 1],
    ['MSH\rPID|1\r', 1],
    ['MSH', 1],
  ] as const) {
    const e = hl7Error(t, () => Hl7Message.parse(text));
    t.is(e.code, 'HL7_BAD_DELIMITERS', text);
    t.is(e.hl7Code, Hl7ErrorCode.DataType);
    t.deepEqual(e.location, { segment: 'MSH', field }, text);
  }
});

test('empty text and text without MSH', (t) => {
  t.is(hl7Error(t, () => Hl7Message.parse('')).code, 'HL7_EMPTY');
  t.is(hl7Error(t, () => Hl7Message.parse('\r\n  \r')).code, 'HL7_EMPTY');
  const e = hl7Error(t, () => Hl7Message.parse('PID|1\r'));
  t.is(e.code, 'HL7_NO_MSH');
  t.is(e.hl7Code, Hl7ErrorCode.SegmentSequence);
  t.is(hl7Error(t, () => Hl7Message.parse(`[SOM]${MSH}\rPID|1\r`)).code, 'HL7_NO_MSH');
  t.is(hl7Error(t, () => Hl7Message.parse(`\uFEFF${MSH}\rPID|1\r`)).code, 'HL7_NO_MSH', 'BOMs are stripped by decodeHl7Bytes, not here');
});

test('segment ids: 3 upper-case letters or digits then the field separator; location is the segment index', (t) => {
  for (const bad of ['pid|1', 'PI|1', 'PIDX|1', 'PI$|1', ' PID|1', 'Line two of a note']) {
    const e = hl7Error(t, () => Hl7Message.parse(seg(MSH, 'EVN|A01', bad)));
    t.is(e.code, 'HL7_BAD_SEGMENT', bad);
    t.is(e.hl7Code, Hl7ErrorCode.SegmentSequence);
    t.deepEqual(e.location, { segment: '', sequence: 3 }, bad);
    t.is(formatLocation(e.location!), 'segment 3');
  }
  // Digits and Z-segments are fine, and so is a segment that is only its id.
  const m = Hl7Message.parse(seg(MSH, 'ZX1|a', 'NTE'));
  t.deepEqual(m.segmentNames(), ['MSH', 'ZX1', 'NTE']);
});

test('a second MSH or a batch envelope segment inside a message is refused', (t) => {
  const e = hl7Error(t, () => Hl7Message.parse(seg(MSH, 'PID|1', MSH, 'PID|2')));
  t.is(e.code, 'HL7_BAD_SEGMENT');
  t.deepEqual(e.location, { segment: 'MSH', sequence: 2 });
  const e2 = hl7Error(t, () => Hl7Message.parse(seg(MSH, 'PID|1', 'BTS|1')));
  t.deepEqual(e2.location, { segment: 'BTS', sequence: 1 });
});

test('a message needs a segment after MSH', (t) => {
  const e = hl7Error(t, () => Hl7Message.parse(MSH));
  t.is(e.code, 'HL7_BAD_SEGMENT');
  t.is(e.hl7Code, Hl7ErrorCode.SegmentSequence);
  t.is(hl7Error(t, () => Hl7Message.parse(`${MSH}\r\n\r\n`)).code, 'HL7_BAD_SEGMENT');
});

test('control bytes other than CR/LF/TAB are refused with segment and field', (t) => {
  const e = hl7Error(t, () => Hl7Message.parse(seg(MSH, 'EVN|A01', 'PID|1||123||DOE\u0000')));
  t.is(e.code, 'HL7_CONTROL_BYTES');
  t.is(e.hl7Code, Hl7ErrorCode.DataType);
  t.deepEqual(e.location, { segment: 'PID', sequence: 1, field: 5 });
  t.is(e.params.byte, '00');
  const e2 = hl7Error(t, () => Hl7Message.parse(seg('MSH|^~\\&|A|B\u000b', 'PID|1')));
  t.deepEqual(e2.location, { segment: 'MSH', field: 4 });
  const e3 = hl7Error(t, () => Hl7Message.parse(seg(MSH, 'OBX|1', 'OBX|2|\u007f')));
  t.deepEqual(e3.location, { segment: 'OBX', sequence: 2, field: 2 });
  t.is(e3.params.byte, '7f');
  // TAB is text.
  t.is(Hl7Message.parse(seg(MSH, 'NTE|1||a\tb')).get('NTE-3'), 'a\tb');
});

test('terminators: CR, LF, CRLF, mixed, none at the end; each segment keeps its own', (t) => {
  for (const text of [
    `${MSH}\rPID|1\rPV1|1\r`,
    `${MSH}\nPID|1\nPV1|1\n`,
    `${MSH}\r\nPID|1\r\nPV1|1\r\n`,
    `${MSH}\rPID|1\nPV1|1\r\n`,
    `${MSH}\rPID|1\rPV1|1`,
    `${MSH}\r\n\r\nPID|1\r\n \r\nPV1|1  \r\n \t`, // blank and whitespace-only lines, trailing spaces
  ]) {
    const m = Hl7Message.parse(text);
    t.deepEqual(m.segmentNames(), ['MSH', 'PID', 'PV1'], JSON.stringify(text));
    t.is(m.toString(), text);
    t.is(m.encode({ rebuild: true }), text);
    m.set('PID-2', 'x');
    t.is(m.toString(), text.replace('PID|1', 'PID|1|x'), 'set keeps the other terminators');
  }
  t.is(Hl7Message.parse(`${MSH}\r\nPID|1\r\nPV1|1  \r\n`).get('PV1-1'), '1  ', 'trailing spaces are data');
});

test('get: paths, defaults, absent vs empty, unescaping', (t) => {
  const m = Hl7Message.parse(ADT);
  t.is(m.get('PID-3'), 'RV001^^^RIVERSIDE^MR');
  t.is(m.get('PID-3[1]'), 'RV001^^^RIVERSIDE^MR');
  t.is(m.get('PID-3[2].1'), '9990001234');
  t.is(m.get('PID-3[2].4'), 'NHS');
  t.is(m.get('PID-3[3]'), undefined);
  t.is(m.get('PID-5.3'), 'Q&X');
  t.is(m.get('PID-5.3.2'), 'X');
  t.is(m.get('PID-5.3.3'), undefined);
  t.is(m.get('PID-5.4'), '');
  t.is(m.get('PID-5.9'), undefined);
  t.is(m.get('PID-2'), '');
  t.is(m.get('PID-40'), undefined);
  t.is(m.get('PID[2]-1'), undefined);
  t.is(m.get('ZZZ-1'), undefined);
  t.is(m.get('OBX[3]-5.1'), 'Line one\nLine two & more');
  t.is(m.get('OBX[3]-5.1', { raw: true }), 'Line one\\.br\\Line two \\T\\ more');
  t.is(m.get('OBX[3]-5'), 'Line one\nLine two & more^second', 'composites keep their structural delimiters');
  t.is(m.get('OBX[2]-3.2'), 'Hematocrit');
  t.is(m.get('PID-11.1'), '1 CANAL ST^REAR');
  t.is(m.get('MSH-1'), '|');
  t.is(m.get('MSH-2'), '^~\\&');
  t.is(m.get('MSH-2.2'), undefined, 'MSH-2 is never split');
  t.is(m.get('MSH-3'), 'PASSYS');
  t.is(m.get('MSH-9.2'), 'A01');
  t.is(m.get('MSH-9.3'), 'ADT_A01');
  t.is(hl7Error(t, () => m.get('PID')).code, 'HL7_BAD_PATH');
});

test('getAll: every repetition', (t) => {
  const m = Hl7Message.parse(ADT);
  t.deepEqual(m.getAll('PID-3'), ['RV001^^^RIVERSIDE^MR', '9990001234^^^NHS^NH']);
  t.deepEqual(m.getAll('PID-3.1'), ['RV001', '9990001234']);
  t.deepEqual(m.getAll('PID-3[2].4'), ['NHS']);
  t.deepEqual(m.getAll('PID-3.9'), ['', '']);
  t.deepEqual(m.getAll('PID-2'), []);
  t.deepEqual(m.getAll('PID-99'), []);
  t.deepEqual(m.getAll('ZZZ-1'), []);
  t.deepEqual(m.getAll('MSH-2'), ['^~\\&']);
  t.deepEqual(m.getAll('PID-11.1'), ['1 CANAL ST^REAR']);
  t.deepEqual(m.getAll('PID-11.1', { raw: true }), ['1 CANAL ST\\S\\REAR']);
});

test('set: escapes, creates fields/repetitions/components/subcomponents, rebuilds only that segment', (t) => {
  const m = Hl7Message.parse(ADT);
  m.set('PID-5.2', 'JO^HN|&~\\');
  t.is(m.get('PID-5.2'), 'JO^HN|&~\\');
  t.is(m.get('PID-5.2', { raw: true }), 'JO\\S\\HN\\F\\\\T\\\\R\\\\E\\');
  m.set('PV1-3.6', 'NEW');
  t.is(m.get('PV1-3'), 'WARD3^BAY2^BED5^^^NEW');
  m.set('PV1-7', 'X');
  t.is(m.get('PV1-7'), 'X');
  t.is(m.get('PV1-6'), '');
  m.set('PID-3[4].2', 'R');
  t.deepEqual(m.getAll('PID-3'), ['RV001^^^RIVERSIDE^MR', '9990001234^^^NHS^NH', '', '^R']);
  m.set('OBX[2]-5.1.3', 'S');
  t.is(m.get('OBX[2]-5', { raw: true }), '42.0&&S');
  m.set('PID-13', 'a^b', { raw: true });
  t.is(m.get('PID-13.2'), 'b');
  m.set('MSH-10', 'NEWID');
  t.is(m.controlId, 'NEWID');
  t.is(m.msh(10), 'NEWID');
  t.is(m.ackRequest().controlId, 'NEWID');
  const text = m.toString();
  t.true(text.startsWith('MSH|^~\\&|PASSYS|RIVERSIDE|TRIBUTARY|TRIBUTARY|20250402101530||ADT^A01^ADT_A01|NEWID|P|'));
  t.true(text.includes('\rEVN|A01|20250402101500\r'));
  const again = Hl7Message.parse(text);
  t.is(again.get('PID-5.2'), 'JO^HN|&~\\');
  t.is(again.encode({ rebuild: true }), text);
  t.is(m.encode({ rebuild: true }), text);
});

test('set: multi-line values are escaped so they cannot end the segment', (t) => {
  const m = Hl7Message.parse(seg(MSH, 'NTE|1'));
  m.set('NTE-3', 'line 1\r\nline 2');
  t.is(m.get('NTE-3', { raw: true }), 'line 1\\X0D\\\\X0A\\line 2');
  t.is(m.get('NTE-3'), 'line 1\r\nline 2');
  t.is(Hl7Message.parse(m.toString()).segmentCount, 2);
});

test('set: refuses missing segments, MSH-1/MSH-2, and raw values that would break the structure', (t) => {
  const m = Hl7Message.parse(ADT);
  for (const [path, value, raw] of [
    ['NK1-1', 'x', false],
    ['OBX[4]-1', 'x', false],
    ['MSH-1', '#', false],
    ['MSH-2', '^~\\&#', false],
    ['PID-5', 'a|b', true],
    ['PID-5', 'a\rb', true],
  ] as const) {
    const e = hl7Error(t, () => m.set(path, value, { raw }));
    t.is(e.code, 'HL7_BAD_PATH', path);
  }
  t.is(m.toString(), ADT, 'nothing changed');
});

test('formatLocation renders path syntax', (t) => {
  t.is(formatLocation({ segment: 'PID', field: 3, repetition: 2, component: 1 }), 'PID-3[2].1');
  t.is(formatLocation({ segment: 'OBX', sequence: 3, field: 5 }), 'OBX[3]-5');
  t.is(formatLocation({ segment: 'MSH', field: 10 }), 'MSH-10');
  t.is(formatLocation({ segment: 'MSH', sequence: 1, field: 9, repetition: 1, component: 2, subcomponent: 1 }), 'MSH-9.2.1');
  t.is(formatLocation({ segment: 'PID' }), 'PID');
  t.is(formatLocation({ segment: '', sequence: 4 }), 'segment 4');
});

test('clone: changes to the copy (MSH included) leave the original as it was, with or without earlier changes', (t) => {
  const text = 'MSH|^~\\&|APP|FAC|||20250101||ADT^A01|C1|P|2.5\rPID|1||123^^^MRN||DOE^JOHN\rPV1|1|I\r';
  const original = Hl7Message.parse(text);
  const copy = original.clone();
  copy.set('PID-5.1', 'ROE');
  copy.set('MSH-3', 'OTHER');
  t.is(original.toString(), text);
  t.is(original.get('PID-5.1'), 'DOE');
  t.is(copy.get('PID-5.1'), 'ROE');
  t.is(copy.msh(3), 'OTHER');
  t.is(copy.toString(), text.replace('|APP|', '|OTHER|').replace('DOE^', 'ROE^'));
  // A copy of a changed message carries the changes, and is again independent.
  const second = copy.clone();
  second.set('PV1-2', 'O');
  t.is(second.get('PID-5.1'), 'ROE');
  t.is(copy.get('PV1-2'), 'I');
});

test('parseOwn reads what parse reads, without the control-character scan', (t) => {
  const text = 'MSH|^~\\&|APP|FAC|||20250101||ADT^A01|C1|P|2.5\r\nPID|1||123^^^MRN||DOE\\T\\SMITH^JOHN\nPV1|1|I';
  const a = Hl7Message.parse(text);
  const b = Hl7Message.parseOwn(text);
  t.is(b.toString(), a.toString());
  t.deepEqual(b.segmentNames(), a.segmentNames());
  t.is(b.get('PID-5.1'), 'DOE&SMITH');
  // The structure is still checked.
  t.throws(() => Hl7Message.parseOwn('PID|1'), { instanceOf: Hl7Error });
  // And parse keeps refusing control characters.
  t.throws(() => Hl7Message.parse('MSH|^~\\&|A|B|||20250101||ADT^A01|C1|P|2.5\rPID|1||\u0001\r'), { instanceOf: Hl7Error });
});

test('withoutSegments: every occurrence goes, terminators and changed segments stay as they are', (t) => {
  const text = 'MSH|^~\\&|APP|FAC|||20250101||ADT^A01|C1|P|2.5\r\nPID|1||123\rDG1|1\nZDG|x\rDG1\rPV1|1|I\r';
  const m = Hl7Message.parse(text);
  m.set('PID-3', '456');
  const out = m.withoutSegments('DG1');
  t.is(out.toString(), 'MSH|^~\\&|APP|FAC|||20250101||ADT^A01|C1|P|2.5\r\nPID|1||456\rZDG|x\rPV1|1|I\r');
  t.is(m.countSegments('DG1'), 2, 'the original keeps its segments');
  t.is(m.withoutSegments('ZZZ'), m, 'nothing to drop: the same message');
});

test('componentsOf: each repetition split into raw components, in line with getAll', (t) => {
  const m = Hl7Message.parse(seg(MSH, 'PID|1||111^^^A\\T\\B&1.2&ISO^MR~222^^^NHS^NH{status:01}||DOE^JO', 'PV1|1|I||||||'));
  const reps = m.componentsOf('PID-3');
  t.deepEqual(reps, [
    ['111', '', '', 'A\\T\\B&1.2&ISO', 'MR'],
    ['222', '', '', 'NHS', 'NH{status:01}'],
  ]);
  // The same values as one getAll per component (which unescapes after splitting).
  t.deepEqual(reps.map((c) => c[0]), m.getAll('PID-3.1'));
  t.deepEqual(m.getAll('PID-3.4.1'), ['A&B', 'NHS'], 'escapes are decoded only by getAll');
  t.deepEqual(m.componentsOf({ segment: 'PID', occurrence: 1, field: 3 }), reps, 'a parsed path works the same');
  t.deepEqual(m.componentsOf('PV1-7'), [], 'an empty field');
  t.deepEqual(m.componentsOf('PV1-70'), [], 'an absent field');
  t.deepEqual(m.componentsOf('ZZZ-1'), [], 'an absent segment');
  t.deepEqual(m.componentsOf('MSH-2'), [['^~\\&']], 'MSH-2 is never split');
});
