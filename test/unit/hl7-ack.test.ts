// SPDX-License-Identifier: Apache-2.0
import test from 'ava';
import {
  Hl7Error, Hl7ErrorCode, Hl7Message, buildAck, salvageAckRequest,
} from '../../src/hl7/index.js';

const TS = new Date('2025-04-02T10:15:30.123Z');
const inbound = (version: string, extra = ''): Hl7Message =>
  Hl7Message.parse(`MSH|^~\\&|PAS^X|RIVERSIDE|TRIBUTARY|TRIB|20250402||ADT^A01^ADT_A01|MSG00042|P|${version}${extra}\rPID|1\r`);
const lines = (ack: string): string[] => ack.split('\r');

test('AA: MSH echoes, MSA-2 = inbound MSH-10, terminated by CR', (t) => {
  const ack = buildAck(inbound('2.5.1').ackRequest(), { code: 'AA', controlId: 'ACK1', timestamp: TS });
  t.is(ack, 'MSH|^~\\&|TRIBUTARY|TRIBUTARY|PAS^X|RIVERSIDE|20250402101530.123+0000||ACK^A01|ACK1|P|2.5.1\rMSA|AA|MSG00042\r');
  const m = Hl7Message.parse(ack);
  t.is(m.get('MSH-5'), 'PAS^X');
  t.is(m.get('MSH-6'), 'RIVERSIDE');
  t.is(m.get('MSA-2'), 'MSG00042');
  t.is(m.messageType, 'ACK^A01');
});

test('our MSH-3/4, text escaped, enhanced-mode codes', (t) => {
  const ack = buildAck(inbound('2.4').ackRequest(), {
    code: 'CA', controlId: 'A|2', timestamp: TS, sendingApplication: 'HL7API', sendingFacility: 'PKB', text: 'ok | fine ^ really',
  });
  const m = Hl7Message.parse(ack);
  t.is(m.get('MSH-3'), 'HL7API');
  t.is(m.get('MSH-4'), 'PKB');
  t.is(m.get('MSH-10'), 'A|2');
  t.is(m.get('MSA-1'), 'CA');
  t.is(m.get('MSA-3'), 'ok | fine ^ really');
  t.is(m.segmentCount, 2);
});

test('AR before 2.5: ERR-1 (ELD) seg^seq^field^code&text&HL70357; MSA-3 has reason and location', (t) => {
  const err = new Hl7Error('HL7_REQUIRED_FIELD', Hl7ErrorCode.RequiredFieldMissing, { field: 'MSH-10' }, { segment: 'MSH', sequence: 1, field: 10 });
  const ack = buildAck(inbound('2.3').ackRequest(), { code: 'AR', controlId: 'N1', timestamp: TS, error: err });
  const [, msa, errSeg, end] = lines(ack);
  t.is(msa, 'MSA|AR|MSG00042|required field MSH-10 is missing at MSH-10');
  t.is(errSeg, 'ERR|MSH^1^10^101&required field MSH-10 is missing&HL70357');
  t.is(end, '');
  const m = Hl7Message.parse(ack);
  t.is(m.get('ERR-1.4.1'), '101');
  t.is(m.get('ERR-1.4.3'), 'HL70357');
  t.is(buildAck(inbound('2.3.1').ackRequest(), { code: 'AR', controlId: 'N1', timestamp: TS, error: err }).split('\r')[2], errSeg);
  t.is(buildAck(inbound('2.4^GBR').ackRequest(), { code: 'AR', controlId: 'N1', timestamp: TS, error: err }).split('\r')[2], errSeg);
});

test('AR from 2.5: ERR-2 (ERL), ERR-3 (0357 code^text^HL70357), ERR-4 E', (t) => {
  const err = new Hl7Error('HL7_CONTROL_BYTES', Hl7ErrorCode.DataType, { byte: '00', offset: 120 }, { segment: 'PID', sequence: 1, field: 5, repetition: 1, component: 2 });
  for (const v of ['2.5', '2.5.1', '2.8', '2.10']) {
    const ack = buildAck(inbound(v).ackRequest(), { code: 'AR', controlId: 'N2', timestamp: TS, error: err });
    const [, msa, errSeg] = lines(ack);
    t.is(msa, 'MSA|AR|MSG00042|message contains control byte 0x00 at offset 120 at PID-5.2');
    t.is(errSeg, 'ERR||PID^1^5^1^2^|102^message contains control byte 0x00 at offset 120^HL70357|E', v);
  }
});

