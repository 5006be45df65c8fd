// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 v2 over HTTP, as a Fastify plugin on the engine's HTTP port (`docs/http.md`):
 *
 * - `POST /hl7`: the body is the ER7 message, the answer is the ER7 ACK (HTTP 200 whatever the ACK
 *   code: AR and AE are HL7-level answers).
 * - `POST /services/hl7`: PKB's SOAP 1.1 form (`acceptMessage/arg0` in, `acceptMessageResponse/return`
 *   out), `GET /services/hl7?wsdl` its WSDL.
 *
 * Bodies are handed to the {@link Ingestor} as bytes (it decodes the charset, journals, and builds
 * the ACK after the commit); nothing here builds an ACK. Requests refused at the HTTP level (address,
 * credentials, size, content type, malformed SOAP) never reach the Ingestor and are not journaled.
 *
 * Who may send is pluggable: `allowAddress` (403, before the body is read) and `authenticate`
 * (HTTP Basic; 401 with `WWW-Authenticate`, before the body is read). Without `authenticate` every
 * request is accepted without credentials, which is only safe while the port is bound to loopback.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TributaryError, errorMessage, isTributaryError, type ErrorCode } from '../errors.js';
import type { FrameMeta, Ingestor } from '../ingest/ingest.js';
import type { Logger } from '../log.js';
import { acceptMessageResponse, parseAcceptMessage, soapContentType, soapFault, wsdl, type SoapVersion } from './soap.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The sender the `authenticate` hook named; null when no hook is configured. */
    senderId: string | null;
  }
}

/** What the `authenticate` hook is given: the decoded Basic credentials and the source address. */
export interface HttpAuthRequest {
  username: string;
  secret: string;
  remoteAddress: string;
}

/** What the `authenticate` hook answers for good credentials. */
export interface HttpAuthResult {
  senderId: string;
}

/** Check Basic credentials; null (or a promise of null) refuses them. */
export type HttpAuthenticate = (req: HttpAuthRequest) => HttpAuthResult | null | Promise<HttpAuthResult | null>;

/** Check a source address (the TCP peer, or the client named by a trusted proxy). */
export type HttpAllowAddress = (remoteAddress: string) => boolean;

/** Options of {@link hl7HttpPlugin}. */
export interface Hl7HttpOptions {
  ingestor: Ingestor;
  logger: Logger;
  /** For the 413 message; the limit itself is the server's `bodyLimit`. */
  maxBodyBytes: number;
  authenticate?: HttpAuthenticate;
  allowAddress?: HttpAllowAddress;
  /**
   * A request without credentials: the sender known by its address alone (one configured with no
   * credential, like the first-run loopback sender), or null for 401.
   */
  anonymous?: HttpAnonymous;
}

/** Identify a request that carries no credentials by its address; null → 401. */
export type HttpAnonymous = (remoteAddress: string) => HttpAuthResult | null;

/** Content types `POST /hl7` takes. */
export const ER7_CONTENT_TYPES = ['x-application/hl7-v2+er7', 'application/hl7-v2', 'text/plain'] as const;
/** Content types `POST /services/hl7` takes. */
export const SOAP_CONTENT_TYPES = ['text/xml', 'application/soap+xml'] as const;
/** Content type of the ACK of `POST /hl7`. */
export const ACK_CONTENT_TYPE = 'x-application/hl7-v2+er7; charset=utf-8';
/** Realm of the Basic challenge. */
export const BASIC_REALM = 'tributary';

const TEXT = 'text/plain; charset=utf-8';

/** The decoded `Authorization: Basic` credentials, or null when absent or unreadable. */
export function parseBasicAuthorization(header: string | undefined): { username: string; secret: string } | null {
  if (!header) return null;
  const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

function pathOf(req: FastifyRequest): string {
  const q = req.url.indexOf('?');
  return q < 0 ? req.url : req.url.slice(0, q);
}

function charsetOf(contentType: string | undefined): string | null {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '');
  return m ? m[1]! : null;
}

