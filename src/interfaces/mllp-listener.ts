// SPDX-License-Identifier: Apache-2.0
/**
 * The MLLP listener (MLLP Release 2, HL7 v2.5.1 Appendix C) over TCP or TLS.
 *
 * - Many persistent connections; each connection's frames are answered in the order received,
 *   even though their journal commits complete in groups.
 * - Backpressure both ways: reading pauses while `maxInFlightPerConnection` frames wait for their
 *   ACK, and while the socket cannot take more ACK bytes (`write()` returned false, until `drain`).
 * - Limits: `maxFrameBytes` (AR, journaled, then close), `idleTimeoutMs`, `maxConnections` overall
 *   and per source address (refused at accept, with a transport event row).
 * - Half-close: a sender may send its last frame and FIN at once; `allowHalfOpen` keeps our side
 *   open until its ACKs are written (bench/RESULTS.md observation 7).
 * - Graceful close: stop accepting, stop reading, finish what is in flight, then end the sockets.
 */
import net from 'node:net';
import tls from 'node:tls';
import { MllpDecoder } from '../mllp/index.js';
import { TributaryError } from '../errors.js';
import type { FrameMeta, IngestResult, Ingestor } from '../ingest/ingest.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import type { TlsIdentity } from '../authentication/index.js';

/** TLS material, already loaded. */
export interface MllpTlsOptions {
  key: Buffer;
  cert: Buffer;
  ca?: Buffer;
  /** Ask for a client certificate. */
  requestClientCert: boolean;
  /** Refuse connections without a valid client certificate. */
  requireClientCert: boolean;
}

/** Options of {@link MllpListener.listen}. */
export interface MllpListenerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  ingestor: Ingestor;
  journal: Journal;
  logger: Logger;
  maxFrameBytes: number;
  oversizePrefixBytes: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxInFlightPerConnection: number;
  tls?: MllpTlsOptions;
  /** Who may connect, and who a TLS client certificate identifies. Absent: anyone may connect. */
  senders?: ConnectionSenders;
}

/** The connection-level sender checks the engine plugs in (the listener knows no sender model). */
export interface ConnectionSenders {
  /** False: no sender allows this address; the connection is closed at accept, before reading. */
  allowAddress(remoteAddress: string): boolean;
  /** Called for each refused address (the engine writes the audit row). */
  refused(remoteAddress: string, iface: string): void;
}

/** Counters of a listener. */
export interface MllpListenerStats {
  connectionsAccepted: number;
  connectionsRefused: number;
  openConnections: number;
  frames: number;
  strayBytes: number;
}

interface Slot {
  /** The framed ACK (VT ack FS CR), once the frame is committed. */
  ack: string | null;
  closeAfter: boolean;
}

const FRAME_START = '\x0b';
const FRAME_END = '\x1c\r';
let connectionSeq = 0;
const CONNECTION_PREFIX = `c${Date.now().toString(36)}-`;

class Connection {
  readonly id = `${CONNECTION_PREFIX}${++connectionSeq}`;
  readonly meta: FrameMeta;
  private readonly decoder: MllpDecoder;
  private readonly slots: Slot[] = [];
  private writeBlocked = false;
  private peerEnded = false;
  private stopped = false; // no more reading: oversize, shutdown
  private paused = false;
  private finished = false;
  private writeScheduled = false;
  private readonly writeReadyBound = (): void => {
    this.writeScheduled = false;
    this.writeReady();
  };

  constructor(
    readonly socket: net.Socket,
    private readonly owner: MllpListener,
    private readonly opts: MllpListenerOptions,
    iface: string,
  ) {
    this.meta = {
      interface: iface,
      connectionId: this.id,
      remoteAddress: socket.remoteAddress ?? null,
      remotePort: socket.remotePort ?? null,
      tlsIdentity: socket instanceof tls.TLSSocket ? peerIdentity(socket) : undefined,
    };
    this.decoder = new MllpDecoder({ maxFrameBytes: opts.maxFrameBytes, oversizePrefixBytes: opts.oversizePrefixBytes });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('drain', () => {
      this.writeBlocked = false;
      this.updateFlow();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      opts.logger.debug('mllp connection error', { connectionId: this.id, code: e.code });
    });
    socket.on('close', () => this.onClose());
    if (opts.idleTimeoutMs > 0) {
      socket.setTimeout(opts.idleTimeoutMs, () => this.onIdle());
    }
  }

