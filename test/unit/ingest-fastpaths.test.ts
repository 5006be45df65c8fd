// SPDX-License-Identifier: Apache-2.0
/**
 * The ingest path's shortcuts give what the plain code gives: the control-character check on the
 * bytes (the parser's own scan is then skipped: clean UTF-8, ASCII and 8859/1 frames are read with
 * `Hl7Message.parseOwn`, the others with `parse`), the frames the parser refuses for a control
 * character are still refused with the parser's error, and a refusal by the record without
 * channels is reported in a batch frame's combined ACK with its own code and location.
 *
 * Some tests replace `Hl7Message.parse`/`parseOwn` with spies: they are `test.serial` (AVA runs
 * serial tests before the concurrent ones), and the spies only count the texts of their own frames.
 */
import test from 'ava';
import fc from 'fast-check';
import { join } from 'node:path';
import { Ingestor, hasControlBytes, type FrameMeta, type IngestResult } from '../../src/ingest/ingest.js';
import { Journal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import { Hl7Error, Hl7Message, formatLocation } from '../../src/hl7/index.js';
import { createPipeline } from '../../src/engine/engine.js';
import { DEMO_SENDER_ID } from '../../src/engine/senders.js';
import { tempDir } from '../helpers/engine.js';
import { adtA01, msa } from '../helpers/messages.js';

const META = { interface: 'mllp', connectionId: 'c1', remoteAddress: '127.0.0.1', remotePort: 1 };

/** The reference: the parser's definition, one byte at a time. */
function hasControlBytesReference(bytes: Uint8Array): boolean {
  for (const c of bytes) if ((c < 32 && c !== 9 && c !== 10 && c !== 13) || c === 127) return true;
  return false;
}

test('hasControlBytes agrees with a byte-by-byte check, at every alignment', (t) => {
  // Every byte value, alone and inside clean text, at offsets 0-7 of the underlying memory (the
  // word loop starts at a 4-byte boundary) and at every position of a word.
  const clean = Buffer.from('MSH|^~\\&|A|B\rPID|1||x\té\r', 'utf8');
  let checked = 0;
  for (let b = 0; b < 256; b++) {
    for (let offset = 0; offset < 8; offset++) {
      for (let at = 0; at <= clean.length; at++) {
        const memory = Buffer.alloc(offset + clean.length + 1);
        const bytes = memory.subarray(offset);
        clean.copy(bytes, 0, 0, at);
        bytes[at] = b;
        clean.copy(bytes, at + 1, at);
        t.is(hasControlBytes(bytes), hasControlBytesReference(bytes), `byte ${b} at ${at}, offset ${offset}`);
        checked++;
      }
    }
  }
  t.true(checked > 50_000);
  t.false(hasControlBytes(Buffer.alloc(0)));
});

test('property: hasControlBytes agrees with a byte-by-byte check on any bytes', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(7), fc.boolean(), (data, offset, mostlyText) => {
      // Mostly printable bytes (the usual frame), or anything.
      const bytes = Buffer.alloc(offset + data.length).subarray(offset);
      for (let i = 0; i < data.length; i++) bytes[i] = mostlyText && data[i]! % 8 !== 0 ? 32 + (data[i]! % 200) : data[i]!;
      return hasControlBytes(bytes) === hasControlBytesReference(bytes);
    }),
    { numRuns: 20_000 },
  );
  t.pass();
});

function setup(t: import('ava').ExecutionContext) {
  const journal = Journal.open({ file: join(tempDir(t), 'j.db') });
  t.teardown(() => journal.close());
  return { journal, ingestor: new Ingestor({ journal, logger: silentLogger }) };
}

const submit = (ingestor: Ingestor, bytes: Buffer): Promise<IngestResult> =>
  new Promise((resolve) => ingestor.submitFrame(bytes, META, resolve));

/** MSH with MSH-10 `id` and MSH-18 `charset` (MSH-17, the country, left empty). */
const msh = (id: string, charset = ''): string => `MSH|^~\\&|A|B|||20250101||ADT^A01|${id}|P|2.5||||||${charset}\r`;

