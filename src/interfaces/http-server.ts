// SPDX-License-Identifier: Apache-2.0
/**
 * The HTTP port, on Fastify 5: `GET /health` (liveness plus counters, no PHI) and HL7 v2 over HTTP
 * (`POST /hl7`, PKB's SOAP form `POST /services/hl7`, its WSDL; see `hl7-http.ts` and
 * `docs/http.md`). The FHIR API and the web console will be registered on the same server.
 *
 * Fastify rather than bare node:http: encapsulated plugins (each API gets its own hooks, body
 * parsers and error handler), body limits enforced while reading, trusted-proxy handling, and
 * graceful close, all maintained upstream.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type net from 'node:net';
import { TributaryError, errorMessage } from '../errors.js';
import type { Ingestor } from '../ingest/ingest.js';
import { silentLogger, type Logger } from '../log.js';
import { hl7HttpPlugin, type Hl7HttpOptions, type HttpAllowAddress, type HttpAnonymous, type HttpAuthenticate } from './hl7-http.js';

export type { HttpAllowAddress, HttpAnonymous, HttpAuthenticate, HttpAuthRequest, HttpAuthResult } from './hl7-http.js';

/** Default of `http.maxBodyBytes`. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Called for `GET /health`; returns the JSON body. */
  health: () => Record<string, unknown>;
  /** Journals HL7 bodies and builds their ACKs. */
  ingestor: Ingestor;
  logger?: Logger;
  /** Largest request body; bigger ones get 413 (default 16 MiB). */
  maxBodyBytes?: number;
  /**
   * Addresses or CIDRs of reverse proxies whose `X-Forwarded-For`/`-Proto`/`-Host` are believed;
   * false (default) believes none, and the TCP peer is the sender.
   */
  trustProxy?: false | readonly string[];
  /**
   * Check HTTP Basic credentials of HL7 requests. Absent: HL7 requests are accepted without
   * credentials (safe only with the default loopback binding).
   */
  authenticate?: HttpAuthenticate;
  /** Check the source address of HL7 requests; false → 403 before the body is read. */
  allowAddress?: HttpAllowAddress;
  /** Identify a request without credentials by its address (see {@link Hl7HttpOptions.anonymous}). */
  anonymous?: HttpAnonymous;
}

/** A running HTTP server. */
export interface HttpServerHandle {
  readonly port: number;
  /** Stop accepting, finish requests in flight; after `timeoutMs` close the remaining connections. */
  close(timeoutMs?: number): Promise<void>;
}

function createApp(opts: HttpServerOptions, logger: Logger): FastifyInstance {
  try {
    return Fastify({
      logger: false,
      bodyLimit: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      trustProxy: opts.trustProxy && opts.trustProxy.length > 0 ? [...opts.trustProxy] : false,
      keepAliveTimeout: 5000,
      // A body must arrive within 5 minutes (the node:http default; Fastify's is no limit).
      requestTimeout: 300_000,
      return503OnClosing: true,
    });
  } catch (e) {
    logger.error('http server options rejected', { reason: errorMessage(e) });
    throw new TributaryError('CONFIG_INVALID', { issues: `http.trustProxy: ${errorMessage(e)}` });
  }
}

/**
 * Start the HTTP server.
 * @throws TributaryError `NET_PORT_IN_USE`, `NET_LISTEN_FAILED`, or `CONFIG_INVALID` (bad trustProxy)
 */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServerHandle> {
  const logger = opts.logger ?? silentLogger;
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const app = createApp(opts, logger);

  app.get('/health', async () => ({ status: 'ok', ...opts.health() }));
  await app.register(hl7HttpPlugin, {
    ingestor: opts.ingestor,
    logger,
    maxBodyBytes,
    authenticate: opts.authenticate,
    allowAddress: opts.allowAddress,
    anonymous: opts.anonymous,
  });
  app.setNotFoundHandler(async (req, reply) => {
    const path = req.url.split('?')[0];
    return reply.code(404).send({ error: 'not found', path });
  });

  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    await app.close().catch(() => undefined);
    throw err.code === 'EADDRINUSE'
      ? new TributaryError('NET_PORT_IN_USE', { what: 'HTTP', port: opts.port, host: opts.host })
      : new TributaryError('NET_LISTEN_FAILED', { what: 'HTTP', port: opts.port, host: opts.host, reason: err.code ?? err.message });
  }
  app.server.on('error', (e) => logger.error('http server error', { reason: e.message }));
  let closing: Promise<void> | undefined;
  return {
    port: (app.server.address() as net.AddressInfo).port,
    close: (timeoutMs = 10_000) =>
      (closing ??= (async () => {
        // In-flight requests wait for their ACK (journal commit); a client that never finishes
        // its body must not hold the shutdown forever.
        const timer = setTimeout(() => app.server.closeAllConnections(), timeoutMs);
        try {
          await app.close();
        } finally {
          clearTimeout(timer);
        }
      })()),
  };
}
