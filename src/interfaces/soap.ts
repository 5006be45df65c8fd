// SPDX-License-Identifier: Apache-2.0
/**
 * PKB's SOAP form of HL7 v2 (`../shared/domain.md` §1): a SOAP 1.1 envelope whose Body holds
 * `acceptMessage` (namespace {@link PKB_NAMESPACE}) with the ER7 message in `arg0`, answered by
 * `acceptMessageResponse` whose `return` holds the ER7 ACK.
 *
 * The XML reader here is deliberately small and strict instead of a general XML library: it reads
 * elements, attributes, namespaces, text with the five predefined and numeric character references,
 * CDATA, comments and processing instructions, checks that tags nest, and refuses any `<!DOCTYPE`
 * or `<!ENTITY` (no DTDs means no entity expansion and no external fetches: XXE and "billion laughs"
 * are impossible by construction). It does no XML end-of-line normalisation, so the CR segment
 * separators of an ER7 message inside CDATA reach the Ingestor as sent.
 *
 * Nothing here does I/O; `hl7-http.ts` wires it to the HTTP server.
 */
import { TextDecoder } from 'node:util';
import { TributaryError } from '../errors.js';

/** Namespace of `acceptMessage` / `acceptMessageResponse` (PKB's HL7 API). */
export const PKB_NAMESPACE = 'http://wsssl.hl7api.patientsknowbest.com/';
/** SOAP 1.1 envelope namespace. */
export const SOAP11_NAMESPACE = 'http://schemas.xmlsoap.org/soap/envelope/';
/** SOAP 1.2 envelope namespace (accepted too; answered in kind). */
export const SOAP12_NAMESPACE = 'http://www.w3.org/2003/05/soap-envelope';
const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';

/** SOAP version of a request, which decides the envelope and content type of the answer. */
export type SoapVersion = '1.1' | '1.2';

/** Text inside an element: character data (references resolved) or one CDATA section. */
export interface XmlText {
  readonly kind: 'text';
  readonly text: string;
  readonly cdata: boolean;
  /** Character data written as literal whitespace only (no references): layout, not content. */
  readonly blank: boolean;
}

/** An element with its namespace resolved. */
export interface XmlElement {
  readonly kind: 'element';
  /** The qualified name as written, e.g. `soap:Envelope`. */
  readonly name: string;
  readonly localName: string;
  /** Namespace URI, null when the element is in no namespace. */
  readonly namespace: string | null;
  /** Attributes by qualified name, values with references resolved (namespace declarations included). */
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: Array<XmlElement | XmlText>;
}

function malformed(reason: string): TributaryError {
  return new TributaryError('HTTP_SOAP_MALFORMED', { reason });
}

// ---------------------------------------------------------------------------------------------
// Bytes to text

/**
 * Decode an XML body: a byte order mark wins, then the `charset` of the Content-Type (RFC 7303),
 * then the `encoding` of the XML declaration, then UTF-8. Invalid bytes are refused, not replaced.
 * @throws TributaryError `HTTP_SOAP_MALFORMED`
 */
