// SPDX-License-Identifier: Apache-2.0
// Every file of the third-party corpus (test/fixtures/corpus, see its README and MANIFEST.tsv):
// decode → splitBatch → parse each message. Malformed inputs must give an Hl7Error; every other
// message must round-trip byte for byte, through toString() and through the real encoder.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Hl7Error, Hl7Message, decodeHl7Bytes, splitBatch } from '../../src/hl7/index.js';

const DIR = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));

interface Entry { file: string; messageType: string; version: string; notes: string }
const manifest = new Map<string, Entry>();
for (const line of readFileSync(`${DIR}MANIFEST.tsv`, 'utf8').split('\n').slice(1)) {
  if (line === '') continue;
  const [file, , , , messageType, version, notes] = line.split('\t') as [string, string, string, string, string, string, string];
  manifest.set(file, { file, messageType, version, notes });
}
const files = readdirSync(DIR).filter((f) => f.endsWith('.hl7')).sort();

/** The corpus's own definition of a deliberately broken input. */
const isMalformed = (e: Entry): boolean => e.notes.startsWith('MALFORMED') || e.file.includes('malformed');

/**
 * Files the manifest does not call malformed that our rules still reject, with the reason.
 * Keep this table short and explained: each entry is a decision, not a bug to hide.
 */
const EXPECTED_REJECTIONS: Record<string, { code: string; why: string }> = {
  // The CRLF twin of lfh-ADT_A01-01 (which the manifest calls MALFORMED) has the same defects:
  // MSH-2 is `^~\\&` (a Java string literal pasted as text: the escape character is doubled) and
  // segments end with the literal text `\r`. A repeated encoding character makes splitting
  // ambiguous, so both files are refused by the same rule (delimiters must be distinct).
  'lfh-ADT_A01-02.hl7': { code: 'HL7_BAD_DELIMITERS', why: 'MSH-2 ^~\\\\& repeats the escape character' },
};

/** Number of segments starting with MSH (the README counts one message per MSH). */
function mshCount(bytes: Buffer): number {
  // latin1 keeps one char per byte; a UTF-8 BOM (3 bytes) would hide the first MSH.
  const text = bytes.toString('latin1').replace(/^\xEF\xBB\xBF/, '');
  let n = 0;
  for (const line of text.split(/\r\n|\r|\n/)) if (line.startsWith('MSH')) n++;
  return n;
}

type Outcome = { ok: true; messages: string[] } | { ok: false; error: Hl7Error };
function run(bytes: Buffer): Outcome {
  try {
    const { text } = decodeHl7Bytes(bytes);
    const { messages } = splitBatch(text);
    for (const m of messages) Hl7Message.parse(m);
    return { ok: true, messages };
  } catch (e) {
    if (e instanceof Hl7Error) return { ok: false, error: e };
    throw e; // anything else is a crash: fails the test
  }
}

test('the corpus is complete: every .hl7 file is in the manifest and vice versa', (t) => {
  t.is(files.length, 386);
  t.deepEqual([...manifest.keys()].sort(), files);
});

test('every file: no crash; malformed inputs give an Hl7Error with a code; the rest round-trip exactly', (t) => {
  let total = 0;
  let roundTripped = 0;
  let malformedFiles = 0;
  const problems: string[] = [];
  for (const file of files) {
    const entry = manifest.get(file) as Entry;
    const bytes = readFileSync(DIR + file);
    const out = run(bytes);
    const expectedReject = EXPECTED_REJECTIONS[file];
    // README counting rule: one per MSH; a malformed file with no parsable MSH counts once.
    // (The framing sample's MSH is preceded by `[SOM]`, so it is not at a segment start.)
    total += entry.messageType.startsWith('n/a') ? 1 : Math.max(1, mshCount(bytes));
    if (isMalformed(entry) || expectedReject !== undefined) {
      if (isMalformed(entry)) malformedFiles++;
      if (out.ok) problems.push(`${file}: accepted but should be rejected`);
      else {
        if (!out.error.code.startsWith('HL7_')) problems.push(`${file}: unexpected code ${out.error.code}`);
        if (expectedReject !== undefined && out.error.code !== expectedReject.code) problems.push(`${file}: ${out.error.code}, expected ${expectedReject.code}`);
      }
      continue;
    }
    if (!out.ok) {
      problems.push(`${file}: ${out.error.code} ${out.error.message}`);
      continue;
    }
    t.is(out.messages.length, mshCount(bytes), `${file}: one message per MSH`);
    const types = new Set<string>();
    const versions = new Set<string>();
    for (const text of out.messages) {
      const m = Hl7Message.parse(text);
      if (m.toString() !== text) problems.push(`${file}: toString() differs`);
      if (m.encode({ rebuild: true }) !== text) problems.push(`${file}: encode({ rebuild: true }) differs`);
      types.add(m.messageType);
      versions.add(m.version);
      roundTripped++;
    }
    // The manifest lists MSH-9.1^MSH-9.2 and MSH-12.1 of every MSH, comma-joined when they differ.
    const norm = (s: string): string => s.replace(/\^$/, '');
    t.deepEqual(new Set(entry.messageType.split(',').map(norm)), types, `${file}: message types`);
    t.deepEqual(new Set(entry.version.split(',')), versions, `${file}: versions`);
  }
  t.deepEqual(problems, []);
  t.is(total, 560, 'the README total (560 messages, malformed files without an MSH counted once)');
  t.is(malformedFiles, 44);
  // 560 = 520 messages that round-trip + 40 malformed-counted-once; minus the MSH-counted
  // malformed/rejected files (reportstream-malformed-ORU-01, lfh ×2, pyhl7-BATCH-malformed-02/04).
  t.is(roundTripped, 560 - 40 - 5);
});

test('round-trip survives the bytes too: re-encoding the decoded text gives the original file', (t) => {
  // Only for files decoded without a fallback or BOM: then text → bytes is the inverse of decode.
  for (const file of files) {
    const entry = manifest.get(file) as Entry;
    if (isMalformed(entry) || file in EXPECTED_REJECTIONS) continue;
    const bytes = readFileSync(DIR + file);
    const dec = decodeHl7Bytes(bytes);
    const enc = dec.charset === '8859/1' ? 'latin1' : 'utf8';
    const back = Buffer.concat([dec.bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0), Buffer.from(dec.text, enc)]);
    t.true(back.equals(bytes), file);
  }
});
