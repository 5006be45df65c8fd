// SPDX-License-Identifier: Apache-2.0
/**
 * What the channels decide for one admitted message, worked out before its journal row is queued
 * (scripts never run inside the commit): which channels take it, what each one did, which outcome
 * the ACK reports, and what is to be written (record, outbox) if the message is accepted.
 *
 * Routing rule (docs/channels.md): every enabled channel whose source matches runs, in folder
 * order, each on its own copy. The ACK reflects the channels that deliver to the record; when none
 * of the matching channels does, it reflects all of them. The worst of those decides: a script or
 * step error is `AE`, a rejection `AR`; filtered and passed are `AA`. A message is taken whole or
 * not at all: unless the ACK is `AA`, nothing of it reaches the record or an outbox.
 */
import type { Channel, ChannelOutcome, ChannelRegistry, Destination } from '../channels/index.js';
import { ackModeFor } from '../channels/index.js';
import { Hl7Error, Hl7ErrorCode, type Hl7Message } from '../hl7/index.js';

/** One matching channel and what it did. */
export interface ChannelRun {
  channel: Channel;
  outcome: ChannelOutcome;
}

/** The channels' decision for a message. */
export interface ChannelPlan {
  runs: ChannelRun[];
  /** The error the ACK reports (`status` says AR or AE); null when accepted. */
  error: Hl7Error | null;
  status: 'accepted' | 'rejected' | 'error';
  /**
   * Answer with the commit codes CA/CR/CE: the channel answers in enhanced mode and the sender did
   * not ask for an application acknowledgment (MSH-16 not AL, ER or SU). The record is applied
   * before the answer, so when MSH-16 asks for one, the single ACK is the application ACK (AA/AR/AE).
   */
  enhanced: boolean;
}

/** MSH-16 values that ask for an application acknowledgment. */
const APPLICATION_ACK = new Set(['AL', 'ER', 'SU']);

const RANK = { pass: 0, filtered: 0, rejected: 1, error: 2 } as const;

/** True when a channel delivers to the aggregated record. */
export function deliversToRecord(channel: Channel): boolean {
  // A loop, not `some` with a callback: this runs for every matching channel of every message.
  for (const d of channel.definition.destinations as readonly Destination[]) if (d.type === 'record') return true;
  return false;
}

/**
 * Route and run the channels for an admitted message: the plan at once when no matching channel
 * has a script, a promise of it otherwise (its scripts run in the script worker while the event
 * loop goes on). Never throws; the promise never rejects.
 */
export function planChannels(
  registry: ChannelRegistry,
  message: Hl7Message,
  sender: { interface: string; senderId: string; organisationId: string },
  /** Only this channel (a reprocess through one channel); it must still take the message. */
  only?: string,
): ChannelPlan | Promise<ChannelPlan> {
  const routed = registry.route(message, sender);
  const matched = only === undefined ? routed : routed.filter((c) => c.name === only);
  if (matched.length === 0) {
    const enhanced = message.msh(15) !== '' && !APPLICATION_ACK.has(message.msh(16));
    const error = new Hl7Error('CHANNEL_NO_ROUTE', Hl7ErrorCode.UnsupportedMessageType, { messageType: message.messageType || '(none)' }, { segment: 'MSH', field: 9 });
    return { runs: [], error, status: 'rejected', enhanced };
  }
  const outcomes = matched.map((channel) => registry.run(channel, message, { sender }));
  if (outcomes.length === 1 && outcomes[0] instanceof Promise) return outcomes[0].then((o) => decide(matched, [o], message));
  if (outcomes.some((o) => o instanceof Promise)) {
    return Promise.all(outcomes).then((list) => decide(matched, list, message));
  }
  return decide(matched, outcomes as ChannelOutcome[], message);
}

/** The plan from every matching channel's outcome. */
function decide(matched: Channel[], outcomes: ChannelOutcome[], message: Hl7Message): ChannelPlan {
  const runs = matched.map((channel, i) => ({ channel, outcome: outcomes[i]! }));
  const recordRuns = runs.filter((r) => deliversToRecord(r.channel));
  const decisive = recordRuns.length > 0 ? recordRuns : runs;
  let worst = decisive[0]!;
  for (const r of decisive) if (RANK[r.outcome.result] > RANK[worst.outcome.result]) worst = r;
  const enhanced = ackModeFor(decisive[0]!.channel, message) === 'enhanced' && !APPLICATION_ACK.has(message.msh(16));
  const o = worst.outcome;
  if (o.result === 'rejected' || o.result === 'error') {
    const error = new Hl7Error(o.code, Hl7ErrorCode.ApplicationInternalError, o.params);
    return { runs, error, status: o.result === 'error' ? 'error' : 'rejected', enhanced };
  }
  return { runs, error: null, status: 'accepted', enhanced };
}
