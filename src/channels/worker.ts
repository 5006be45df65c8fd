// SPDX-License-Identifier: Apache-2.0
/**
 * The script worker: holds every loaded script in its own vm context (`sandbox.ts`) and runs one
 * call at a time for the engine thread, which waits synchronously (see `executor.ts` and
 * `protocol.ts`). Calls run without vm's per-call time limit, which is what made scripts cost
 * ~100 µs: when a call overruns, the engine terminates this whole thread and starts another.
 *
 * The thread never returns to its event loop: between calls it sleeps in `Atomics.wait`, so an idle
 * worker costs no CPU, and port messages are read with `receiveMessageOnPort`.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { Hl7Message as Hl7MessageType } from '../hl7/index.js';
import type { Logger } from '../log.js';
import type { MessageBox } from './edit.js';
import { HEADER_BYTES, OP, PICKUP_OFFSET, SLOT, STATE, type PortRequest, type PortResponse, type ScriptSpec, type WorkerData } from './protocol.js';
import type { ScriptSandbox as ScriptSandboxType } from './sandbox.js';
import type { SenderMeta } from './script.js';

const data = workerData as WorkerData;
const ctl = new Int32Array(data.sab, 0, HEADER_BYTES / 4);
const area = new Uint8Array(data.sab, HEADER_BYTES);
const pickup = new Float64Array(data.sab, PICKUP_OFFSET, 1);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Write `text` to the byte area from `offset`; false when it does not fit. */
function put(text: string, offset: number): number {
  if (text.length === 0) return 0;
  const r = encoder.encodeInto(text, area.subarray(offset));
  return r.read === text.length ? r.written : -1;
}

let modules: { Hl7Message: typeof Hl7MessageType; ScriptSandbox: typeof ScriptSandboxType };
try {
  // Imported here rather than at the top so a failure is reported to the engine (which is
  // blocked waiting for this thread) instead of only as an 'error' event it cannot see yet.
  const [hl7, sandbox] = await Promise.all([import('../hl7/index.js'), import('./sandbox.js')]);
  modules = { Hl7Message: hl7.Hl7Message, ScriptSandbox: sandbox.ScriptSandbox };
} catch (e) {
  const n = put(`the script worker cannot load its modules: ${e instanceof Error ? e.message : String(e)}`, 0);
  ctl[SLOT.OUT_BYTES] = Math.max(n, 0);
  Atomics.store(ctl, SLOT.STATE, STATE.FAILED);
  Atomics.notify(ctl, SLOT.STATE);
  throw e;
}
const { Hl7Message, ScriptSandbox } = modules;

/** Loaded scripts by id, or the reason one could not be loaded again after a restart. */
const scripts = new Map<number, ScriptSandboxType | string>();

function load(spec: ScriptSpec): string | null {
  try {
    scripts.set(spec.id, ScriptSandbox.load(spec.code, spec.options));
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

/** Answer with a status, a text and the log lines; large answers go through the port. */
function answer(status: string, changed: boolean, text: string): void {
  const logText = logs.length === 0 ? '' : JSON.stringify(logs);
  logs = [];
  ctl[SLOT.STATUS] = status.charCodeAt(0);
  ctl[SLOT.CHANGED] = changed ? 1 : 0;
  const n = put(text, 0);
  const m = n < 0 ? -1 : put(logText, n);
  if (n < 0 || m < 0) {
    data.port.postMessage({ text, logs: logText } satisfies PortResponse);
    ctl[SLOT.OUT_BYTES] = -1;
    ctl[SLOT.LOG_BYTES] = 0;
    return;
  }
  ctl[SLOT.OUT_BYTES] = n;
  ctl[SLOT.LOG_BYTES] = m;
}

function run(): void {
  const script = scripts.get(ctl[SLOT.ID]!);
  let senderJson: string;
  let text: string;
  const textBytes = ctl[SLOT.TEXT_BYTES]!;
  if (textBytes < 0) {
    const req = receiveMessageOnPort(data.port)?.message as PortRequest | undefined;
    if (req === undefined) return answer('E', false, 'the request did not arrive');
    senderJson = req.sender;
    text = req.text;
  } else {
    const senderBytes = ctl[SLOT.SENDER_BYTES]!;
    senderJson = decoder.decode(area.subarray(0, senderBytes));
    text = decoder.decode(area.subarray(senderBytes, senderBytes + textBytes));
  }
  if (script === undefined) return answer('E', false, 'the script is not loaded');
  if (typeof script === 'string') return answer('E', false, script);
  if (senderJson !== lastSenderJson) {
    lastSender = JSON.parse(senderJson) as SenderMeta;
    lastSenderJson = senderJson;
  }
  wantLogs = ctl[SLOT.LOGS] === 1;
  let box: MessageBox;
  try {
    box = { msg: Hl7Message.parse(text) };
  } catch (e) {
    return answer('E', false, `the message cannot be read in the script worker: ${e instanceof Error ? e.message : String(e)}`);
  }
  const r = script.run(box, lastSender, collector);
  switch (r.kind) {
    case 'ok':
      return script.changed ? answer('O', true, box.msg.toString()) : answer('O', false, '');
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

function handle(): void {
  switch (ctl[SLOT.OP]) {
    case OP.RUN:
      return run();
    case OP.LOAD: {
      const spec = receiveMessageOnPort(data.port)?.message as ScriptSpec | undefined;
      if (spec === undefined) return answer('E', false, 'the script did not arrive');
      const problem = load(spec);
      return problem === null ? answer('O', false, '') : answer('E', false, problem);
    }
    case OP.UNLOAD: {
      const ids = receiveMessageOnPort(data.port)?.message as number[] | undefined;
      for (const id of ids ?? []) scripts.delete(id);
      return answer('O', false, '');
    }
    default:
      return answer('E', false, `unknown operation ${ctl[SLOT.OP]}`);
  }
}

Atomics.store(ctl, SLOT.STATE, STATE.READY);
Atomics.notify(ctl, SLOT.STATE);
// Requests are numbered from 1 per worker; the first may already be waiting when this line runs.
let seq = 0;
for (;;) {
  Atomics.wait(ctl, SLOT.REQ, seq);
  const next = Atomics.load(ctl, SLOT.REQ);
  if (next === seq) continue;
  seq = next;
  pickup[0] = Date.now();
  try {
    handle();
  } catch (e) {
    // A bug here must still answer, or the engine would wait out the time limit.
    answer('E', false, `the script worker failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  Atomics.store(ctl, SLOT.RES, seq);
  Atomics.notify(ctl, SLOT.RES);
}