test('a control character is refused with the parser error, in every charset and in a batch', async (t) => {
  const { ingestor, journal } = setup(t);
  const cases: Array<{ name: string; bytes: Buffer; text: string; charset?: string }> = [];
  for (const [charset, encoding] of [['', 'utf8'], ['UNICODE UTF-8', 'utf8'], ['8859/1', 'latin1'], ['ASCII', 'latin1'], ['8859/2', 'latin1']] as const) {
    for (const control of ['\x00', '\x01', '\x0b', '\x1f', '\x7f']) {
      const id = `C${cases.length}`;
      const text = `${msh(id, charset)}PID|1||123||DO${control}E^JANE\r`;
      cases.push({ name: `${charset || 'no MSH-18'} ${control.charCodeAt(0)}`, bytes: Buffer.from(text, encoding), text, charset: charset || 'UNICODE UTF-8' });
    }
  }
  // With a BOM; in MSH itself; in the second message of a batch.
  const bom = `${msh('BOM')}PID|1||12\x033\r`;
  cases.push({ name: 'BOM', bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(bom)]), text: bom });
  const inMsh = `MSH|^~\\&|A\x02|B|||20250101||ADT^A01|MSHC|P|2.5\rPID|1\r`;
  cases.push({ name: 'in MSH', bytes: Buffer.from(inMsh), text: inMsh });
  for (const c of cases) {
    let expected: Hl7Error | undefined;
    try {
      Hl7Message.parse(c.text);
    } catch (e) {
      expected = e as Hl7Error;
    }
    t.is(expected?.code, 'HL7_CONTROL_BYTES', c.name);
    const r = await submit(ingestor, c.bytes);
    t.is(r.ackCode, 'AR', c.name);
    const row = journal.get(r.ids[0]!)!;
    t.is(row.reasonCode, 'HL7_CONTROL_BYTES', c.name);
    t.is(row.reason, expected!.message, c.name);
    t.is(row.errorLocation, formatLocation(expected!.location!), c.name);
    if (c.charset !== undefined) t.is(row.charset, c.charset, `${c.name}: MSH-18 is read`);
  }
  const second = `${msh('B1')}PID|1\r${msh('B2')}PID|1||x\x05y\r`;
  const r = await submit(ingestor, Buffer.from(second));
  t.is(r.ackCode, 'AR');
  t.deepEqual(
    r.ids.map((id) => journal.get(id)!.reasonCode),
    [null, 'HL7_CONTROL_BYTES'],
  );
});

/**
 * Which parser read each message text from now until the end of the test: `Hl7Message.parse`
 * and `parseOwn` wrapped (restored in teardown). Only texts containing `mark` are kept.
 */
function spyParsers(t: import('ava').ExecutionContext, mark: string): Array<{ parser: 'parse' | 'parseOwn'; text: string }> {
  const calls: Array<{ parser: 'parse' | 'parseOwn'; text: string }> = [];
  const { parse, parseOwn } = Hl7Message;
  Hl7Message.parse = (text: string): Hl7Message => {
    if (text.includes(mark)) calls.push({ parser: 'parse', text });
    return parse.call(Hl7Message, text);
  };
  Hl7Message.parseOwn = (text: string): Hl7Message => {
    if (text.includes(mark)) calls.push({ parser: 'parseOwn', text });
    return parseOwn.call(Hl7Message, text);
  };
  t.teardown(() => {
    Hl7Message.parse = parse;
    Hl7Message.parseOwn = parseOwn;
  });
  return calls;
}

/** The parser of each message of the frame whose MSH-10s start with `id` (in the order read). */
const parsersOf = (calls: Array<{ parser: string; text: string }>, id: string): string[] =>
  calls.filter((c) => c.text.includes(`|${id}`)).map((c) => c.parser);

test.serial('TAB, LF and CR are not control characters to refuse; text in other charsets still parses', async (t) => {
  const { ingestor, journal } = setup(t);
  const calls = spyParsers(t, '|TAB-');
  // TAB in PID-3, CR after MSH, LF alone after PID, CR LF after the last segment: clean bytes,
  // so a clean UTF-8 or 8859/1 frame takes the fast path (parseOwn).
  const cases = [
    ['', 'utf8', 'parseOwn'],
    ['8859/1', 'latin1', 'parseOwn'],
    ['UNICODE UTF-8', 'utf8', 'parseOwn'],
    // Read through TextDecoder: not the fast path, whatever its bytes.
    ['8859/2', 'latin1', 'parse'],
  ] as const;
  for (const [charset, encoding, parser] of cases) {
    const id = `TAB-${charset || 'none'}`;
    const bytes = Buffer.from(`${msh(id, charset)}PID|1||1\t2||ÉLAN^Zoë\nNTE|1||x\r\n`, encoding);
    const low = [...bytes].filter((b) => b < 32 || b === 127);
    t.deepEqual([...new Set(low)].sort((a, b) => a - b), [9, 10, 13], `${id}: its only low bytes are TAB, LF and CR`);
    t.false(hasControlBytes(bytes), id);
    const r = await submit(ingestor, bytes);
    t.is(r.ackCode, 'AA', id);
    t.is(journal.get(r.ids[0]!)!.status, 'accepted', id);
    t.is(journal.get(r.ids[0]!)!.charset, charset || 'UNICODE UTF-8', `${id}: MSH-18 is read`);
    t.deepEqual(parsersOf(calls, id), [parser], `${id} read by ${parser}`);
  }
});

