// SPDX-License-Identifier: Apache-2.0
/**
 * Where channel scripts run and how an overrunning one is stopped.
 *
 * {@link WorkerScriptExecutor} (the default): every script lives in one worker thread; a call is a
 * synchronous round trip through a SharedArrayBuffer (`Atomics.notify`, then `Atomics.wait` with
 * the step's time limit). A call that overruns gets `timeout` and the worker is terminated and
 * replaced (its replacement loads every live script again). The engine thread never runs script
 * code, so a loop cannot stop the listener, and the worker has a heap limit (`resourceLimits`).
 * Cost: a thread wake-up each way per call, about 21 µs of CPU on the 2-core reference VM, against
 * ~80 µs for vm's per-call watchdog thread (docs/channels.md "Isolation and its cost").
 *
 * {@link InlineScriptExecutor}: the previous way, each call in the engine thread under vm's
 * `timeout`. Kept for comparison (bench/channel-steps.ts) and for tests.
 *
 * `runChannel` is synchronous and called on the ingest path, so both stay synchronous.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import { Hl7Message } from '../hl7/index.js';
import { silentLogger, type Logger } from '../log.js';
import type { MessageBox } from './edit.js';
import { HEADER_BYTES, OP, PICKUP_OFFSET, SLOT, STATE, type PortRequest, type PortResponse, type ScriptSpec, type WorkerData } from './protocol.js';
import { ScriptSandbox } from './sandbox.js';
import { LOAD_TIMEOUT_MS, type LoadedScript, type ScriptExecutor, type ScriptLoadOptions, type ScriptResult, type SenderMeta } from './script.js';

/** Runs each call in the engine thread under vm's `timeout` (a watchdog thread per call). */
export class InlineScriptExecutor implements ScriptExecutor {
  /** {@inheritDoc ScriptExecutor.load} */
  load(code: string, options: ScriptLoadOptions): LoadedScript {
    const sandbox = ScriptSandbox.load(code, options, Math.max(options.timeoutMs, LOAD_TIMEOUT_MS));
    return { run: (box, sender, logger, timeoutMs) => sandbox.run(box, sender, logger, timeoutMs) };
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
}

/** One worker and its wire. A new one after every stop, so a stopped worker's late writes go nowhere. */
interface Generation {
  readonly worker: Worker;
  readonly ctl: Int32Array;
  readonly area: Uint8Array;
  /** When the worker picked up the current request (`Date.now()`). */
  readonly pickup: Float64Array;
  readonly port: MessagePort;
  seq: number;
  ready: boolean;
  /** Set when the worker exited or was stopped: the next call starts another. */
  gone: boolean;
  /** The step running now (for the log line when the worker dies during it). */
  running: { channel: string; step: string } | null;
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
}

/** A worker that has not picked a request up after this long (or the time limit, if longer) is stuck. */
const PICKUP_LIMIT_MS = 1000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

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
 * Runs scripts in one worker thread with synchronous calls; stops and replaces the worker when a
 * call overruns. One per process is enough (calls are synchronous, so one runs at a time):
 * {@link defaultScriptExecutor}.
 */
export class WorkerScriptExecutor implements ScriptExecutor {
  private readonly maxMemoryMb: number;
  private readonly startTimeoutMs: number;
  private readonly bufferBytes: number;
  private gen: Generation | null = null;
  /** Live scripts, by id: what a restarted worker loads. */
  private readonly specs = new Map<number, ScriptSpec>();
  private nextId = 1;
  /** Scripts whose handles were collected: released in the worker before the next call. */
  private unloaded: number[] = [];
  private readonly finalizer = new FinalizationRegistry<number>((id) => {
    this.specs.delete(id);
    this.unloaded.push(id);
  });
  private logger: Logger = silentLogger;
  private readonly counters = { started: 0, stoppedForTime: 0, died: 0 };

  constructor(options: WorkerScriptExecutorOptions = {}) {
    this.maxMemoryMb = options.maxMemoryMb ?? 256;
    this.startTimeoutMs = options.startTimeoutMs ?? 10_000;
    this.bufferBytes = options.bufferBytes ?? 1024 * 1024;
  }

  /** Counters since this executor was made. */
  stats(): WorkerExecutorStats {
    return { ...this.counters, scripts: this.specs.size };
  }

