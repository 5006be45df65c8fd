// SPDX-License-Identifier: Apache-2.0
/**
 * A small MLLP client: one persistent connection, frames sent in order, ACKs matched to requests
 * first-in first-out (MLLP answers in order on one connection), each with a timeout. Used by
 * `tributary send`, `tributary replay --to`, the benchmark and the tests.
 */
import net from 'node:net';
import tls from 'node:tls';
import { MllpDecoder, encodeFrame } from '../mllp/index.js';
import { TributaryError } from '../errors.js';

/** Options of {@link MllpClient.connect}. */
export interface MllpClientOptions {
  host: string;
  port: number;
  /** Per-ACK timeout. */
  ackTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Connect with TLS using these options (`servername`, `ca`, `cert`, `key`…). */
  tls?: tls.ConnectionOptions;
  /** Largest ACK frame accepted. */
  maxFrameBytes?: number;
  /** Local address to connect from (a multi-homed host; tests use 127.0.0.2). */
  localAddress?: string;
}

interface Waiter {
  resolve: (ack: Buffer) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
}

/** One MLLP connection. */
export class MllpClient {
  private readonly decoder: MllpDecoder;
  private readonly waiters: Waiter[] = [];
  private closedError: TributaryError | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly opts: MllpClientOptions,
  ) {
    this.decoder = new MllpDecoder({ maxFrameBytes: opts.maxFrameBytes ?? 16 * 1024 * 1024 });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.decoder.push(chunk)) {
        if (ev.kind !== 'frame') continue;
        const w = this.waiters.shift();
        if (!w) continue; // unsolicited ACK: nobody waits for it
        if (w.timer) clearTimeout(w.timer);
        w.resolve(ev.payload);
      }
    });
    const onGone = (): void => this.fail(new TributaryError('NET_CONNECTION_CLOSED', { host: opts.host, port: opts.port }));
    socket.on('close', onGone);
    socket.on('end', onGone);
    socket.on('error', () => onGone());
  }

  /**
   * Connect.
   * @throws TributaryError `NET_CONNECT_FAILED`
   */
  static connect(opts: MllpClientOptions): Promise<MllpClient> {
    return new Promise((resolve, reject) => {
      const socket = opts.tls
        ? // tls.connect passes net options (localAddress) on to the TCP socket; its type omits them.
          tls.connect({ host: opts.host, port: opts.port, localAddress: opts.localAddress, ...opts.tls } as tls.ConnectionOptions)
        : net.connect({ host: opts.host, port: opts.port, localAddress: opts.localAddress });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TributaryError('NET_CONNECT_FAILED', { host: opts.host, port: opts.port, reason: 'timed out' }));
      }, opts.connectTimeoutMs ?? 5000);
      const onError = (e: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        reject(new TributaryError('NET_CONNECT_FAILED', { host: opts.host, port: opts.port, reason: e.code ?? e.message }));
      };
      socket.once('error', onError);
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new MllpClient(socket, opts));
      });
    });
  }

  private fail(e: TributaryError): void {
    this.closedError ??= e;
    while (this.waiters.length > 0) {
      const w = this.waiters.shift()!;
      if (w.timer) clearTimeout(w.timer);
      w.reject(e);
    }
  }

  /**
   * Send one message and wait for its ACK frame (payload returned as a Buffer). Several calls may be
   * outstanding at once (pipelining); ACKs are matched in order.
   * @throws TributaryError `NET_ACK_TIMEOUT` or `NET_CONNECTION_CLOSED`
   */
  send(message: string | Buffer): Promise<Buffer> {
    if (this.closedError) return Promise.reject(this.closedError);
    let frame: Buffer;
    try {
      // Encode before queueing a waiter: a payload that cannot be framed must not leave a dead
      // waiter behind to swallow the next message's ACK.
      frame = encodeFrame(message);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: null };
      const timeoutMs = this.opts.ackTimeoutMs ?? 10_000;
      if (timeoutMs > 0) {
        w.timer = setTimeout(() => {
          // The stream is now out of step (a late ACK would be matched to the wrong request):
          // give up on this connection.
          this.fail(new TributaryError('NET_ACK_TIMEOUT', { host: this.opts.host, port: this.opts.port, timeoutMs }));
          this.socket.destroy();
        }, timeoutMs);
      }
      this.waiters.push(w);
      this.socket.write(frame);
    });
  }

  /** Write raw bytes (tests of malformed framing). */
  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Close gracefully (waits for the peer to close). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    });
  }
}
