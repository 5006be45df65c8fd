// SPDX-License-Identifier: Apache-2.0
/**
 * The MLLP load client: N persistent connections, K frames in flight on each, every ACK verified
 * against the MSH-10 it answers (ACKs come back in order on a connection, so the oldest frame in
 * flight is the one answered). Runs in phases (warm-up, then the measured run) over the same
 * connections, and every phase is bounded by a deadline.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { MllpPayloadDecoder } from '../../src/mllp/index.js';
import { checkAck, describeAck, type AckVerdict } from './ack.js';
import type { FrameTemplate } from './messages.js';

/** Options of {@link LoadClient}. */
export interface LoadClientOptions {
  host: string;
  port: number;
  connections: number;
  /** Frames in flight per connection (1 = send, wait for the ACK, send the next). */
  pipeline: number;
  /** Message `i` uses `templates[i % templates.length]`. */
  templates: FrameTemplate[];
  /** A frame without its ACK after this long fails as `timeout`, and its connection is replaced. */
  timeoutMs: number;
  /** Reconnections allowed over the client's life after a connection closed or timed out. */
  maxReconnects?: number;
  /** Stop a phase once this many messages failed (0 = never). */
  abortOnErrors?: number;
}

/** Why a message did not count. */
export type ErrorKind = 'timeout' | 'wrong_code' | 'msa2_mismatch' | 'closed' | 'unparseable';

/** What one phase measured. */
export interface PhaseResult {
  requested: number;
  sent: number;
  ok: number;
  failed: number;
  /** Messages neither verified nor failed when the phase stopped (deadline). */
  unfinished: number;
  /** Send→ACK times of the verified messages, in ms (unsorted). */
  latenciesMs: Float64Array;
  /** From the first send to the last verified ACK, in seconds. */
  durationS: number;
  /** Wall time of the whole phase including the drain, in seconds. */
  wallS: number;
  bytesSent: number;
  /** Message bytes (without MLLP framing) of the verified messages. */
  okMessageBytes: number;
  errors: Partial<Record<ErrorKind, number>>;
  /** ACKs that arrived while nothing was in flight on their connection (not message failures). */
  unsolicitedAcks: number;
  errorSamples: string[];
  stoppedByDeadline: boolean;
  abortedOnErrors: boolean;
  /** Client process CPU (user + system) during the phase, in µs. */
  clientCpuUs: number;
}

interface Phase {
  count: number;
  next: number;
  ok: number;
  failed: number;
  latencies: Float64Array;
  tFirst: number;
  tLast: number;
  bytesSent: number;
  okBytes: number;
  errors: Partial<Record<ErrorKind, number>>;
  unsolicited: number;
  samples: string[];
  stopping: boolean;
  aborted: boolean;
  finish: () => void;
}

const MAX_SAMPLES = 8;

let runSeq = 0;

class Connection {
  readonly sock: net.Socket;
  readonly decoder = new MllpPayloadDecoder({ maxFrameBytes: 1024 * 1024 });
  /** Control ids, send times and message sizes of the frames in flight, oldest first. */
  readonly ids: string[] = [];
  readonly t0: number[] = [];
  readonly sizes: number[] = [];
  open = false;
  closed = false;
  timedOut = false;
  readonly connected: Promise<boolean>;

  constructor(private readonly client: LoadClient) {
    const o = client.options;
    this.sock = net.connect({ host: o.host, port: o.port });
    this.sock.setNoDelay(true);
    this.connected = new Promise((resolve) => {
      this.sock.once('connect', () => {
        this.open = true;
        resolve(true);
      });
      this.sock.once('close', () => resolve(false));
    });
    this.sock.on('data', (chunk: Buffer) => this.onData(chunk));
    this.sock.on('error', () => {
      /* reported through 'close' */
    });
    this.sock.on('close', () => this.onClose());
  }

  get inflight(): number {
    return this.ids.length;
  }

  pump(): void {
    const phase = this.client.phase;
    if (!phase || phase.stopping || !this.open || this.closed) return;
    const o = this.client.options;
    const room = o.pipeline - this.ids.length;
    if (room <= 0 || phase.next >= phase.count) return;
    const many = room > 1 && phase.count - phase.next > 1;
    if (many) this.sock.cork();
    for (let n = 0; n < room && phase.next < phase.count; n++) {
      const i = phase.next++;
      const seq = this.client.seq++;
      const tpl = o.templates[seq % o.templates.length]!;
      const id = this.client.idPrefix + seq.toString(36);
      const frame = tpl.frame(id);
      this.ids.push(id);
      this.sizes.push(frame.length - 3);
      const now = performance.now();
      this.t0.push(now);
      if (i === 0) phase.tFirst = now;
      phase.bytesSent += frame.length;
      this.sock.write(frame);
    }
    if (many) this.sock.uncork();
  }

