// SPDX-License-Identifier: Apache-2.0
/**
 * Who may send, enforced end to end over real loopback sockets: allowlists (127.0.0.1 vs
 * 127.0.0.2), MSH-8 credentials, TLS client certificates, HTTP Basic (plain and SOAP), partner
 * grants, MSH-3 applications, the brute-force lockout, and the journal and audit rows of each.
 */
import test from 'ava';
import http from 'node:http';
import net from 'node:net';
import type { Engine } from '../../src/engine/engine.js';
import { MllpClient } from '../../src/interfaces/mllp-client.js';
import { inProcessEngine, tempDir } from '../helpers/engine.js';
import { adtA01, msa } from '../helpers/messages.js';
import { addSender, adminStore } from '../helpers/senders.js';
import { makePki } from '../helpers/tls.js';

/** An engine whose first-run demo sender is removed: only what the test adds may send. */
async function lockedEngine(t: Parameters<typeof inProcessEngine>[0], overrides: Record<string, unknown> = {}): Promise<Engine> {
  const engine = await inProcessEngine(t, overrides);
  const store = adminStore(engine);
  store.removeSender('demo-loopback');
  store.removeOrganisation('demo');
  return engine;
}

function connect(engine: Engine, localAddress = '127.0.0.1'): Promise<MllpClient> {
  return MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort, localAddress, ackTimeoutMs: 5000 });
}

async function send(engine: Engine, message: string, localAddress = '127.0.0.1'): Promise<ReturnType<typeof msa>> {
  const c = await connect(engine, localAddress);
  try {
    return msa(await c.send(message));
  } finally {
    await c.close();
  }
}

/** Wait for the next group commit (audit rows of refusals are written with it). */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

function audit(engine: Engine, action: string) {
  return adminStore(engine)
    .listAudit()
    .filter((r) => r.action === action);
}

test('first run: a demo organisation with a loopback-only sender, no credential', async (t) => {
  const engine = await inProcessEngine(t);
  const store = adminStore(engine);
  t.deepEqual(store.listOrganisations().map((o) => o.id), ['demo']);
  const [sender] = store.listSenders();
  t.is(sender!.id, 'demo-loopback');
  t.deepEqual(sender!.allowCidrs, ['127.0.0.0/8', '::1/128']);
  t.deepEqual(store.listCredentials(), []);
  t.is((await send(engine, adtA01('DEMO-1'))).code, 'AA');
  const row = engine.journal.list()[0]!;
  t.is(row.sender, 'demo-loopback');
  t.is(row.organisationId, 'demo');
});

test('allowlists: 127.0.0.1 is served, 127.0.0.2 is closed at accept with an event and an audit row', async (t) => {
  const engine = await lockedEngine(t);
  addSender(engine, { id: 'pas', organisationId: 'st-elsewhere', allowCidrs: ['127.0.0.1/32'] });
  t.is((await send(engine, adtA01('ALLOW-1'))).code, 'AA');

  // From 127.0.0.2: the socket is closed before anything is read; no ACK, nothing journaled.
  const sock = net.connect({ host: '127.0.0.1', port: engine.mllpPort, localAddress: '127.0.0.2' });
  sock.on('error', () => undefined);
  const closed = await new Promise<boolean>((resolve) => {
    sock.on('close', () => resolve(true));
    sock.on('connect', () => sock.write(`\x0b${adtA01('ALLOW-2')}\x1c\r`));
    setTimeout(() => resolve(false), 3000);
  });
  t.true(closed, 'the connection was closed');
  await settle();
  t.deepEqual(engine.journal.list().map((r) => r.controlId), ['ALLOW-1']);
  const ev = engine.journal.listEvents().find((e) => e.kind === 'address-refused');
  t.is(ev?.code, 'AUTH_ADDRESS_REFUSED');
  t.is(ev?.remoteAddress, '127.0.0.2');
  const rows = audit(engine, 'auth.address-refused');
  t.is(rows.length, 1);
  t.is(rows[0]!.detail.remoteAddress, '127.0.0.2');

  // Widening the allowlist takes effect for the next connection, without a restart.
  adminStore(engine).updateSender('pas', { allowCidrs: ['127.0.0.1/32', '127.0.0.2/32'] });
  t.is((await send(engine, adtA01('ALLOW-3'), '127.0.0.2')).code, 'AA');
});

