// SPDX-License-Identifier: Apache-2.0
/**
 * The script worker: holds every loaded script in its own vm context (`sandbox.ts`) and runs the
 * batches of calls the engine thread sends (see `executor.ts` and `protocol.ts`), one call at a
 * time, in order. Calls run without vm's per-call time limit, which is what made scripts cost
 * ~100 µs: when a call overruns, the engine terminates this whole thread and starts another.
 *
 * The thread never returns to its event loop: between batches it sleeps in `Atomics.wait`, so an
 * idle worker costs no CPU, and port messages are read with `receiveMessageOnPort`.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { Hl7Message as Hl7MessageType } from '../hl7/index.js';
import type { Logger } from '../log.js';
import type { MessageBox } from './edit.js';
import { AREA_OFFSET, CALL, CALL_SLOTS, CHANGED_FLAG, EDITS_FLAG, HEADER_BYTES, LOAD_TIMEOUT_MS, MAX_CALLS, OP, PICKUP_OFFSET, SLOT, STATE, monotonicMs, type PortRequest, type PortResponse, type ScriptSpec, type WorkerData } from './protocol.js';
import type { ScriptSandbox as ScriptSandboxType } from './sandbox.js';
import type { SenderMeta } from './script.js';

const data = workerData as WorkerData;
const ctl = new Int32Array(data.sab, 0, HEADER_BYTES / 4);
const table = new Int32Array(data.sab, HEADER_BYTES, MAX_CALLS * CALL_SLOTS);
const area = new Uint8Array(data.sab, AREA_OFFSET);
const pickup = new Float64Array(data.sab, PICKUP_OFFSET, 1);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Write `text` to the byte area from `offset`; -1 when it does not fit. */
function put(text: string, offset: number): number {
  if (text.length === 0) return 0;
  const r = encoder.encodeInto(text, area.subarray(offset));
  return r.read === text.length ? r.written : -1;
}

let modules: { Hl7Message: typeof Hl7MessageType; ScriptSandbox: typeof ScriptSandboxType };
try {
  // Imported here rather than at the top so a failure is reported to the engine (which may be
  // blocked waiting for this thread) instead of only as an 'error' event it cannot see yet.
  const [hl7, sandbox] = await Promise.all([import('../hl7/index.js'), import('./sandbox.js')]);
  modules = { Hl7Message: hl7.Hl7Message, ScriptSandbox: sandbox.ScriptSandbox };
} catch (e) {
  ctl[SLOT.FAIL_BYTES] = Math.max(put(`the script worker cannot load its modules: ${e instanceof Error ? e.message : String(e)}`, 0), 0);
  Atomics.store(ctl, SLOT.STATE, STATE.FAILED);
  Atomics.notify(ctl, SLOT.STATE);
  throw e;
}
const { Hl7Message, ScriptSandbox } = modules;

/** Loaded scripts by id, or the reason one could not be loaded again after a restart. */
const scripts = new Map<number, ScriptSandboxType | string>();