  private onData(chunk: Buffer): void {
    const phase = this.client.phase;
    const payloads = this.decoder.push(chunk);
    const now = performance.now();
    for (const p of payloads) {
      if (this.ids.length === 0) {
        if (phase) {
          phase.unsolicited++;
          if (phase.samples.length < MAX_SAMPLES) phase.samples.push(`unsolicited ACK: ${describeAck(p)}`);
        }
        continue;
      }
      const id = this.ids.shift()!;
      const t0 = this.t0.shift()!;
      const size = this.sizes.shift()!;
      // Frames left over from a phase that ended at its deadline belong to no phase.
      if (!phase || phase.ok + phase.failed >= phase.count) continue;
      const verdict: AckVerdict = checkAck(p, id);
      if (verdict === 'ok') {
        phase.latencies[phase.ok++] = now - t0;
        phase.okBytes += size;
        phase.tLast = now;
      } else {
        this.client.fail(verdict, 1, `${verdict}: sent ${id}, got ${describeAck(p)}`);
      }
    }
    this.pump();
    this.client.check();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.open = false;
    if (this.ids.length > 0) {
      const kind: ErrorKind = this.timedOut ? 'timeout' : 'closed';
      const why = this.timedOut
        ? `no ACK for ${this.ids[0]} within ${this.client.options.timeoutMs} ms; connection dropped`
        : 'connection closed by the server';
      this.client.fail(kind, this.ids.length, `${kind}: ${why} with ${this.ids.length} frame(s) in flight`);
      this.ids.length = 0;
      this.t0.length = 0;
      this.sizes.length = 0;
    }
    this.client.replace(this);
  }

  /** Fail everything in flight if the oldest frame is overdue, and drop the connection. */
  checkTimeout(now: number): void {
    if (this.closed || this.ids.length === 0) return;
    if (now - this.t0[0]! > this.client.options.timeoutMs) {
      this.timedOut = true;
      this.sock.destroy();
    }
  }

  destroy(): void {
    this.closed = true;
    this.open = false;
    this.sock.destroy();
  }
}

/** A set of persistent MLLP connections that run load phases. */
export class LoadClient {
  readonly options: Required<LoadClientOptions>;
  /** Prefix of every control id: `B` + 4 base36 characters unique per run, then a base36 counter. */
  readonly idPrefix: string;
  seq = 0;
  phase: Phase | null = null;
  private conns = new Set<Connection>();
  private reconnects = 0;
  private closing = false;

  constructor(options: LoadClientOptions) {
    this.options = { maxReconnects: 100, abortOnErrors: 0, ...options };
    const run = (Date.now() + process.pid * 7919 + runSeq++ * 104729) % 36 ** 4;
    // MSH-10 is ST(20) in v2.5: "B" + 4 + at most 8 counter characters stays well under 20.
    this.idPrefix = `B${run.toString(36).padStart(4, '0')}`;
  }

  /** Connections currently open. */
  get openConnections(): number {
    let n = 0;
    for (const c of this.conns) if (c.open) n++;
    return n;
  }

  /** Reconnections made so far. */
  get reconnections(): number {
    return this.reconnects;
  }

  /**
   * Open the connections.
   * @throws Error when none could be opened within `timeoutMs` (at least 2 s)
   */
  async connect(): Promise<{ opened: number; ms: number }> {
    const t0 = performance.now();
    const list: Connection[] = [];
    for (let i = 0; i < this.options.connections; i++) {
      const c = new Connection(this);
      this.conns.add(c);
      list.push(c);
    }
    const timer = setTimeout(() => {
      for (const c of list) if (!c.open) c.destroy();
    }, Math.max(2000, this.options.timeoutMs));
    const results = await Promise.all(list.map((c) => c.connected));
    clearTimeout(timer);
    for (const c of list) if (!c.open) this.conns.delete(c);
    const opened = results.filter(Boolean).length;
    if (opened === 0) throw new Error(`could not connect to ${this.options.host}:${this.options.port}`);
    return { opened, ms: performance.now() - t0 };
  }