export function decodeXmlBytes(bytes: Buffer, contentTypeCharset?: string | null): string {
  let label: string;
  let body = bytes;
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    label = 'utf-8';
    body = bytes.subarray(3);
  } else if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) {
    label = 'utf-16le';
    body = bytes.subarray(2);
  } else if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) {
    label = 'utf-16be';
    body = bytes.subarray(2);
  } else if (contentTypeCharset) {
    label = contentTypeCharset.trim().toLowerCase();
  } else {
    const head = bytes.subarray(0, 256).toString('latin1');
    const decl = /^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']/.exec(head);
    label = decl ? decl[1]!.toLowerCase() : 'utf-8';
  }
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label, { fatal: true });
  } catch {
    throw malformed(`unsupported character encoding "${label}"`);
  }
  try {
    return decoder.decode(body);
  } catch {
    throw malformed(`the body is not valid ${label}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The XML reader

const NAME = /[^\s/>=<"'!?&;]+/y;
const SPACE = /\s*/y;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Resolve `&lt;`, `&amp;`, `&#13;`, `&#xD;` … in character data or an attribute value. */
function decodeReferences(s: string): string {
  if (!s.includes('&')) return s;
  let out = '';
  let i = 0;
  for (;;) {
    const amp = s.indexOf('&', i);
    if (amp < 0) return out + s.slice(i);
    out += s.slice(i, amp);
    const semi = s.indexOf(';', amp + 1);
    if (semi < 0 || semi - amp > 12) throw malformed(`"&" not followed by a reference such as &amp; (offset ${amp})`);
    const ref = s.slice(amp + 1, semi);
    if (ref.startsWith('#')) {
      const hex = ref[1] === 'x';
      const digits = hex ? ref.slice(2) : ref.slice(1);
      const cp = (hex ? /^[0-9A-Fa-f]+$/ : /^[0-9]+$/).test(digits) ? parseInt(digits, hex ? 16 : 10) : NaN;
      if (!isXmlChar(cp)) throw malformed(`invalid character reference &${ref};`);
      out += String.fromCodePoint(cp);
    } else {
      const v = PREDEFINED[ref];
      if (v === undefined) throw malformed(`unknown entity &${ref}; (only &lt; &gt; &amp; &quot; &apos; and numeric references are allowed)`);
      out += v;
    }
    i = semi + 1;
  }
}

interface OpenElement {
  name: string;
  attributes: Map<string, string>;
  children: Array<XmlElement | XmlText>;
  namespaces: Map<string, string>;
}

/**
 * Parse a whole XML document into its root element.
 * @throws TributaryError `HTTP_SOAP_MALFORMED` naming the first problem
 */
export function parseXml(xml: string): XmlElement {
  const s = xml.charCodeAt(0) === 0xfeff ? xml.slice(1) : xml;
  const stack: OpenElement[] = [];
  let root: XmlElement | null = null;
  let i = 0;
  const rootScope = new Map<string, string>([['xml', XML_NAMESPACE]]);

  const readName = (at: number): string => {
    NAME.lastIndex = at;
    const m = NAME.exec(s);
    if (!m) throw malformed(`expected a name at offset ${at}`);
    return m[0];
  };
  const skipSpace = (at: number): number => {
    SPACE.lastIndex = at;
    SPACE.exec(s);
    return SPACE.lastIndex;
  };
  const resolve = (qname: string, scope: Map<string, string>, isAttribute: boolean): { localName: string; namespace: string | null } => {
    const colon = qname.indexOf(':');
    if (colon < 0) return { localName: qname, namespace: isAttribute ? null : (scope.get('') ?? null) };
    const prefix = qname.slice(0, colon);
    const localName = qname.slice(colon + 1);
    if (!localName || localName.includes(':')) throw malformed(`invalid qualified name "${qname}"`);
    if (prefix === 'xmlns') return { localName, namespace: null };
    const ns = scope.get(prefix);
    if (ns === undefined) throw malformed(`undeclared namespace prefix "${prefix}" in <${qname}>`);
    return { localName, namespace: ns };
  };
  /** Finish an element (already off the stack) and attach it to its parent. */
  const close = (el: OpenElement): void => {
    const { localName, namespace } = resolve(el.name, el.namespaces, false);
    const done: XmlElement = { kind: 'element', name: el.name, localName, namespace, attributes: el.attributes, children: el.children };
    if (stack.length > 0) stack[stack.length - 1]!.children.push(done);
    else root = done;
  };
  const addText = (text: string, cdata: boolean): void => {
    if (stack.length === 0) {
      if (cdata || text.trim() !== '') throw malformed('text outside the root element');
      return;
    }
    if (text === '') return;
    const blank = !cdata && /^[ \t\r\n]*$/.test(text);
    stack[stack.length - 1]!.children.push({ kind: 'text', text: cdata ? text : decodeReferences(text), cdata, blank });
  };

  while (i < s.length) {
    const lt = s.indexOf('<', i);
    if (lt < 0) {
      addText(s.slice(i), false);
      break;
    }
    if (lt > i) addText(s.slice(i, lt), false);
    if (s.startsWith('<!--', lt)) {
      const end = s.indexOf('-->', lt + 4);
      if (end < 0) throw malformed('unterminated comment');
      i = end + 3;
    } else if (s.startsWith('<![CDATA[', lt)) {
      const end = s.indexOf(']]>', lt + 9);
      if (end < 0) throw malformed('unterminated CDATA section');
      addText(s.slice(lt + 9, end), true);
      i = end + 3;
    } else if (s.startsWith('<!', lt)) {
      throw malformed('DOCTYPE and entity declarations are not allowed');
    } else if (s.startsWith('<?', lt)) {
      const end = s.indexOf('?>', lt + 2);
      if (end < 0) throw malformed('unterminated processing instruction');
      const target = readName(lt + 2);
      if (target.toLowerCase() === 'xml' && (lt !== 0 || target !== 'xml')) throw malformed('the XML declaration must come first');
      i = end + 2;
    } else if (s.startsWith('</', lt)) {
      const name = readName(lt + 2);
      const gt = skipSpace(lt + 2 + name.length);
      if (s[gt] !== '>') throw malformed(`expected ">" to close </${name}`);
      const open = stack.pop();
      if (!open) throw malformed(`closing tag </${name}> without an open element`);
      if (open.name !== name) throw malformed(`closing tag </${name}> does not match <${open.name}>`);
      close(open);
      i = gt + 1;
    } else {
      if (root !== null && stack.length === 0) throw malformed('more than one root element');
      const name = readName(lt + 1);
      let p = lt + 1 + name.length;
      const attributes = new Map<string, string>();
      let selfClosing = false;
      for (;;) {
        const q = skipSpace(p);
        if (s.startsWith('/>', q)) {
          selfClosing = true;
          p = q + 2;
          break;
        }
        if (s[q] === '>') {
          p = q + 1;
          break;
        }
        if (q === p) throw malformed(q >= s.length ? `unterminated tag <${name}` : `expected whitespace, ">" or "/>" in <${name}> at offset ${q}`);
        const attr = readName(q);
        let e = skipSpace(q + attr.length);
        if (s[e] !== '=') throw malformed(`attribute ${attr} of <${name}> has no value`);
        e = skipSpace(e + 1);
        const quote = s[e];
        if (quote !== '"' && quote !== "'") throw malformed(`attribute ${attr} of <${name}> is not quoted`);
        const endQuote = s.indexOf(quote, e + 1);
        if (endQuote < 0) throw malformed(`unterminated attribute ${attr} of <${name}>`);
        const raw = s.slice(e + 1, endQuote);
        if (raw.includes('<')) throw malformed(`"<" in attribute ${attr} of <${name}>`);
        if (attributes.has(attr)) throw malformed(`duplicate attribute ${attr} in <${name}>`);
        attributes.set(attr, decodeReferences(raw));
        p = endQuote + 1;
      }
      const parentScope = stack.length > 0 ? stack[stack.length - 1]!.namespaces : rootScope;
      let namespaces = parentScope;
      for (const [k, v] of attributes) {
        if (k === 'xmlns' || k.startsWith('xmlns:')) {
          if (namespaces === parentScope) namespaces = new Map(parentScope);
          const prefix = k === 'xmlns' ? '' : k.slice(6);
          if (prefix !== '' && v === '') throw malformed(`empty namespace for prefix "${prefix}"`);
          namespaces.set(prefix, v);
        }
      }
      for (const k of attributes.keys()) resolve(k, namespaces, true); // undeclared prefixes
      const el: OpenElement = { name, attributes, children: [], namespaces };
      if (selfClosing) close(el);
      else stack.push(el);
      i = p;
    }
  }
  if (stack.length > 0) throw malformed(`element <${stack[stack.length - 1]!.name}> is not closed`);
  if (root === null) throw malformed(s.trim() === '' ? 'empty request body' : 'no root element');
  return root;
}

/** Child elements of `el`. */
export function childElements(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => c.kind === 'element');
}

/**
 * The text of an element that must hold only text. When it has CDATA sections, character data
 * written as literal whitespace around them is layout and is dropped (`&#13;` between sections is
 * kept); otherwise the text is kept as written.
 */
export function elementText(el: XmlElement, what: string): string {
  const parts: XmlText[] = [];
  for (const c of el.children) {
    if (c.kind === 'element') throw malformed(`${what} must contain text only, found <${c.name}>`);
    parts.push(c);
  }
  const hasCdata = parts.some((p) => p.cdata);
  return parts
    .filter((p) => !hasCdata || !p.blank)
    .map((p) => p.text)
    .join('');
}

// ---------------------------------------------------------------------------------------------
// SOAP requests and answers

/** A SOAP envelope's version and its Body's first element. */
function soapPayload(root: XmlElement): { version: SoapVersion; operation: XmlElement } {
  if (root.localName !== 'Envelope' || (root.namespace !== SOAP11_NAMESPACE && root.namespace !== SOAP12_NAMESPACE)) {
    throw malformed(`the root element must be a SOAP Envelope in namespace ${SOAP11_NAMESPACE}, found <${root.name}>${root.namespace ? ` in ${root.namespace}` : ''}`);
  }
  const version: SoapVersion = root.namespace === SOAP11_NAMESPACE ? '1.1' : '1.2';
  const body = childElements(root).find((c) => c.localName === 'Body' && c.namespace === root.namespace);
  if (!body) throw malformed('the Envelope has no Body');
  const operation = childElements(body)[0];
  if (!operation) throw malformed('the SOAP Body is empty');
  return { version, operation };
}

/** What {@link parseAcceptMessage} found. */
export interface AcceptMessageRequest {
  version: SoapVersion;
  /** The ER7 text of `arg0`. */
  message: string;
}

/**
 * Read an `acceptMessage` request: the ER7 message of `Envelope/Body/acceptMessage/arg0`, given as
 * CDATA or as character data with references (`&lt;`, `&amp;`, `&#13;` …). `arg0` may be
 * unqualified (as JAX-WS sends it) or in the PKB namespace.
 * @throws TributaryError `HTTP_SOAP_MALFORMED`
 */
export function parseAcceptMessage(body: Buffer, contentTypeCharset?: string | null): AcceptMessageRequest {
  const { version, operation } = soapPayload(parseXml(decodeXmlBytes(body, contentTypeCharset)));
  if (operation.localName !== 'acceptMessage' || operation.namespace !== PKB_NAMESPACE) {
    throw malformed(
      `the SOAP Body must hold acceptMessage in namespace ${PKB_NAMESPACE}, found <${operation.name}>` +
        (operation.namespace ? ` in ${operation.namespace}` : ' in no namespace'),
    );
  }
  const arg0 = childElements(operation).find((c) => c.localName === 'arg0' && (c.namespace === null || c.namespace === PKB_NAMESPACE));
  if (!arg0) throw malformed('acceptMessage has no arg0 element');
  return { version, message: elementText(arg0, 'arg0') };
}

/**
 * Read the ER7 text of an `acceptMessageResponse` (`return`), as a SOAP client would.
 * @throws TributaryError `HTTP_SOAP_MALFORMED`, also when the answer is a SOAP Fault (with its text)
 */
export function parseAcceptMessageResponse(xml: string): string {
  const { operation } = soapPayload(parseXml(xml));
  if (operation.localName === 'Fault') {
    const text = (el: XmlElement): string =>
      el.children.map((c) => (c.kind === 'text' ? c.text : text(c))).join(' ').replace(/\s+/g, ' ').trim();
    throw malformed(`SOAP Fault: ${text(operation)}`);
  }
  if (operation.localName !== 'acceptMessageResponse' || operation.namespace !== PKB_NAMESPACE) {
    throw malformed(`expected acceptMessageResponse, found <${operation.name}>`);
  }
  const ret = childElements(operation).find((c) => c.localName === 'return');
  if (!ret) throw malformed('acceptMessageResponse has no return element');
  return elementText(ret, 'return');
}

/** Escape text for XML character data or a double-quoted attribute. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

/**
 * Text as CDATA that any XML parser reads back exactly: `]]>` is split across two sections, and
 * each CR is written as `&#13;` between sections, because XML end-of-line handling turns a literal
 * CR (even inside CDATA) into LF, and HL7 segments end with CR.
 */
export function cdata(text: string): string {
  const body = text.replace(/]]>/g, ']]]]><![CDATA[>').replace(/\r/g, ']]>&#13;<![CDATA[');
  return `<![CDATA[${body}]]>`.replace(/<!\[CDATA\[\]\]>/g, '');
}

