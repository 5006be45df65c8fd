// SPDX-License-Identifier: Apache-2.0
/**
 * Credentials in MSH-8 (the HL7 "Security" field), for MLLP senders that cannot do TLS client
 * certificates: reading them, and masking them out of the bytes that get journaled.
 */

/**
 * Read a credential from the MSH-8 value (unescaped). Two forms:
 * - `username:secret`: the user name ends at the first `:`; the secret is everything after it
 *   (so a secret may contain `:`). Surrounding spaces are ignored.
 * - `Basic <base64 of username:secret>`: the HTTP Basic token, for senders whose configuration
 *   already holds one (the scheme name is case-insensitive).
 *
 * @returns the user name and secret, or null when MSH-8 is empty or in neither form
 */
export function parseMsh8Credential(msh8: string): { username: string; secret: string } | null {
  let text = msh8.trim();
  const basic = /^basic\s+([A-Za-z0-9+/=_-]+)$/i.exec(text);
  if (basic) {
    text = Buffer.from(basic[1]!, 'base64').toString('utf8');
  }
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) return null;
  const username = text.slice(0, colon);
  const secret = text.slice(colon + 1);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f\s]/.test(username)) return null;
  return { username, secret };
}

/** The text that replaces a masked MSH-8 value. Fixed, so the stored bytes do not reveal the secret's length. */
export const MSH8_MASK = '****';

const CR = 0x0d;
const LF = 0x0a;

/**
 * A copy of raw message bytes with the value of MSH-8 replaced by {@link MSH8_MASK} in every MSH
 * segment (a batch has several), so the journal never holds a credential. Everything else is
 * byte-for-byte as received; an empty MSH-8 stays empty. Works on the bytes of any
 * ASCII-compatible charset (the MSH header is ASCII). When there is nothing to mask, the bytes
 * are returned unchanged (a new Buffer over the same memory: do not modify it).
 *
 * Stored raw bytes are therefore "as received, except MSH-8".
 */
export function maskMsh8(raw: Uint8Array, mask: string = MSH8_MASK): Buffer {
  const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const cuts: Array<[number, number]> = [];
  for (let i = 0; i + 4 <= buf.length; i++) {
    if (!(buf[i] === 0x4d && buf[i + 1] === 0x53 && buf[i + 2] === 0x48 && (i === 0 || buf[i - 1] === CR || buf[i - 1] === LF || buf[i - 1] === 0x0b))) continue;
    const fs = buf[i + 3]!;
    // A field separator is printable punctuation; this also skips text like "MSH-3" in an OBX.
    if (fs < 0x21 || fs > 0x7e || (fs >= 0x30 && fs <= 0x39) || (fs >= 0x41 && fs <= 0x5a) || (fs >= 0x61 && fs <= 0x7a)) continue;
    // MSH-1 is the separator at i+3, so MSH-n starts after the (n-1)th separator: MSH-8 after the 7th.
    let seps = 1;
    let j = i + 4;
    while (j < buf.length && buf[j] !== CR && buf[j] !== LF && seps < 7) {
      if (buf[j] === fs) seps++;
      j++;
    }
    if (seps < 7) continue;
    let end = j;
    while (end < buf.length && buf[end] !== fs && buf[end] !== CR && buf[end] !== LF) end++;
    if (end > j) cuts.push([j, end]);
    i = end - 1;
  }
  if (cuts.length === 0) return buf;
  const m = Buffer.from(mask, 'latin1');
  const parts: Buffer[] = [];
  let from = 0;
  for (const [s, e] of cuts) {
    parts.push(buf.subarray(from, s), m);
    from = e;
  }
  parts.push(buf.subarray(from));
  return Buffer.concat(parts);
}
