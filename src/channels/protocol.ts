// SPDX-License-Identifier: Apache-2.0
/**
 * The wire between the engine thread and the script worker (`executor.ts` ↔ `worker.ts`): one
 * SharedArrayBuffer per worker, a control block of Int32 slots followed by a byte area.
 *
 * A call: the engine writes the operation, the script id and the payload (UTF-8 in the byte area;
 * when it does not fit, through the MessagePort, which the worker reads synchronously with
 * `receiveMessageOnPort`), bumps `REQ` and notifies; the worker answers in the same way and sets
 * `RES` to the same number. Plain numbers and strings only: nothing here is a const enum, because
 * the compiled worker must find the values at run time.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ScriptLoadOptions } from './script.js';

/** Int32 slot indexes of the control block. */
export const SLOT = {
  /** Request number, written by the engine (the worker waits on it). */
  REQ: 0,
  /** Number of the request answered last, written by the worker (the engine waits on it). */
  RES: 1,
  /** Worker state: {@link STATE}. */
  STATE: 2,
  /** Operation: {@link OP}. */
  OP: 3,
  /** Script id. */
  ID: 4,
  /** Request: UTF-8 bytes of the sender JSON at the start of the byte area. */
  SENDER_BYTES: 5,
  /** Request: UTF-8 bytes of the message text after the sender, or -1 when it came through the port. */
  TEXT_BYTES: 6,
  /** Request: 1 when script log lines are wanted (body logging on). */
  LOGS: 7,
  /** Response: the status character's code (`O`, `T`, `F`, `R`, `E`). */
  STATUS: 8,
  /** Response: 1 when the message text in the answer is the changed message. */
  CHANGED: 9,
  /** Response: UTF-8 bytes of the text (changed message or reason), or -1 when it came through the port. */
  OUT_BYTES: 10,
  /** Response: UTF-8 bytes of the log lines (JSON) after the text. */
  LOG_BYTES: 11,
} as const;

/**
 * Byte offset of a Float64 in the control block: when the worker picked up the current request
 * (`Date.now()`), so a request picked up late (the thread was not scheduled, a GC) still gets its
 * script its whole time limit.
 */
export const PICKUP_OFFSET = 48;

/** Bytes of the control block (12 Int32 slots, the pickup time, spare). */
export const HEADER_BYTES = 64;

/** Worker states in {@link SLOT.STATE}. */
export const STATE = { STARTING: 0, READY: 1, FAILED: 2 } as const;

/** Operations in {@link SLOT.OP}. */
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

/** A request payload too large for the byte area. */
export interface PortRequest {
  sender: string;
  text: string;
}

/** A response payload too large for the byte area. */
export interface PortResponse {
  text: string;
  logs: string;
}