  /**
   * Send `count` messages over the open connections and wait for their ACKs, or until `deadline`
   * (a `performance.now()` value); after the deadline, frames in flight get one more
   * `min(timeoutMs, 3 s)` to be answered.
   */
  run(count: number, deadline: number): Promise<PhaseResult> {
    if (this.phase) throw new Error('a phase is already running');
    const cpu0 = process.cpuUsage();
    const tStart = performance.now();
    return new Promise<PhaseResult>((resolve) => {
      let ticker: NodeJS.Timeout | undefined;
      let drainTimer: NodeJS.Timeout | undefined;
      const phase: Phase = {
        count,
        next: 0,
        ok: 0,
        failed: 0,
        latencies: new Float64Array(count),
        tFirst: tStart,
        tLast: tStart,
        bytesSent: 0,
        okBytes: 0,
        errors: {},
        unsolicited: 0,
        samples: [],
        stopping: false,
        aborted: false,
        finish: () => {
          if (this.phase !== phase) return;
          this.phase = null;
          clearInterval(ticker);
          clearTimeout(drainTimer);
          const cpu = process.cpuUsage(cpu0);
          const tEnd = performance.now();
          resolve({
            requested: count,
            sent: phase.next,
            ok: phase.ok,
            failed: phase.failed,
            unfinished: count - phase.ok - phase.failed,
            latenciesMs: phase.latencies.subarray(0, phase.ok),
            durationS: Math.max(1e-6, ((phase.ok > 0 ? phase.tLast : tEnd) - phase.tFirst) / 1000),
            wallS: (tEnd - tStart) / 1000,
            bytesSent: phase.bytesSent,
            okMessageBytes: phase.okBytes,
            errors: phase.errors,
            unsolicitedAcks: phase.unsolicited,
            errorSamples: phase.samples,
            stoppedByDeadline: phase.stopping && !phase.aborted,
            abortedOnErrors: phase.aborted,
            clientCpuUs: cpu.user + cpu.system,
          });
        },
      };
      this.phase = phase;
      const stop = (aborted: boolean): void => {
        if (phase.stopping) return;
        phase.stopping = true;
        phase.aborted = aborted;
        drainTimer = setTimeout(phase.finish, Math.min(this.options.timeoutMs, 3000));
        this.check();
      };
      ticker = setInterval(
        () => {
          const now = performance.now();
          for (const c of this.conns) c.checkTimeout(now);
          if (now >= deadline) stop(false);
          this.check();
        },
        Math.max(10, Math.min(250, this.options.timeoutMs / 4)),
      );
      this.stopPhase = stop;
      for (const c of this.conns) c.pump();
      this.check();
    });
  }

  private stopPhase: (aborted: boolean) => void = () => {};

  /** @internal record failed messages */
  fail(kind: ErrorKind, n: number, sample: string): void {
    const phase = this.phase;
    if (!phase) return;
    phase.failed += n;
    phase.errors[kind] = (phase.errors[kind] ?? 0) + n;
    if (phase.samples.length < MAX_SAMPLES) phase.samples.push(sample);
    if (this.options.abortOnErrors > 0 && phase.failed >= this.options.abortOnErrors) this.stopPhase(true);
  }

  /** @internal finish the phase when nothing is left to do */
  check(): void {
    const phase = this.phase;
    if (!phase) return;
    if (phase.ok + phase.failed >= phase.count) return phase.finish();
    let inflight = 0;
    let open = 0;
    for (const c of this.conns) {
      inflight += c.inflight;
      if (!c.closed) open++;
    }
    if (phase.stopping && inflight === 0) return phase.finish();
    // Every connection is gone and none may be reopened: nothing more can happen.
    if (open === 0 && (this.reconnects >= this.options.maxReconnects || this.closing)) phase.finish();
  }

  /** @internal a connection closed: open another one (bounded) while a phase runs */
  replace(c: Connection): void {
    this.conns.delete(c);
    const phase = this.phase;
    if (this.closing || !phase || phase.stopping || this.reconnects >= this.options.maxReconnects) {
      this.check();
      return;
    }
    this.reconnects++;
    const next = new Connection(this);
    this.conns.add(next);
    void next.connected.then((ok) => {
      if (ok) next.pump();
      this.check();
    });
    this.check();
  }

  /** Close every connection. */
  close(): void {
    this.closing = true;
    for (const c of this.conns) c.destroy();
    this.conns.clear();
  }
}
