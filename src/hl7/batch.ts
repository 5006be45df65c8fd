// SPDX-License-Identifier: Apache-2.0
/**
 * Splitting files and frames into messages (v2.5.1 §2.10.3 "HL7 batch protocol").
 */
import { Hl7Error, Hl7ErrorCode, type Hl7Location } from './errors.js';

/** Result of {@link splitBatch}. */
export interface SplitBatch {
  /** The messages, each an exact substring of the input from its MSH to its last segment's terminator. */
  messages: string[];
  /** Envelope segments (text without terminator); with several batches in a file, the first BHS and last BTS. */
  envelope: { fhs?: string; bhs?: string; bts?: string; fts?: string };
}

/**
 * True for the usual frame, which {@link splitBatch} would return whole: it starts with MSH, has
 * CR line ends only, no blank or whitespace-led line (CR followed by CR, space or TAB), and no
 * second MSH and no envelope segment (CR followed by MSH, FHS, BHS, BTS or FTS). One native
 * search for LF, then a look at what follows each CR (one search per segment, where a search per
 * pattern cost three times as much).
 *
 * @internal exported for the test that holds it to the pattern searches it replaced
 */
export function isPlainMessage(text: string): boolean {
  if (!text.startsWith('MSH') || text.includes('\n')) return false;
  for (let cr = text.indexOf('\r'); cr !== -1; cr = text.indexOf('\r', cr + 1)) {
    const at = cr + 1;
    switch (text.charCodeAt(at)) {
      case 13: // CR
      case 32: // space
      case 9: // TAB
        return false;
      case 77: // M
        if (text.startsWith('MSH', at)) return false;
        break;
      case 70: // F
        if (text.startsWith('FHS', at) || text.startsWith('FTS', at)) return false;
        break;
      case 66: // B
        if (text.startsWith('BHS', at) || text.startsWith('BTS', at)) return false;
        break;
    }
  }
  return true;
}

/**
 * Split a file or a frame into messages: one message, several MSH messages back to back (file
 * drops), or an FHS/BHS … BTS/FTS envelope (several BHS batches in one FHS file allowed). Blank
 * and whitespace-only lines between messages are skipped. Each message is an exact substring of
 * the input (lossless); envelope segments are dropped from the messages and returned in
 * `envelope`.
 *
 * Lenient: trailers are optional (BTS without BHS, FHS/BHS without BTS/FTS), as python-hl7 and
 * Mirth accept. Strict (HL7_BAD_BATCH, 0357 code 100), because guessing would merge or lose data:
 * FHS anywhere but first, a BHS while a batch is open, a second BTS/FTS, anything after FTS, and
 * segments outside a message (e.g. a BHS followed by PID with no MSH). Text that does not start
 * with a segment (e.g. `[SOM]MSH|…`) is HL7_NO_MSH; empty text HL7_EMPTY.
 *
 * @throws Hl7Error
 */
export function splitBatch(text: string): SplitBatch {
  return isPlainMessage(text) ? { messages: [text], envelope: {} } : splitSegments(text);
}

/**
 * {@link splitBatch} by walking every segment, without the shortcut for a plain message.
 *
 * @internal exported for the test that holds the shortcut to the same answers
 */
export function splitSegments(text: string): SplitBatch {
  const n = text.length;
  const messages: string[] = [];
  const envelope: SplitBatch['envelope'] = {};
  let cur = -1; // start of the current message
  let curEnd = -1; // end (after the terminator) of its last segment
  let fileClosed = false;
  let batchOpen = false;
  let bhsSeen = false;
  let btsSeen = false;
  let index = 0; // 1-based index of the current (non-blank) segment
  const counts = new Map<string, number>();
  let nextCr = -2;
  let nextLf = -2;
  const close = (): void => {
    if (cur >= 0) messages.push(text.slice(cur, curEnd));
    cur = -1;
  };
  const fail = (reason: string, loc: Hl7Location): Hl7Error =>
    new Hl7Error('HL7_BAD_BATCH', Hl7ErrorCode.SegmentSequence, { reason }, loc);

  let pos = 0;
  while (pos < n) {
    if (nextCr < pos && nextCr !== -1) nextCr = text.indexOf('\r', pos);
    if (nextLf < pos && nextLf !== -1) nextLf = text.indexOf('\n', pos);
    let end = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
    if (end === -1) end = n;
    let lineEnd = end;
    if (end < n) lineEnd = text.charCodeAt(end) === 13 && text.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
    let blank = true;
    for (let i = pos; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c !== 32 && c !== 9) {
        blank = false;
        break;
      }
    }
    if (blank) {
      pos = lineEnd;
      continue;
    }
    index++;
    const id = text.slice(pos, pos + 3);
    const occ = (counts.get(id) ?? 0) + 1;
    counts.set(id, occ);
    const here: Hl7Location = { segment: id, sequence: occ };
    const content = (): string => text.slice(pos, end);
    if (fileClosed) throw fail(`segment ${index} comes after FTS`, here);
    switch (id) {
      case 'MSH':
        close();
        cur = pos;
        curEnd = lineEnd;
        break;
      case 'FHS':
        if (index !== 1) throw fail('FHS must be the first segment of a file', here);
        envelope.fhs = content();
        break;
      case 'BHS':
        close();
        if (batchOpen) throw fail('BHS inside a batch that has no BTS yet', here);
        batchOpen = true;
        bhsSeen = true;
        envelope.bhs ??= content();
        break;
      case 'BTS':
        close();
        if (!batchOpen && (bhsSeen || btsSeen)) throw fail('BTS without a matching BHS', here);
        batchOpen = false;
        btsSeen = true;
        envelope.bts = content();
        break;
      case 'FTS':
        close();
        batchOpen = false;
        fileClosed = true;
        envelope.fts = content();
        break;
      default:
        if (cur < 0) {
          if (index === 1) throw new Hl7Error('HL7_NO_MSH', Hl7ErrorCode.SegmentSequence, {}, { segment: '', sequence: 1 });
          throw fail(`segment ${index} is outside a message (no MSH before it)`, { segment: '', sequence: index });
        }
        curEnd = lineEnd;
    }
    pos = lineEnd;
  }
  close();
  if (index === 0) throw new Hl7Error('HL7_EMPTY', Hl7ErrorCode.SegmentSequence, {});
  return { messages, envelope };
}
