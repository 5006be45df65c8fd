// SPDX-License-Identifier: Apache-2.0
// Property tests (fast-check): random messages round-trip exactly through the real encoder,
// random bytes only ever raise Hl7Error, and set() then get() gives the value back.
import test from 'ava';
import fc from 'fast-check';
import { type Delimiters, Hl7Error, Hl7Message, decodeHl7Bytes, splitBatch } from '../../src/hl7/index.js';

const RUNS = Number(process.env.HL7_PROPERTY_RUNS ?? 300);
/** Printable ASCII punctuation: every character here is a valid delimiter. */
const PUNCT = '|^~\\&#!$%*+,-./:;<=>?@[]_{}`\'"()';
const ENVELOPE = new Set(['MSH', 'FHS', 'BHS', 'BTS', 'FTS']);

/** A random valid delimiter set: field separator plus 3, 4 or 5 encoding characters. */
const delimitersArb: fc.Arbitrary<{ fs: string; enc: string }> = fc
  .tuple(fc.shuffledSubarray([...PUNCT], { minLength: 6, maxLength: 6 }), fc.constantFrom(3, 4, 5))
  .map(([chars, n]) => ({ fs: chars[0] as string, enc: chars.slice(1, 1 + n).join('') }));

const segIdArb = fc
  .tuple(...[0, 1, 2].map(() => fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')))
  .map((c) => c.join(''))
  .filter((id) => !ENVELOPE.has(id));

const termArb = fc.constantFrom('\r', '\n', '\r\n');

/** A text leaf that contains none of the delimiters (letters, digits, spaces, non-ASCII, punctuation not in use). */
function leafArb(used: string): fc.Arbitrary<string> {
  const chars = [...'abcXYZ019 .é中😀\t', ...PUNCT].filter((c) => !used.includes(c));
  return fc.string({ unit: fc.constantFrom(...chars), maxLength: 6 });
}

function fieldArb(fs: string, enc: string): fc.Arbitrary<string> {
  const d = { comp: enc.charAt(0), rep: enc.charAt(1), sub: enc.length === 3 ? enc.charAt(2) : enc.charAt(3) };
  const leaf = leafArb(fs + enc);
  const comp = fc.array(leaf, { minLength: 1, maxLength: 3 }).map((s) => s.join(d.sub));
  const rep = fc.array(comp, { minLength: 1, maxLength: 3 }).map((c) => c.join(d.comp));
  return fc.array(rep, { minLength: 1, maxLength: 3 }).map((r) => r.join(d.rep));
}

const messageArb = delimitersArb.chain(({ fs, enc }) => {
  const fields = fc.array(fieldArb(fs, enc), { maxLength: 8 });
  const segment = fc.tuple(segIdArb, fields).map(([id, f]) => (f.length === 0 ? id : id + fs + f.join(fs)));
  return fc.record({
    fs: fc.constant(fs),
    enc: fc.constant(enc),
    msh: fields.map((f) => `MSH${fs}${enc}${f.length ? fs + f.join(fs) : ''}`),
    body: fc.array(fc.tuple(segment, termArb), { minLength: 1, maxLength: 6 }),
    mshTerm: termArb,
    finalTerm: fc.boolean(),
  });
}).map(({ fs, enc, msh, body, mshTerm, finalTerm }) => {
  let text = msh + mshTerm;
  body.forEach(([s, term], i) => {
    text += s + (i < body.length - 1 || finalTerm ? term : '');
  });
  return { text, fs, enc, count: body.length + 1 };
});

test('random messages round-trip exactly via encode({ rebuild: true }) and toString()', (t) => {
  fc.assert(
    fc.property(messageArb, ({ text, fs, enc, count }) => {
      const m = Hl7Message.parse(text);
      return m.encode({ rebuild: true }) === text && m.toString() === text && m.segmentCount === count
        && m.msh(1) === fs && m.msh(2) === enc && splitBatch(text).messages.join('') === text;
    }),
    { numRuns: RUNS },
  );
  t.pass();
});

function checkError(e: unknown): boolean {
  if (!(e instanceof Hl7Error)) throw e; // anything else is a crash
  if (!e.code.startsWith('HL7_') || typeof e.hl7Code !== 'number') return false;
  return e.location !== undefined || e.code === 'HL7_EMPTY';
}

function decodeSplitParse(bytes: Uint8Array): boolean {
  try {
    const { text } = decodeHl7Bytes(bytes);
    for (const msg of splitBatch(text).messages) {
      const m = Hl7Message.parse(msg);
      if (m.encode({ rebuild: true }) !== msg) return false;
      m.get('PID-3[2].1');
      m.get('MSH-9.2');
      m.getAll('OBX-5');
      m.ackRequest();
    }
    return true;
  } catch (e) {
    return checkError(e);
  }
}

test('random bytes: decode/split/parse only ever throw Hl7Error, with a location or a clear code', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), decodeSplitParse), { numRuns: RUNS });
  // Start like a message so the deeper rules are reached too.
  const prefix = Buffer.from('MSH|^~\\&|');
  const noisy = fc.array(fc.oneof(fc.constantFrom(13, 10, 124, 94, 126, 92, 38, 77, 83, 72, 80, 73, 68, 0, 0xc3, 0xa9, 0xff), fc.integer({ min: 0, max: 255 })), { maxLength: 300 });
  fc.assert(fc.property(noisy, (arr) => decodeSplitParse(Buffer.concat([prefix, Buffer.from(arr)]))), { numRuns: RUNS });
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => {
    try {
      Hl7Message.parse(s);
      return true;
    } catch (e) {
      return checkError(e);
    }
  }), { numRuns: RUNS });
  t.pass();
});