  private onData(chunk: Buffer): void {
    if (this.stopped) return;
    const events = this.decoder.push(chunk);
    for (const ev of events) {
      if (this.stopped) break;
      const slot: Slot = { ack: null, closeAfter: false };
      this.slots.push(slot);
      this.owner.stats.frames++;
      if (ev.kind === 'frame') {
        this.opts.ingestor.submitFrame(ev.payload, this.meta, (r) => this.answer(slot, r));
      } else {
        // Oversize: answer AR where we can, journal the prefix, then close; reading more of a frame
        // we will not keep only costs memory and time.
        slot.closeAfter = true;
        this.stopped = true;
        this.opts.logger.warn('mllp frame too large; closing connection', {
          connectionId: this.id,
          code: 'MLLP_FRAME_TOO_LARGE',
          bytesSeen: ev.bytesSeen,
        });
        this.opts.ingestor.submitOversize(ev.prefix, ev.bytesSeen, this.opts.maxFrameBytes, this.meta, (r) => this.answer(slot, r));
      }
    }
    this.updateFlow();
  }

  private answer(slot: Slot, result: IngestResult): void {
    // Framed as a string: socket.write encodes it once, with no intermediate Buffer. The ACK cannot
    // contain VT or FS: it echoes only fields of a frame the decoder already cut at those bytes.
    slot.ack = FRAME_START + result.ack + FRAME_END;
    // A group commit answers many frames in one synchronous loop; writing after it (next tick)
    // sends all of this connection's ACKs in one writev instead of one syscall each.
    if (!this.writeScheduled) {
      this.writeScheduled = true;
      process.nextTick(this.writeReadyBound);
    }
  }

  /** Write every ACK that is ready, in order. */
  private writeReady(): void {
    if (this.finished) return;
    let n = 0;
    while (this.slots.length > 0 && this.slots[0]!.ack !== null) {
      const slot = this.slots.shift()!;
      if (n++ === 0) this.socket.cork();
      if (!this.socket.write(slot.ack!)) this.writeBlocked = true;
      if (slot.closeAfter) {
        this.slots.length = 0;
        this.finish();
        break;
      }
    }
    if (n > 0 && !this.finished) this.socket.uncork();
    if (this.slots.length === 0 && (this.peerEnded || (this.stopped && !this.finished))) this.finish();
    else this.updateFlow();
  }