function isWsdlRequest(req: FastifyRequest): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const q = req.url.indexOf('?');
  return q >= 0 && pathOf(req) === '/services/hl7' && req.url.slice(q + 1).split('&').some((p) => p.split('=')[0]!.toLowerCase() === 'wsdl');
}

function frameMeta(req: FastifyRequest, iface: 'http' | 'soap'): FrameMeta & { senderId: string | null } {
  const peer = req.socket.remoteAddress ?? null;
  return {
    interface: iface,
    connectionId: null,
    remoteAddress: req.ip ?? peer,
    // Behind a trusted proxy the peer's port is the proxy's, not the client's.
    remotePort: req.ip === peer ? (req.socket.remotePort ?? null) : null,
    senderId: req.senderId,
  };
}

function bodyBytes(body: unknown): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0);
}

/** An HTTP-level refusal: status plus catalog error. */
interface Refusal {
  status: number;
  error: TributaryError;
}

const MEDIA_TYPE_LIMIT = 100;

/** Map an error raised while routing or reading the body to a status and a catalog error. */
function refusalFor(err: FastifyError | Error, req: FastifyRequest, expected: readonly string[], maxBodyBytes: number): Refusal {
  const code = (err as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, error: new TributaryError('HTTP_BODY_TOO_LARGE', { maxBodyBytes }) };
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    const contentType = (req.headers['content-type'] ?? '(none)').slice(0, MEDIA_TYPE_LIMIT);
    return { status: 415, error: new TributaryError('HTTP_UNSUPPORTED_MEDIA_TYPE', { contentType, expected: expected.join(', ') }) };
  }
  if (isTributaryError(err)) return { status: err.code === 'HTTP_SOAP_MALFORMED' ? 500 : 400, error: err };
  const status = (err as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return { status, error: new TributaryError('HTTP_BAD_REQUEST', { reason: err.message }) };
  }
  return { status: 500, error: new TributaryError('INTERNAL', { reason: 'see the engine log' }) };
}

/**
 * Register the HL7 routes on `app` (an encapsulated context: the hooks and body parsers here apply
 * to these routes only, not to `/health` or later APIs).
 */
