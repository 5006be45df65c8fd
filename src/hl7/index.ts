// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 v2 (ER7) for Tributary: lossless lazy parsing, paths, escapes, charsets, batches and ACKs.
 * Strings in, strings out; no I/O. This barrel is the supported surface: import from
 * `src/hl7/index.js`, not from the files behind it. See docs/hl7.md.
 */
export { type Delimiters, DEFAULT_DELIMITERS, encodingCharacters } from './delimiters.js';
export { Hl7ErrorCode, type Hl7Location, formatLocation, Hl7Error } from './errors.js';
export { type AckRequest, Hl7Message, rawComponent } from './message.js';
export { type AckCode, type AckOptions, buildAck, salvageAckRequest } from './ack.js';
export { type DecodedHl7, decodeHl7Bytes } from './charset.js';
export { type SplitBatch, splitBatch } from './batch.js';
export { escapeValue, unescapeValue } from './escape.js';
export { type Hl7Path, parsePath } from './path.js';
export { parseHl7Timestamp, hl7TimestampToIso, formatHl7Timestamp } from './timestamp.js';