test('MSH-8 credentials: missing and wrong get the same generic AR; right gets AA; the secret is never stored', async (t) => {
  const engine = await lockedEngine(t);
  const pas = addSender(engine, { id: 'pas', organisationId: 'st-elsewhere', credential: true });
  const user = pas.credential!.username;
  const missing = await send(engine, adtA01('CRED-1'));
  const wrongSecret = await send(engine, adtA01('CRED-2', { security: `${user}:not-the-secret` }));
  const wrongUser = await send(engine, adtA01('CRED-3', { security: `nobody:${pas.credential!.secret}` }));
  const right = await send(engine, adtA01('CRED-4', { security: pas.msh8 }));
  const basicForm = await send(engine, adtA01('CRED-5', { security: `Basic ${Buffer.from(pas.msh8).toString('base64')}` }));
  t.deepEqual([missing, wrongSecret, wrongUser].map((a) => a.code), ['AR', 'AR', 'AR']);
  t.is(missing.text, wrongSecret.text, 'no hint which part was wrong');
  t.is(wrongSecret.text, wrongUser.text);
  t.regex(missing.text, /authentication failed/);
  t.is(right.code, 'AA');
  t.is(basicForm.code, 'AA');

  const rows = engine.journal.list();
  t.deepEqual(rows.map((r) => r.status), ['rejected', 'rejected', 'rejected', 'accepted', 'accepted']);
  t.deepEqual(rows.map((r) => r.reasonCode), ['AUTH_FAILED', 'AUTH_FAILED', 'AUTH_FAILED', null, null]);
  t.deepEqual(rows.map((r) => r.sender), [null, null, null, 'pas', 'pas']);
  for (const r of rows) {
    t.false(r.raw.toString('latin1').includes(pas.credential!.secret), 'secret masked in the stored bytes');
    t.false(r.raw.toString('latin1').includes('not-the-secret'));
  }
  t.regex(rows[3]!.raw.toString('latin1'), /\|20250314081530\|\*\*\*\*\|ADT\^A01/);
  await settle();
  const failed = audit(engine, 'auth.failed');
  t.is(failed.length, 3);
  t.deepEqual(failed.map((r) => r.detail.reason), ['no-credential', 'credential', 'credential']);
  t.deepEqual(failed.map((r) => r.objectId), [null, user, 'nobody']);
  t.false(JSON.stringify(failed).includes(pas.credential!.secret));
});

test('MSH-3: a sender limited to its applications gets AR for another one', async (t) => {
  const engine = await lockedEngine(t);
  const pas = addSender(engine, { id: 'pas', organisationId: 'st-elsewhere', credential: true, applications: ['PAS'] });
  t.is((await send(engine, adtA01('APP-1', { security: pas.msh8 }))).code, 'AA');
  const other = await send(engine, adtA01('APP-2', { security: pas.msh8, sendingApp: 'LAB' }));
  t.is(other.code, 'AR');
  t.regex(other.text, /sending application "LAB"/);
  t.is(engine.journal.list()[1]!.reasonCode, 'AUTH_APPLICATION_REFUSED');
});

test('partners: AR without a grant, AA with one (provenance chain journaled), AR again once revoked', async (t) => {
  const engine = await lockedEngine(t);
  const store = adminStore(engine);
  addSender(engine, { id: 'hospital-pas', organisationId: 'st-elsewhere', credential: true });
  store.addAlias({ value: 'RXX', organisationId: 'st-elsewhere' });
  const partner = addSender(engine, { id: 'acme-feed', organisationId: 'acme', kind: 'partner', credential: true });

  const before = await send(engine, adtA01('P-1', { facility: 'RXX', security: partner.msh8 }));
  t.is(before.code, 'AR');
  t.regex(before.text, /has not granted/);
  const unknown = await send(engine, adtA01('P-2', { facility: 'NOPE', security: partner.msh8 }));
  t.is(unknown.code, 'AR');
  t.regex(unknown.text, /unknown organisation alias "NOPE"/);

  const grant = store.addGrant({ customerOrganisationId: 'st-elsewhere', partnerOrganisationId: 'acme' });
  const granted = await send(engine, adtA01('P-3', { facility: 'RXX', security: partner.msh8 }));
  t.is(granted.code, 'AA');
  store.revokeGrant(grant.id);
  const revoked = await send(engine, adtA01('P-4', { facility: 'RXX', security: partner.msh8 }));
  t.is(revoked.code, 'AR', 'revoking takes effect at once');

  const rows = engine.journal.list();
  t.deepEqual(rows.map((r) => r.reasonCode), ['AUTH_NO_GRANT', 'AUTH_UNKNOWN_ALIAS', null, 'AUTH_NO_GRANT']);
  t.is(rows[2]!.sender, 'acme-feed');
  t.is(rows[2]!.organisationId, 'st-elsewhere');
  t.is(rows[2]!.acting, 'Org acme on behalf of Org st-elsewhere');
  await settle();
  t.is(audit(engine, 'auth.acting-refused').length, 3);
});

