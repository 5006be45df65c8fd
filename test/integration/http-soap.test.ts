// SPDX-License-Identifier: Apache-2.0
/** PKB's SOAP form of HL7 v2 (`POST /services/hl7`, `?wsdl`) over real loopback HTTP, and its XML reader. */
import test from 'ava';
import { TributaryError } from '../../src/errors.js';
import {
  PKB_NAMESPACE,
  acceptMessageResponse,
  cdata,
  childElements,
  parseAcceptMessage,
  parseAcceptMessageResponse,
  parseXml,
} from '../../src/interfaces/soap.js';
import { inProcessEngine } from '../helpers/engine.js';
import { adtA01, msa } from '../helpers/messages.js';

const SOAP11 = 'http://schemas.xmlsoap.org/soap/envelope/';

/** A request as PKB documents it: `<arg0><![CDATA[...]]></arg0>`. */
function envelope(arg0: string, opts: { soapPrefix?: string; opPrefix?: string } = {}): string {
  const s = opts.soapPrefix ?? 'soapenv';
  const o = opts.opPrefix ?? 'ws';
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<${s}:Envelope xmlns:${s}="${SOAP11}" xmlns:${o}="${PKB_NAMESPACE}">\n` +
    `  <${s}:Header/>\n` +
    `  <${s}:Body>\n` +
    `    <${o}:acceptMessage>\n` +
    `      <arg0>${arg0}</arg0>\n` +
    `    </${o}:acceptMessage>\n` +
    `  </${s}:Body>\n` +
    `</${s}:Envelope>\n`
  );
}

async function postSoap(port: number, body: string | Buffer, contentType = 'text/xml; charset=utf-8'): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/services/hl7`, {
    method: 'POST',
    headers: { 'content-type': contentType, soapaction: '""' },
    body,
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

function faultString(xml: string): string {
  const root = parseXml(xml);
  const fault = childElements(childElements(root).find((e) => e.localName === 'Body')!)[0]!;
  const fs = childElements(fault).find((e) => e.localName === 'faultstring')!;
  const fc = childElements(fault).find((e) => e.localName === 'faultcode')!;
  const text = (el: typeof fs): string => el.children.map((c) => (c.kind === 'text' ? c.text : '')).join('');
  return `${text(fc)} ${text(fs)}`;
}

test('SOAP round trip: AA inside acceptMessageResponse/return, MSA-2 echoed, journal row interface soap', async (t) => {
  const engine = await inProcessEngine(t);
  const er7 = adtA01('SOAP-0001');
  const res = await postSoap(engine.httpPort, envelope(`<![CDATA[${er7}]]>`));
  t.is(res.status, 200);
  t.is(res.type, 'text/xml; charset=utf-8');
  t.regex(res.text, /<soap:Envelope xmlns:soap="http:\/\/schemas\.xmlsoap\.org\/soap\/envelope\/">/);
  t.regex(res.text, /<ns2:acceptMessageResponse xmlns:ns2="http:\/\/wsssl\.hl7api\.patientsknowbest\.com\/"><return><!\[CDATA\[MSH\|/);
  const ack = parseAcceptMessageResponse(res.text);
  t.is(msa(ack).code, 'AA');
  t.is(msa(ack).controlId, 'SOAP-0001');
  const row = engine.journal.list()[0]!;
  t.is(row.interface, 'soap');
  t.is(row.remoteAddress, '127.0.0.1');
  t.is(row.status, 'accepted');
  t.true(row.raw.equals(Buffer.from(er7, 'utf8')));
  // The ACK read back through an XML parser is the journaled ACK, CRs included.
  t.is(row.ack, ack);
});

test('SOAP arg0 as entity-escaped text (&amp; &#13; &lt;) and with another prefix; non-ASCII survives', async (t) => {
  const engine = await inProcessEngine(t);
  const er7 = adtA01('SOAP-ESC').replace('TESTPATIENT^ALEX', 'TESTPATIENT^ZOË<2>');
  const escaped = er7.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
  const res = await postSoap(engine.httpPort, envelope(escaped, { soapPrefix: 'S', opPrefix: 'ns1' }));
  t.is(res.status, 200);
  const ack = parseAcceptMessageResponse(res.text);
  t.is(msa(ack).code, 'AA');
  t.is(msa(ack).controlId, 'SOAP-ESC');
  t.true(engine.journal.list()[0]!.raw.equals(Buffer.from(er7, 'utf8')));
});

test('SOAP: garbage in arg0 is an HL7-level AR inside a normal SOAP response', async (t) => {
  const engine = await inProcessEngine(t);
  const res = await postSoap(engine.httpPort, envelope('<![CDATA[HELLO WORLD]]>'));
  t.is(res.status, 200);
  t.is(msa(parseAcceptMessageResponse(res.text)).code, 'AR');
  t.is(engine.journal.list()[0]!.reasonCode, 'HL7_NO_MSH');
});

test('SOAP: a duplicate MSH-10 gets the first ACK again', async (t) => {
  const engine = await inProcessEngine(t);
  const body = envelope(`<![CDATA[${adtA01('SOAP-DUP')}]]>`);
  const a = parseAcceptMessageResponse((await postSoap(engine.httpPort, body)).text);
  const b = parseAcceptMessageResponse((await postSoap(engine.httpPort, body)).text);
  t.is(b, a);
  t.deepEqual(
    engine.journal.list().map((r) => r.status),
    ['accepted', 'duplicate'],
  );
});

test('SOAP Fault (HTTP 500, soap:Client) for malformed XML, DOCTYPE, wrong operation; nothing journaled', async (t) => {
  const engine = await inProcessEngine(t);
  const cases: Array<[string, RegExp]> = [
    [envelope(`<![CDATA[${adtA01('M1')}]]>`).replace('</arg0>', '</arg1>'), /closing tag <\/arg1> does not match <arg0>/],
    [envelope('<![CDATA[MSH|oops'), /unterminated CDATA section/],
    [
      `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>` + envelope('&e;').replace(/^<\?xml[^>]*>\n/, ''),
      /DOCTYPE and entity declarations are not allowed/,
    ],
    [envelope('MSH|&e;'), /unknown entity &e;/],
    [envelope('x').replace(/acceptMessage>/g, 'sendMessage>'), /must hold acceptMessage in namespace http:\/\/wsssl\.hl7api\.patientsknowbest\.com\/, found <ws:sendMessage>/],
    [envelope('x').replace(PKB_NAMESPACE, 'urn:other'), /found <ws:acceptMessage> in urn:other/],
    [envelope('x').replace(/<arg0>x<\/arg0>/, ''), /acceptMessage has no arg0 element/],
    ['<html><body>hi</body></html>', /root element must be a SOAP Envelope/],
    ['', /empty request body/],
  ];
  for (const [body, expected] of cases) {
    const res = await postSoap(engine.httpPort, body);
    t.is(res.status, 500, String(expected));
    t.is(res.type, 'text/xml; charset=utf-8');
    const fault = faultString(res.text);
    t.regex(fault, /^soap:Client malformed SOAP request: /);
    t.regex(fault, expected);
  }
  t.is(engine.journal.list().length, 0);
});

test('SOAP: 415 for a non-XML content type and 413 over the limit, both as SOAP Faults', async (t) => {
  const engine = await inProcessEngine(t, { http: { maxBodyBytes: 2048 } });
  const wrongType = await postSoap(engine.httpPort, envelope('x'), 'x-application/hl7-v2+er7');
  t.is(wrongType.status, 415);
  t.regex(faultString(wrongType.text), /^soap:Client unsupported Content-Type "x-application\/hl7-v2\+er7": expected one of text\/xml, application\/soap\+xml/);
  const big = await postSoap(engine.httpPort, envelope(`<![CDATA[${adtA01('BIG')}NTE|1||${'x'.repeat(4000)}\r]]>`));
  t.is(big.status, 413);
  t.regex(faultString(big.text), /request body exceeds http\.maxBodyBytes \(2048 bytes\)/);
  t.is(engine.journal.list().length, 0);
});

test('SOAP 1.2 envelope with application/soap+xml is answered in SOAP 1.2', async (t) => {
  const engine = await inProcessEngine(t);
  const body = envelope(`<![CDATA[${adtA01('SOAP12')}]]>`).replace(SOAP11, 'http://www.w3.org/2003/05/soap-envelope');
  const res = await postSoap(engine.httpPort, body, 'application/soap+xml; charset=utf-8; action=""');
  t.is(res.status, 200);
  t.is(res.type, 'application/soap+xml; charset=utf-8');
  t.regex(res.text, /xmlns:soap="http:\/\/www\.w3\.org\/2003\/05\/soap-envelope"/);
  t.is(msa(parseAcceptMessageResponse(res.text)).controlId, 'SOAP12');
  const bad = await postSoap(engine.httpPort, '<broken', 'application/soap+xml');
  t.is(bad.status, 400);
  t.regex(bad.text, /<soap:Value>soap:Sender<\/soap:Value>/);
});

test('GET /services/hl7?wsdl: well-formed WSDL naming acceptMessage, endpoint from the Host header', async (t) => {
  const engine = await inProcessEngine(t);
  const res = await fetch(`http://127.0.0.1:${engine.httpPort}/services/hl7?wsdl`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^text\/xml/);
  const text = await res.text();
  const root = parseXml(text);
  t.is(root.localName, 'definitions');
  t.is(root.namespace, 'http://schemas.xmlsoap.org/wsdl/');
  t.is(root.attributes.get('targetNamespace'), PKB_NAMESPACE);
  const portType = childElements(root).find((e) => e.localName === 'portType')!;
  t.is(childElements(portType)[0]!.attributes.get('name'), 'acceptMessage');
  t.regex(text, /<xsd:element name="arg0" type="xsd:string"/);
  t.regex(text, /<xsd:element name="return" type="xsd:string"/);
  t.true(text.includes(`<soap:address location="http://127.0.0.1:${engine.httpPort}/services/hl7"/>`));
  // ?WSDL works too; a plain GET explains itself.
  t.is((await fetch(`http://127.0.0.1:${engine.httpPort}/services/hl7?WSDL`)).status, 200);
  const plain = await fetch(`http://127.0.0.1:${engine.httpPort}/services/hl7`);
  t.is(plain.status, 405);
  t.is(plain.headers.get('allow'), 'POST');
});

test('cdata(): "]]>" and CR survive an XML round trip exactly', (t) => {
  const texts = ['MSH|^~\\&|A]]>B|\rMSA|AA|1|x]]>]]>\r', ']]>', '', 'a\r\r\nb', '<![CDATA[nested]]>'];
  for (const s of texts) {
    const xml = `<r>${cdata(s)}</r>`;
    const root = parseXml(xml);
    t.is(root.children.map((c) => (c.kind === 'text' ? c.text : '')).join(''), s);
  }
  t.is(parseAcceptMessageResponse(acceptMessageResponse('MSH|]]>|\rMSA|AA|X\r')), 'MSH|]]>|\rMSA|AA|X\r');
});

test('XML reader: namespaces, attributes, comments, whitespace around CDATA, refusals', (t) => {
  const er7 = 'MSH|^~\\&|A|B\rPID|1\r';
  // Default namespace on acceptMessage, arg0 in the same namespace, comments and a PI, LF inside CDATA kept.
  const xml =
    `<?xml version='1.0' encoding='utf-8'?><!-- c --><e:Envelope xmlns:e="${SOAP11}"><e:Body>` +
    `<acceptMessage xmlns="${PKB_NAMESPACE}" a='1' b="&quot;"><?pi x?><arg0>\n  <![CDATA[${er7}]]>\n  <![CDATA[ZZZ|1\n]]>\n</arg0></acceptMessage></e:Body></e:Envelope>`;
  t.deepEqual(parseAcceptMessage(Buffer.from(xml)), { version: '1.1', message: `${er7}ZZZ|1\n` });
  // Latin-1 body declared in the XML declaration, and in the Content-Type charset.
  const latin = envelope('MSH|Zoë').replace('UTF-8', 'ISO-8859-1');
  t.is(parseAcceptMessage(Buffer.from(latin, 'latin1')).message, 'MSH|Zoë');
  t.is(parseAcceptMessage(Buffer.from(envelope('MSH|Zoë'), 'latin1'), 'iso-8859-1').message, 'MSH|Zoë');
  const refusals: Array<[string | Buffer, RegExp]> = [
    [Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e]), /not valid utf-8/],
    ['<a><b></a>', /does not match/],
    ['<a></a><b/>', /more than one root/],
    ['<a x="1" x="2"/>', /duplicate attribute/],
    ['<p:a/>', /undeclared namespace prefix "p"/],
    ['<a>&#0;</a>', /invalid character reference/],
    ['<a>AT&T</a>', /"&" not followed by a reference/],
    ['<!DOCTYPE a><a/>', /DOCTYPE/],
    ['<a><!ENTITY x "y"></a>', /DOCTYPE and entity declarations/],
    ['<a/><?xml version="1.0"?>', /XML declaration must come first/],
    ['<a>', /<a> is not closed/],
    ['text<a/>', /text outside the root element/],
  ];
  for (const [input, expected] of refusals) {
    const err = t.throws(() => (Buffer.isBuffer(input) ? parseAcceptMessage(input) : parseXml(input)), { instanceOf: TributaryError });
    t.is((err as TributaryError).code, 'HTTP_SOAP_MALFORMED');
    t.regex(err!.message, expected);
  }
  const arg0WithElement = envelope('<b>x</b>');
  t.throws(() => parseAcceptMessage(Buffer.from(arg0WithElement)), { message: /arg0 must contain text only/ });
});
