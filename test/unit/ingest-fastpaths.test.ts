// SPDX-License-Identifier: Apache-2.0
/**
 * The ingest path's shortcuts give what the plain code gives: the control-character check on the
 * bytes (the parser's own scan is then skipped), the ISO timestamp of the record's provenance, and
 * the frames the parser refuses for a control character are still refused with the parser's error.
 */
import test from 'ava';
import fc from 'fast-check';
import { join } from 'node:path';
import { Ingestor, hasControlBytes, type IngestResult } from '../../src/ingest/ingest.js';
import { Journal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import { Hl7Error, Hl7Message, formatLocation } from '../../src/hl7/index.js';
import { tempDir } from '../helpers/engine.js';

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

const msh = (id: string, charset = ''): string => `MSH|^~\\&|A|B|||20250101||ADT^A01|${id}|P|2.5|||||${charset}\r`;

test('a control character is refused with the parser error, in every charset and in a batch', async (t) => {
  const { ingestor, journal } = setup(t);
  const cases: Array<{ name: string; bytes: Buffer; text: string }> = [];
  for (const [charset, encoding] of [['', 'utf8'], ['UNICODE UTF-8', 'utf8'], ['8859/1', 'latin1'], ['ASCII', 'latin1'], ['8859/2', 'latin1']] as const) {
    for (const control of ['\x00', '\x01', '\x0b', '\x1f', '\x7f']) {
      const id = `C${cases.length}`;
      const text = `${msh(id, charset)}PID|1||123||DO${control}E^JANE\r`;
      cases.push({ name: `${charset || 'no MSH-18'} ${control.charCodeAt(0)}`, bytes: Buffer.from(text, encoding), text });
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
  }
  const second = `${msh('B1')}PID|1\r${msh('B2')}PID|1||x\x05y\r`;
  const r = await submit(ingestor, Buffer.from(second));
  t.is(r.ackCode, 'AR');
  t.deepEqual(
    r.ids.map((id) => journal.get(id)!.reasonCode),
    [null, 'HL7_CONTROL_BYTES'],
  );
});

test('TAB, LF and CR are not control characters to refuse; text in other charsets still parses', async (t) => {
  const { ingestor, journal } = setup(t);
  for (const [charset, encoding] of [['', 'utf8'], ['8859/1', 'latin1'], ['8859/2', 'latin1'], ['UNICODE UTF-8', 'utf8']] as const) {
    const r = await submit(ingestor, Buffer.from(`${msh(`T${charset}`, charset)}PID|1||1\t2||ÉLAN^Zoë\r\n`, encoding));
    t.is(r.ackCode, 'AA', charset);
    t.is(journal.get(r.ids[0]!)!.status, 'accepted');
  }
});
