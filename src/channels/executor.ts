// SPDX-License-Identifier: Apache-2.0
/**
 * Where channel scripts run and how an overrunning one is stopped.
 *
 * {@link WorkerScriptExecutor} (the default): every script lives in one worker thread. On the live
 * path a call does not block the engine thread: the calls made in one turn of the event loop (the
 * frames of every socket read of that turn, across connections) are queued and sent together as
 * one batch through a SharedArrayBuffer (`Atomics.notify`), and the engine thread goes on with its
 * event loop until the worker answers the whole batch (`Atomics.waitAsync`). Calls made while a
 * batch runs wait for the next one. So a thread wake-up each way is paid per batch, not per call.
 * Each call keeps its own time limit: the worker writes which call it is on and when it picked it
 * up; a call that overruns gets `timeout`, the worker is terminated and replaced (its replacement
 * loads every live script again), the calls of the batch that finished keep their answers and the
 * calls after the overrunning one run again on the new worker. The engine thread never runs script
 * code, so a loop cannot stop the listener, and the worker has a heap limit (`resourceLimits`): a
 * worker that runs out of memory fails the call it was on with a reason naming memory.
 * Cost: docs/channels.md "Isolation and its cost" and docs/benchmarks.md §7.
 *
 * The same batches also serve callers that must wait in this thread (script loads, which happen
 * while a channel file is compiled, and `runChannel` for CLI channel tests and benchmarks): they
 * queue their call and wait with `Atomics.wait` for the batch that carries it.
 *
 * {@link InlineScriptExecutor}: the previous way, each call in the engine thread under vm's
 * `timeout`. Kept for comparison (bench/channel-steps.ts) and for tests.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import { Hl7Message } from '../hl7/index.js';
import { silentLogger, type Logger } from '../log.js';
import { replayEdits, type MessageBox, type ScriptEdit } from './edit.js';
import {
  AREA_OFFSET,
  CALL,
  CALL_SLOTS,
  CHANGED_FLAG,
  EDITS_FLAG,
  HEADER_BYTES,
  MAX_CALLS,
  OP,
  PICKUP_OFFSET,
  SLOT,
  STATE,
  monotonicMs,
  scriptResultOf,
  type PortRequest,
  type PortResponse,
  type ScriptSpec,
  type WorkerData,
} from './protocol.js';
import { ScriptSandbox } from './sandbox.js';
import { LOAD_TIMEOUT_MS, type LoadedScript, type ScriptExecutor, type ScriptLoadOptions, type ScriptResult, type SenderMeta } from './script.js';

/** Runs each call in the engine thread under vm's `timeout` (a watchdog thread per call). */
export class InlineScriptExecutor implements ScriptExecutor {
  /** {@inheritDoc ScriptExecutor.load} */
  load(code: string, options: ScriptLoadOptions): LoadedScript {
    const sandbox = ScriptSandbox.load(code, options, Math.max(options.timeoutMs, LOAD_TIMEOUT_MS));
    const run: LoadedScript['run'] = (box, sender, logger, timeoutMs) => sandbox.run(box, sender, logger, timeoutMs);
    return { run, start: run };
  }
}

/** Options of {@link WorkerScriptExecutor}. */
export interface WorkerScriptExecutorOptions {
  /** Heap limit of the script worker (V8 old generation), in MiB. Default 256. */
  maxMemoryMb?: number;
  /** How long to wait for a (re)started worker to be ready. Default 10000 ms. */
  startTimeoutMs?: number;
  /** Bytes of the shared buffer's data area; larger messages go through a MessagePort. Default 1 MiB. */
  bufferBytes?: number;
  /**
   * When queued calls are sent: `immediate` (default) after the poll phase of the event-loop turn
   * (`setImmediate`: the frames of every socket read in that turn share a batch), `microtask` as
   * soon as the current callback ends (`queueMicrotask`: one socket read per batch).
   */
  flush?: 'immediate' | 'microtask';
  /**
   * With fewer than {@link gatherCalls} calls queued, how many more event-loop turns a flush waits
   * for others before it sends them. Default 2. At low concurrency the messages of different
   * connections arrive in consecutive turns, and every batch costs two thread wake-ups: gathering
   * them halves the round trips (and the journal groups they commit in). A turn with an immediate
   * pending polls for I/O without blocking, so waiting one costs microseconds, not a sleep.
   * 0: send each turn's calls at its end.
   */
  gatherTurns?: number;
  /** A queue this long is sent at once, without waiting for more. Default 8. */
  gatherCalls?: number;
}

