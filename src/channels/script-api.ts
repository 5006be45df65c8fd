// SPDX-License-Identifier: Apache-2.0
/**
 * The API a channel script sees: types only, for script authors
 * (`import type { TransformScript } from '…/src/channels/script-api.js'`; type imports are removed
 * when the script is compiled, other imports are refused). See docs/channels.md "Scripts".
 */

/** The message being transformed. Paths use the grammar of `src/hl7/path.ts`: `PID-3[2].1`. */
export interface ScriptMessage {
  /** One value, unescaped unless `{ raw: true }`; `undefined` when absent. */
  get(path: string, opts?: { raw?: boolean }): string | undefined;
  /** Every repetition of a field (or that component of each). */
  getAll(path: string, opts?: { raw?: boolean }): string[];
  /** Write one value (escaped unless `{ raw: true }`); `{ create: true }` appends the segment when missing. */
  set(path: string, value: string, opts?: { raw?: boolean; create?: boolean }): void;
  /** Empty one value (nothing happens when it is absent). */
  delete(path: string): void;
  /** How many segments have this id. */
  count(segment: string): number;
  /** The segment ids in order. */
  segments(): string[];
  /** Drop every segment with this id (not MSH). */
  dropSegment(segment: string): void;
  /** Append an empty segment with this id (then `set` its fields). */
  addSegment(segment: string): void;
  /** `TYPE^TRIGGER` from MSH-9. */
  readonly type: string;
  /** MSH-10. */
  readonly controlId: string;
  /** The whole message text (PHI: never log it). */
  toString(): string;
}

/** Who sent the message. `null` when unknown (e.g. a replay without authentication). */
export interface ScriptSender {
  readonly interface: string;
  readonly senderId: string | null;
  readonly organisationId: string | null;
}

/** Script log: lines are written only when body logging (`--log-bodies`) is on, as they may hold PHI. */
export interface ScriptLog {
  debug(text: string): void;
  info(text: string): void;
  warn(text: string): void;
  error(text: string): void;
}

/** The second argument of every script. */
export interface ScriptContext {
  /** The channel's name. */
  readonly channel: string;
  readonly sender: ScriptSender;
  /** The channel's lookup tables (frozen). */
  readonly tables: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** `tables[table][code]`, or `fallback` when there is no such entry. */
  lookup(table: string, code: string | undefined, fallback?: string): string | undefined;
  readonly log: ScriptLog;
  /** Reject the message (AR) with this reason; never returns. */
  reject(reason: string): never;
}

/** A transform step's default export: change `msg` in place; return nothing or `{ reject }`. */
export type TransformScript = (msg: ScriptMessage, ctx: ScriptContext) => void | { reject: string };
/** A filter script's default export: true when the channel takes the message. */
export type FilterScript = (msg: ScriptMessage, ctx: ScriptContext) => boolean;
