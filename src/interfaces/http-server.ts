// SPDX-License-Identifier: Apache-2.0
/**
 * The HTTP port. For now it serves only `GET /health` (liveness plus counters, no PHI), so that
 * load balancers and the CLI can check a running engine; HL7 over HTTP, the FHIR API and the web
 * console will live on the same port.
 */
import http from 'node:http';
import type net from 'node:net';
import { TributaryError } from '../errors.js';

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Called for `GET /health`; returns the JSON body. */
  health: () => Record<string, unknown>;
}

/** A running HTTP server. */
export interface HttpServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Start the HTTP server.
 * @throws TributaryError `NET_PORT_IN_USE` or `NET_LISTEN_FAILED`
 */
export function startHttpServer(opts: HttpServerOptions): Promise<HttpServerHandle> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      send(res, 200, { status: 'ok', ...opts.health() });
    } else {
      send(res, 404, { error: 'not found', path });
    }
  });
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'EADDRINUSE'
          ? new TributaryError('NET_PORT_IN_USE', { what: 'HTTP', port: opts.port, host: opts.host })
          : new TributaryError('NET_LISTEN_FAILED', { what: 'HTTP', port: opts.port, host: opts.host, reason: e.code ?? e.message }),
      );
    });
    server.listen({ host: opts.host, port: opts.port }, () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