const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>';

function envelope(version: SoapVersion, body: string): string {
  const ns = version === '1.1' ? SOAP11_NAMESPACE : SOAP12_NAMESPACE;
  return `${XML_DECL}<soap:Envelope xmlns:soap="${ns}"><soap:Body>${body}</soap:Body></soap:Envelope>`;
}

/** Content type of a SOAP answer. */
export function soapContentType(version: SoapVersion): string {
  return version === '1.1' ? 'text/xml; charset=utf-8' : 'application/soap+xml; charset=utf-8';
}

/** The answer to `acceptMessage`: the ER7 ACK in `acceptMessageResponse/return`. */
export function acceptMessageResponse(ack: string, version: SoapVersion = '1.1'): string {
  return envelope(version, `<ns2:acceptMessageResponse xmlns:ns2="${PKB_NAMESPACE}"><return>${cdata(ack)}</return></ns2:acceptMessageResponse>`);
}

/**
 * A SOAP Fault. `client` faults (`soap:Client`, SOAP 1.2 `soap:Sender`) blame the request;
 * the others (`soap:Server` / `soap:Receiver`) blame us.
 */
export function soapFault(message: string, opts: { client: boolean; version?: SoapVersion; code?: string }): string {
  const version = opts.version ?? '1.1';
  const detail = opts.code ? `<detail><code>${escapeXml(opts.code)}</code></detail>` : '';
  if (version === '1.1') {
    return envelope(version, `<soap:Fault><faultcode>soap:${opts.client ? 'Client' : 'Server'}</faultcode><faultstring>${escapeXml(message)}</faultstring>${detail}</soap:Fault>`);
  }
  const detail12 = opts.code ? `<soap:Detail><code>${escapeXml(opts.code)}</code></soap:Detail>` : '';
  return envelope(
    version,
    `<soap:Fault><soap:Code><soap:Value>soap:${opts.client ? 'Sender' : 'Receiver'}</soap:Value></soap:Code>` +
      `<soap:Reason><soap:Text xml:lang="en">${escapeXml(message)}</soap:Text></soap:Reason>${detail12}</soap:Fault>`,
  );
}

