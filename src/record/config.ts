// SPDX-License-Identifier: Apache-2.0
/**
 * Values of the per-organisation record configuration (label maps), parsed the same way from the
 * admin CLI and from declared configuration.
 */
import { TributaryError } from '../errors.js';
import { RECORD_LABELS, type LabelSource, type RecordLabel } from './types.js';

/** The coded fields a label map reads. */
export const LABEL_SOURCES: readonly LabelSource[] = ['PV1-10', 'OBR-4', 'AL1-3'];

/**
 * A label as typed (`mental-health`, `Mental Health`, `MENTAL_HEALTH`) → the stored value.
 * @throws TributaryError `ADMIN_INVALID` naming `field`
 */
export function parseRecordLabel(value: string, field = 'label'): RecordLabel {
  const v = value.trim().toUpperCase().replace(/[- ]/g, '_');
  if (!(RECORD_LABELS as readonly string[]).includes(v)) throw new TributaryError('ADMIN_INVALID', { field, reason: `expected one of ${RECORD_LABELS.join(', ')}` });
  return v as RecordLabel;
}

/**
 * A label source as typed → the stored value.
 * @throws TributaryError `ADMIN_INVALID` naming `field`
 */
export function parseLabelSource(value: string, field = 'source'): LabelSource {
  const v = value.trim().toUpperCase();
  if (!(LABEL_SOURCES as readonly string[]).includes(v)) throw new TributaryError('ADMIN_INVALID', { field, reason: `expected one of ${LABEL_SOURCES.join(', ')}` });
  return v as LabelSource;
}