export async function hl7HttpPlugin(app: FastifyInstance, opts: Hl7HttpOptions): Promise<void> {
  const { ingestor, logger, maxBodyBytes } = opts;

  const logRefusal = (req: FastifyRequest, status: number, code: ErrorCode | string): void => {
    logger.warn('http request refused', { code, status, method: req.method, path: pathOf(req), remoteAddress: req.ip });
  };
  const refuse = (req: FastifyRequest, reply: FastifyReply, status: number, code: 'HTTP_FORBIDDEN' | 'HTTP_UNAUTHORIZED'): FastifyReply => {
    logRefusal(req, status, code);
    if (status === 401) reply.header('www-authenticate', `Basic realm="${BASIC_REALM}"`);
    // Deliberately generic: the same text whatever was wrong (no user/secret oracle).
    return reply.code(status).header('content-type', TEXT).send(`${code}: ${new TributaryError(code).message}\n`);
  };

  app.decorateRequest('senderId', null);

  // onRequest runs before the body is read: refused senders cannot make us read (or buffer) it.
  app.addHook('onRequest', async (req, reply) => {
    if (opts.allowAddress && !opts.allowAddress(req.ip)) return refuse(req, reply, 403, 'HTTP_FORBIDDEN');
    if (!opts.authenticate || isWsdlRequest(req)) return;
    const credentials = parseBasicAuthorization(req.headers.authorization);
    let result: HttpAuthResult | null = null;
    if (credentials) {
      try {
        result = await opts.authenticate({ ...credentials, remoteAddress: req.ip });
      } catch (e) {
        logger.error('http authenticate hook failed', { code: 'INTERNAL', reason: errorMessage(e), remoteAddress: req.ip });
        throw e;
      }
    }
    else if (opts.anonymous && req.headers.authorization === undefined) result = opts.anonymous(req.ip);
    if (!result) return refuse(req, reply, 401, 'HTTP_UNAUTHORIZED');
    req.senderId = result.senderId;
  });

  // --- POST /hl7: ER7 in, ER7 ACK out
  await app.register(async (er7) => {
    er7.removeAllContentTypeParsers();
    // Raw bytes: the Ingestor decodes the charset (MSH-18, BOM), so the Content-Type charset is ignored.
    er7.addContentTypeParser([...ER7_CONTENT_TYPES], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    er7.setErrorHandler((err: FastifyError, req, reply) => {
      const { status, error } = refusalFor(err, req, ER7_CONTENT_TYPES, maxBodyBytes);
      if (status >= 500) logger.error('http request failed', { code: error.code, reason: err.message, path: pathOf(req) });
      else logRefusal(req, status, error.code);
      return reply.code(status).header('content-type', TEXT).send(`${error.code}: ${error.message}\n`);
    });
    er7.post('/hl7', async (req, reply) => {
      const r = await ingestor.submit(bodyBytes(req.body), frameMeta(req, 'http'));
      logger.debug('http message answered', { interface: 'http', controlId: r.controlId, ackCode: r.ackCode, ids: r.ids });
      return reply.code(200).header('content-type', ACK_CONTENT_TYPE).send(r.ack);
    });
  });

  // --- POST /services/hl7: PKB's SOAP form; GET ?wsdl
  await app.register(async (soap) => {
    soap.removeAllContentTypeParsers();
    soap.addContentTypeParser([...SOAP_CONTENT_TYPES], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    const versionOf = (req: FastifyRequest): SoapVersion =>
      /^\s*application\/soap\+xml/i.test(req.headers['content-type'] ?? '') ? '1.2' : '1.1';
    const fault = (reply: FastifyReply, status: number, error: TributaryError, version: SoapVersion): FastifyReply => {
      const client = status < 500 || error.code === 'HTTP_SOAP_MALFORMED';
      return reply
        .code(status)
        .header('content-type', soapContentType(version))
        .send(soapFault(error.message, { client, version, code: error.code }));
    };
    soap.setErrorHandler((err: FastifyError, req, reply) => {
      const { status, error } = refusalFor(err, req, SOAP_CONTENT_TYPES, maxBodyBytes);
      if (status >= 500 && error.code === 'INTERNAL') logger.error('http request failed', { code: error.code, reason: err.message, path: pathOf(req) });
      else logRefusal(req, status, error.code);
      return fault(reply, status, error, versionOf(req));
    });
    soap.post('/services/hl7', async (req, reply) => {
      let parsed;
      try {
        parsed = parseAcceptMessage(bodyBytes(req.body), charsetOf(req.headers['content-type']));
      } catch (e) {
        if (!isTributaryError(e, 'HTTP_SOAP_MALFORMED')) throw e;
        logRefusal(req, 500, e.code);
        // SOAP 1.1 over HTTP answers every fault with 500; SOAP 1.2 a Sender fault with 400.
        const version = versionOf(req);
        return fault(reply, version === '1.1' ? 500 : 400, e, version);
      }
      const r = await ingestor.submit(Buffer.from(parsed.message, 'utf8'), frameMeta(req, 'soap'));
      logger.debug('http message answered', { interface: 'soap', controlId: r.controlId, ackCode: r.ackCode, ids: r.ids });
      return reply.code(200).header('content-type', soapContentType(parsed.version)).send(acceptMessageResponse(r.ack, parsed.version));
    });
    soap.get('/services/hl7', async (req, reply) => {
      if (!isWsdlRequest(req)) {
        return reply
          .code(405)
          .header('allow', 'POST')
          .header('content-type', TEXT)
          .send('POST a SOAP acceptMessage request here; GET /services/hl7?wsdl for the WSDL\n');
      }
      const endpoint = `${req.protocol}://${req.host}/services/hl7`;
      return reply.code(200).header('content-type', 'text/xml; charset=utf-8').send(wsdl(endpoint));
    });
  });
}