  private updateFlow(): void {
    const shouldPause = this.stopped || this.writeBlocked || this.slots.length >= this.opts.maxInFlightPerConnection;
    if (shouldPause && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!shouldPause && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private onEnd(): void {
    this.peerEnded = true;
    const lost = this.decoder.end();
    if (lost > 0) {
      this.owner.transportEvent(this, 'incomplete-frame', new TributaryError('MLLP_INCOMPLETE_FRAME', { bytes: lost }));
    }
    if (this.slots.length === 0) this.finish();
  }

  private onIdle(): void {
    if (this.slots.length > 0) return; // still answering: not idle
    this.owner.transportEvent(this, 'idle-timeout', new TributaryError('MLLP_IDLE_TIMEOUT', { idleTimeoutMs: this.opts.idleTimeoutMs }));
    this.finish();
  }

  /** End our side once everything owed has been written. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.socket.uncork();
    this.socket.end();
    // A peer that never reads must not hold the socket forever.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  /** Stop reading; answer what is in flight, then end. */
  shutdown(): void {
    this.stopped = true;
    this.updateFlow();
    if (this.slots.length === 0) this.finish();
  }

  /** Reading is paused (backpressure or shutdown). */
  get isPaused(): boolean {
    return this.paused;
  }

  private onClose(): void {
    this.finished = true;
    if (this.decoder.strayBytes > 0) {
      // Bytes outside any frame are not messages, but they are not dropped silently either.
      this.owner.stats.strayBytes += this.decoder.strayBytes;
      this.owner.transportEvent(this, 'stray-bytes', new TributaryError('MLLP_STRAY_BYTES', { bytes: this.decoder.strayBytes }));
    }
    this.owner.forget(this);
  }
}

/**
 * What a TLS peer's certificate says (read once per connection); the gate matches it against the
 * senders for every message, so an admin change applies to open connections too. Undefined
 * without a client certificate.
 */
function peerIdentity(socket: tls.TLSSocket): TlsIdentity | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const cn = cert.subject?.CN;
  return {
    subjectCN: Array.isArray(cn) ? cn[0] : cn,
    san: cert.subjectaltname ? [cert.subjectaltname] : [],
    fingerprint256: cert.fingerprint256,
    authorized: socket.authorized,
  };
}

/** A running MLLP listener. */
export class MllpListener {
  /** Counters. */
  readonly stats: MllpListenerStats = { connectionsAccepted: 0, connectionsRefused: 0, openConnections: 0, frames: 0, strayBytes: 0 };
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly perIp = new Map<string, number>();
  /** Every socket, from TCP accept on: TLS sockets still in their handshake are not Connections yet. */
  private readonly sockets = new Set<net.Socket>();
  /** Raw sockets refused by address (their TLS wrapper's error is not a handshake failure). */
  private readonly refusedSockets = new WeakSet<net.Socket>();
  private closing = false;

  private constructor(private readonly opts: MllpListenerOptions) {
    const iface = opts.tls ? 'mllps' : 'mllp';
    const onSocket = (socket: net.Socket): void => this.accept(socket, iface);
    if (opts.tls) {
      this.server = tls.createServer(
        {
          key: opts.tls.key,
          cert: opts.tls.cert,
          ca: opts.tls.ca,
          requestCert: opts.tls.requestClientCert || opts.tls.requireClientCert,
          rejectUnauthorized: opts.tls.requireClientCert,
          allowHalfOpen: true,
          // A client that never finishes its handshake must not hold a socket for Node's default 120 s.
          handshakeTimeout: 10_000,
        },
        onSocket,
      );
      this.server.on('tlsClientError', (e: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
        if (this.refusedSockets.has((socket as unknown as { _parent?: net.Socket })._parent ?? socket)) return;
        this.stats.connectionsRefused++;
        const err = new TributaryError('NET_TLS_HANDSHAKE', { reason: e.code ?? e.message });
        opts.journal.recordEvent({ at: Date.now(), kind: 'tls-refused', remoteAddress: socket.remoteAddress ?? null, connectionId: null, code: err.code, detail: err.message });
        opts.logger.warn('mllp tls handshake refused', { code: err.code, remoteAddress: socket.remoteAddress });
      });
    } else {
      this.server = net.createServer({ allowHalfOpen: true }, onSocket);
    }
  }

