// SPDX-License-Identifier: Apache-2.0
/**
 * Synthetic HL7 v2 messages for the load benchmarks (invented patients, no real data), and cheap
 * per-message MSH-10 stamping: a template is split once around its MSH-10 value, and each frame is
 * then `VT prefix id suffix FS CR`, built with two copies and one short latin1 write.
 */
import { readFileSync } from 'node:fs';
import { CR, FS, VT } from '../../src/mllp/index.js';

const SEG = '\r';

/** ADT^A01 (admit), about 1.1 KB: MSH, EVN, PID with several identifiers, NK1, PV1, AL1, DG1. */
export function adtA01(controlId = 'CTRL000001'): string {
  return (
    [
      `MSH|^~\\&|ADMITSYS|NORTHSIDE^1.2.826.0.1.999^ISO|TRIBUTARY|RECEIVER|20250314081530.1234+0000||ADT^A01^ADT_A01|${controlId}|P|2.5.1|||AL|NE|GBR|UNICODE UTF-8|EN`,
      'EVN|A01|20250314081500|||OP1234^BROWN^ALICE^M^^DR^^^NORTHSIDE&1.2.826.0.1.999&ISO|20250314081000',
      'PID|1||900000123^^^NORTHSIDE^MR~9990000018^^^NHS^NH~ZZ000000Z^^^UKNI^SS~X0000000^^^PASSPORT^PPN||TESTER^SAM^QUENTIN^JR^MR^^L~TESTER^SAMMY^^^^^A|PATTERN^MAY|19800101083000|M||2106-3^White^CDCREC|1 EXAMPLE ROAD^FLAT 2^TESTTOWN^^ZZ1 1ZZ^GBR^H||^PRN^PH^^44^20^70000000~^NET^Internet^sam.tester@example.org||EN^English^ISO639|M^Married^HL70002||ACC20250314001^^^NORTHSIDE^AN',
      'NK1|1|TESTER^JO^A^^MRS|SPO^Spouse^HL70063|1 EXAMPLE ROAD^^TESTTOWN^^ZZ1 1ZZ^GBR^H|^PRN^PH^^44^20^70000001',
      'PV1|1|I|WARD7^BED12^A^NORTHSIDE|EM|||004777^WARD^SID^J^^DR^MD|004888^REFER^RAE^^^DR||MED|||7|EMR||N||IP|VIS20250314001^^^NORTHSIDE^VN|||||||||||||||||||||||||20250314081000',
      'AL1|1|DA^Drug Allergy^HL70127|70618^Penicillin^RXNORM|SV^Severe^HL70128|Hives~Anaphylaxis|20100101',
      'DG1|1||I21.4^Non-ST elevation myocardial infarction^I10|||A^Admitting^HL70052|||||||||1|004777^WARD^SID^J^^DR',
    ].join(SEG) + SEG
  );
}

const ORU_TESTS: ReadonlyArray<readonly [string, string, string, string, string]> = [
  ['718-7', 'Hemoglobin', '13.9', 'g/dL', '13.0-17.0'],
  ['4544-3', 'Hematocrit', '41.2', '%', '40.0-50.0'],
  ['789-8', 'Erythrocytes', '4.61', '10*6/uL', '4.50-5.90'],
  ['6690-2', 'Leukocytes', '7.3', '10*3/uL', '4.0-11.0'],
  ['777-3', 'Platelets', '245', '10*3/uL', '150-400'],
  ['787-2', 'MCV', '89.4', 'fL', '80.0-100.0'],
  ['785-6', 'MCH', '30.2', 'pg', '27.0-33.0'],
  ['786-4', 'MCHC', '33.7', 'g/dL', '32.0-36.0'],
  ['2951-2', 'Sodium', '139', 'mmol/L', '135-145'],
  ['2823-3', 'Potassium', '4.2', 'mmol/L', '3.5-5.1'],
  ['2075-0', 'Chloride', '101', 'mmol/L', '98-107'],
  ['2028-9', 'Carbon dioxide', '25', 'mmol/L', '22-29'],
  ['3094-0', 'Urea nitrogen', '14', 'mg/dL', '7-20'],
  ['2160-0', 'Creatinine', '0.98', 'mg/dL', '0.70-1.30'],
  ['2345-7', 'Glucose', '112', 'mg/dL', '70-99'],
  ['17861-6', 'Calcium', '9.4', 'mg/dL', '8.6-10.3'],
  ['1742-6', 'ALT', '28', 'U/L', '7-56'],
  ['1920-8', 'AST', '24', 'U/L', '10-40'],
  ['6768-6', 'Alkaline phosphatase', '71', 'U/L', '44-147'],
  ['1975-2', 'Bilirubin total', '0.8', 'mg/dL', '0.1-1.2'],
];

function oruHeader(controlId: string): string[] {
  return [
    `MSH|^~\\&|LABSYS|TESTLAB^2.16.840.1.113883.19.4.6^ISO|TRIBUTARY|NORTHSIDE|20250314093005+0000||ORU^R01^ORU_R01|${controlId}|P|2.5.1|||AL|NE|GBR|UNICODE UTF-8`,
    'PID|1||900000123^^^NORTHSIDE^MR~9990000018^^^NHS^NH||TESTER^SAM^QUENTIN^JR^MR^^L|PATTERN^MAY|19800101|M|||1 EXAMPLE ROAD^FLAT 2^TESTTOWN^^ZZ1 1ZZ^GBR^H||^PRN^PH^^44^20^70000000',
    'PV1|1|O|OPD^CLINIC3^1^NORTHSIDE||||004777^WARD^SID^J^^DR^MD|||LAB||||||||OP|VIS20250314002^^^NORTHSIDE^VN',
    'ORC|RE|ORD448811^NORTHSIDE|LAB990011^TESTLAB||CM||||20250314080000|||004777^WARD^SID^J^^DR^MD',
    'OBR|1|ORD448811^NORTHSIDE|LAB990011^TESTLAB|24323-8^Comprehensive metabolic and CBC panel^LN|||20250314081500|||||||20250314082000|BLD&Blood&HL70070|004777^WARD^SID^J^^DR^MD||||||20250314093000|||F',
  ];
}

