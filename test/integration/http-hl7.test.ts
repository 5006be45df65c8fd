// SPDX-License-Identifier: Apache-2.0
/** HL7 v2 over HTTP (`POST /hl7`) and the authentication hooks, over real loopback HTTP. */
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import { join } from 'node:path';
import { Ingestor } from '../../src/ingest/ingest.js';
import { startHttpServer, type HttpServerOptions } from '../../src/interfaces/http-server.js';
import { Journal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import { inProcessEngine, tempDir } from '../helpers/engine.js';
import { adtA01, msa } from '../helpers/messages.js';

const ER7 = 'x-application/hl7-v2+er7';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/**
 * One request with node:http. `partialBody` announces `Content-Length` of the whole body but
 * sends only its first half and waits: an answer then proves the server did not wait for the body.
 */
function request(
  port: number,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer; partialBody?: boolean },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, 'utf8');
    const headers: Record<string, string> = { ...opts.headers };
    if (body) headers['content-length'] = String(body.length);
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'POST', path: opts.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') });
        req.destroy();
      });
    });
    req.on('error', reject);
    if (body && opts.partialBody) req.write(body.subarray(0, body.length >> 1));
    else req.end(body);
  });
}

const basic = (user: string, secret: string): string => 'Basic ' + Buffer.from(`${user}:${secret}`).toString('base64');

/** A bare HTTP server over a fresh journal, with options the engine does not set (hooks). */
async function server(t: ExecutionContext, extra: Partial<HttpServerOptions> = {}): Promise<{ port: number; journal: Journal }> {
  const journal = Journal.open({ file: join(tempDir(t), 'tributary.db') });
  const ingestor = new Ingestor({ journal, logger: silentLogger });
  const handle = await startHttpServer({ host: '127.0.0.1', port: 0, health: () => ({}), ingestor, logger: silentLogger, ...extra });
  t.teardown(async () => {
    await handle.close();
    journal.close();
  });
  return { port: handle.port, journal };
}

test('POST /hl7: AA after the journal row exists, raw bytes exact, interface http, remote 127.0.0.1', async (t) => {
  const engine = await inProcessEngine(t);
  // LF segment endings, as HTTP clients often send: passed on unchanged.
  const text = adtA01('HTTP-0001').replace(/\r/g, '\n');
  const res = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': ER7 }, body: text });
  t.is(res.status, 200);
  t.is(res.headers['content-type'], 'x-application/hl7-v2+er7; charset=utf-8');
  const ack = msa(res.text);
  t.is(ack.code, 'AA');
  t.is(ack.controlId, 'HTTP-0001');
  t.regex(res.text, /^MSH\|\^~\\&\|TRIBUTARY\|TRIBUTARY\|PAS\|RXX\|/);
  const rows = engine.journal.list();
  t.is(rows.length, 1);
  const row = rows[0]!;
  t.is(row.status, 'accepted');
  t.is(row.interface, 'http');
  t.is(row.connectionId, null);
  t.is(row.remoteAddress, '127.0.0.1');
  t.is(typeof row.remotePort, 'number');
  t.is(row.controlId, 'HTTP-0001');
  t.true(row.raw.equals(Buffer.from(text, 'utf8')));
  t.is(row.ack, res.text);
});

test('POST /hl7 accepts application/hl7-v2 and text/plain (any charset parameter, bytes not re-decoded)', async (t) => {
  const engine = await inProcessEngine(t);
  // Latin-1 bytes labelled 8859/1 in MSH-18: the Ingestor decodes them, not the HTTP layer.
  const latin1 = Buffer.from(adtA01('HTTP-L1').replace('UNICODE UTF-8', '8859/1').replace('TESTPATIENT^ALEX', 'TESTPATIENT^ZOË'), 'latin1');
  const a = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': 'application/hl7-v2' }, body: latin1 });
  const b = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': 'text/plain; charset=utf-8' }, body: adtA01('HTTP-TP') });
  const c = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': 'X-Application/HL7-v2+ER7' }, body: adtA01('HTTP-UC') });
  t.deepEqual([a.status, b.status, c.status], [200, 200, 200]);
  t.deepEqual([msa(a.text).code, msa(b.text).code, msa(c.text).code], ['AA', 'AA', 'AA']);
  const row = engine.journal.list().find((r) => r.controlId === 'HTTP-L1')!;
  t.true(row.raw.equals(latin1));
  t.is(row.charset, '8859/1');
});

