// SPDX-License-Identifier: Apache-2.0
/**
 * Segment edits for the channel steps: dropping every occurrence of a segment
 * (`Hl7Message.withoutSegments`) and appending an empty one (on the text, read again). Both give a
 * plain `Hl7Message` with the same delimiters and terminators.
 */
import { Hl7Message, parsePath } from '../hl7/index.js';

/** The working message of one run; steps may replace it (drop/append segments). */
export interface MessageBox {
  msg: Hl7Message;
}

/** Drop every `id` segment (never MSH). Returns the same message when there is none. */
export function dropSegments(msg: Hl7Message, id: string): Hl7Message {
  return id === 'MSH' ? msg : msg.withoutSegments(id);
}

/** Append an empty `id` segment, terminated like the message's first segment. */
export function appendSegment(msg: Hl7Message, id: string): Hl7Message {
  const text = msg.toString();
  const term = /\r\n|\r|\n/.exec(text)?.[0] ?? '\r';
  const endsTerminated = text.endsWith('\r') || text.endsWith('\n');
  return Hl7Message.parseOwn(endsTerminated ? `${text}${id}${term}` : `${text}${term}${id}`);
}

/**
 * Set a value by path; with `create`, first append the segment (enough occurrences of it) when the
 * message lacks it, because `Hl7Message.set` never creates segments.
 * @throws Hl7Error from `Hl7Message.set` (missing segment without `create`, bad raw value)
 */
export function setValue(box: MessageBox, path: string, value: string, opts: { create?: boolean; raw?: boolean } = {}): void {
  if (opts.create === true) {
    const p = parsePath(path);
    while (box.msg.countSegments(p.segment) < p.occurrence) box.msg = appendSegment(box.msg, p.segment);
  }
  box.msg.set(path, value, { raw: opts.raw === true });
}

/** Empty a value by path; a missing segment or field is already empty, so nothing happens. */
export function deleteValue(box: MessageBox, path: string): void {
  if (box.msg.get(path, { raw: true }) === undefined) return;
  box.msg.set(path, '', { raw: true });
}
