// SPDX-License-Identifier: Apache-2.0
/**
 * Segment edits for the channel steps: dropping every occurrence of a segment
 * (`Hl7Message.withoutSegments`) and appending an empty one (on the text, read again). Both give a
 * plain `Hl7Message` with the same delimiters and terminators.
 *
 * Also the one implementation of the writes a script makes through its message API
 * ({@link applyEdit}): the sandbox applies them as the script makes them, and the engine thread
 * applies the same list again to its own copy of the message ({@link replayEdits}) instead of
 * reading back the whole changed message from the script worker.
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

/** A write a script made through its message API: operation, its three string arguments, and whether it succeeded. */
export type ScriptEdit = [op: string, a: string, b: string, c: string, ok: 0 | 1];

/**
 * Apply one message-API write (`set` with `raw`/`create` flags in `c`, `delete`, `dropSegment`,
 * `addSegment`). A function of the message's text and the arguments only, so the same list
 * applied to two copies of one text gives the same text (see {@link replayEdits}).
 * @throws Error or Hl7Error when the write is refused (it may have appended segments first: `set` with `create`)
 */
export function applyEdit(box: MessageBox, op: string, a: string, b: string, c: string): void {
  switch (op) {
    case 'set':
      return setValue(box, a, b, { raw: c.includes('raw'), create: c.includes('create') });
    case 'delete':
      return deleteValue(box, a);
    case 'dropSegment':
      if (a === 'MSH') throw new Error('MSH cannot be dropped');
      box.msg = dropSegments(box.msg, a);
      return;
    case 'addSegment':
      if (!/^[A-Z0-9]{3}$/.test(a) || a === 'MSH') throw new Error(`cannot add a segment "${a}"`);
      box.msg = appendSegment(box.msg, a);
      return;
    default:
      throw new Error(`unknown operation ${op}`);
  }
}

/**
 * Apply a script's writes again, in order, to the message the script was given (a copy with the
 * same text): the refused ones too, since a refused `set` with `create` may have appended a
 * segment first. Every write must end as it did in the script (applied or refused); otherwise
 * the copies differ and this says why.
 * @returns null, or the reason the writes could not be applied the same way
 */
export function replayEdits(box: MessageBox, edits: readonly ScriptEdit[]): string | null {
  for (const [op, a, b, c, ok] of edits) {
    let applied = false;
    try {
      applyEdit(box, op, a, b, c);
      applied = true;
    } catch {
      // Refused in the script too (checked below): the script saw the error, the message keeps what it did before.
    }
    if (applied !== (ok === 1)) return `the script's ${op} on ${a} ${applied ? 'was refused in the script worker but not here' : 'succeeded in the script worker but not here'}`;
  }
  return null;
}
