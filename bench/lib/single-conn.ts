// SPDX-License-Identifier: Apache-2.0
/** One MLLP connection that sends a frame and waits for its ACK: for the memory benchmarks. */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { MllpPayloadDecoder } from '../../src/mllp/index.js';
import { checkAck, describeAck, type AckVerdict } from './ack.js';

/** Result of {@link SingleConnection.request}. */
export interface RequestResult {
  verdict: AckVerdict | 'timeout' | 'closed';
  ms: number;
  detail: string;
}

/** A connection with at most one frame in flight. */
export class SingleConnection {
  readonly decoder = new MllpPayloadDecoder({ maxFrameBytes: 1024 * 1024 });
  closed = false;
  private waiter: ((payload: Buffer | null) => void) | null = null;

  private constructor(readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => {
      for (const p of this.decoder.push(chunk)) {
        const w = this.waiter;
        this.waiter = null;
        w?.(p);
      }
    });
    sock.on('error', () => {
      /* reported through 'close' */
    });
    sock.on('close', () => {
      this.closed = true;
      const w = this.waiter;
      this.waiter = null;
      w?.(null);
    });
  }

  /**
   * Connect, or reject after `timeoutMs`.
   * @throws Error on refusal, reset or timeout
   */
  static open(host: string, port: number, timeoutMs = 5000): Promise<SingleConnection> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error('connect timeout'));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve(new SingleConnection(sock));
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(e.code ?? e.message));
      });
    });
  }

  /** Send one frame and wait for the ACK of `controlId`, at most `timeoutMs`. */
  request(frame: Buffer, controlId: string, timeoutMs: number): Promise<RequestResult> {
    if (this.closed) return Promise.resolve({ verdict: 'closed', ms: 0, detail: 'connection already closed' });
    const t0 = performance.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve({ verdict: 'timeout', ms: performance.now() - t0, detail: `no ACK within ${timeoutMs} ms` });
      }, timeoutMs);
      this.waiter = (payload) => {
        clearTimeout(timer);
        const ms = performance.now() - t0;
        if (payload === null) resolve({ verdict: 'closed', ms, detail: 'connection closed before the ACK' });
        else resolve({ verdict: checkAck(payload, controlId), ms, detail: describeAck(payload) });
      };
      this.sock.write(frame);
    });
  }

  /** Wait until the server closes the connection, at most `timeoutMs`; true if it did. */
  waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.sock.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}
