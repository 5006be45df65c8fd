// SPDX-License-Identifier: Apache-2.0
/**
 * Delivery of the outbox (src/channels/outbox.ts) to file, MLLP and HTTP destinations.
 *
 * One lane per destination, each with its own loop, connection and backoff, so a dead downstream
 * system never delays another destination. A lane takes the oldest pending item of its destination
 * and does not look at the next one until that item is delivered or dead (order per destination).
 *
 * Outcomes of one attempt (docs/outbox.md has the table):
 * - delivered: MSA-1 `AA`/`CA` with MSA-2 equal to the outgoing MSH-10; HTTP 2xx (with the same
 *   check when the body is an ACK); the file renamed into place;
 * - dead at once: MSA-1 `AR`/`CR` (the receiver refuses this message: sending it again gives the
 *   same answer and would hold up every later message), HTTP 3xx/4xx except 408 and 429, a payload
 *   that cannot be framed;
 * - retried with exponential backoff, counted: `AE`/`CE`, an ACK for another MSH-10, no ACK in
 *   time, the connection lost after sending, HTTP 5xx/408/429, a file write error. After
 *   `maxAttempts` counted attempts the item is dead;
 * - retried, not counted: the receiver could not be reached at all (connect failed). An outage
 *   never dead-letters messages; the lane waits (with backoff) until the receiver is back.
 *
 * Delivery is at least once: an attempt whose answer was lost (timeout, connection lost, engine
 * stopped) is sent again, with the same MSH-10, so the receiver can recognise the duplicate.
 * Logs carry destination keys, outbox and journal ids, control ids and codes, never payloads or
 * the receiver's ACK text (it may quote the message); the text is kept on the outbox item.
 */
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import net from 'node:net';
import { join, resolve } from 'node:path';
import tls from 'node:tls';
import type { OutboundDestination, Outbox, OutboxItem } from '../channels/outbox.js';
import { TributaryError, errorMessage, type ErrorCode, type ErrorParams } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { MllpDecoder, encodeFrame } from '../mllp/index.js';

/** Exponential backoff: attempt n waits `min(maxMs, initialMs * factor^(n-1))`. */
export interface BackoffOptions {
  /** First delay; a destination's `retryDelayMs` replaces it for that destination. */
  initialMs: number;
  maxMs: number;
  factor: number;
}

/** Defaults of {@link OutboxDelivererOptions}. */
export const DELIVERY_DEFAULTS = {
  backoff: { initialMs: 1000, maxMs: 300_000, factor: 2 } as BackoffOptions,
  maxAttempts: 20,
  pollMs: 5000,
  stopTimeoutMs: 5000,
  connectTimeoutMs: 5000,
} as const;

/** Options of {@link OutboxDeliverer}. */
export interface OutboxDelivererOptions {
  outbox: Outbox;
  /** The outbound destinations in force (see `outboundDestinations`); `name` is the outbox key. */
  destinations: readonly OutboundDestination[];
  logger?: Logger;
  /** Clock for due times (tests). */
  now?: () => number;
  backoff?: Partial<BackoffOptions>;
  /** Counted failed attempts after which an item is dead (default 20). */
  maxAttempts?: number;
  /** How often an idle or waiting lane looks at the outbox again without a {@link OutboxDeliverer.kick} (default 5000 ms): picks up items retried from another process. */
  pollMs?: number;
  /** How long {@link OutboxDeliverer.stop} lets attempts in flight finish before abandoning them (default 5000 ms). */
  stopTimeoutMs?: number;
  /** MLLP connect timeout (default 5000 ms). */
  connectTimeoutMs?: number;
}

/** The result of one attempt. `counted`: the receiver got (or may have got) the message. */
export type AttemptResult =
  | { kind: 'delivered' }
  | { kind: 'retry'; error: TributaryError; counted: boolean }
  | { kind: 'dead'; error: TributaryError }
  | { kind: 'abandoned' };

/** One way of delivering an item. */
interface Transport {
  deliver(item: OutboxItem, signal: AbortSignal): Promise<AttemptResult>;
  close(): void;
}

