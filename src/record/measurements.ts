// SPDX-License-Identifier: Apache-2.0
/**
 * Measurements (domain §1 "ORU^R01"): "an OBX-3.3 naming SNOMED CT, with an agreed code and unit,
 * is stored as a Measurement rather than a lab result". PKB agrees the codes and units with each
 * sender; its list is not public, so the record has one built-in table of the usual vital signs
 * and body measurements ({@link AGREED_MEASUREMENTS}), each with the one UCUM unit it is agreed in.
 *
 * An OBX is a measurement when all of these hold (otherwise it stays a lab result, unchanged):
 * - OBX-3.3 names SNOMED CT ({@link isSnomedSystem});
 * - OBX-3.1 is a code of the table;
 * - OBX-6.1 is exactly that code's UCUM unit (UCUM is case-sensitive: `kg`, `mm[Hg]`, `Cel`);
 *   a different unit (`lb`, `mmHg`) is not converted or guessed;
 * - the value is a number: OBX-2 NM, or SN holding one plain number (no comparator other than
 *   `=`, no range or ratio): "> 200" is not a measured value.
 *
 * Pure: no store access. results.ts decides the kind of each OBX with {@link agreedMeasurement}.
 */
import type { CodedValue, ResultPayload, ResultValue } from './results.js';

/** A LOINC code with its long common name. */
export interface LoincCode {
  code: string;
  display: string;
}

/** One agreed measurement: its SNOMED CT concept, a readable name, the UCUM unit it must be sent in, and its LOINC codes. */
export interface AgreedMeasurement {
  /** SNOMED CT concept id (an observable entity), as sent in OBX-3.1. */
  code: string;
  /** Name of the concept (SNOMED CT preferred term). */
  name: string;
  /** The agreed unit: a UCUM code, compared exactly with OBX-6.1. */
  unit: string;
  /**
   * The LOINC codes of the FHIR R4 vital signs table (the vitalsigns profiles require a LOINC
   * coding): exported beside the SNOMED CT code, never read from the message.
   */
  loinc: readonly LoincCode[];
}

/**
 * The agreed SNOMED CT measurement codes and their units (observable entities of the UK Core
 * vital signs, plus BMI and body height), with the LOINC codes of FHIR R4's vital signs profiles.
 * Peripheral oxygen saturation has two: 2708-6, which R4's `oxygensat` profile requires, and
 * 59408-5, the pulse oximetry code that says what SpO2 is (as in R4's own pulse oximetry example).
 * Systolic and diastolic blood pressure have the LOINC codes of the components of R4's `bp` panel:
 * they are separate measurements here, not one panel.
 */