/** A call's answer, or null when it ran out of time. */
interface Answer {
  status: string;
  /** The text is the changed message. */
  changed: boolean;
  /** The text is the script's writes (JSON of `ScriptEdit[]`), to apply to the box's message. */
  edits: boolean;
  text: string;
  logs: string;
}

/** One queued call. */
interface Call {
  op: number;
  id: number;
  /** Run: the sender JSON and the message text. */
  sender: string;
  text: string;
  logs: boolean;
  /** Load and unload: what goes through the port (the spec, the ids). */
  payload: unknown;
  limitMs: number;
  /** Channel and step, for the log line when the worker dies during the call. */
  at: { channel: string; step: string } | null;
  /** Called exactly once: the answer, or null when the call ran out of time. */
  settle: (answer: Answer | null) => void;
}

/** One worker and its wire. A new one after every stop, so a stopped worker's late writes go nowhere. */
interface Generation {
  readonly worker: Worker;
  readonly ctl: Int32Array;
  readonly table: Int32Array;
  readonly area: Uint8Array;
  /** When the worker picked up the call it is on ({@link monotonicMs}), 0 before the batch's first. */
  readonly pickup: Float64Array;
  readonly port: MessagePort;
  readonly startedAt: number;
  /** How long it may take to start: the start limit plus each script's load limit (it loads them all first). */
  readonly startLimitMs: number;
  seq: number;
  ready: boolean;
  /** Set when the worker exited or was stopped: the next call starts another. */
  gone: boolean;
}

/** The batch the worker has now (one at a time per worker). */
interface Batch {
  readonly gen: Generation;
  readonly seq: number;
  readonly calls: Call[];
  readonly sentAt: number;
  settled: boolean;
  /** An `Atomics.waitAsync` on `RES` is pending for this batch. */
  waiting: boolean;
}

/** Counters of a {@link WorkerScriptExecutor}, for tests and status pages. */
export interface WorkerExecutorStats {
  /** Workers started (the first one included). */
  started: number;
  /** Workers stopped because a call or a load ran out of time. */
  stoppedForTime: number;
  /** Workers that ended by themselves (e.g. the heap limit). */
  died: number;
  /** Scripts loaded and not yet released. */
  scripts: number;
  /** Round trips to the worker (batches sent). */
  batches: number;
  /** Calls sent (runs, loads, unloads; a call sent again after a timeout counts again). */
  calls: number;
}