  /** {@inheritDoc ScriptExecutor.load} */
  load(code: string, options: ScriptLoadOptions): LoadedScript {
    const id = this.nextId++;
    const spec: ScriptSpec = { id, code, options: { file: options.file, kind: options.kind, tables: options.tables, channel: options.channel, step: options.step, timeoutMs: options.timeoutMs } };
    const g = this.ready();
    if (typeof g === 'string') throw new Error(g);
    g.port.postMessage(spec);
    const limit = Math.max(options.timeoutMs, LOAD_TIMEOUT_MS);
    if (!this.call(g, OP.LOAD, id, { channel: options.channel, step: options.step }, limit)) {
      this.stop(g);
      throw new Error(`its top-level code ran longer than ${limit} ms`);
    }
    const { status, text } = this.response(g);
    if (status !== 'O') throw new Error(text);
    this.specs.set(id, spec);
    const handle: LoadedScript = {
      run: (box, sender, logger, timeoutMs) => this.run(id, options, box, sender, logger, timeoutMs),
    };
    // The channel's compiled steps hold the handle; when a reload drops the channel, the worker
    // forgets the script (a restarted worker would otherwise load every old version too).
    this.finalizer.register(handle, id);
    return handle;
  }

  /** Stop the worker (the next call starts another). For tests and shutdown. */
  async close(): Promise<void> {
    const g = this.gen;
    this.gen = null;
    if (g !== null) {
      g.gone = true;
      await g.worker.terminate();
    }
  }

  private run(id: number, options: ScriptLoadOptions, box: MessageBox, sender: SenderMeta, logger: Logger, timeoutMs: number): ScriptResult {
    this.logger = logger;
    const g = this.ready();
    if (typeof g === 'string') return { kind: 'error', reason: g };
    if (this.unloaded.length > 0) this.release(g);
    const text = box.msg.toString();
    const senderJson = senderText(sender);
    const s = encoder.encodeInto(senderJson, g.area);
    const t = s.read === senderJson.length ? encoder.encodeInto(text, g.area.subarray(s.written)) : null;
    if (t !== null && t.read === text.length) {
      g.ctl[SLOT.SENDER_BYTES] = s.written;
      g.ctl[SLOT.TEXT_BYTES] = t.written;
    } else {
      g.port.postMessage({ sender: senderJson, text } satisfies PortRequest);
      g.ctl[SLOT.TEXT_BYTES] = -1;
    }
    g.ctl[SLOT.LOGS] = logger.bodies ? 1 : 0;
    if (!this.call(g, OP.RUN, id, { channel: options.channel, step: options.step }, timeoutMs)) {
      this.stop(g);
      return { kind: 'timeout' };
    }
    const r = this.response(g);
    if (r.logs !== '') {
      for (const [level, line] of JSON.parse(r.logs) as Array<[string, string]>) {
        logger.body('channel script log', line, { channel: options.channel, step: options.step, level });
      }
    }
    switch (r.status) {
      case 'O':
        if (r.changed) {
          try {
            box.msg = Hl7Message.parse(r.text);
          } catch (e) {
            return { kind: 'error', reason: `the changed message cannot be read: ${errorMessage(e)}` };
          }
        }
        return { kind: 'ok' };
      case 'T':
        return { kind: 'bool', value: true };
      case 'F':
        return { kind: 'bool', value: false };
      case 'R':
        return { kind: 'reject', reason: r.text };
      default:
        return { kind: 'error', reason: r.text };
    }
  }

  /**
   * Send a request and wait for its answer for at most `timeoutMs` of the script's time. No
   * spinning before the wait: measured, spinning 30–100 µs cost 5–7 µs more CPU per call than
   * sleeping at once (docs/channels.md "Isolation and its cost").
   */
  private call(g: Generation, op: number, id: number, running: Generation['running'], timeoutMs: number): boolean {
    const ctl = g.ctl;
    ctl[SLOT.OP] = op;
    ctl[SLOT.ID] = id;
    const seq = (g.seq = (g.seq + 1) | 0);
    g.running = running;
    const start = performance.now();
    const startWall = Date.now();
    Atomics.store(ctl, SLOT.REQ, seq);
    Atomics.notify(ctl, SLOT.REQ, 1);
    let deadline = start + timeoutMs;
    for (;;) {
      const seen = Atomics.load(ctl, SLOT.RES);
      if (seen === seq) {
        g.running = null;
        return true;
      }
      const now = performance.now();
      let left = deadline - now;
      if (left <= 0) {
        // The limit is the script's: a request the worker picked up late (its thread was not
        // scheduled, a GC) gets the whole limit from then on. The worker writes the pickup time
        // without a notify (that would cost a wake-up per call), so it is read only here.
        const pickedUpAfter = g.pickup[0]! - startWall;
        if (pickedUpAfter < 0) {
          if (now - start >= Math.max(timeoutMs, PICKUP_LIMIT_MS)) return false;
          left = 1;
        } else {
          const extended = start + pickedUpAfter + timeoutMs;
          if (extended <= deadline + 1) return false;
          deadline = extended;
          left = extended - now;
        }
      }
      Atomics.wait(ctl, SLOT.RES, seen, left);
    }
  }

