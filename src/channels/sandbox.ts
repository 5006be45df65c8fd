// SPDX-License-Identifier: Apache-2.0
/**
 * The script sandbox: one `node:vm` context per script step, reused for every message. It decides
 * what a script can reach; how long it may run is up to the executor (`executor.ts`): in the script
 * worker a call has no vm time limit (the engine thread stops the whole worker instead), in the
 * inline executor each call has vm's `timeout`.
 *
 * What the context lacks is the point:
 * - no `require`, `process`, `import`, timers, `console`: a new context only has the ECMAScript
 *   built-ins; scripts are compiled to CommonJS by esbuild and any import left (as `require(`) is
 *   refused at load time;
 * - no code generation from strings (`eval`, `new Function`), so no way back to the host's
 *   `Function` constructor, and no WebAssembly;
 * - no `Promise`, `Atomics`, `SharedArrayBuffer`, `WeakRef`, `FinalizationRegistry`; async syntax is
 *   lowered by esbuild onto the missing `Promise`. Work that outlives the call (a rejected promise,
 *   a finaliser) would run outside the time limit, and an unhandled rejection stops the thread;
 * - nothing of the host crosses in: the message API is built inside the context and talks to the
 *   host through one bridge function that takes and returns strings only (host objects would lead
 *   back to the host's `Function` constructor and so to `process`).
 *
 * This isolates faults and removes ambient authority; it is not a boundary against hostile code
 * (Node says so of `vm`): scripts are reviewed configuration, like the channel files themselves.
 *
 * This file runs inside the script worker too, so it imports no compiler (esbuild) and only types
 * from `script.ts`.
 */
import vm from 'node:vm';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { applyEdit, type MessageBox, type ScriptEdit } from './edit.js';
import type { ScriptLoadOptions, ScriptResult, SenderMeta } from './script.js';
import { scriptResultOf } from './protocol.js';

/** Per-call state the bridge reads. */
interface CallState {
  box: MessageBox;
  sender: SenderMeta;
  logger: Logger;
  /** Set by the first operation that writes: the worker sends the message back only then. */
  changed: boolean;
  /** The writes, in order, while there are at most {@link MAX_EDITS}; null beyond. */
  edits: ScriptEdit[] | null;
}

/**
 * Most writes of one call that are kept as a list: the script worker sends a changed message back
 * as its writes (the engine applies them to its own copy, which costs less than reading the whole
 * text back) while there are at most this many, and as its text beyond.
 */
export const MAX_EDITS = 16;

/** Removed from every context before user code runs (see the file comment for why). */
const HARDEN = `'use strict';
for (const k of ['console', 'Promise', 'WebAssembly', 'Atomics', 'SharedArrayBuffer', 'WeakRef', 'FinalizationRegistry']) delete globalThis[k];
if (typeof Array.fromAsync === 'function') delete Array.fromAsync;`;

/**
 * Runs inside the context: builds `msg` and `ctx` on top of the bridge, evaluates the module and
 * defines the per-call entry. Everything it hands to user code is made here, in the context.
 */