/** ORU^R01 (lab result), about 3 KB: MSH, PID, PV1, ORC, OBR, 20 numeric OBX, NTE. */
export function oruR01(controlId = 'CTRL000001'): string {
  const segs = oruHeader(controlId);
  ORU_TESTS.forEach(([loinc, name, value, unit, range], i) => {
    const v = Number(value);
    const [lo = 0, hi = 0] = range.split('-').map(Number);
    const flag = v < lo ? 'L' : v > hi ? 'H' : 'N';
    segs.push(`OBX|${i + 1}|NM|${loinc}^${name}^LN||${value}|${unit}^${unit}^UCUM|${range}|${flag}|||F|||20250314081500|TESTLAB^Test Laboratory^L`);
  });
  segs.push('NTE|1|L|Specimen received in good condition. Results verified by automated rules engine and reviewed by laboratory staff.');
  return segs.join(SEG) + SEG;
}

/**
 * ORU^R01 whose single OBX carries an ED (encapsulated data) value of about `bytes` bytes of
 * base64 text: the shape of a PDF report sent inline, the usual reason for multi-megabyte frames.
 */
export function bigOru(bytes: number, controlId = 'CTRLBIG001'): string {
  const head = oruHeader(controlId).join(SEG) + SEG;
  const obxHead = 'OBX|1|ED|11502-2^Laboratory report^LN||^AP^PDF^Base64^';
  const obxTail = '||||||F' + SEG;
  const n = Math.max(0, bytes - head.length - obxHead.length - obxTail.length);
  // A repeating base64 alphabet: no HL7 delimiters, no control bytes.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const data = alphabet.repeat(Math.ceil(n / alphabet.length)).slice(0, n);
  return head + obxHead + data + obxTail;
}

/** Load a message from a file; `\r`, `\n` or `\r\n` segment separators are normalised to `\r`. */
export function loadMessageFile(path: string): string {
  let s = readFileSync(path, 'utf8');
  s = s.replace(/^\uFEFF/, '').replace(/\r\n/g, '\r').replace(/\n/g, '\r');
  s = s.replace(/\r+$/, '') + '\r';
  return s;
}

/**
 * A message split around its MSH-10 value, for stamping unique control ids without re-encoding
 * the whole message. The id must be ASCII (it is written as latin1).
 */
export class FrameTemplate {
  readonly prefix: Buffer;
  readonly suffix: Buffer;
  /** Message size in bytes with an id of `idLength` characters. */
  messageBytes(idLength: number): number {
    return this.prefix.length + idLength + this.suffix.length;
  }

  /**
   * @param message - an HL7 v2 message starting with `MSH` and having at least 10 MSH fields
   * @throws Error when MSH-10 cannot be located
   */
  constructor(readonly name: string, message: string) {
    if (!message.startsWith('MSH') || message.length < 8) throw new Error(`${name}: message does not start with MSH`);
    const sep = message[3]!;
    const mshEnd = message.indexOf('\r');
    // MSH-1 is the separator itself, so the separator at index 3 opens MSH-2 and the 9th one opens MSH-10.
    let pos = 3;
    for (let n = 1; n < 9; n++) {
      pos = message.indexOf(sep, pos + 1);
      if (pos < 0 || (mshEnd >= 0 && pos > mshEnd)) throw new Error(`${name}: MSH has fewer than 10 fields`);
    }
    let end = pos + 1;
    while (end < message.length && message[end] !== sep && message[end] !== '\r') end++;
    this.prefix = Buffer.from(message.slice(0, pos + 1), 'utf8');
    this.suffix = Buffer.from(message.slice(end), 'utf8');
    if (this.prefix.includes(VT) || this.prefix.includes(FS) || this.suffix.includes(VT) || this.suffix.includes(FS)) {
      throw new Error(`${name}: message contains MLLP control bytes (VT/FS)`);
    }
  }

  /** The MLLP frame of this message with MSH-10 = `id` (same bytes as `encodeFrame`, fewer copies). */
  frame(id: string): Buffer {
    const out = Buffer.allocUnsafe(this.prefix.length + id.length + this.suffix.length + 3);
    out[0] = VT;
    let o = 1 + this.prefix.copy(out, 1);
    o += out.write(id, o, 'latin1');
    o += this.suffix.copy(out, o);
    out[o] = FS;
    out[o + 1] = CR;
    return out;
  }
}

/** The message mixes `--mix` accepts. */
export type Mix = 'adt' | 'oru' | 'mixed';

/** Templates for a mix; message `i` uses `templates[i % templates.length]`. */
export function templatesFor(mix: Mix, file?: string): FrameTemplate[] {
  if (file) return [new FrameTemplate(file, loadMessageFile(file))];
  if (mix === 'adt') return [new FrameTemplate('ADT^A01', adtA01())];
  if (mix === 'oru') return [new FrameTemplate('ORU^R01', oruR01())];
  return [new FrameTemplate('ADT^A01', adtA01()), new FrameTemplate('ORU^R01', oruR01())];
}