test('TLS: a client certificate identifies its sender; without a matching identity or credential: AR', async (t) => {
  const pki = makePki(tempDir(t));
  const engine = await lockedEngine(t, {
    mllp: { tls: { keyFile: pki.serverKey, certFile: pki.serverCert, caFile: pki.caCert, requestClientCert: true } },
  });
  const tlsBase = { ca: pki.read(pki.caCert), servername: undefined as unknown as string };
  addSender(engine, { id: 'tls-pas', organisationId: 'st-elsewhere', tlsIdentities: ['CN=test-sender'] });
  const withCert = await MllpClient.connect({
    host: '127.0.0.1',
    port: engine.mllpPort,
    tls: { ...tlsBase, cert: pki.read(pki.clientCert), key: pki.read(pki.clientKey) },
  });
  t.is(msa(await withCert.send(adtA01('TLS-ID-1'))).code, 'AA');
  // The identity is matched per message: replacing it applies to this open connection at once.
  adminStore(engine).updateSender('tls-pas', { tlsIdentities: ['CN=another-system'] });
  t.is(msa(await withCert.send(adtA01('TLS-ID-1b', { visit: 'V2' }))).code, 'AR');
  adminStore(engine).updateSender('tls-pas', { tlsIdentities: ['CN=test-sender'] });
  await withCert.close();
  const noCert = await MllpClient.connect({ host: '127.0.0.1', port: engine.mllpPort, tls: tlsBase });
  t.is(msa(await noCert.send(adtA01('TLS-ID-2'))).code, 'AR');
  await noCert.close();
  const rows = engine.journal.list();
  t.deepEqual(rows.map((r) => [r.interface, r.sender, r.reasonCode]), [
    ['mllps', 'tls-pas', null],
    ['mllps', null, 'AUTH_FAILED'],
    ['mllps', null, 'AUTH_FAILED'],
  ]);
});

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function post(port: number, path: string, body: string, headers: Record<string, string>, localAddress = '127.0.0.1'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', localAddress, agent: false, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const basic = (user: string, secret: string): string => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

function soapEnvelope(er7: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ' +
    'xmlns:ws="http://wsssl.hl7api.patientsknowbest.com/"><soapenv:Body><ws:acceptMessage><arg0><![CDATA[' +
    er7 +
    ']]></arg0></ws:acceptMessage></soapenv:Body></soapenv:Envelope>'
  );
}

test('HTTP and SOAP: 401 with WWW-Authenticate without or with wrong credentials, AA with right ones; 403 from a refused address', async (t) => {
  const engine = await lockedEngine(t);
  const pas = addSender(engine, { id: 'pas', organisationId: 'st-elsewhere', credential: true });
  const { username, secret } = pas.credential!;
  const er7 = { 'content-type': 'x-application/hl7-v2+er7' };
  const xml = { 'content-type': 'text/xml; charset=utf-8', soapaction: '""' };

  const none = await post(engine.httpPort, '/hl7', adtA01('H-1'), er7);
  t.is(none.status, 401);
  t.regex(String(none.headers['www-authenticate']), /^Basic realm=/);
  const wrong = await post(engine.httpPort, '/hl7', adtA01('H-2'), { ...er7, authorization: basic(username, 'nope') });
  t.is(wrong.status, 401);
  t.is(wrong.text, none.text, 'the same answer whatever was wrong');
  const right = await post(engine.httpPort, '/hl7', adtA01('H-3'), { ...er7, authorization: basic(username, secret) });
  t.is(right.status, 200);
  t.is(msa(right.text).code, 'AA');

  const soapNone = await post(engine.httpPort, '/services/hl7', soapEnvelope(adtA01('S-1')), xml);
  t.is(soapNone.status, 401);
  const soapRight = await post(engine.httpPort, '/services/hl7', soapEnvelope(adtA01('S-2')), { ...xml, authorization: basic(username, secret) });
  t.is(soapRight.status, 200);
  t.regex(soapRight.text, /MSA\|AA\|S-2/);

  const refused = await post(engine.httpPort, '/hl7', adtA01('H-4'), { ...er7, authorization: basic(username, secret) }, '127.0.0.2');
  t.is(refused.status, 403);

  const rows = engine.journal.list();
  t.deepEqual(rows.map((r) => [r.controlId, r.interface, r.sender, r.status]), [
    ['H-3', 'http', 'pas', 'accepted'],
    ['S-2', 'soap', 'pas', 'accepted'],
  ]);
  await settle();
  t.is(audit(engine, 'auth.failed').length, 3, 'the wrong secret and both requests without credentials are audited');
  t.is(audit(engine, 'auth.address-refused').length, 1);
});