  private response(g: Generation): { status: string; changed: boolean; text: string; logs: string } {
    const ctl = g.ctl;
    const status = String.fromCharCode(ctl[SLOT.STATUS]!);
    const changed = ctl[SLOT.CHANGED] === 1;
    const n = ctl[SLOT.OUT_BYTES]!;
    if (n < 0) {
      const m = receiveMessageOnPort(g.port)?.message as PortResponse | undefined;
      return { status, changed, text: m?.text ?? '', logs: m?.logs ?? '' };
    }
    const l = ctl[SLOT.LOG_BYTES]!;
    return {
      status,
      changed,
      text: n === 0 ? '' : decoder.decode(g.area.subarray(0, n)),
      logs: l === 0 ? '' : decoder.decode(g.area.subarray(n, n + l)),
    };
  }

  private release(g: Generation): void {
    const ids = this.unloaded;
    this.unloaded = [];
    g.port.postMessage(ids);
    if (!this.call(g, OP.UNLOAD, 0, null, LOAD_TIMEOUT_MS)) this.stop(g);
  }

  /** The ready worker, started (and waited for) when there is none; a string when it cannot start. */
  private ready(): Generation | string {
    let g = this.gen;
    if (g === null || g.gone) g = this.gen = this.spawn();
    if (g.ready) return g;
    const t0 = performance.now();
    for (;;) {
      const state = Atomics.load(g.ctl, SLOT.STATE);
      if (state === STATE.READY) {
        g.ready = true;
        return g;
      }
      if (state === STATE.FAILED) {
        this.stop(g, false);
        return decoder.decode(g.area.subarray(0, g.ctl[SLOT.OUT_BYTES]!));
      }
      const left = this.startTimeoutMs - (performance.now() - t0);
      if (left <= 0) {
        this.stop(g, false);
        return `the script worker did not start within ${this.startTimeoutMs} ms`;
      }
      Atomics.wait(g.ctl, SLOT.STATE, STATE.STARTING, left);
    }
  }

  /** Start a worker with every live script; it gets ready on its own thread while the engine goes on. */
  private spawn(): Generation {
    const sab = new SharedArrayBuffer(HEADER_BYTES + this.bufferBytes);
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
      area: new Uint8Array(sab, HEADER_BYTES),
      pickup: new Float64Array(sab, PICKUP_OFFSET, 1),
      port: port1, seq: 0,
      ready: false,
      gone: false,
      running: null,
    };
    this.counters.started++;
    // The worker must not keep the process alive (CLI commands end when their work is done).
    worker.unref();
    port1.unref();
    // An 'error' event without a listener would be thrown in the engine thread.
    worker.on('error', (e) => {
      const code = (e as { code?: unknown }).code;
      const at = g.running;
      this.logger.warn(code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'channel script worker ran out of memory; restarted' : 'channel script worker failed; restarted', {
        reason: errorMessage(e),
        limitMb: this.maxMemoryMb,
        ...(at ?? {}),
      });
    });
    worker.on('exit', () => {
      if (!g.gone) {
        g.gone = true;
        this.counters.died++;
      }
    });
    return g;
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
      this.gen = forTime ? this.spawn() : null;
    }
  }
}

/** The sender as the worker receives it (fields only: the object may carry more). */
function senderText(s: SenderMeta): string {
  return JSON.stringify({ interface: s.interface, senderId: s.senderId ?? null, organisationId: s.organisationId ?? null });
}

let shared: WorkerScriptExecutor | null = null;

/** The process's script executor (one worker, started when the first script loads). */
export function defaultScriptExecutor(): WorkerScriptExecutor {
  return (shared ??= new WorkerScriptExecutor());
}
