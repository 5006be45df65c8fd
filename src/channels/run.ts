// SPDX-License-Identifier: Apache-2.0
/**
 * Running one channel on one message: size limit, filter, then the transformer steps in order on a
 * copy of the message. The outcome says what the ACK should be: `pass` and `filtered` are accepted,
 * `rejected` is AR (refused on purpose: a reject step, a missing map entry, too large), `error` is AE
 * (a script threw or timed out, a step could not be applied). A failing step stops only this
 * message on this channel; nothing thrown leaves `runChannel` or `runChannelLive` (whose promise never
 * rejects).
 */
import { TributaryError, errorMessage, type ErrorCode, type ErrorParams } from '../errors.js';
import { Hl7Message } from '../hl7/index.js';
import { silentLogger, type Logger } from '../log.js';
import type { MessageBox } from './edit.js';
import type { Channel } from './load.js';
import type { SenderMeta } from './script.js';
import { StepStop, type StepEnv } from './steps.js';

/** What a channel did with a message. */
export type ChannelOutcome =
  | { result: 'pass'; channel: string; message: Hl7Message }
  | { result: 'filtered'; channel: string }
  | { result: 'rejected'; channel: string; step: string; code: ErrorCode; reason: string; params: ErrorParams }
  | { result: 'error'; channel: string; step: string; code: ErrorCode; reason: string; params: ErrorParams };

/** Options of {@link runChannel}. */
export interface RunContext {
  sender: SenderMeta;
  /** Script log lines go to `logger.body` (only written with body logging on). Default: silent. */
  logger?: Logger;
}

/** The ACK text of a stopped run: `channel X, step Y: reason` through the catalog. */
function stopped(channel: Channel, stop: StepStop): ChannelOutcome {
  const limits = channel.definition.limits;
  const params = { channel: channel.name, step: stop.step, reason: stop.reason, timeoutMs: limits.scriptTimeoutMs, maxMessageBytes: limits.maxMessageBytes };
  const reason = new TributaryError(stop.code, params).message;
  // `params` lets the ingestor raise the same catalog error (for the ACK) without re-rendering it.
  return { result: stop.result, channel: channel.name, step: stop.step, code: stop.code, reason, params };
}

/** The message as text and parsed, or the outcome when it is too large or cannot be read. */
function admit(channel: Channel, message: Hl7Message | string): { text: string; msg: Hl7Message } | ChannelOutcome {
  try {
    const text = typeof message === 'string' ? message : message.toString();
    const max = channel.definition.limits.maxMessageBytes;
    // Bytes as UTF-8 (how the message is stored and forwarded); the length bound skips the count for small ones.
    const bytes = text.length * 3 <= max ? 0 : Buffer.byteLength(text, 'utf8');
    if (bytes > max) {
      return stopped(channel, new StepStop('rejected', 'CHANNEL_MESSAGE_TOO_LARGE', `${bytes} bytes`, 'limits.maxMessageBytes'));
    }
    return { text, msg: typeof message === 'string' ? Hl7Message.parse(text) : message };
  } catch (e) {
    return stopped(channel, new StepStop('rejected', 'CHANNEL_STEP_FAILED', errorMessage(e), '(parse)'));
  }
}

function envOf(channel: Channel, ctx: RunContext, blocking: boolean): StepEnv {
  return { channel: channel.name, sender: ctx.sender, logger: ctx.logger ?? silentLogger, timeoutMs: channel.definition.limits.scriptTimeoutMs, blocking };
}

function failed(channel: Channel, e: unknown): ChannelOutcome {
  if (e instanceof StepStop) return stopped(channel, e);
  return stopped(channel, new StepStop('error', 'CHANNEL_STEP_FAILED', errorMessage(e), '(channel)'));
}

/**
 * Run a channel on a message (not changed: steps work on a copy), waiting in this thread for any
 * script (within the channel's `limits.scriptTimeoutMs`): CLI channel tests, benchmarks. The live
 * path uses {@link runChannelLive}. Never throws.
 */
export function runChannel(channel: Channel, message: Hl7Message | string, ctx: RunContext): ChannelOutcome {
  const a = admit(channel, message);
  if ('result' in a) return a;
  const env = envOf(channel, ctx, true);
  // With `blocking`, no condition or step returns a promise (see StepEnv).
  try {
    const box: MessageBox = { msg: a.msg };
    if (channel.filter !== null && !(channel.filter(box, env) as boolean)) return { result: 'filtered', channel: channel.name };
    if (channel.steps.length === 0) return { result: 'pass', channel: channel.name, message: a.msg };
    // A private copy: other channels get the message as received.
    box.msg = a.msg.clone();
    for (const step of channel.steps) {
      if (step.when !== null && !(step.when(box, env) as boolean)) continue;
      step.run(box, env);
    }
    return { result: 'pass', channel: channel.name, message: box.msg };
  } catch (e) {
    return failed(channel, e);
  }
}

/**
 * Run a channel on the live path: a channel without scripts runs at once ({@link runChannel}, no
 * promise); one with scripts returns a promise, and its run waits at each script without blocking
 * the thread, so the script calls of every message of this turn reach the script worker together
 * (`executor.ts`). Never throws; the promise never rejects.
 */
export function runChannelLive(channel: Channel, message: Hl7Message | string, ctx: RunContext): ChannelOutcome | Promise<ChannelOutcome> {
  if (!channel.scripted) return runChannel(channel, message, ctx);
  const a = admit(channel, message);
  if ('result' in a) return a;
  return runSuspending(channel, a.msg, envOf(channel, ctx, false));
}

/** {@link runChannel}'s loop, awaiting the conditions and steps that return a promise (scripts). */
async function runSuspending(channel: Channel, msg: Hl7Message, env: StepEnv): Promise<ChannelOutcome> {
  try {
    const box: MessageBox = { msg };
    if (channel.filter !== null) {
      const keep = channel.filter(box, env);
      if (!(keep instanceof Promise ? await keep : keep)) return { result: 'filtered', channel: channel.name };
    }
    if (channel.steps.length === 0) return { result: 'pass', channel: channel.name, message: msg };
    box.msg = msg.clone();
    for (const step of channel.steps) {
      if (step.when !== null) {
        const w = step.when(box, env);
        if (!(w instanceof Promise ? await w : w)) continue;
      }
      const r = step.run(box, env);
      if (r !== undefined) await r;
    }
    return { result: 'pass', channel: channel.name, message: box.msg };
  } catch (e) {
    return failed(channel, e);
  }
}

/**
 * The acknowledgment mode for a message on this channel: `auto` answers in enhanced mode when
 * MSH-15 or MSH-16 carry a value (the sender asked for it), original mode otherwise.
 */
export function ackModeFor(channel: Pick<Channel, 'definition'>, message: Hl7Message): 'original' | 'enhanced' {
  const mode = channel.definition.ack.mode as string;
  if (mode === 'original' || mode === 'enhanced') return mode;
  return message.msh(15) !== '' || message.msh(16) !== '' ? 'enhanced' : 'original';
}