test('AE 207 for an internal failure, without a location', (t) => {
  const err = new Hl7Error('INTERNAL', Hl7ErrorCode.ApplicationInternalError, { reason: 'database is locked' });
  const ack = buildAck(inbound('2.5.1').ackRequest(), { code: 'AE', controlId: 'N3', timestamp: TS, error: err });
  t.deepEqual(lines(ack).slice(1), ['MSA|AE|MSG00042|unexpected error: database is locked', 'ERR|||207^unexpected error: database is locked^HL70357|E', '']);
  const old = buildAck(inbound('2.3').ackRequest(), { code: 'AE', controlId: 'N3', timestamp: TS, error: err, text: 'try later' });
  t.deepEqual(lines(old).slice(1), ['MSA|AE|MSG00042|try later', 'ERR|^^^207&unexpected error: database is locked&HL70357', '']);
});

test('the ACK uses the inbound delimiters', (t) => {
  const m = Hl7Message.parse('MSH#!$/*#APP#FAC#R#F#2025##ORU!R01#C9#P#2.3\nPID#1\n');
  const err = new Hl7Error('HL7_REQUIRED_FIELD', Hl7ErrorCode.RequiredFieldMissing, { field: 'PID-3' }, { segment: 'PID', field: 3 });
  const ack = buildAck(m.ackRequest(), { code: 'AR', controlId: 'X', timestamp: TS, error: err, text: 'bad # field' });
  t.is(ack, 'MSH#!$/*#TRIBUTARY#TRIBUTARY#APP#FAC#20250402101530.123+0000##ACK!R01#X#P#2.3\rMSA#AR#C9#bad /F/ field\rERR#PID!!3!101*required field PID-3 is missing*HL70357\r');
  t.is(Hl7Message.parse(ack).get('MSA-3'), 'bad # field');
});

test('no request (nothing readable): default delimiters, 2.5.1, empty echoes, ACK without trigger', (t) => {
  const err = new Hl7Error('HL7_NO_MSH', Hl7ErrorCode.SegmentSequence, {}, { segment: '', sequence: 1 });
  const ack = buildAck(null, { code: 'AR', controlId: 'N4', timestamp: TS, error: err });
  t.is(ack, 'MSH|^~\\&|TRIBUTARY|TRIBUTARY|||20250402101530.123+0000||ACK|N4||2.5.1\r'
    + 'MSA|AR||message does not start with an MSH segment at segment 1\r'
    + 'ERR||^1^^^^|100^message does not start with an MSH segment^HL70357|E\r');
  t.is(Hl7Message.parse(ack).segmentCount, 3);
});