export const AGREED_MEASUREMENTS: readonly AgreedMeasurement[] = [
  { code: '27113001', name: 'Body weight', unit: 'kg', loinc: [{ code: '29463-7', display: 'Body weight' }] },
  { code: '50373000', name: 'Body height', unit: 'cm', loinc: [{ code: '8302-2', display: 'Body height' }] },
  { code: '60621009', name: 'Body mass index', unit: 'kg/m2', loinc: [{ code: '39156-5', display: 'Body mass index (BMI) [Ratio]' }] },
  { code: '271649006', name: 'Systolic blood pressure', unit: 'mm[Hg]', loinc: [{ code: '8480-6', display: 'Systolic blood pressure' }] },
  { code: '271650006', name: 'Diastolic blood pressure', unit: 'mm[Hg]', loinc: [{ code: '8462-4', display: 'Diastolic blood pressure' }] },
  { code: '364075005', name: 'Heart rate', unit: '/min', loinc: [{ code: '8867-4', display: 'Heart rate' }] },
  { code: '86290005', name: 'Respiratory rate', unit: '/min', loinc: [{ code: '9279-1', display: 'Respiratory rate' }] },
  { code: '386725007', name: 'Body temperature', unit: 'Cel', loinc: [{ code: '8310-5', display: 'Body temperature' }] },
  {
    code: '431314004',
    name: 'Peripheral oxygen saturation',
    unit: '%',
    loinc: [
      { code: '2708-6', display: 'Oxygen saturation in Arterial blood' },
      { code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
    ],
  },
];

const BY_CODE: ReadonlyMap<string, AgreedMeasurement> = new Map(AGREED_MEASUREMENTS.map((m) => [m.code, m]));

/** The agreed measurement of a SNOMED CT code (OBX-3.1, or a stored `measurement.code`), or undefined. */
export function agreedMeasurementOf(code: string): AgreedMeasurement | undefined {
  return BY_CODE.get(code);
}

/** OBX-3.3 names of SNOMED CT, compared upper-cased and trimmed (`SCT`, `SNOMED CT`, its FHIR URI…). */
const SNOMED_NAMES: ReadonlySet<string> = new Set(['SCT', 'SNOMED', 'SNOMED CT', 'SNOMEDCT', 'SNOMED-CT', 'HTTP://SNOMED.INFO/SCT']);

/** Whether a coding system name (CE/CWE component 3) names SNOMED CT. */
export function isSnomedSystem(name: string | null): boolean {
  return name !== null && SNOMED_NAMES.has(name.trim().toUpperCase());
}

/** The FHIR system of SNOMED CT. */
export const SNOMED_CT_SYSTEM = 'http://snomed.info/sct';
/** The FHIR system of LOINC. */
export const LOINC_SYSTEM = 'http://loinc.org';
/** The FHIR system of UCUM units. */
export const UCUM_SYSTEM = 'http://unitsofmeasure.org';

/** A measurement as stored: which agreed measurement, its number and its UCUM unit. */
export interface MeasuredValue {
  /** The SNOMED CT code (OBX-3.1). */
  code: string;
  /** The agreed name (e.g. `Body weight`), whatever text OBX-3.2 had. */
  name: string;
  /** The number (OBX-5). */
  value: number;
  /** The UCUM unit (OBX-6.1, equal to the agreed one). */
  unit: string;
}

/**
 * Payload of a `measurement` item: everything a result keeps (same OBX reading, key and versions),
 * plus the measured value. → FHIR R4 `Observation` with category `vital-signs` (one per
 * measurement: systolic and diastolic blood pressure are two, not a `bp` panel).
 */
export interface MeasurementPayload extends ResultPayload {
  /** The agreed measurement. → `Observation.code` (SNOMED CT, and the agreed LOINC codes) and `valueQuantity` (UCUM). */
  measurement: MeasuredValue;
}

/** Whether OBX-3 is an agreed SNOMED CT measurement code (whatever its unit and value): only such an OBX can ever be stored as a measurement. */
export function isAgreedCode(code: CodedValue): boolean {
  return BY_CODE.has(code.code) && isSnomedSystem(code.system);
}

/** The number of a result value, when it is a single plain number (NM, or SN without comparator, range or ratio). */
function plainNumber(value: ResultValue): number | undefined {
  if (value.type === 'numeric') return value.value;
  if (value.type === 'structured-numeric') {
    const { comparator, value1, separator, value2 } = value;
    if ((comparator === null || comparator === '=') && separator === null && value2 === null && value1 !== null) return value1;
  }
  return undefined;
}

/**
 * The measurement an OBX is, or undefined when it stays a lab result: OBX-3 (code and system),
 * its typed OBX-5 and OBX-6 (units). The rules are in this module's header.
 */
export function agreedMeasurement(code: CodedValue, value: ResultValue, units: CodedValue | null): MeasuredValue | undefined {
  if (!isSnomedSystem(code.system)) return undefined;
  const agreed = BY_CODE.get(code.code);
  if (agreed === undefined || units === null || units.code !== agreed.unit) return undefined;
  const n = plainNumber(value);
  return n === undefined ? undefined : { code: agreed.code, name: agreed.name, value: n, unit: agreed.unit };
}