const err = (code: ErrorCode, params: ErrorParams): TributaryError => new TributaryError(code, params);
const retry = (code: ErrorCode, params: ErrorParams, counted = true): AttemptResult => ({ kind: 'retry', error: err(code, params), counted });
const dead = (code: ErrorCode, params: ErrorParams): AttemptResult => ({ kind: 'dead', error: err(code, params) });

/** MSA-1, MSA-2 and MSA-3 of an ACK text (any delimiters), or null when it has no MSA segment. */
export function readMsa(text: string): { code: string; controlId: string; text: string } | null {
  const segs = text.split(/\r\n|\r|\n/);
  const msh = segs.find((s) => s.startsWith('MSH'));
  const fs = msh?.charAt(3) || '|';
  const msa = segs.find((s) => s.startsWith(`MSA${fs}`));
  if (msa === undefined) return null;
  const f = msa.split(fs);
  const comp = msh?.charAt(4) || '^';
  // MSA-2 is an ST; some systems still send it with components: compare the first one.
  return { code: (f[1] ?? '').trim(), controlId: (f[2] ?? '').split(comp)[0]!.trim(), text: f[3] ?? '' };
}

/** Judge an ACK against the outgoing MSH-10 (see the module comment for the rules). */
export function judgeAck(ackText: string, controlId: string, destination: string): AttemptResult {
  const msa = readMsa(ackText);
  if (msa === null) return retry('CHANNEL_DESTINATION_FAILED', { destination, reason: 'the answer is not an ACK (no MSA segment)' });
  // An ACK for another message says nothing about this one (and may mean the stream is out of step).
  if (msa.controlId !== controlId) return retry('CHANNEL_DESTINATION_ACK_MISMATCH', { destination, ackControlId: msa.controlId, controlId });
  const reason = `${msa.code}${msa.text ? ` ${msa.text}` : ''}`;
  switch (msa.code) {
    case 'AA':
    case 'CA':
      return { kind: 'delivered' };
    case 'AR':
    case 'CR':
      return dead('CHANNEL_DESTINATION_REFUSED', { destination, reason });
    case 'AE':
    case 'CE':
      return retry('CHANNEL_DESTINATION_FAILED', { destination, reason });
    default:
      return retry('CHANNEL_DESTINATION_FAILED', { destination, reason: `unknown acknowledgment code "${msa.code}" in MSA-1` });
  }
}

// --- file ---------------------------------------------------------------------------------------

/** A control id made safe for a file name (never a path, never hidden). */
function fileSafe(controlId: string): string {
  const s = controlId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  return s === '' ? 'none' : s;
}

class FileTransport implements Transport {
  constructor(private readonly d: Extract<OutboundDestination, { type: 'file' }>) {}

  async deliver(item: OutboxItem): Promise<AttemptResult> {
    const dir = resolve(this.d.folder);
    const name = `${item.journalId}-${fileSafe(item.controlId)}${this.d.extension}`;
    // A hidden temporary name in the same folder (rename is atomic only within a file system), so a
    // pickup process that globs *.hl7 never sees a half-written file.
    const tmp = join(dir, `.${name}.${process.pid}.${item.id}.tmp`);
    try {
      await mkdir(dir, { recursive: true });
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(item.payload);
        await fh.sync();
      } finally {
        await fh.close();
      }
      // Same name for the same item: a repeated attempt (at least once) replaces, never doubles.
      await rename(tmp, join(dir, name));
      // The rename is durable only once the folder is synced.
      const dh = await open(dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
      return { kind: 'delivered' };
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      return retry('CHANNEL_DESTINATION_FAILED', { destination: this.d.name, reason: (e as NodeJS.ErrnoException).code ?? errorMessage(e) });
    }
  }

  close(): void {}
}

// --- MLLP ---------------------------------------------------------------------------------------

type Exchange = { ok: Buffer } | { fail: 'timeout' | 'closed' | 'aborted' | 'oversize' };

/** A persistent MLLP connection with one exchange at a time (a lane sends one item at a time). */
class MllpTransport implements Transport {
  private socket: net.Socket | null = null;
  private waiter: { socket: net.Socket; finish: (r: Exchange) => void } | null = null;