const PRELUDE = `(function () {
'use strict';
const g = globalThis;
const bridge = g.__tributaryBridge, factory = g.__tributaryFactory, kind = g.__tributaryKind, tablesJson = g.__tributaryTables;
delete g.__tributaryBridge; delete g.__tributaryFactory; delete g.__tributaryKind; delete g.__tributaryTables;
const freezeDeep = (o) => { for (const v of Object.values(o)) if (v && typeof v === 'object') freezeDeep(v); return Object.freeze(o); };
const call = (op, a, b, c) => {
  const r = bridge(op, a, b, c);
  const tag = r.charAt(0), v = r.slice(1);
  if (tag === 'V') return v;
  if (tag === 'U') return undefined;
  if (tag === 'J') return JSON.parse(v);
  throw new Error(v);
};
const str = (v, what) => { if (typeof v !== 'string') throw new TypeError(what + ' must be a string'); return v; };
const msg = Object.freeze({
  get: (path, opts) => call('get', str(path, 'path'), opts && opts.raw ? 'raw' : ''),
  getAll: (path, opts) => call('getAll', str(path, 'path'), opts && opts.raw ? 'raw' : ''),
  set: (path, value, opts) => { call('set', str(path, 'path'), String(value), (opts && opts.raw ? 'raw,' : '') + (opts && opts.create ? 'create' : '')); },
  delete: (path) => { call('delete', str(path, 'path')); },
  count: (segment) => Number(call('count', str(segment, 'segment'))),
  segments: () => call('segments'),
  dropSegment: (segment) => { call('dropSegment', str(segment, 'segment')); },
  addSegment: (segment) => { call('addSegment', str(segment, 'segment')); },
  get type() { return call('type'); },
  get controlId() { return call('controlId'); },
  toString: () => call('text'),
});
const tables = freezeDeep(JSON.parse(tablesJson));
const REJECT = Symbol('reject');
let sender = null;
const log = Object.freeze({
  debug: (t) => { bridge('log', 'debug', String(t)); },
  info: (t) => { bridge('log', 'info', String(t)); },
  warn: (t) => { bridge('log', 'warn', String(t)); },
  error: (t) => { bridge('log', 'error', String(t)); },
});
const ctx = Object.freeze({
  channel: call('channel'),
  get sender() { return sender === null ? (sender = freezeDeep(call('sender'))) : sender; },
  tables,
  lookup(table, code, fallback) {
    const t = Object.prototype.hasOwnProperty.call(tables, table) ? tables[table] : undefined;
    if (t === undefined) throw new Error('no lookup table "' + String(table) + '"');
    return code !== undefined && Object.prototype.hasOwnProperty.call(t, code) ? t[code] : fallback;
  },
  log,
  reject(reason) { throw { [REJECT]: String(reason) }; },
});
const module = { exports: {} };
factory(module, module.exports);
const ex = module.exports;
const fn = typeof ex === 'function' ? ex : ex && typeof ex.default === 'function' ? ex.default : undefined;
if (fn === undefined) throw new Error('the script has no default export function');
const describe = (e) => {
  try { return e instanceof Error ? (e.name === 'Error' ? '' : e.name + ': ') + e.message : 'threw ' + String(e); }
  catch { return 'threw a value that cannot be described'; }
};
g.__tributaryEntry = function () {
  sender = null;
  let r;
  try { r = fn(msg, ctx); }
  catch (e) {
    if (e !== null && typeof e === 'object' && REJECT in e) return 'R' + e[REJECT];
    return 'E' + describe(e);
  }
  if (kind === 'filter') {
    if (typeof r !== 'boolean') return 'Ea filter script must return true or false, got ' + (r === null ? 'null' : typeof r);
    return r ? 'T' : 'F';
  }
  if (r === undefined || r === null) return 'O';
  if (typeof r === 'object' && typeof r.reject === 'string') return 'R' + r.reject;
  return 'Ea transform script returns nothing, or { reject: "reason" }';
};
})();`;

const ENTRY = new vm.Script('__tributaryEntry()', { filename: 'tributary:entry' });
const LOG_TEXT_MAX = 2000;

/** One loaded script: its own context, reused for every message. */
export class ScriptSandbox {
  private readonly context: vm.Context;
  private readonly options: ScriptLoadOptions;
  private state: CallState | null = null;
  private lastChanged = false;
  private lastEdits: ScriptEdit[] | null = null;
  /** The context's entry function, called directly when there is no time limit (about 1 µs less than `runInContext`). */
  private entry: () => unknown = () => 'Ethe script is not loaded';

  private constructor(context: vm.Context, options: ScriptLoadOptions) {
    this.context = context;
    this.options = options;
  }

  /**
   * Create the context and run the module's top-level code, within `timeoutMs` when given (without
   * it, the caller stops a module that never ends by other means: the worker is terminated).
   * @throws Error with a one-line reason when the module throws, loops or exports no function
   */
  static load(code: string, options: ScriptLoadOptions, timeoutMs?: number): ScriptSandbox {
    const globals = Object.create(null) as Record<string, unknown>;
    const context = vm.createContext(globals, {
      name: `channel ${options.channel} ${options.step}`,
      codeGeneration: { strings: false, wasm: false },
    });
    const sandbox = new ScriptSandbox(context, options);
    const limit = timeoutMs === undefined ? {} : { timeout: timeoutMs };
    vm.runInContext(HARDEN, context, limit);
    let factory: unknown;
    try {
      factory = new vm.Script(`(function (module, exports) {${code}\n})`, { filename: options.file }).runInContext(context, limit);
    } catch (e) {
      throw new Error(`does not compile: ${errorMessage(e)}`);
    }
    globals.__tributaryBridge = (op: unknown, a: unknown, b: unknown, c: unknown) => sandbox.bridge(op, a, b, c);
    globals.__tributaryFactory = factory;
    globals.__tributaryKind = options.kind;
    globals.__tributaryTables = JSON.stringify(options.tables);
    try {
      vm.runInContext(PRELUDE, context, { ...limit, filename: 'tributary:prelude' });
      // Taken now: a script that later replaces the global cannot replace the entry.
      sandbox.entry = vm.runInContext('__tributaryEntry', context) as () => unknown;
    } catch (e) {
      throw new Error(isTimeout(e) ? `its top-level code ran longer than ${timeoutMs} ms` : `fails when loaded: ${describeError(e)}`);
    }
    return sandbox;
  }