/** A worker that has not picked a batch up after this long (or the first call's limit, if longer) is stuck. */
const PICKUP_LIMIT_MS = 1000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ignore = (): void => undefined;
/** `Atomics.waitAsync` (Node 16 and later; not in the ES2022 library this project compiles against). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, index: number, value: number, timeoutMs: number): { async: false; value: string } | { async: true; value: Promise<string> } }).waitAsync.bind(Atomics);

/** Where the worker's code is: next to this file, as .ts under tsx (tests) or .js in dist/. */
function workerSource(): { source: string | URL; eval: boolean } {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return { source: new URL('./worker.js', here), eval: false };
  // Node 20 does not apply `--import tsx` given in a worker's execArgv to the worker's entry
  // (nodejs/node#47747, privatenumber/tsx#354), so a small JavaScript entry registers tsx first.
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', here).href;
  return { source: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`, eval: true };
}

/**
 * Runs scripts in one worker thread, in batches; stops and replaces the worker when a call
 * overruns. One per process is enough: {@link defaultScriptExecutor}.
 */
export class WorkerScriptExecutor implements ScriptExecutor {
  private readonly maxMemoryMb: number;
  private readonly startTimeoutMs: number;
  private readonly bufferBytes: number;
  private readonly microtask: boolean;
  private readonly gatherTurns: number;
  private readonly gatherCalls: number;
  /** Turns the queued calls have waited for more (see {@link WorkerScriptExecutorOptions.gatherTurns}). */
  private gathered = 0;
  private gen: Generation | null = null;
  /** Calls not sent yet, in order. */
  private queue: Call[] = [];
  private inflight: Batch | null = null;
  /** A flush is scheduled (or waits for a starting worker). */
  private scheduled = false;
  /** Live scripts, by id: what a restarted worker loads. */
  private readonly specs = new Map<number, ScriptSpec>();
  private nextId = 1;
  /** Scripts whose handles were collected: released in the worker with the next batch. */
  private unloaded: number[] = [];
  private readonly finalizer = new FinalizationRegistry<number>((id) => {
    this.specs.delete(id);
    this.unloaded.push(id);
  });
  private logger: Logger = silentLogger;
  private readonly counters = { started: 0, stoppedForTime: 0, died: 0, batches: 0, calls: 0 };
  private readonly flushNow = (): void => this.flush();
  /**
   * One timer for the time limits, re-armed for each batch (`refresh()`: a batch answered in time
   * costs no timer of its own, and under load the timer never fires) and ref'd only while a batch
   * is out, so it keeps the process alive then and only then.
   */
  private limitTimer: NodeJS.Timeout | null = null;
  private limitTimerMs = 0;
  /** The batch the limit timer looks at when it fires. */
  private timed: Batch | null = null;
  private readonly onLimit = (): void => {
    const b = this.timed;
    this.timed = null;
    this.limitTimer?.unref();
    if (b !== null) this.watch(b);
  };

  constructor(options: WorkerScriptExecutorOptions = {}) {
    this.maxMemoryMb = options.maxMemoryMb ?? 256;
    this.startTimeoutMs = options.startTimeoutMs ?? 10_000;
    this.bufferBytes = options.bufferBytes ?? 1024 * 1024;
    this.microtask = options.flush === 'microtask';
    this.gatherTurns = options.gatherTurns ?? 2;
    this.gatherCalls = options.gatherCalls ?? 8;
  }

  /** Counters since this executor was made. */
  stats(): WorkerExecutorStats {
    return { ...this.counters, scripts: this.specs.size };
  }

  /** {@inheritDoc ScriptExecutor.load} */
  load(code: string, options: ScriptLoadOptions): LoadedScript {
    const id = this.nextId++;
    const spec: ScriptSpec = { id, code, options: { file: options.file, kind: options.kind, tables: options.tables, channel: options.channel, step: options.step, timeoutMs: options.timeoutMs } };
    const limit = Math.max(options.timeoutMs, LOAD_TIMEOUT_MS);
    let answer: Answer | null | undefined;
    this.waitFor(
      {
        op: OP.LOAD, id, sender: '', text: '', logs: false, payload: spec, limitMs: limit,
        at: { channel: options.channel, step: options.step },
        settle: (a) => {
          answer = a;
          // Now, not when load() returns: a worker started from here on (after a timeout later
          // in the same batch) must load it too.
          if (a?.status === 'O') this.specs.set(id, spec);
        },
      },
      () => answer !== undefined,
    );
    if (answer === null) throw new Error(`its top-level code ran longer than ${limit} ms`);
    if (answer!.status !== 'O') throw new Error(answer!.text);
    const at = { channel: options.channel, step: options.step };
    const handle: LoadedScript = {
      run: (box, sender, logger, timeoutMs) => {
        let a: Answer | null | undefined;
        this.waitFor(this.runCall(id, at, box, sender, logger, timeoutMs, (x) => (a = x)), () => a !== undefined);
        return this.result(a!, box, logger, at);
      },
      start: (box, sender, logger, timeoutMs) =>
        new Promise<ScriptResult>((resolve) => {
          this.queue.push(this.runCall(id, at, box, sender, logger, timeoutMs, (a) => resolve(this.result(a, box, logger, at))));
          this.schedule();
        }),
    };
    // The channel's compiled steps hold the handle; when a reload drops the channel, the worker
    // forgets the script (a restarted worker would otherwise load every old version too).
    this.finalizer.register(handle, id);
    return handle;
  }

  /**
   * Stop the worker (shutdown, tests). Calls it had not answered, and calls still queued, run on a
   * new worker, started when there are some (a shared executor may serve other users).
   */
  async close(): Promise<void> {
    const g = this.gen;
    this.gen = null;
    if (g === null) return;
    const b = this.inflight;
    if (b !== null && b.gen === g && !b.settled) {
      const done = Math.min(Atomics.load(g.ctl, SLOT.DONE), b.calls.length);
      const rest = b.calls.slice(done);
      this.complete(b, done);
      this.queue.unshift(...rest);
    }
    g.gone = true;
    g.port.unref();
    await g.worker.terminate();
    this.schedule();
  }

  private runCall(id: number, at: { channel: string; step: string }, box: MessageBox, sender: SenderMeta, logger: Logger, timeoutMs: number, settle: Call['settle']): Call {
    this.logger = logger;
    return { op: OP.RUN, id, sender: senderText(sender), text: box.msg.toString(), logs: logger.bodies, payload: null, limitMs: timeoutMs, at, settle };
  }

  /** A run call's answer as a result; the changed message replaces the box's. Never throws. */
  private result(a: Answer | null, box: MessageBox, logger: Logger, at: { channel: string; step: string }): ScriptResult {
    if (a === null) return { kind: 'timeout' };
    try {
      if (a.logs !== '') {
        for (const [level, line] of JSON.parse(a.logs) as Array<[string, string]>) {
          logger.body('channel script log', line, { ...at, level });
        }
      }
    } catch {
      // A log line that cannot be read is not the message's problem.
    }
    switch (a.status) {
      case 'O':
        if (a.edits) {
          // The script's writes, applied to the message it was given (the box still holds it):
          // the same text as the worker's copy now has.
          let problem: string | null;
          try {
            problem = replayEdits(box, JSON.parse(a.text) as ScriptEdit[]);
          } catch (e) {
            problem = errorMessage(e);
          }
          if (problem !== null) return { kind: 'error', reason: `the changed message cannot be applied: ${problem}` };
        } else if (a.changed) {
          try {
            // The worker's toString() of the message it parsed and the script changed through set().
            box.msg = Hl7Message.parseOwn(a.text);
          } catch (e) {
            return { kind: 'error', reason: `the changed message cannot be read: ${errorMessage(e)}` };
          }
        }
        return { kind: 'ok' };
      default:
        return scriptResultOf(a.status, a.text);
    }
  }

  /** Queue a call and wait in this thread (`Atomics.wait`) until `answered()`; earlier calls go first. */
  private waitFor(call: Call, answered: () => boolean): void {
    this.queue.push(call);
    while (!answered()) {
      const b = this.inflight;
      if (b !== null) {
        for (;;) {
          // What RES holds before the look (it may still be the previous batch's number).
          const seen = Atomics.load(b.gen.ctl, SLOT.RES);
          const left = this.poll(b);
          if (left < 0) break;
          Atomics.wait(b.gen.ctl, SLOT.RES, seen, left);
        }
        continue;
      }
      const g = this.readySync();
      if (typeof g === 'string') this.failQueued(g);
      else this.send(g);
    }
    this.schedule();
  }

  /** Send what is queued once this turn's calls are in (see {@link WorkerScriptExecutorOptions.flush}). */
  private schedule(): void {
    if (this.scheduled || this.inflight !== null || this.queue.length === 0) return;
    this.scheduled = true;
    if (this.microtask) queueMicrotask(this.flushNow);
    else setImmediate(this.flushNow);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.inflight !== null || this.queue.length === 0) return;
    if (this.queue.length < this.gatherCalls && this.gathered < this.gatherTurns) {
      // A small batch: wait a turn for the calls of other connections (measured in docs/benchmarks.md §7).
      this.gathered++;
      this.scheduled = true;
      setImmediate(this.flushNow);
      return;
    }
    let g = this.gen;
    if (g === null || g.gone) {
      const started = this.trySpawn();
      if (typeof started === 'string') {
        this.gen = null;
        return this.failQueued(started);
      }
      g = this.gen = started;
    }
    if (!g.ready) {
      const state = Atomics.load(g.ctl, SLOT.STATE);
      if (state === STATE.FAILED) {
        this.stop(g, false);
        return this.failQueued(decoder.decode(g.area.subarray(0, g.ctl[SLOT.FAIL_BYTES]!)));
      }
      if (state !== STATE.READY) {
        const left = g.startedAt + g.startLimitMs - performance.now();
        if (left <= 0) {
          this.stop(g, false);
          return this.failQueued(`the script worker did not start within ${Math.round(g.startLimitMs)} ms`);
        }
        // Wait for it without blocking the event loop (`waitAsync` does not keep the process
        // alive; the ref'd port does).
        this.scheduled = true;
        const starting = g;
        starting.port.ref();
        const w = waitAsync(starting.ctl, SLOT.STATE, STATE.STARTING, Math.ceil(left));
        const again = (): void => {
          starting.port.unref();
          this.flush();
        };
        if (w.async) void w.value.then(again);
        else again();
        return;
      }
      g.ready = true;
    }
    const b = this.send(g);
    // No waiting in place before going back to the event loop: measured, a short `Atomics.wait`
    // here cost more CPU per call than `waitAsync` (docs/benchmarks.md §7).
    this.watch(b);
  }

  /**
   * Wait for a batch without blocking the event loop: `Atomics.waitAsync` on `RES` with no time
   * limit, and the time limits on {@link limitTimer}. (A `waitAsync` time limit is a V8 delayed
   * task: per batch, Node wakes its own loop to move it onto a libuv timer of its own, which then
   * fires for nothing after the answer came.) The timer is ref'd while the batch is out, so a
   * batch out keeps the process alive; the wait does not.
   */
  private watch(b: Batch): void {
    for (;;) {
      const seen = Atomics.load(b.gen.ctl, SLOT.RES);
      const left = this.poll(b);
      if (left < 0) return;
      if (this.timed !== b) this.armLimit(b, Math.ceil(left));
      if (b.waiting) return;
      const w = waitAsync(b.gen.ctl, SLOT.RES, seen, Infinity);
      if (!w.async) continue; // RES moved since the look: look again
      b.waiting = true;
      void w.value.then(() => {
        b.waiting = false;
        this.watch(b);
      });
      return;
    }
  }

  /** Look at `b` again in `ms` (whole milliseconds, so the usual delay, the first call's limit + 1, repeats and the timer is only refreshed). */
  private armLimit(b: Batch, ms: number): void {
    this.timed = b;
    const t = this.limitTimer;
    if (t !== null && this.limitTimerMs === ms) {
      t.refresh();
      t.ref();
      return;
    }
    if (t !== null) clearTimeout(t);
    this.limitTimerMs = ms;
    this.limitTimer = setTimeout(this.onLimit, ms);
  }

  /** Send the queued calls that fit in one batch. */
  private send(g: Generation): Batch {
    if (this.unloaded.length > 0) {
      const ids = this.unloaded;
      this.unloaded = [];
      this.queue.unshift({ op: OP.UNLOAD, id: 0, sender: '', text: '', logs: false, payload: ids, limitMs: LOAD_TIMEOUT_MS, at: null, settle: ignore });
    }
    this.gathered = 0;
    const { table, area, ctl } = g;
    const calls: Call[] = [];
    let off = 0;
    let taken = 0;
    const queue = this.queue;
    for (; taken < queue.length && calls.length < MAX_CALLS; taken++) {
      const c = queue[taken]!;
      const r = calls.length * CALL_SLOTS;
      if (c.op === OP.RUN) {
        const s = encoder.encodeInto(c.sender, area.subarray(off));
        const t = s.read === c.sender.length ? encoder.encodeInto(c.text, area.subarray(off + s.written)) : null;
        if (t !== null && t.read === c.text.length) {
          table[r + CALL.SENDER_BYTES] = s.written;
          table[r + CALL.TEXT_BYTES] = t.written;
          off += s.written + t.written;
        } else if (off > 0) {
          break; // the next batch starts with it, with the whole area
        } else {
          g.port.postMessage({ sender: c.sender, text: c.text } satisfies PortRequest);
          table[r + CALL.SENDER_BYTES] = -1;
        }
      } else {
        g.port.postMessage(c.payload);
      }
      table[r + CALL.OP] = c.op;
      table[r + CALL.ID] = c.id;
      table[r + CALL.LOGS] = c.logs ? 1 : 0;
      calls.push(c);
    }
    this.queue = taken === queue.length ? [] : queue.slice(taken);
    ctl[SLOT.COUNT] = calls.length;
    Atomics.store(ctl, SLOT.DONE, 0);
    g.pickup[0] = 0;
    const b: Batch = { gen: g, seq: (g.seq = (g.seq + 1) | 0), calls, sentAt: monotonicMs(), settled: false, waiting: false };
    this.inflight = b;
    this.counters.batches++;
    this.counters.calls += calls.length;
    Atomics.store(ctl, SLOT.REQ, b.seq);
    Atomics.notify(ctl, SLOT.REQ, 1);
    return b;
  }

  /**
   * Look at the batch in flight: settle it when answered, or stop the worker when the call it is
   * on has overrun its limit. Returns how long to wait before looking again (ms), or -1 when the
   * batch is settled. The limit counts from when the worker picked the call up, so a worker thread
   * the OS scheduled late, or a garbage collection, does not eat into a script's time.
   */
  private poll(b: Batch): number {
    if (b.settled) return -1;
    const g = b.gen;
    const n = b.calls.length;
    if (Atomics.load(g.ctl, SLOT.RES) === b.seq) {
      this.complete(b, n);
      return -1;
    }
    const done = Atomics.load(g.ctl, SLOT.DONE);
    if (done >= n) {
      this.complete(b, n);
      return -1;
    }
    const pickedUp = g.pickup[0]!;
    const now = monotonicMs();
    if (pickedUp === 0) {
      // Not picked up yet (the pickup time comes without a notify, which would cost a wake-up per
      // batch): look again when the first call's limit would be up, then every millisecond; a
      // worker that does not pick a batch up at all is stuck.
      const waited = now - b.sentAt;
      const limit = b.calls[0]!.limitMs;
      if (waited <= limit) return limit - waited + 1;
      if (waited < Math.max(limit, PICKUP_LIMIT_MS)) return 1;
    } else {
      const left = pickedUp + b.calls[done]!.limitMs - now;
      if (left >= 0) return left + 1;
    }
    this.overrun(b, done);
    return -1;
  }

  /** Call `k` of the batch ran out of time: keep the answers before it, stop the worker, send the rest again. */
  private overrun(b: Batch, k: number): void {
    const rest = b.calls.slice(k + 1);
    this.complete(b, k);
    this.stop(b.gen);
    this.queue.unshift(...rest);
    b.calls[k]!.settle(null);
    this.schedule();
  }

  /** Settle the first `k` calls of a batch with their answers; the batch is no longer in flight. */
  private complete(b: Batch, k: number): void {
    b.settled = true;
    if (this.inflight === b) this.inflight = null;
    const g = b.gen;
    if (this.timed === b) {
      this.timed = null;
      this.limitTimer?.unref();
    }
    // Settled another way than by the worker's answer (a time limit, a dead worker, a wait in
    // place): release the pending wait, which would otherwise hold this generation's buffer for ever.
    if (b.waiting) Atomics.notify(g.ctl, SLOT.RES);
    const { table, area } = g;
    const answers: Answer[] = [];
    let off = 0;
    for (let i = 0; i < k; i++) {
      const r = i * CALL_SLOTS;
      const status = String.fromCharCode(table[r + CALL.STATUS]!);
      const out = table[r + CALL.OUT_BYTES]!;
      if (out < 0) {
        const m = receiveMessageOnPort(g.port)?.message as PortResponse | undefined;
        // A missing answer must not pass the message on unchanged as if the script had said O.
        if (m === undefined) answers.push({ status: 'E', changed: false, edits: false, text: 'the script worker\'s answer did not arrive', logs: '' });
        else answers.push({ status, changed: m.changed, edits: m.edits === true, text: m.text, logs: m.logs });
        continue;
      }
      const n = out & ~(CHANGED_FLAG | EDITS_FLAG);
      const l = table[r + CALL.LOG_BYTES]!;
      answers.push({
        status,
        changed: (out & CHANGED_FLAG) !== 0,
        edits: (out & EDITS_FLAG) !== 0,
        text: n === 0 ? '' : decoder.decode(area.subarray(off, off + n)),
        logs: l === 0 ? '' : decoder.decode(area.subarray(off + n, off + n + l)),
      });
      off += n + l;
    }
    for (let i = 0; i < k; i++) b.calls[i]!.settle(answers[i]!);
    this.schedule();
  }

  /** Answer every queued call with an error (the worker cannot start). */
  private failQueued(reason: string): void {
    const calls = this.queue;
    this.queue = [];
    for (const c of calls) c.settle({ status: 'E', changed: false, edits: false, text: reason, logs: '' });
  }

  /** The worker ended by itself (the heap limit, a crash): fail the call it was on, send the rest again. */
  private died(g: Generation, reason: string): void {
    if (!g.gone) {
      g.gone = true;
      this.counters.died++;
    }
    const current = this.gen === g;
    if (current) this.gen = null;
    if (current && !g.ready) {
      // It never got ready: what waits for it fails now (starting another could fail the same
      // way, for ever), and a flush waiting for its start wakes up.
      this.failQueued(reason);
      Atomics.notify(g.ctl, SLOT.STATE);
    }
    const b = this.inflight;
    if (b !== null && b.gen === g && !b.settled) {
      const done = Math.min(Atomics.load(g.ctl, SLOT.DONE), b.calls.length);
      const rest = b.calls.slice(done + 1);
      this.complete(b, done);
      this.queue.unshift(...rest);
      b.calls[done]?.settle({ status: 'E', changed: false, edits: false, text: reason, logs: '' });
    }
    this.schedule();
  }

  /** The ready worker, started (and waited for, in this thread) when there is none; a string when it cannot start. */
  private readySync(): Generation | string {
    let g = this.gen;
    if (g === null || g.gone) {
      const started = this.trySpawn();
      if (typeof started === 'string') {
        this.gen = null;
        return started;
      }
      g = this.gen = started;
    }
    if (g.ready) return g;
    for (;;) {
      const state = Atomics.load(g.ctl, SLOT.STATE);
      if (state === STATE.READY) {
        g.ready = true;
        return g;
      }
      if (state === STATE.FAILED) {
        this.stop(g, false);
        return decoder.decode(g.area.subarray(0, g.ctl[SLOT.FAIL_BYTES]!));
      }
      const left = g.startedAt + g.startLimitMs - performance.now();
      if (left <= 0) {
        this.stop(g, false);
        return `the script worker did not start within ${Math.round(g.startLimitMs)} ms`;
      }
      Atomics.wait(g.ctl, SLOT.STATE, STATE.STARTING, left);
    }
  }

  /** Start a worker with every live script; it gets ready on its own thread while the engine goes on. */
  private spawn(): Generation {
    const sab = new SharedArrayBuffer(AREA_OFFSET + this.bufferBytes);
    const { port1, port2 } = new MessageChannel();
    const data: WorkerData = { sab, port: port2, scripts: [...this.specs.values()] };
    const src = workerSource();
    const worker = new Worker(src.source, {
      eval: src.eval,
      workerData: data,
      transferList: [port2],
      // Not the engine's flags (an inspector port, heap sizes): the worker's own limits apply.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: this.maxMemoryMb },
    });
    const g: Generation = {
      worker,
      ctl: new Int32Array(sab, 0, HEADER_BYTES / 4),
      table: new Int32Array(sab, HEADER_BYTES, MAX_CALLS * CALL_SLOTS),
      area: new Uint8Array(sab, AREA_OFFSET),
      pickup: new Float64Array(sab, PICKUP_OFFSET, 1),
      port: port1,
      startedAt: performance.now(),
      startLimitMs: data.scripts.reduce((ms, spec) => ms + Math.max(spec.options.timeoutMs, LOAD_TIMEOUT_MS), this.startTimeoutMs),
      seq: 0,
      ready: false,
      gone: false,
    };
    this.counters.started++;
    // The worker must not keep the process alive (CLI commands end when their work is done); the
    // port is ref'd only while a batch is out.
    worker.unref();
    port1.unref();
    // An 'error' event without a listener would be thrown in the engine thread.
    worker.on('error', (e) => {
      const oom = (e as { code?: unknown }).code === 'ERR_WORKER_OUT_OF_MEMORY';
      const b = this.inflight !== null && this.inflight.gen === g ? this.inflight : null;
      const at = b?.calls[Math.min(Atomics.load(g.ctl, SLOT.DONE), b.calls.length - 1)]?.at;
      this.logger.warn(oom ? 'channel script worker ran out of memory; restarted' : 'channel script worker failed; restarted', {
        reason: errorMessage(e),
        limitMb: this.maxMemoryMb,
        ...(at ?? {}),
      });
      this.died(g, oom ? `the script ran out of memory (the script worker's heap limit is ${this.maxMemoryMb} MiB); the worker was restarted` : `the script worker failed: ${errorMessage(e)}`);
    });
    worker.on('exit', () => this.died(g, 'the script worker stopped'));
    return g;
  }

  /** {@link spawn}, or why a worker could not be started (a thread or a shared buffer refused). */
  private trySpawn(): Generation | string {
    try {
      return this.spawn();
    } catch (e) {
      this.logger.warn('channel script worker could not start', { reason: errorMessage(e) });
      return `the script worker could not start: ${errorMessage(e)}`;
    }
  }

  /** Stop a worker that overran (or failed to start); the next call starts another. */
  private stop(g: Generation, forTime = true): void {
    if (!g.gone) {
      g.gone = true;
      if (forTime) this.counters.stoppedForTime++;
      g.worker.terminate().catch(() => undefined);
    }
    if (this.gen === g) {
      // Start the replacement now: it boots on its own thread while the engine answers this
      // message, so the next call waits less (or not at all).
      const next = forTime ? this.trySpawn() : null;
      // A replacement that cannot start now is tried again by the next call (which then fails with the reason).
      this.gen = typeof next === 'string' ? null : next;
    }
  }
}

let lastSender: { interface: string; senderId: string | null; organisationId: string | null; json: string } | null = null;

/** The sender as the worker receives it (fields only: the object may carry more); the last one's text is reused. */
function senderText(s: SenderMeta): string {
  const senderId = s.senderId ?? null;
  const organisationId = s.organisationId ?? null;
  const l = lastSender;
  if (l !== null && l.interface === s.interface && l.senderId === senderId && l.organisationId === organisationId) return l.json;
  const json = JSON.stringify({ interface: s.interface, senderId, organisationId });
  lastSender = { interface: s.interface, senderId, organisationId, json };
  return json;
}

let shared: WorkerScriptExecutor | null = null;

/** The process's script executor (one worker, started when the first script loads). */
export function defaultScriptExecutor(): WorkerScriptExecutor {
  return (shared ??= new WorkerScriptExecutor());
}

/**
 * Stop the process's script worker, if one was started (engine shutdown); a later call starts
 * another. Returns its counters (null when there is none), for the shutdown log line.
 */
export async function closeDefaultScriptExecutor(): Promise<WorkerExecutorStats | null> {
  if (shared === null) return null;
  await shared.close();
  return shared.stats();
}