  constructor(
    private readonly d: Extract<OutboundDestination, { type: 'mllp' }>,
    private readonly connectTimeoutMs: number,
  ) {}

  private connect(signal: AbortSignal): Promise<void> {
    const { host, port } = this.d;
    return new Promise((resolvePromise, reject) => {
      const socket = this.d.tls ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host }) : net.connect({ host, port });
      const fail = (reason: string): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        reject(new Error(reason));
      };
      const onAbort = (): void => fail('stopped');
      const timer = setTimeout(() => fail('timed out'), this.connectTimeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
      socket.once(this.d.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.removeAllListeners('error');
        this.attach(socket);
        resolvePromise();
      });
    });
  }

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    const decoder = new MllpDecoder({ maxFrameBytes: 1024 * 1024 });
    this.socket = socket;
    // Events of a socket that is no longer the current one (closed after a timeout or a mismatch)
    // must not settle the exchange running on its successor.
    const waiter = (): ((r: Exchange) => void) | null => {
      const w = this.waiter;
      if (w === null || w.socket !== socket) return null;
      this.waiter = null;
      return w.finish;
    };
    socket.on('data', (chunk: Buffer) => {
      for (const ev of decoder.push(chunk)) {
        // Nothing waits: an unsolicited frame (we send one at a time and drop the connection on a timeout).
        waiter()?.(ev.kind === 'frame' ? { ok: ev.payload } : { fail: 'oversize' });
      }
    });
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      waiter()?.({ fail: 'closed' });
    });
    socket.on('end', () => socket.destroy());
    socket.on('error', () => socket.destroy());
  }

  private exchange(frame: Buffer, signal: AbortSignal): Promise<Exchange> {
    const socket = this.socket;
    // Closed between the connect and now (the await in deliver): nothing was sent.
    if (socket === null) return Promise.resolve({ fail: 'closed' });
    return new Promise((done) => {
      const finish = (r: Exchange): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (this.waiter?.socket === socket) this.waiter = null;
        // After a timeout or a stop a late ACK would be taken for the next message's: drop the connection.
        if ('fail' in r) socket.destroy();
        done(r);
      };
      const onAbort = (): void => finish({ fail: 'aborted' });
      const timer = setTimeout(() => finish({ fail: 'timeout' }), this.d.ackTimeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiter = { socket, finish };
      socket.write(frame);
    });
  }

  async deliver(item: OutboxItem, signal: AbortSignal): Promise<AttemptResult> {
    const destination = this.d.name;
    let frame: Buffer;
    try {
      frame = encodeFrame(item.payload);
    } catch (e) {
      return dead('CHANNEL_DESTINATION_FAILED', { destination, reason: errorMessage(e) });
    }
    if (this.socket === null) {
      try {
        await this.connect(signal);
      } catch (e) {
        if (signal.aborted) return { kind: 'abandoned' };
        return retry('CHANNEL_DESTINATION_UNREACHABLE', { destination, target: `${this.d.host}:${this.d.port}`, reason: errorMessage(e) }, false);
      }
    }
    const r = await this.exchange(frame, signal);
    if ('ok' in r) {
      const result = judgeAck(r.ok.toString('utf8'), item.controlId, destination);
      // A mismatched ACK may mean the stream is out of step: start again on a fresh connection.
      if (result.kind === 'retry' && result.error.code === 'CHANNEL_DESTINATION_ACK_MISMATCH') this.close();
      return result;
    }
    switch (r.fail) {
      case 'aborted':
        return { kind: 'abandoned' };
      case 'timeout':
        return retry('CHANNEL_DESTINATION_TIMEOUT', { destination, timeoutMs: this.d.ackTimeoutMs });
      case 'oversize':
        return retry('CHANNEL_DESTINATION_FAILED', { destination, reason: 'the ACK frame is larger than 1 MiB' });
      case 'closed':
        return retry('CHANNEL_DESTINATION_FAILED', { destination, reason: 'the connection closed before the ACK arrived' });
    }
  }

  close(): void {
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.end();
      setTimeout(() => s.destroy(), 1000).unref();
    }
  }
}

