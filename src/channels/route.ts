// SPDX-License-Identifier: Apache-2.0
/**
 * Routing: which channels take a message. Every enabled channel whose `source` matches runs (no
 * first-match, no priority): a message can feed the record and a downstream system at once. The
 * `filter` is not part of routing; it runs inside the channel (`filtered` outcome), so a message
 * that reaches only channels that filter it out was still routed. A message no channel takes is
 * answered AR with `CHANNEL_NO_ROUTE`.
 */
import type { Hl7Message } from '../hl7/index.js';
import type { SenderMeta } from './script.js';

/** Message type patterns: `TYPE^TRIGGER` with `*` (any run) and `?` (one character), or `*`. */
const TYPE_PATTERN = /^(\*|[A-Z0-9*?]+(\^[A-Z0-9*?]+)?)$/;

function globSource(glob: string): string {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return re;
}

/** The problem with a message type pattern, or null when it is valid. */
export function typePatternProblem(pattern: string): string | null {
  if (TYPE_PATTERN.test(pattern)) return null;
  return `invalid message type pattern "${pattern}": expected TYPE^TRIGGER in upper case, with * and ?, e.g. ADT^A0*`;
}

/** Compile message type patterns to one regular expression over `TYPE^TRIGGER`. `ADT` means `ADT^*`. */
export function compileTypePatterns(patterns: readonly string[]): RegExp {
  const alts = patterns.map((p) => (p === '*' ? '.*' : p.includes('^') ? globSource(p) : `${globSource(p)}\\^.*`));
  return new RegExp(`^(?:${alts.join('|')})$`);
}

/** Compile MSH-3/MSH-4 patterns (`*`, `?`), or null for "any". */
export function compileGlobs(patterns: readonly string[]): RegExp | null {
  if (patterns.length === 0) return null;
  return new RegExp(`^(?:${patterns.map(globSource).join('|')})$`);
}

/** What routing needs of a channel. */
export interface RouteSource {
  readonly name: string;
  readonly enabled: boolean;
  /** Compiled `source` of the channel. */
  readonly source: CompiledSource;
}

/** A channel's `source`, compiled. */
export interface CompiledSource {
  types: RegExp;
  interfaces: ReadonlySet<string> | null;
  senders: ReadonlySet<string> | null;
  organisations: ReadonlySet<string> | null;
  applications: RegExp | null;
  facilities: RegExp | null;
}

/** `TYPE^TRIGGER` of a message, always with the `^` (empty trigger when absent). */
export function routingType(message: Hl7Message): string {
  const t = message.messageType;
  return t.includes('^') ? t : `${t}^`;
}

/** True when the source takes this message from this sender (ignores `enabled`). */
export function sourceMatches(source: CompiledSource, message: Hl7Message, sender: SenderMeta): boolean {
  if (!source.types.test(routingType(message))) return false;
  if (source.interfaces !== null && !source.interfaces.has(sender.interface)) return false;
  if (source.senders !== null && (sender.senderId == null || !source.senders.has(sender.senderId))) return false;
  if (source.organisations !== null && (sender.organisationId == null || !source.organisations.has(sender.organisationId))) return false;
  if (source.applications !== null && !source.applications.test(message.get('MSH-3.1') ?? '')) return false;
  if (source.facilities !== null && !source.facilities.test(message.get('MSH-4.1') ?? '')) return false;
  return true;
}

/**
 * The channels that take a message, in the order given (file order of the channel folder). Every
 * one of them runs; an empty list means "no channel for this message" (`CHANNEL_NO_ROUTE`, AR).
 */
export function route<C extends RouteSource>(message: Hl7Message, sender: SenderMeta, channels: readonly C[]): C[] {
  const out: C[] = [];
  for (const c of channels) if (c.enabled && sourceMatches(c.source, message, sender)) out.push(c);
  return out;
}