  /**
   * Start listening.
   * @throws TributaryError `NET_PORT_IN_USE` or `NET_LISTEN_FAILED`
   */
  static listen(opts: MllpListenerOptions): Promise<MllpListener> {
    const l = new MllpListener(opts);
    l.server.on('connection', (socket: net.Socket) => {
      // Raw TCP accept (before any TLS handshake): an address no sender allows is closed here,
      // before a byte is read.
      // (Plain MLLP is checked in accept(), which runs first for a net server.)
      if (opts.tls && l.refuseAddress(socket)) {
        l.refusedSockets.add(socket);
        return;
      }
      l.sockets.add(socket);
      socket.once('close', () => l.sockets.delete(socket));
    });
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        const what = opts.tls ? 'MLLP/TLS' : 'MLLP';
        reject(
          e.code === 'EADDRINUSE'
            ? new TributaryError('NET_PORT_IN_USE', { what, port: opts.port, host: opts.host })
            : new TributaryError('NET_LISTEN_FAILED', { what, port: opts.port, host: opts.host, reason: e.code ?? e.message }),
        );
      };
      l.server.once('error', onError);
      l.server.listen({ host: opts.host, port: opts.port }, () => {
        l.server.off('error', onError);
        l.server.on('error', (e) => opts.logger.error('mllp listener error', { reason: e.message }));
        resolve(l);
      });
    });
  }

  /** The bound port. */
  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /**
   * Serve an already-connected socket as if it had been accepted (socket activation, and tests
   * that drive a connection with a fake socket). Limits apply as for accepted connections.
   */
  adopt(socket: net.Socket): void {
    this.accept(socket, this.opts.tls ? 'mllps' : 'mllp');
  }

  /** Connections currently paused because their ACKs cannot be written or too many frames wait. */
  get pausedConnections(): number {
    let n = 0;
    for (const c of this.connections) if (c.isPaused) n++;
    return n;
  }

  /**
   * Close a socket from an address no sender allows, before reading it, with a transport event and
   * (through the engine) an audit row. True when refused.
   * @internal
   */
  refuseAddress(socket: net.Socket): boolean {
    const senders = this.opts.senders;
    const ip = socket.remoteAddress ?? '';
    if (!senders || senders.allowAddress(ip)) return false;
    this.stats.connectionsRefused++;
    const err = new TributaryError('AUTH_ADDRESS_REFUSED', { address: ip });
    this.opts.journal.recordEvent({ at: Date.now(), kind: 'address-refused', remoteAddress: ip, connectionId: null, code: err.code, detail: err.message });
    this.opts.logger.warn('mllp connection refused', { code: err.code, remoteAddress: ip });
    senders.refused(ip, this.opts.tls ? 'mllps' : 'mllp');
    socket.destroy();
    return true;
  }

  private accept(socket: net.Socket, iface: string): void {
    // TLS sockets were checked at TCP accept, before their handshake.
    if (!this.opts.tls && this.refuseAddress(socket)) return;
    const ip = socket.remoteAddress ?? '';
    const n = this.perIp.get(ip) ?? 0;
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.opts.maxConnections || n >= this.opts.maxConnectionsPerIp) {
      this.stats.connectionsRefused++;
      const perIp = n >= this.opts.maxConnectionsPerIp;
      const err = new TributaryError('MLLP_TOO_MANY_CONNECTIONS', {
        limit: perIp ? this.opts.maxConnectionsPerIp : this.opts.maxConnections,
        scope: perIp ? ' from this address' : '',
      });
      this.opts.journal.recordEvent({ at: Date.now(), kind: 'connection-refused', remoteAddress: ip, connectionId: null, code: err.code, detail: err.message });
      this.opts.logger.warn('mllp connection refused', { code: err.code, remoteAddress: ip });
      socket.destroy();
      return;
    }
    this.perIp.set(ip, n + 1);
    this.stats.connectionsAccepted++;
    this.stats.openConnections++;
    this.connections.add(new Connection(socket, this, this.opts, iface));
  }

  /** @internal called by a closed connection */
  forget(c: Connection): void {
    if (!this.connections.delete(c)) return;
    this.stats.openConnections--;
    const ip = c.meta.remoteAddress ?? '';
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
  }

  /** @internal record a connection-level event in the journal and the log */
  transportEvent(c: Connection, kind: string, err: TributaryError): void {
    this.opts.journal.recordEvent({ at: Date.now(), kind, remoteAddress: c.meta.remoteAddress, connectionId: c.id, code: err.code, detail: err.message });
    this.opts.logger.info('mllp connection event', { kind, connectionId: c.id, code: err.code });
  }

  /**
   * Stop accepting, let every connection finish what it has in flight, then end them. After
   * `timeoutMs` the remaining sockets are destroyed.
   */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.shutdown();
    // At the deadline every socket goes, including TLS sockets still in their handshake (they are
    // not Connections yet, and would otherwise keep server.close() waiting).
    const timer = setTimeout(() => {
      for (const c of this.connections) c.socket.destroy();
      for (const socket of this.sockets) socket.destroy();
    }, timeoutMs);
    await closed;
    clearTimeout(timer);
  }
}