test('POST /hl7: garbage and an empty body are journaled and answered AR with HTTP 200', async (t) => {
  const engine = await inProcessEngine(t);
  const garbage = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': 'text/plain' }, body: 'HELLO WORLD' });
  t.is(garbage.status, 200);
  t.is(msa(garbage.text).code, 'AR');
  t.regex(garbage.text, /does not start with an MSH segment/);
  const empty = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': ER7 }, body: '' });
  t.is(empty.status, 200);
  t.is(msa(empty.text).code, 'AR');
  const rows = engine.journal.list();
  t.deepEqual(
    rows.map((r) => [r.status, r.reasonCode, r.interface]),
    [
      ['rejected', 'HL7_NO_MSH', 'http'],
      ['rejected', 'HL7_EMPTY', 'http'],
    ],
  );
});

test('POST /hl7: a duplicate MSH-10 gets the first ACK again', async (t) => {
  const engine = await inProcessEngine(t);
  const text = adtA01('HTTP-DUP');
  const first = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': ER7 }, body: text });
  const second = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': ER7 }, body: text });
  t.is(msa(first.text).code, 'AA');
  t.is(second.text, first.text);
  t.deepEqual(
    engine.journal.list().map((r) => r.status),
    ['accepted', 'duplicate'],
  );
});

test('POST /hl7: unsupported or missing content type → 415, nothing journaled', async (t) => {
  const engine = await inProcessEngine(t);
  const json = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  t.is(json.status, 415);
  t.regex(json.text, /^HTTP_UNSUPPORTED_MEDIA_TYPE: unsupported Content-Type "application\/json": expected one of x-application\/hl7-v2\+er7, application\/hl7-v2, text\/plain/);
  const xml = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': 'text/xml' }, body: adtA01('X') });
  t.is(xml.status, 415);
  const none = await request(engine.httpPort, { path: '/hl7', body: adtA01('Y') });
  t.is(none.status, 415);
  t.is(engine.journal.list().length, 0);
});

test('POST /hl7 over http.maxBodyBytes → 413 with a clear message, nothing journaled', async (t) => {
  const engine = await inProcessEngine(t, { http: { maxBodyBytes: 2048 } });
  const big = adtA01('BIG') + `NTE|1||${'x'.repeat(4000)}\r`;
  const res = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': ER7 }, body: big });
  t.is(res.status, 413);
  t.is(res.text, 'HTTP_BODY_TOO_LARGE: request body exceeds http.maxBodyBytes (2048 bytes)\n');
  // Just under the limit still works.
  const ok = await request(engine.httpPort, { path: '/hl7', headers: { 'content-type': ER7 }, body: adtA01('SMALL') });
  t.is(msa(ok.text).code, 'AA');
  t.deepEqual(
    engine.journal.list().map((r) => r.controlId),
    ['SMALL'],
  );
});

test('GET /health keeps its JSON; unknown paths are 404', async (t) => {
  const engine = await inProcessEngine(t);
  const res = await fetch(`http://127.0.0.1:${engine.httpPort}/health`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await res.json()) as Record<string, unknown>;
  t.is(body.status, 'ok');
  t.is(typeof body.uptimeSeconds, 'number');
  t.truthy(body.journal);
  const nf = await fetch(`http://127.0.0.1:${engine.httpPort}/nope?x=1`);
  t.is(nf.status, 404);
  t.deepEqual(await nf.json(), { error: 'not found', path: '/nope' });
  const get = await fetch(`http://127.0.0.1:${engine.httpPort}/hl7`);
  t.is(get.status, 404);
});