/** A WSDL 1.1 document for `acceptMessage(arg0: string) → return: string` at `endpoint`. */
export function wsdl(endpoint: string): string {
  const tns = PKB_NAMESPACE;
  return `${XML_DECL}
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="${tns}" targetNamespace="${tns}" name="HL7Service">
  <types>
    <xsd:schema targetNamespace="${tns}" version="1.0">
      <xsd:element name="acceptMessage" type="tns:acceptMessage"/>
      <xsd:element name="acceptMessageResponse" type="tns:acceptMessageResponse"/>
      <xsd:complexType name="acceptMessage">
        <xsd:sequence>
          <xsd:element name="arg0" type="xsd:string" minOccurs="0"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="acceptMessageResponse">
        <xsd:sequence>
          <xsd:element name="return" type="xsd:string" minOccurs="0"/>
        </xsd:sequence>
      </xsd:complexType>
    </xsd:schema>
  </types>
  <message name="acceptMessage">
    <part name="parameters" element="tns:acceptMessage"/>
  </message>
  <message name="acceptMessageResponse">
    <part name="parameters" element="tns:acceptMessageResponse"/>
  </message>
  <portType name="HL7Service">
    <operation name="acceptMessage">
      <input message="tns:acceptMessage"/>
      <output message="tns:acceptMessageResponse"/>
    </operation>
  </portType>
  <binding name="HL7ServicePortBinding" type="tns:HL7Service">
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
    <operation name="acceptMessage">
      <soap:operation soapAction=""/>
      <input><soap:body use="literal"/></input>
      <output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="HL7Service">
    <port name="HL7ServicePort" binding="tns:HL7ServicePortBinding">
      <soap:address location="${escapeXml(endpoint)}"/>
    </port>
  </service>
</definitions>
`;
}
