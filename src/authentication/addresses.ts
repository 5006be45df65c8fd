// SPDX-License-Identifier: Apache-2.0
/**
 * Source-address allowlists: CIDR parsing and matching with ipaddr.js.
 *
 * Addresses are normalised before any comparison so that the same host always gives the same
 * answer: an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, what a dual-stack socket reports for an
 * IPv4 peer) is treated as the IPv4 address, an IPv6 zone id (`fe80::1%eth0`) is dropped, and
 * IPv4 must be four decimal parts (ipaddr.js would otherwise read `010.1.2.3` as octal and `10.1`
 * as `10.0.0.1`, which nobody means in an allowlist).
 */
import ipaddr from 'ipaddr.js';

/** A parsed allowlist entry. */
export interface Cidr {
  readonly address: ipaddr.IPv4 | ipaddr.IPv6;
  readonly prefix: number;
  /** Canonical text, e.g. `10.1.2.0/24`, `2001:db8::/32`. */
  readonly text: string;
}

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

/** Parse one address; IPv4-mapped IPv6 becomes IPv4. Undefined when it is not an address. */
export function parseAddress(value: string): Addr | undefined {
  const text = value.trim();
  const zone = text.indexOf('%');
  const bare = zone >= 0 ? text.slice(0, zone) : text;
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return ipaddr.IPv4.parse(bare);
  if (!bare.includes(':') || !ipaddr.IPv6.isValid(bare)) return undefined;
  const v6 = ipaddr.IPv6.parse(bare);
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
}

/** Canonical text of an address (IPv4-mapped IPv6 as IPv4), or undefined when it is not one. */
export function normaliseAddress(value: string): string | undefined {
  return parseAddress(value)?.toString();
}

/**
 * Parse an allowlist entry: `A.B.C.D/N`, `IPv6/N`, or a bare address (a single host: /32 or /128).
 * An IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`) becomes the IPv4 range (`10.0.0.0/8`).
 * Host bits must be zero: `10.1.2.3/24` is refused (with the range it would mean), since it is
 * usually a typo for a single host or for a different range.
 *
 * @returns the parsed entry, or a reason it is not one
 */
export function parseCidr(value: string): Cidr | { error: string } {
  const text = value.trim();
  const slash = text.indexOf('/');
  const addrText = slash >= 0 ? text.slice(0, slash) : text;
  if (addrText.includes('%')) return { error: `"${value}" is not a CIDR: zone ids are not allowed` };
  let address = parseAddress(addrText);
  if (!address) return { error: `"${value}" is not a CIDR or address` };
  const wasMapped = address.kind() === 'ipv4' && addrText.includes(':');
  let prefix: number;
  if (slash < 0) {
    prefix = address.kind() === 'ipv4' ? 32 : 128;
  } else {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return { error: `"${value}" is not a CIDR: bad prefix length "${p}"` };
    prefix = Number(p);
    if (wasMapped) {
      if (prefix < 96 || prefix > 128) return { error: `"${value}" is not a CIDR: an IPv4-mapped prefix must be 96 to 128` };
      prefix -= 96;
    }
    const max = address.kind() === 'ipv4' ? 32 : 128;
    if (prefix > max) return { error: `"${value}" is not a CIDR: prefix length above ${max}` };
  }
  const network = networkOf(address, prefix);
  if (network.toString() !== address.toString()) {
    return { error: `"${value}" has host bits set; did you mean ${network.toString()}/${prefix}?` };
  }
  address = network;
  return { address, prefix, text: `${address.toString()}/${prefix}` };
}

function networkOf(address: Addr, prefix: number): Addr {
  const bytes = address.toByteArray();
  for (let bit = prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return ipaddr.fromByteArray(bytes);
}

/** True when `address` (already parsed) is inside `cidr`; IPv4 never matches an IPv6 range or back. */
export function cidrContains(cidr: Cidr, address: Addr): boolean {
  if (address.kind() !== cidr.address.kind()) return false;
  // match() is typed per family; the kinds are equal here.
  return (address as ipaddr.IPv4).match(cidr.address as ipaddr.IPv4, cidr.prefix);
}

/** True when any entry of `list` contains `address` (a string is parsed; an invalid one matches nothing). */
export function allowlistContains(list: readonly Cidr[], address: string | Addr): boolean {
  const a = typeof address === 'string' ? parseAddress(address) : address;
  if (!a) return false;
  return list.some((c) => cidrContains(c, a));
}