test('salvageAckRequest reads MSH from broken input and never throws', (t) => {
  const r = salvageAckRequest('[SOM]MSH|^~\\&|APP|FAC|R|F|2025||ADT^A04|CTRL7|P|2.3.1\r\nEVN|A04\r\nP\u0000D|1[EOM]');
  t.truthy(r);
  t.is(r?.controlId, 'CTRL7');
  t.is(r?.triggerEvent, 'A04');
  t.is(r?.sendingApplication, 'APP');
  t.is(r?.version, '2.3.1');
  const dup = salvageAckRequest('MSH|^~\\\\&|SE050|050|PACS|050|2012||ADT^A01|102|T|2.6\nPID|1');
  t.is(dup?.controlId, '102');
  t.deepEqual(dup?.delimiters, { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&', truncation: '' });
  const noId = salvageAckRequest('MSH|^~\\&|A|B|C|D|2025||ADT^A01\rPID|1');
  t.is(noId?.controlId, '');
  t.is(salvageAckRequest('PID|1||x'), null);
  t.is(salvageAckRequest(''), null);
  t.is(salvageAckRequest('MSH'), null);
  const ctl = salvageAckRequest('MSH|^~\\&|A\u0001B|F|||2||ADT|ID\u0000');
  t.is(ctl?.sendingApplication, 'AB');
  t.is(ctl?.controlId, 'ID');
  // An ACK built from it parses.
  const ack = buildAck(r, { code: 'AR', controlId: 'Z', timestamp: TS, text: 'framing' });
  t.is(Hl7Message.parse(ack).get('MSA-2'), 'CTRL7');
});

test('the kept start of MSH follows the delimiters and our MSH-3/4 from one ACK to the next', (t) => {
  // The head (MSH, MSH-2, our MSH-3/4) is reused while they stay the same: alternate them and
  // check each ACK against the one built first with the same inputs (and against the fields).
  const requests = [
    inbound('2.5.1').ackRequest(),
    Hl7Message.parse('MSH#-~\\&#PAS#RIVERSIDE####ADT-A01#M2#P#2.5\rPID#1\r').ackRequest(),
    Hl7Message.parse('MSH|^~\\&#|PAS|RIVERSIDE||||ADT^A01|M3|P|2.7\rPID|1\r').ackRequest(),
    Hl7Message.parse('MSH|^~&|PAS|RIVERSIDE||||ADT^A01|M4|P|2.5\rPID|1\r').ackRequest(),
  ];
  const ours = [
    { sendingApplication: 'TRIBUTARY', sendingFacility: 'TRIBUTARY' },
    { sendingApplication: 'APP|X', sendingFacility: 'FAC^Y' },
    { sendingApplication: 'TRIBUTARY', sendingFacility: 'OTHER' },
  ];
  const first = new Map<string, string>();
  for (let round = 0; round < 3; round++) {
    for (const [i, request] of requests.entries()) {
      for (const [j, o] of ours.entries()) {
        const ack = buildAck(request, { code: 'AA', controlId: 'ACK1', timestamp: TS, ...o });
        const key = `${i}/${j}`;
        if (!first.has(key)) first.set(key, ack);
        t.is(ack, first.get(key)!, key);
        const d = request.delimiters;
        t.true(ack.startsWith(`MSH${d.field}${d.component}${d.repetition}${d.escape}${d.subcomponent}${d.truncation}${d.field}`), key);
        if (d.escape !== '') {
          const m = Hl7Message.parse(ack);
          t.is(m.get('MSH-3'), o.sendingApplication, key);
          t.is(m.get('MSH-4'), o.sendingFacility, key);
          t.is(m.get('MSA-2'), request.controlId, key);
        }
      }
    }
  }
});

test('the kept start of MSH is rebuilt when only one delimiter changes, our MSH-3/4 staying the same', (t) => {
  // Every request below has the same MSH-3/4/10 and version, and ours are fixed: the only thing
  // that changes from one ACK to the next is one delimiter (each set differs from the first in
  // exactly one). Our MSH-3/4 hold every delimiter of these sets, so the escaping differs too.
  const sets: Array<[field: string, encoding: string]> = [
    ['|', '^~\\&'],
    ['|', '^~\\&#'], // truncation only
    ['|', '^~\\&$'], // another truncation character
    ['|', '^~!&'], // escape only
    ['|', '^~&'], // no escape character
    ['|', '^~\\*'], // subcomponent only
    ['|', ':~\\&'], // component only
    ['|', '^@\\&'], // repetition only
    ['#', '^~\\&'], // field only
  ];
  const requests = sets.map(([f, enc]) =>
    Hl7Message.parse(`MSH${f}${enc}${f}PAS${f}RIVERSIDE${f}${f}${f}${f}ADT${enc.charAt(0)}A01${f}M1${f}P${f}2.7\rPID${f}1\r`).ackRequest(),
  );
  const ours = { sendingApplication: 'APP|X^Y~Z', sendingFacility: 'FAC\\A&B#C$D*E:F@G!H' };
  const options = { code: 'AA' as const, controlId: 'ACK1', timestamp: TS, ...ours };
  // The reference: built right after an ACK with another MSH-3, so nothing of the kept start is reused.
  const fresh = (request: (typeof requests)[number]): string => {
    buildAck(request, { ...options, sendingApplication: 'SOMETHING ELSE' });
    return buildAck(request, options);
  };
  const reference = requests.map(fresh);
  for (const [i, request] of requests.entries()) {
    const [f, enc] = sets[i]!;
    // The reference itself, against the request's delimiters (independent of what is kept).
    t.true(reference[i]!.startsWith(`MSH${f}${enc}${f}`), `${f}${enc}`);
    if (request.delimiters.escape !== '') {
      const m = Hl7Message.parse(reference[i]!);
      t.is(m.get('MSH-3'), ours.sendingApplication, `${f}${enc}`);
      t.is(m.get('MSH-4'), ours.sendingFacility, `${f}${enc}`);
    }
  }
  t.is(new Set(reference.map((r) => r.slice(0, r.indexOf('PAS')))).size, sets.length, 'every set gives its own start of MSH');
  // Every ordered pair: a, then b (the kept start is a's when b comes).
  for (const [a, requestA] of requests.entries()) {
    for (const [b, requestB] of requests.entries()) {
      t.is(buildAck(requestA, options), reference[a]!, `${sets[a]!.join('')} first`);
      t.is(buildAck(requestB, options), reference[b]!, `${sets[a]!.join('')} then ${sets[b]!.join('')}`);
    }
  }
});
