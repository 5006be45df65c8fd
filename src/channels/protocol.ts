// SPDX-License-Identifier: Apache-2.0
/**
 * The wire between the engine thread and the script worker (`executor.ts` ↔ `worker.ts`): one
 * SharedArrayBuffer per worker: a control block, a table of calls, then a byte area.
 *
 * A request is a **batch** of calls (script runs, loads, unloads), answered once. The engine writes
 * each call's row in the table and its payload (UTF-8 in the byte area; what does not fit, and
 * every load or unload list, through the MessagePort, which the worker reads synchronously with
 * `receiveMessageOnPort` in call order), writes the call count, bumps `REQ` and notifies. The
 * worker reads every payload first, then runs the calls in order; after each one it writes the
 * answer (status in the row, text appended to the byte area or, when it does not fit, posted to
 * the port), the time it picked the next call up, then `DONE`; after the last one it sets `RES` to
 * the request's number and notifies. So while a batch runs the engine can tell which call is
 * running and since when (per-call time limits), and the answers of the calls that finished stay
 * readable after the worker is stopped (they are never overwritten within a batch).
 *
 * Plain numbers and strings only: nothing here is a const enum, because the compiled worker must
 * find the values at run time.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ScriptLoadOptions, ScriptResult } from './script.js';

/** Int32 slot indexes of the control block. */
export const SLOT = {
  /** Request number, written by the engine (the worker waits on it). */
  REQ: 0,
  /** Number of the request answered last, written by the worker (the engine waits on it). */
  RES: 1,
  /** Worker state: {@link STATE}. */
  STATE: 2,
  /** Request: calls in the batch. */
  COUNT: 3,
  /** Calls of the current batch answered so far, written by the worker after each answer. */
  DONE: 4,
  /** Start failure: UTF-8 bytes of the reason at the start of the byte area. */
  FAIL_BYTES: 5,
} as const;

/**
 * Byte offset of a Float64 in the control block: when the worker picked up the call it is on
 * (call `DONE`), as `Date.now()`; 0 until it picks up the first call of a batch. Written before
 * `DONE`, so a reader that sees `DONE` = i reads call i's pickup time or a later one, never an
 * earlier one (a later one only gives a call more time, never less).
 */
export const PICKUP_OFFSET = 48;

/** Bytes of the control block (Int32 slots, the pickup time, spare). */
export const HEADER_BYTES = 64;

/** Int32 slots per call in the call table. */
export const CALL_SLOTS = 8;

/** Columns of a call's row in the call table. */
export const CALL = {
  /** Request: {@link OP}. */
  OP: 0,
  /** Request: script id. */
  ID: 1,
  /** Request: 1 when script log lines are wanted (body logging on). */
  LOGS: 2,
  /** Request: UTF-8 bytes of the sender JSON in the byte area, or -1 when the payload came through the port. */
  SENDER_BYTES: 3,
  /** Request: UTF-8 bytes of the message text after the sender. */
  TEXT_BYTES: 4,
  /** Response: the status character's code (`O`, `T`, `F`, `R`, `E`). */
  STATUS: 5,
  /**
   * Response: UTF-8 bytes of the text (reason, changed message or its writes), or -1 when the answer
   * came through the port; {@link CHANGED_FLAG} added when the text is the changed message,
   * {@link EDITS_FLAG} when it is the script's writes.
   */
  OUT_BYTES: 6,
  /** Response: UTF-8 bytes of the log lines (JSON) after the text. */
  LOG_BYTES: 7,
} as const;

/** {@link CALL.OUT_BYTES} flag: the answer's text is the changed message. */
export const CHANGED_FLAG = 1 << 30;

/**
 * {@link CALL.OUT_BYTES} flag: the message changed, and the answer's text is the script's writes
 * (JSON of `ScriptEdit[]`, see `edit.ts`), to be applied again to the engine's copy.
 */
export const EDITS_FLAG = 1 << 29;

/** Most calls in one batch (more wait for the next one). */
export const MAX_CALLS = 256;

/** Bytes before the byte area: control block and call table. */
export const AREA_OFFSET = HEADER_BYTES + MAX_CALLS * CALL_SLOTS * 4;

/** Worker states in {@link SLOT.STATE}. */
export const STATE = { STARTING: 0, READY: 1, FAILED: 2 } as const;

/** Operations of a call. */
export const OP = { RUN: 1, LOAD: 2, UNLOAD: 3 } as const;

/** One script as the worker loads it (also how a restarted worker gets every live script back). */
export interface ScriptSpec {
  id: number;
  code: string;
  options: ScriptLoadOptions;
}

/** What the worker is started with. */
export interface WorkerData {
  sab: SharedArrayBuffer;
  port: MessagePort;
  scripts: ScriptSpec[];
}

/** A run request payload too large for the byte area. */
export interface PortRequest {
  sender: string;
  text: string;
}

/** An answer too large for the byte area. */
export interface PortResponse {
  text: string;
  logs: string;
  /** The text is the changed message. */
  changed: boolean;
  /** The text is the script's writes (JSON), to be applied to the engine's copy. */
  edits?: boolean;
}

/**
 * The result a one-letter answer stands for: `O` ok, `T`/`F` a filter's answer, `R` a rejection
 * (`text` the reason), anything else an error (`text` the reason). The worker and the inline
 * sandbox answer in these letters.
 */
export function scriptResultOf(tag: string, text: string): ScriptResult {
  switch (tag) {
    case 'O':
      return { kind: 'ok' };
    case 'T':
      return { kind: 'bool', value: true };
    case 'F':
      return { kind: 'bool', value: false };
    case 'R':
      return { kind: 'reject', reason: text };
    default:
      return { kind: 'error', reason: text };
  }
}

/**
 * Milliseconds on a clock both threads share that never steps (libuv's monotonic clock, one per
 * process): time limits compare the worker's pickup time with the engine's now, and a wall clock
 * set back (NTP on a VM) would let a looping call run on, one set forward would time every call out.
 */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

/** The shortest time limit of a module's top-level code: loading compiles and runs it once, on a busy machine too. */
export const LOAD_TIMEOUT_MS = 1000;