// --- HTTP ---------------------------------------------------------------------------------------

/** Error codes of a request that never reached the server (the receiver cannot have the message). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

class HttpTransport implements Transport {
  constructor(private readonly d: Extract<OutboundDestination, { type: 'http' }>) {}

  async deliver(item: OutboxItem, signal: AbortSignal): Promise<AttemptResult> {
    const destination = this.d.name;
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, this.d.timeoutMs);
    const onAbort = (): void => ctl.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const headers = new Headers({ 'content-type': 'x-application/hl7-v2+er7; charset=utf-8' });
      for (const [k, v] of Object.entries(this.d.headers)) headers.set(k, v);
      // No redirects: following one would turn the POST into a GET (301/302) or send the message
      // somewhere nobody configured.
      const res = await fetch(this.d.url, { method: 'POST', headers, body: new Uint8Array(item.payload), redirect: 'manual', signal: ctl.signal });
      const body = await res.text();
      const status = `HTTP ${res.status}`;
      if (res.status >= 200 && res.status < 300) {
        return body.trimStart().startsWith('MSH') ? judgeAck(body, item.controlId, destination) : { kind: 'delivered' };
      }
      if (res.status >= 500 || res.status === 408 || res.status === 429) return retry('CHANNEL_DESTINATION_FAILED', { destination, reason: status });
      return dead('CHANNEL_DESTINATION_REFUSED', { destination, reason: status });
    } catch (e) {
      if (signal.aborted) return { kind: 'abandoned' };
      if (timedOut) return retry('CHANNEL_DESTINATION_TIMEOUT', { destination, timeoutMs: this.d.timeoutMs });
      const code = ((e as { cause?: { code?: string } }).cause?.code ?? (e as NodeJS.ErrnoException).code) as string | undefined;
      if (code !== undefined && UNREACHABLE.has(code)) {
        return retry('CHANNEL_DESTINATION_UNREACHABLE', { destination, target: new URL(this.d.url).host, reason: code }, false);
      }
      return retry('CHANNEL_DESTINATION_FAILED', { destination, reason: code ?? errorMessage(e) });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  close(): void {}
}

// --- lanes --------------------------------------------------------------------------------------

interface LaneSettings {
  outbox: Outbox;
  logger: Logger;
  now: () => number;
  backoff: BackoffOptions;
  maxAttempts: number;
  pollMs: number;
  connectTimeoutMs: number;
}

/** The delay before attempt n+1 after n failures (n ≥ 1), never below 10 ms (no hot loop on retryDelayMs: 0). */
export function backoffDelay(failures: number, b: BackoffOptions): number {
  const raw = b.initialMs * Math.pow(b.factor, Math.max(0, failures - 1));
  return Math.max(10, Math.min(b.maxMs, Number.isFinite(raw) ? raw : b.maxMs));
}

/** One destination's loop. */
class Lane {
  private running = true;
  /** Set when stop() gave up waiting: the attempt's result is not written. */
  private abandoned = false;
  private readonly abort = new AbortController();
  private wakeUp: (() => void) | null = null;
  private readonly transport: Transport;
  private readonly backoff: BackoffOptions;
  /** Consecutive attempts that could not reach the receiver (their own backoff). */
  private unreachable = 0;
  readonly done: Promise<void>;

  constructor(
    readonly config: OutboundDestination,
    private readonly s: LaneSettings,
  ) {
    this.transport =
      config.type === 'file' ? new FileTransport(config) : config.type === 'mllp' ? new MllpTransport(config, s.connectTimeoutMs) : new HttpTransport(config);
    const initialMs = 'retryDelayMs' in config ? config.retryDelayMs : s.backoff.initialMs;
    this.backoff = { ...s.backoff, initialMs };
    this.done = this.loop().catch((e: unknown) => {
      // A bug (the loop catches what it expects); the lane stops rather than spin.
      s.logger.error('outbound delivery lane stopped', { code: 'INTERNAL', destination: config.name, reason: errorMessage(e) });
    });
  }