  /** True when the last {@link run} changed the message (an operation that writes succeeded). */
  get changed(): boolean {
    return this.lastChanged;
  }

  /**
   * The writes of the last {@link run}, in order, each with whether it succeeded (see
   * `replayEdits`); null when there were more than {@link MAX_EDITS}.
   */
  get edits(): readonly ScriptEdit[] | null {
    return this.lastEdits;
  }

  /**
   * Run the script on `box` (changed in place), within `timeoutMs` when given: vm's time limit
   * starts a watchdog thread per call (about 100 µs), so the worker runs without one. Never throws.
   */
  run(box: MessageBox, sender: SenderMeta, logger: Logger, timeoutMs?: number): ScriptResult {
    const state: CallState = { box, sender, logger, changed: false, edits: [] };
    this.state = state;
    let r: unknown;
    try {
      r = timeoutMs === undefined ? this.entry() : ENTRY.runInContext(this.context, { timeout: timeoutMs });
    } catch (e) {
      if (isTimeout(e)) return { kind: 'timeout' };
      return { kind: 'error', reason: describeError(e) };
    } finally {
      this.state = null;
      this.lastChanged = state.changed;
      this.lastEdits = state.edits;
    }
    if (typeof r !== 'string' || r.length === 0) return { kind: 'error', reason: 'the script replaced the sandbox entry point' };
    return scriptResultOf(r.charAt(0), r.slice(1));
  }

  /**
   * The one way out of the context: strings in, a tagged string out (`V` value, `U` undefined,
   * `J` JSON, `E` error). Never throws: a host error object must not reach the script.
   */
  private bridge(op: unknown, a: unknown, b: unknown, c: unknown): string {
    try {
      return this.op(String(op), typeof a === 'string' ? a : '', typeof b === 'string' ? b : '', typeof c === 'string' ? c : '');
    } catch (e) {
      return 'E' + errorMessage(e);
    }
  }

  private op(op: string, a: string, b: string, c: string): string {
    if (op === 'channel') return 'V' + this.options.channel;
    const st = this.state;
    if (st === null) throw new Error('the message API is only available while the script runs');
    const box = st.box;
    const writable = (): void => {
      if (this.options.kind === 'filter') throw new Error('a filter script cannot change the message');
      st.changed = true;
    };
    switch (op) {
      case 'get': {
        const v = box.msg.get(a, { raw: b === 'raw' });
        return v === undefined ? 'U' : 'V' + v;
      }
      case 'getAll':
        return 'J' + JSON.stringify(box.msg.getAll(a, { raw: b === 'raw' }));
      case 'set':
      case 'delete':
      case 'dropSegment':
      case 'addSegment': {
        writable();
        let ok: 0 | 1 = 0;
        try {
          applyEdit(box, op, a, b, c);
          ok = 1;
        } finally {
          const edits = st.edits;
          if (edits !== null) st.edits = edits.length < MAX_EDITS ? (edits.push([op, a, b, c, ok]), edits) : null;
        }
        return 'U';
      }
      case 'count':
        return 'V' + String(box.msg.countSegments(a));
      case 'segments':
        return 'J' + JSON.stringify(box.msg.segmentNames());
      case 'type':
        return 'V' + box.msg.messageType;
      case 'controlId':
        return 'V' + box.msg.controlId;
      case 'text':
        return 'V' + box.msg.toString();
      case 'sender':
        return 'J' + JSON.stringify({ interface: st.sender.interface, senderId: st.sender.senderId ?? null, organisationId: st.sender.organisationId ?? null });
      case 'log': {
        // Script log text may hold anything from the message: only with body logging on.
        const level = ['debug', 'info', 'warn', 'error'].includes(a) ? a : 'info';
        st.logger.body('channel script log', b.slice(0, LOG_TEXT_MAX), { channel: this.options.channel, step: this.options.step, level });
        return 'U';
      }
      default:
        throw new Error(`unknown operation ${op}`);
    }
  }
}

function isTimeout(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
}

/** A one-line description of an error thrown inside a context (its class is the context's). */
function describeError(e: unknown): string {
  try {
    if (e !== null && typeof e === 'object' && 'message' in e) {
      const name = String((e as { name?: unknown }).name ?? 'Error');
      const m = String((e as { message: unknown }).message);
      return name === 'Error' ? m : `${name}: ${m}`;
    }
    return String(e);
  } catch {
    return 'an error that cannot be described';
  }
}