test.serial('the fast path: clean UTF-8, ASCII and 8859/1 frames are read with parseOwn; a control byte, or another charset, with parse', async (t) => {
  const { ingestor, journal } = setup(t);
  const calls = spyParsers(t, '|FP-');
  const frames: Array<{ id: string; bytes: Buffer; charset: string; parsers: string[]; code: 'AA' | 'AR' }> = [
    { id: 'FP-UTF8', bytes: Buffer.from(`${msh('FP-UTF8', 'UNICODE UTF-8')}PID|1||x||ZOË^ÉLAN\r`, 'utf8'), charset: 'UNICODE UTF-8', parsers: ['parseOwn'], code: 'AA' },
    { id: 'FP-NONE', bytes: Buffer.from(`${msh('FP-NONE')}PID|1||x||ZOË^ÉLAN\r`, 'utf8'), charset: 'UNICODE UTF-8', parsers: ['parseOwn'], code: 'AA' },
    { id: 'FP-L1', bytes: Buffer.from(`${msh('FP-L1', '8859/1')}PID|1||x||ZOË^ÉLAN\r`, 'latin1'), charset: '8859/1', parsers: ['parseOwn'], code: 'AA' },
    { id: 'FP-ASCII', bytes: Buffer.from(`${msh('FP-ASCII', 'ASCII')}PID|1||x||ZOE^ELAN\r`, 'latin1'), charset: 'ASCII', parsers: ['parseOwn'], code: 'AA' },
    // A batch in one frame: every message of a clean frame.
    { id: 'FP-B', bytes: Buffer.from(`${msh('FP-B1')}PID|1\r${msh('FP-B2')}PID|1\r`, 'utf8'), charset: 'UNICODE UTF-8', parsers: ['parseOwn', 'parseOwn'], code: 'AA' },
    // A control byte anywhere in the frame: every message through the parser's scan.
    { id: 'FP-CTL-U', bytes: Buffer.from(`${msh('FP-CTL-U', 'UNICODE UTF-8')}PID|1||x\x01y\r`, 'utf8'), charset: 'UNICODE UTF-8', parsers: ['parse'], code: 'AR' },
    { id: 'FP-CTL-L', bytes: Buffer.from(`${msh('FP-CTL-L', '8859/1')}PID|1||É\x1f\r`, 'latin1'), charset: '8859/1', parsers: ['parse'], code: 'AR' },
    { id: 'FP-CTL-B', bytes: Buffer.from(`${msh('FP-CTL-B1')}PID|1\r${msh('FP-CTL-B2')}PID|1||x\x7fy\r`, 'utf8'), charset: 'UNICODE UTF-8', parsers: ['parse', 'parse'], code: 'AR' },
    // Clean, but decoded by TextDecoder.
    { id: 'FP-L2', bytes: Buffer.from(`${msh('FP-L2', '8859/2')}PID|1||x||ZOE^ELAN\r`, 'latin1'), charset: '8859/2', parsers: ['parse'], code: 'AA' },
  ];
  for (const f of frames) {
    const r = await submit(ingestor, f.bytes);
    t.is(r.ackCode, f.code, f.id);
    t.is(journal.get(r.ids[0]!)!.charset, f.charset, f.id);
    t.deepEqual(parsersOf(calls, f.id), f.parsers, f.id);
  }
});

test('without channels, a batch frame whose second message the record refuses: the ACK gives its code and location', async (t) => {
  const journal = Journal.open({ file: join(tempDir(t), 'tributary.db') });
  t.teardown(() => journal.close());
  // The record and the gate (the first-run demo sender, which creates unknown patients), no channels.
  const { ingestor } = createPipeline({ journal, logger: silentLogger });
  const replay: FrameMeta = { interface: 'replay', connectionId: null, remoteAddress: null, remotePort: null, senderId: DEMO_SENDER_ID };
  const good = adtA01('NC-1');
  // A wrong NHS number check digit (9434765919 is valid).
  const bad = adtA01('NC-2', { visit: 'V2' }).replace('9434765919', '9434765918');
  const single = await ingestor.submit(Buffer.from(bad), replay);
  t.is(single.reasonCode, 'RECORD_INVALID_NHS_NUMBER', 'the record refuses the message on its own');
  const expected = msa(single.ack).text;
  t.regex(expected, /invalid NHS number.* at PID-3/);

  const r = await ingestor.submit(Buffer.from(good + bad.replace('|NC-2|', '|NC-3|')), replay);
  t.is(r.ackCode, 'AR');
  t.is(r.status, 'rejected');
  t.is(r.reasonCode, 'RECORD_INVALID_NHS_NUMBER');
  const ack = msa(r.ack);
  t.is(ack.controlId, 'NC-1', 'answered for the first message');
  t.is(ack.text, `message 2 of 2 (MSH-10 NC-3): ${expected}`);
  const err = r.ack.split('\r').find((s) => s.startsWith('ERR|'))!;
  t.regex(err, /^ERR\|\|PID\^1\^3\^/, 'ERR-2 is the location in message 2');
  t.regex(err, /\|102\^invalid NHS number/, 'ERR-3 is the record\'s code, not 207');
  t.deepEqual(
    r.ids.map((id) => [journal.get(id)!.controlId, journal.get(id)!.status, journal.get(id)!.reasonCode]),
    [
      ['NC-1', 'accepted', null],
      ['NC-3', 'rejected', 'RECORD_INVALID_NHS_NUMBER'],
    ],
  );
});