  /** Wake the lane if it sleeps (new item, retry). */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(() => {
        this.wakeUp = null;
        r();
      }, Math.max(0, ms));
      t.unref();
      this.wakeUp = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  private async loop(): Promise<void> {
    const { outbox, logger, now, pollMs } = this.s;
    const name = this.config.name;
    while (this.running) {
      let item: OutboxItem | null;
      try {
        item = outbox.next(name);
      } catch (e) {
        logger.error('cannot read the outbox', { code: 'INTERNAL', destination: name, reason: errorMessage(e) });
        await this.sleep(pollMs);
        continue;
      }
      if (item === null) {
        await this.sleep(pollMs);
        continue;
      }
      const wait = item.nextAttemptAt - now();
      if (wait > 0) {
        // Re-read after at most pollMs: the item may have been changed by another process.
        await this.sleep(Math.min(wait, pollMs));
        continue;
      }
      let result: AttemptResult;
      try {
        result = await this.transport.deliver(item, this.abort.signal);
      } catch (e) {
        result = retry('CHANNEL_DESTINATION_FAILED', { destination: name, reason: errorMessage(e) });
      }
      if (this.abandoned || result.kind === 'abandoned') return;
      try {
        this.record(item, result);
      } catch (e) {
        // The database failed (disk full…): the item stays as it was and is tried again later.
        logger.error('cannot update the outbox', { code: 'INTERNAL', destination: name, id: item.id, reason: errorMessage(e) });
        await this.sleep(pollMs);
      }
    }
  }

  private record(item: OutboxItem, result: Exclude<AttemptResult, { kind: 'abandoned' }>): void {
    const { outbox, logger, now, maxAttempts } = this.s;
    const ids = { destination: this.config.name, id: item.id, journalId: item.journalId, controlId: item.controlId };
    if (result.kind === 'delivered') {
      if (this.unreachable > 0) logger.info('destination reachable again', { destination: this.config.name });
      this.unreachable = 0;
      outbox.markDelivered(item.id);
      logger.debug('outbound message delivered', { ...ids, attempts: item.attempts + 1 });
      return;
    }
    const e = { code: result.error.code, message: result.error.message };
    if (result.kind === 'dead') {
      this.unreachable = 0;
      outbox.markDead(item.id, e);
      logger.error('outbound message refused; dead-lettered', { ...ids, code: e.code });
      return;
    }
    if (!result.counted) {
      this.unreachable++;
      const delay = backoffDelay(this.unreachable, this.backoff);
      outbox.markFailed(item.id, e, now() + delay, { countAttempt: false });
      // Once per outage, then at debug level: a down receiver must not flood the log.
      const meta = { destination: this.config.name, code: e.code, retryInMs: delay };
      if (this.unreachable === 1) logger.warn('destination unreachable; retrying', meta);
      else logger.debug('destination unreachable; retrying', meta);
      return;
    }
    this.unreachable = 0;
    const attempts = item.attempts + 1;
    if (attempts >= maxAttempts) {
      const gaveUp = new TributaryError('CHANNEL_DESTINATION_GAVE_UP', { destination: this.config.name, attempts, reason: e.message });
      outbox.markDead(item.id, { code: gaveUp.code, message: gaveUp.message });
      logger.error('outbound message dead-lettered after its last attempt', { ...ids, code: gaveUp.code, lastCode: e.code, attempts });
      return;
    }
    const delay = backoffDelay(attempts, this.backoff);
    outbox.markFailed(item.id, e, now() + delay);
    logger.warn('outbound delivery failed; will retry', { ...ids, code: e.code, attempts, retryInMs: delay });
  }

  /** Ask the loop to end after the attempt in flight. */
  stop(): void {
    this.running = false;
    this.wake();
  }

  /** Give up on the attempt in flight (its result is not written; the item is sent again later). */
  abandon(): void {
    this.abandoned = true;
    this.running = false;
    this.abort.abort();
    this.wake();
  }

  close(): void {
    this.transport.close();
  }
}

/**
 * Delivers the outbox: one independent lane per destination. Create it after the outbox; call
 * {@link start}, {@link kick} after each commit that enqueued items, and {@link stop} on shutdown.
 */