test('brute force: an address guessing secrets is locked out while a good sender keeps being served', async (t) => {
  const engine = await lockedEngine(t);
  const good = addSender(engine, { id: 'good', organisationId: 'st-elsewhere', allowCidrs: ['127.0.0.0/8'], credential: true });
  const attacker = await connect(engine, '127.0.0.2');
  const client = await connect(engine, '127.0.0.1');
  t.teardown(async () => {
    await attacker.close();
    await client.close();
  });
  const guesses: Array<Promise<Buffer>> = [];
  for (let i = 0; i < 40; i++) guesses.push(attacker.send(adtA01(`BF-${i}`, { security: `${good.credential!.username}:guess-${i}` })));
  // Interleaved: the good sender's messages are answered while guesses are being verified.
  const served: string[] = [];
  for (let i = 0; i < 20; i++) served.push(msa(await client.send(adtA01(`OK-${i}`, { security: good.msh8 }))).code);
  const answers = (await Promise.all(guesses)).map((a) => msa(a).code);
  t.true(served.every((c) => c === 'AA'), 'every good message AA');
  t.true(answers.every((c) => c === 'AR'), 'every guess AR');
  // Even the right secret from the locked-out address is refused now, unless it was verified
  // recently (the good sender's credential is cached, so a shared NAT does not lock it out).
  const lockedOut = await send(engine, adtA01('BF-LAST', { security: `${good.credential!.username}:another-guess` }), '127.0.0.2');
  t.is(lockedOut.code, 'AR');
  await settle();
  const failed = audit(engine, 'auth.failed');
  t.is(failed.length, 41);
  t.true(failed.some((r) => r.detail.lockedOut === true), 'the lockout is visible in the audit rows');
  const statuses = engine.journal.countByStatus();
  t.is(statuses.accepted, 20);
  t.is(statuses.rejected, 41);
});

test('a sender\'s first burst (the credential not yet cached) is verified once and every frame is accepted', async (t) => {
  const engine = await lockedEngine(t);
  const pas = addSender(engine, { id: 'pas', organisationId: 'st-elsewhere', credential: true });
  const client = await connect(engine);
  t.teardown(() => client.close());
  // 30 frames in flight at once on one connection, more than the lockout's 10: none may be refused.
  const acks = await Promise.all(Array.from({ length: 30 }, (_, i) => client.send(adtA01(`BURST-${i}`, { security: pas.msh8, visit: `V${i}` }))));
  t.deepEqual(acks.map((a) => msa(a).code), Array.from({ length: 30 }, () => 'AA'));
  await settle();
  t.is(audit(engine, 'auth.failed').length, 0);
});

test('a credential in a frame refused before it could be parsed is masked in the journal too', async (t) => {
  const engine = await lockedEngine(t);
  addSender(engine, { id: 'pas', organisationId: 'st-elsewhere', credential: true });
  // MSH only (no other segment): refused by the parser, before the gate.
  const r = await send(engine, 'MSH|^~\\&|PAS|RXX|||20250101000000|pas:topsecret|ADT^A01|M-1|P|2.4\r');
  t.is(r.code, 'AR');
  const row = engine.journal.list()[0]!;
  t.is(row.status, 'rejected');
  t.false(row.raw.toString('latin1').includes('topsecret'));
  t.regex(row.raw.toString('latin1'), /\|\*\*\*\*\|ADT\^A01/);
});