const valueArb = fc.string({ unit: fc.constantFrom(...'ab Z9é中\t\r\n\u0001|^~\\&#!$*'), maxLength: 12 });

test('set() then get() returns the value, also after re-parsing, whatever the delimiters', (t) => {
  const withEscape = delimitersArb.filter(({ enc }) => enc.length >= 4);
  const pathArb = fc.record({
    seg: fc.constantFrom('MSH', 'PID', 'OBX', 'OBX[2]'),
    field: fc.integer({ min: 1, max: 14 }),
    rep: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    comp: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
    sub: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  }).map(({ seg, field, rep, comp, sub }) => {
    const f = seg === 'MSH' ? field + 2 : field;
    return `${seg}-${f}${rep !== undefined ? `[${rep}]` : ''}${comp !== undefined ? `.${comp}${sub !== undefined ? `.${sub}` : ''}` : ''}`;
  });
  fc.assert(
    fc.property(withEscape, fc.array(fc.tuple(pathArb, valueArb), { minLength: 1, maxLength: 4 }), ({ fs, enc }, writes) => {
      const map: Record<string, string> = { '|': fs, '^': enc.charAt(0), '~': enc.charAt(1), '%': enc };
      const template = 'MSH|%|APP|FAC|||20250101||ADT^A01|C1|P|2.5\rPID|1||A^B~C\rOBX|1\rOBX|2|x^y\r';
      const m = Hl7Message.parse(template.replace(/[|^~%]/g, (ch) => map[ch] as string));
      for (const [path, value] of writes) {
        m.set(path, value);
        if (m.get(path) !== value) return false;
      }
      const last = writes[writes.length - 1] as [string, string];
      const again = Hl7Message.parse(m.toString());
      return again.get(last[0]) === last[1] && again.encode({ rebuild: true }) === m.toString();
    }),
    { numRuns: RUNS },
  );
  t.pass();
});

test('delimiter sets are read back as given', (t) => {
  fc.assert(fc.property(delimitersArb, ({ fs, enc }) => {
    const d: Delimiters = Hl7Message.parse(`MSH${fs}${enc}${fs}A\rPID${fs}1`).delimiters;
    const back = d.component + d.repetition + d.escape + d.subcomponent + d.truncation;
    return d.field === fs && back === enc && (enc.length === 3 ? d.escape === '' : true);
  }), { numRuns: RUNS });
  t.pass();
});