export class OutboxDeliverer {
  private readonly settings: LaneSettings;
  private readonly stopTimeoutMs: number;
  private configs: readonly OutboundDestination[];
  private readonly lanes = new Map<string, Lane>();
  private started = false;
  private stopped = false;
  private changing: Promise<void> = Promise.resolve();

  constructor(options: OutboxDelivererOptions) {
    this.settings = {
      outbox: options.outbox,
      logger: options.logger ?? silentLogger,
      now: options.now ?? Date.now,
      backoff: { ...DELIVERY_DEFAULTS.backoff, ...options.backoff },
      maxAttempts: options.maxAttempts ?? DELIVERY_DEFAULTS.maxAttempts,
      pollMs: options.pollMs ?? DELIVERY_DEFAULTS.pollMs,
      connectTimeoutMs: options.connectTimeoutMs ?? DELIVERY_DEFAULTS.connectTimeoutMs,
    };
    this.stopTimeoutMs = options.stopTimeoutMs ?? DELIVERY_DEFAULTS.stopTimeoutMs;
    this.configs = options.destinations;
  }

  /** Start one lane per destination (pending items from before a restart are delivered first). */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    for (const d of this.configs) this.lanes.set(d.name, new Lane(d, this.settings));
    this.warnOrphans();
  }

  /** Wake a destination's lane (or all lanes) now instead of at its next poll; cheap, call after every commit that enqueued. */
  kick(destination?: string): void {
    if (destination === undefined) for (const l of this.lanes.values()) l.wake();
    else this.lanes.get(destination)?.wake();
  }

  /**
   * Replace the destinations (a channel reload). Lanes whose destination is unchanged keep running;
   * changed and removed ones finish their attempt in flight first. Pending items of a removed
   * destination stay in the outbox (warned as orphaned) until a channel declares it again.
   */
  setDestinations(destinations: readonly OutboundDestination[]): Promise<void> {
    // One change at a time: a second reload while a lane of the first is still finishing its
    // attempt must not start a second lane for the same destination.
    const next = this.changing.then(() => this.applyDestinations(destinations));
    this.changing = next.catch(() => undefined);
    return next;
  }

  private async applyDestinations(destinations: readonly OutboundDestination[]): Promise<void> {
    this.configs = destinations;
    if (!this.started || this.stopped) return;
    const wanted = new Map(destinations.map((d) => [d.name, d]));
    const ending: Lane[] = [];
    for (const [name, lane] of this.lanes) {
      const d = wanted.get(name);
      if (d === undefined || JSON.stringify(d) !== JSON.stringify(lane.config)) {
        ending.push(lane);
        this.lanes.delete(name);
      }
    }
    await this.finish(ending);
    if (this.stopped) return;
    for (const d of destinations) if (!this.lanes.has(d.name)) this.lanes.set(d.name, new Lane(d, this.settings));
    this.warnOrphans();
  }

  /**
   * Stop: no new attempts; attempts in flight get `stopTimeoutMs` to finish (their outcome is
   * recorded), then are abandoned (the item stays pending and is sent again after a restart).
   * Connections are closed. After it resolves the deliverer no longer touches the database.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const lanes = [...this.lanes.values()];
    this.lanes.clear();
    await this.finish(lanes);
  }

  private async finish(lanes: Lane[]): Promise<void> {
    for (const l of lanes) l.stop();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.all(lanes.map((l) => l.done)).then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const l of lanes) l.abandon();
      await Promise.all(lanes.map((l) => l.done));
    }
    for (const l of lanes) l.close();
  }

  private warnOrphans(): void {
    let counts;
    try {
      counts = this.settings.outbox.counts();
    } catch (e) {
      this.settings.logger.error('cannot read the outbox', { code: 'INTERNAL', reason: errorMessage(e) });
      return;
    }
    for (const [destination, c] of Object.entries(counts)) {
      if (c.pending > 0 && !this.lanes.has(destination)) {
        const w = new TributaryError('OUTBOX_ORPHANED', { destination, count: c.pending });
        this.settings.logger.warn(w.message, { code: w.code, destination, pending: c.pending });
      }
    }
  }
}