function load(spec: ScriptSpec): string | null {
  try {
    // The same limit as the engine gives a load: a restarted worker loads every live script again
    // before it is ready, and one that now loops must not keep it from starting.
    scripts.set(spec.id, ScriptSandbox.load(spec.code, spec.options, Math.max(spec.options.timeoutMs, LOAD_TIMEOUT_MS)));
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

for (const spec of data.scripts) {
  // These loaded before, in the worker that was stopped; a top level that now fails (it read the
  // clock, say) makes every call of that step an error instead of stopping the others.
  const problem = load(spec);
  if (problem !== null) scripts.set(spec.id, `the script could not be loaded again after the script worker restarted: ${problem}`);
}

/** Script log lines of the current call, as [level, text]. */
let logs: Array<[string, string]> = [];
let wantLogs = false;
const collector: Logger = {
  bodies: true,
  error() {},
  warn() {},
  info() {},
  debug() {},
  body(_msg, body, meta) {
    if (wantLogs) logs.push([String(meta?.level ?? 'info'), body]);
  },
};

let lastSenderJson = '';
let lastSender: SenderMeta = { interface: '' };

/** Where the next answer's bytes go in the byte area (answers of a batch are appended). */
let out = 0;
/** The call table row of the call running now. */
let row = 0;

/**
 * Answer the current call with a status, a text and the log lines; large answers go through the
 * port. `changed`: the text is the changed message (`text`) or the script's writes (`edits`).
 */
function answer(status: string, changed: false | 'text' | 'edits', text: string): void {
  const logText = logs.length === 0 ? '' : JSON.stringify(logs);
  logs = [];
  table[row + CALL.STATUS] = status.charCodeAt(0);
  const n = put(text, out);
  const m = n < 0 ? -1 : put(logText, out + n);
  if (n < 0 || m < 0) {
    data.port.postMessage({ text, logs: logText, changed: changed === 'text', edits: changed === 'edits' } satisfies PortResponse);
    table[row + CALL.OUT_BYTES] = -1;
    table[row + CALL.LOG_BYTES] = 0;
    return;
  }
  table[row + CALL.OUT_BYTES] = changed === 'text' ? n | CHANGED_FLAG : changed === 'edits' ? n | EDITS_FLAG : n;
  table[row + CALL.LOG_BYTES] = m;
  out += n + m;
}

function run(id: number, senderJson: string, text: string): void {
  const script = scripts.get(id);
  if (script === undefined) return answer('E', false, 'the script is not loaded');
  if (typeof script === 'string') return answer('E', false, script);
  if (senderJson !== lastSenderJson) {
    lastSender = JSON.parse(senderJson) as SenderMeta;
    lastSenderJson = senderJson;
  }
  let box: MessageBox;
  try {
    // The engine's own toString() of a message it parsed: no control characters to look for.
    box = { msg: Hl7Message.parseOwn(text) };
  } catch (e) {
    return answer('E', false, `the message cannot be read in the script worker: ${e instanceof Error ? e.message : String(e)}`);
  }
  const r = script.run(box, lastSender, collector);
  switch (r.kind) {
    case 'ok': {
      if (!script.changed) return answer('O', false, '');
      // A few writes go back as the writes: applying them to the engine's copy costs less than
      // writing the whole message here and reading it again there.
      const edits = script.edits;
      return edits !== null ? answer('O', 'edits', JSON.stringify(edits)) : answer('O', 'text', box.msg.toString());
    }
    case 'bool':
      return answer(r.value ? 'T' : 'F', false, '');
    case 'reject':
      return answer('R', false, r.reason);
    case 'error':
      return answer('E', false, r.reason);
    case 'timeout':
      // Not possible without a vm time limit; kept so every result has an answer.
      return answer('E', false, 'timed out');
  }
}

/** A call's payload, read before the batch runs: [sender JSON, text] for a run, the port message otherwise. */
type Payload = [string, string] | unknown;

function handle(op: number, id: number, payload: Payload): void {
  switch (op) {
    case OP.RUN: {
      if (payload === undefined) return answer('E', false, 'the request did not arrive');
      const [sender, text] = payload as [string, string];
      return run(id, sender, text);
    }
    case OP.LOAD: {
      if (payload === undefined) return answer('E', false, 'the script did not arrive');
      const problem = load(payload as ScriptSpec);
      return problem === null ? answer('O', false, '') : answer('E', false, problem);
    }
    case OP.UNLOAD:
      for (const x of (payload as number[] | undefined) ?? []) scripts.delete(x);
      return answer('O', false, '');
    default:
      return answer('E', false, `unknown operation ${op}`);
  }
}

Atomics.store(ctl, SLOT.STATE, STATE.READY);
Atomics.notify(ctl, SLOT.STATE);
// Requests are numbered from 1 per worker; the first may already be waiting when this line runs.
let seq = 0;
const payloads: Payload[] = [];
for (;;) {
  Atomics.wait(ctl, SLOT.REQ, seq);
  const next = Atomics.load(ctl, SLOT.REQ);
  if (next === seq) continue;
  seq = next;
  const n = Math.min(ctl[SLOT.COUNT]!, MAX_CALLS);
  // Every payload first: the byte area then takes the answers, and the port's messages are read
  // in call order.
  let off = 0;
  for (let i = 0; i < n; i++) {
    const r = i * CALL_SLOTS;
    if (table[r + CALL.OP] !== OP.RUN) {
      payloads[i] = receiveMessageOnPort(data.port)?.message;
      continue;
    }
    const senderBytes = table[r + CALL.SENDER_BYTES]!;
    if (senderBytes < 0) {
      const req = receiveMessageOnPort(data.port)?.message as PortRequest | undefined;
      payloads[i] = req === undefined ? undefined : [req.sender, req.text];
      continue;
    }
    const textBytes = table[r + CALL.TEXT_BYTES]!;
    payloads[i] = [decoder.decode(area.subarray(off, off + senderBytes)), decoder.decode(area.subarray(off + senderBytes, off + senderBytes + textBytes))];
    off += senderBytes + textBytes;
  }
  out = 0;
  pickup[0] = monotonicMs();
  for (let i = 0; i < n; i++) {
    row = i * CALL_SLOTS;
    wantLogs = table[row + CALL.LOGS] === 1;
    const payload = payloads[i];
    payloads[i] = undefined;
    try {
      handle(table[row + CALL.OP]!, table[row + CALL.ID]!, payload);
    } catch (e) {
      // A bug here must still answer, or the engine would wait out the time limit.
      logs = [];
      answer('E', false, `the script worker failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    // The next call's pickup time before DONE (see PICKUP_OFFSET).
    pickup[0] = monotonicMs();
    Atomics.store(ctl, SLOT.DONE, i + 1);
  }
  Atomics.store(ctl, SLOT.RES, seq);
  Atomics.notify(ctl, SLOT.RES);
}
