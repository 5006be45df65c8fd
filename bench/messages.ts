// SPDX-License-Identifier: Apache-2.0
/**
 * Synthetic benchmark messages (made-up patients): an ADT^A01 of about 1.1 KB and an ORU^R01 of
 * about 3 KB with 20 OBX. Segments are terminated by CR, as HL7 requires.
 */

const CR = '\r';

/** ADT^A01 (admit), ~1.1 KB: MSH, EVN, PID with several identifiers, NK1, PV1, AL1 ×2, DG1. */
export function adtA01(controlId = 'TRB0000001'): string {
  return [
    `MSH|^~\\&|PASSYS|RIVERSIDE^2.16.840.1.113883.3.9999.1^ISO|TRIBUTARY|TRIBUTARY|20250402101530.123+0100||ADT^A01^ADT_A01|${controlId}|P|2.5.1|||AL|NE|GBR|UNICODE UTF-8|EN`,
    'EVN|A01|20250402101500|||U4411^PATEL^PRIYA^^^DR^^^RIVERSIDE&2.16.840.1.113883.3.9999&ISO|20250402101000',
    'PID|1||RV00012345^^^RIVERSIDE^MR~9990001006^^^NHS^NH~QQ123456C^^^HMRC^SS||TESTER^ALEXANDRA^JANE^^MS^^L~TESTER^ALEX^^^^^A|MORGAN^RUTH|19850917|F|||12 CANAL WHARF^APARTMENT 4^LEEDS^WEST YORKSHIRE^LS1 4AB^GBR^H||^PRN^PH^^44^113^4960000~^NET^Internet^alex.tester@example.invalid||EN^English^ISO639|S^Single^HL70002||RVACC0098765^^^RIVERSIDE^AN',
    'NK1|1|TESTER^SAMUEL^^^MR|BRO^Brother^HL70063|3 MILL LANE^^YORK^^YO1 7HH^GBR^H|^PRN^PH^^44^1904^496000',
    'PV1|1|I|WARD3^BAY2^BED5^RIVERSIDE|EM|||U4411^PATEL^PRIYA^^^DR^MD|U5522^OKAFOR^DANIEL^^^DR||GEN|||1|A0||N||IP|RVVIS0045678^^^RIVERSIDE^VN|||||||||||||||||||||||||20250402100500',
    'AL1|1|DA^Drug allergy^HL70127|7980^Penicillin G^RXNORM|MO^Moderate^HL70128|Rash~Itching|20150301',
    'AL1|2|FA^Food allergy^HL70127|227493005^Cashew nuts^SCT|SV^Severe^HL70128|Anaphylaxis|20190612',
    'DG1|1||R07.4^Chest pain, unspecified^I10|||A^Admitting^HL70052',
  ].join(CR) + CR;
}

const TESTS: [string, string, string, string, string][] = [
  ['718-7', 'Hemoglobin', '14.1', 'g/dL', '12.0-15.5'],
  ['4544-3', 'Hematocrit', '42.0', '%', '36.0-46.0'],
  ['789-8', 'Erythrocytes', '4.70', '10*6/uL', '4.00-5.20'],
  ['6690-2', 'Leukocytes', '6.8', '10*3/uL', '4.0-11.0'],
  ['777-3', 'Platelets', '260', '10*3/uL', '150-400'],
  ['787-2', 'MCV', '89.0', 'fL', '80.0-100.0'],
  ['785-6', 'MCH', '30.0', 'pg', '27.0-33.0'],
  ['786-4', 'MCHC', '33.6', 'g/dL', '32.0-36.0'],
  ['2951-2', 'Sodium', '140', 'mmol/L', '135-145'],
  ['2823-3', 'Potassium', '4.0', 'mmol/L', '3.5-5.1'],
  ['2075-0', 'Chloride', '102', 'mmol/L', '98-107'],
  ['2028-9', 'Carbon dioxide', '26', 'mmol/L', '22-29'],
  ['3094-0', 'Urea nitrogen', '12', 'mg/dL', '7-20'],
  ['2160-0', 'Creatinine', '0.85', 'mg/dL', '0.50-1.10'],
  ['2345-7', 'Glucose', '104', 'mg/dL', '70-99'],
  ['17861-6', 'Calcium', '9.6', 'mg/dL', '8.6-10.3'],
  ['1742-6', 'ALT', '22', 'U/L', '7-56'],
  ['1920-8', 'AST', '19', 'U/L', '10-40'],
  ['6768-6', 'Alkaline phosphatase', '80', 'U/L', '44-147'],
  ['1975-2', 'Bilirubin total', '0.6', 'mg/dL', '0.1-1.2'],
];

/** ORU^R01 (lab result), ~3 KB: MSH, PID, PV1, ORC, OBR, 20 OBX, NTE. */
export function oruR01(controlId = 'TRB0000001'): string {
  const segs = [
    `MSH|^~\\&|LABSYS|NORTHLAB^2.16.840.1.113883.3.9999.2^ISO|TRIBUTARY|TRIBUTARY|20250402113005+0100||ORU^R01^ORU_R01|${controlId}|P|2.5.1|||AL|NE|GBR|UNICODE UTF-8`,
    'PID|1||RV00012345^^^RIVERSIDE^MR~9990001006^^^NHS^NH||TESTER^ALEXANDRA^JANE^^MS^^L|MORGAN^RUTH|19850917|F|||12 CANAL WHARF^APARTMENT 4^LEEDS^^LS1 4AB^GBR^H||^PRN^PH^^44^113^4960000',
    'PV1|1|O|OPD^CLINIC2^1^RIVERSIDE||||U4411^PATEL^PRIYA^^^DR^MD|||LAB||||||||OP|RVVIS0045679^^^RIVERSIDE^VN',
    'ORC|RE|ORD220011^RIVERSIDE|LAB550077^NORTHLAB||CM||||20250402090000|||U4411^PATEL^PRIYA^^^DR^MD',
    'OBR|1|ORD220011^RIVERSIDE|LAB550077^NORTHLAB|24323-8^Comprehensive metabolic and CBC panel^LN|||20250402091500|||||||20250402092000|BLD&Blood&HL70070|U4411^PATEL^PRIYA^^^DR^MD||||||20250402113000|||F',
  ];
  TESTS.forEach(([loinc, name, value, unit, range], i) => {
    const v = Number(value);
    const [lo, hi] = range.split('-').map(Number) as [number, number];
    const flag = v < lo ? 'L' : v > hi ? 'H' : 'N';
    segs.push(`OBX|${i + 1}|NM|${loinc}^${name}^LN||${value}|${unit}^${unit}^UCUM|${range}|${flag}|||F|||20250402091500|NORTHLAB^North Laboratory^L`);
  });
  segs.push('NTE|1|L|Specimen received in good condition. Results verified by automated rules and reviewed by laboratory staff.');
  return segs.join(CR) + CR;
}