test('authenticate hook: missing or wrong credentials → 401 + WWW-Authenticate, identical bodies; right ones → 200', async (t) => {
  const seen: Array<{ username: string; remoteAddress: string }> = [];
  const { port, journal } = await server(t, {
    authenticate: ({ username, secret, remoteAddress }) => {
      seen.push({ username, remoteAddress });
      return username === 'user' && secret === 's3cret:with:colons' ? { senderId: 'sender-1' } : null;
    },
  });
  const post = (headers: Record<string, string>) =>
    request(port, { path: '/hl7', headers: { 'content-type': ER7, ...headers }, body: adtA01(`AUTH-${Object.keys(headers).length}`) });
  const none = await post({});
  const wrongUser = await post({ authorization: basic('someone', 's3cret:with:colons') });
  const wrongSecret = await post({ authorization: basic('user', 'nope') });
  const garbled = await post({ authorization: 'Basic !!!' });
  const bearer = await post({ authorization: 'Bearer abc' });
  for (const r of [none, wrongUser, wrongSecret, garbled, bearer]) {
    t.is(r.status, 401);
    t.is(r.headers['www-authenticate'], 'Basic realm="tributary"');
  }
  t.is(wrongUser.text, wrongSecret.text);
  t.is(none.text, wrongSecret.text);
  t.is(wrongUser.text, 'HTTP_UNAUTHORIZED: authentication required\n');
  t.is(journal.list().length, 0);

  const ok = await post({ authorization: basic('user', 's3cret:with:colons') });
  t.is(ok.status, 200);
  t.is(msa(ok.text).code, 'AA');
  t.deepEqual(seen, [
    { username: 'someone', remoteAddress: '127.0.0.1' },
    { username: 'user', remoteAddress: '127.0.0.1' },
    { username: 'user', remoteAddress: '127.0.0.1' },
  ]);
  t.is(journal.list().length, 1);
  // The health check stays open.
  t.is((await request(port, { method: 'GET', path: '/health' })).status, 200);
});

test('authenticate hook: 401 is answered before the body is read; an async hook works', async (t) => {
  const { port } = await server(t, { authenticate: async ({ username }) => (username === 'a' ? { senderId: 'A' } : null) });
  const res = await request(port, { path: '/hl7', headers: { 'content-type': ER7 }, body: adtA01('PARTIAL'), partialBody: true });
  t.is(res.status, 401);
  const ok = await request(port, { path: '/hl7', headers: { 'content-type': ER7, authorization: basic('a', 'x') }, body: adtA01('ASYNC') });
  t.is(msa(ok.text).code, 'AA');
});

test('allowAddress hook false → 403 before the body is read, generic body, nothing journaled', async (t) => {
  let asked = '';
  const { port, journal } = await server(t, {
    allowAddress: (a) => {
      asked = a;
      return false;
    },
    authenticate: () => ({ senderId: 'x' }),
  });
  const res = await request(port, { path: '/hl7', headers: { 'content-type': ER7, authorization: basic('u', 's') }, body: adtA01('NOPE'), partialBody: true });
  t.is(res.status, 403);
  t.is(res.text, 'HTTP_FORBIDDEN: access denied\n');
  t.is(res.headers['www-authenticate'], undefined);
  t.is(asked, '127.0.0.1');
  const soap = await request(port, { path: '/services/hl7', headers: { 'content-type': 'text/xml' }, body: '<x/>' });
  t.is(soap.status, 403);
  t.is(journal.list().length, 0);
});

test('allowAddress true and no authenticate hook: accepted without credentials', async (t) => {
  const { port, journal } = await server(t, { allowAddress: (a) => a === '127.0.0.1' });
  const res = await request(port, { path: '/hl7', headers: { 'content-type': ER7 }, body: adtA01('OPEN') });
  t.is(msa(res.text).code, 'AA');
  t.is(journal.list()[0]!.interface, 'http');
});

test('trustProxy: X-Forwarded-For is believed only from a configured proxy', async (t) => {
  const trusted = await server(t, { trustProxy: ['127.0.0.1'] });
  const untrusted = await server(t, { trustProxy: ['10.9.9.9'] });
  for (const s of [trusted, untrusted]) {
    await request(s.port, { path: '/hl7', headers: { 'content-type': ER7, 'x-forwarded-for': '203.0.113.7' }, body: adtA01('PROXY') });
  }
  const a = trusted.journal.list()[0]!;
  const b = untrusted.journal.list()[0]!;
  t.is(a.remoteAddress, '203.0.113.7');
  t.is(a.remotePort, null);
  t.is(b.remoteAddress, '127.0.0.1');
  t.is(typeof b.remotePort, 'number');
});

test('an invalid trustProxy entry is a configuration error', async (t) => {
  const journal = Journal.open({ file: join(tempDir(t), 'tributary.db') });
  t.teardown(() => journal.close());
  const ingestor = new Ingestor({ journal, logger: silentLogger });
  const err = await t.throwsAsync(startHttpServer({ host: '127.0.0.1', port: 0, health: () => ({}), ingestor, trustProxy: ['not-an-ip'] }));
  t.regex(err!.message, /http\.trustProxy/);
});
