// SPDX-License-Identifier: Apache-2.0
/**
 * The live set of channels: loaded from a folder, replaced as a whole on reload, never half
 * updated. A reload that finds any problem keeps the channels in force and returns the problems,
 * so a bad edit never takes a working channel down. Counters are kept per channel name and
 * survive reloads.
 */
import { watch, type FSWatcher } from 'node:fs';
import { errorMessage } from '../errors.js';
import type { Hl7Message } from '../hl7/index.js';
import { silentLogger, type Logger } from '../log.js';
import { compileChannels, formatIssue, invalid, type Channel, type ChannelIssue } from './load.js';
import { route } from './route.js';
import { runChannelLive, type ChannelOutcome, type RunContext } from './run.js';
import type { ScriptExecutor, SenderMeta } from './script.js';

/** Per-channel counters since the registry was created. */
export interface ChannelCounters {
  /** Messages routed to the channel. */
  received: number;
  /** Dropped by the channel's filter (accepted, nothing delivered). */
  filtered: number;
  /** Passed every step. */
  accepted: number;
  /** Refused on purpose (AR). */
  rejected: number;
  /** A script or step failed (AE). */
  errored: number;
  /** Handed to a destination queue (counted by the delivery side through {@link ChannelRegistry.countQueued}). */
  queued: number;
}

/** Result of {@link ChannelRegistry.reload}. */
export type ReloadResult =
  | { ok: true; channels: readonly Channel[]; added: string[]; changed: string[]; removed: string[] }
  | { ok: false; issues: ChannelIssue[] };

/** Options of {@link ChannelRegistry}. */
export interface ChannelRegistryOptions {
  /** The channel folder. */
  dir: string;
  logger?: Logger;
  /** Quiet period after the last file change before {@link ChannelRegistry.watch} reloads (default 250 ms). */
  debounceMs?: number;
  /** Where scripts run; default the process's script worker (see `executor.ts`). */
  executor?: ScriptExecutor;
}

const zero = (): ChannelCounters => ({ received: 0, filtered: 0, accepted: 0, rejected: 0, errored: 0, queued: 0 });

/** Loads, reloads, watches, routes and runs the channels of one folder. */
export class ChannelRegistry {
  private readonly dir: string;
  private readonly logger: Logger;
  private readonly debounceMs: number;
  private readonly executor: ScriptExecutor | undefined;
  private current: readonly Channel[] = [];
  private readonly stats = new Map<string, ChannelCounters>();
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(options: ChannelRegistryOptions) {
    this.dir = options.dir;
    this.logger = options.logger ?? silentLogger;
    this.debounceMs = options.debounceMs ?? 250;
    this.executor = options.executor;
  }

  /**
   * A registry holding exactly these (already compiled) channels, not bound to a folder: the
   * channel test runner puts one channel in front of a throw-away engine pipeline.
   */
  static fixed(channels: readonly Channel[], logger?: Logger): ChannelRegistry {
    const r = new ChannelRegistry({ dir: '', logger });
    r.current = channels;
    return r;
  }

  /**
   * First load.
   * @throws TributaryError `CHANNEL_INVALID` listing every problem
   */
  load(): readonly Channel[] {
    const { channels, issues } = compileChannels(this.dir, { executor: this.executor });
    if (issues.length > 0) throw invalid(issues);
    this.current = channels;
    this.logger.info('channels loaded', { dir: this.dir, channels: channels.length, versions: this.versions() });
    return channels;
  }

  /** Load the folder again; on any problem keep the channels in force and return the problems. */
  reload(): ReloadResult {
    const { channels, issues } = compileChannels(this.dir, { executor: this.executor });
    if (issues.length > 0) {
      this.logger.warn('channel reload refused; the previous channels stay in force', { dir: this.dir, problems: issues.map(formatIssue) });
      return { ok: false, issues };
    }
    const before = new Map(this.current.map((c) => [c.name, c.version]));
    const added = channels.filter((c) => !before.has(c.name)).map((c) => c.name);
    const changed = channels.filter((c) => before.has(c.name) && before.get(c.name) !== c.version).map((c) => c.name);
    const names = new Set(channels.map((c) => c.name));
    const removed = [...before.keys()].filter((n) => !names.has(n));
    this.current = channels;
    if (added.length + changed.length + removed.length > 0) {
      this.logger.info('channels reloaded', { dir: this.dir, added, changed, removed, versions: this.versions() });
    }
    return { ok: true, channels, added, changed, removed };
  }

  /**
   * Reload whenever a file under the folder changes, after `debounceMs` of quiet (editors write a
   * file in several steps). Returns a function that stops watching.
   */
  watch(onReload?: (r: ReloadResult) => void): () => void {
    this.unwatch();
    const fire = (): void => {
      this.timer = null;
      let r: ReloadResult;
      try {
        r = this.reload();
      } catch (e) {
        // compileChannels does not throw for file problems; this is a bug, but must not stop the engine.
        this.logger.error('channel reload failed', { dir: this.dir, reason: errorMessage(e) });
        return;
      }
      onReload?.(r);
    };
    try {
      this.watcher = watch(this.dir, { recursive: true, persistent: false }, () => {
        if (this.timer !== null) clearTimeout(this.timer);
        this.timer = setTimeout(fire, this.debounceMs);
        this.timer.unref();
      });
      this.watcher.on('error', (e) => this.logger.warn('channel folder watch failed', { dir: this.dir, reason: errorMessage(e) }));
    } catch (e) {
      this.logger.warn('cannot watch the channel folder; reload by hand', { dir: this.dir, reason: errorMessage(e) });
    }
    return () => this.unwatch();
  }

  private unwatch(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.watcher?.close();
    this.watcher = null;
  }

  /** Stop watching. */
  close(): void {
    this.unwatch();
  }

  /** The channels in force. */
  channels(): readonly Channel[] {
    return this.current;
  }

  /** A channel by name. */
  get(name: string): Channel | undefined {
    return this.current.find((c) => c.name === name);
  }

  /** name → version of the channels in force (for logs and status pages). */
  versions(): Record<string, string> {
    return Object.fromEntries(this.current.map((c) => [c.name, c.version]));
  }

  /** The channels that take this message (see `route`). */
  route(message: Hl7Message, sender: SenderMeta): Channel[] {
    return route(message, sender, this.current);
  }

  /**
   * Run one channel and count the outcome: at once for a channel without scripts, a promise for one
   * with scripts (`runChannelLive`). Never throws; the promise never rejects.
   */
  run(channel: Channel, message: Hl7Message | string, ctx: RunContext): ChannelOutcome | Promise<ChannelOutcome> {
    const c = this.counter(channel.name);
    c.received++;
    const out = runChannelLive(channel, message, { logger: this.logger, ...ctx });
    return out instanceof Promise ? out.then((o) => this.count(channel, c, o)) : this.count(channel, c, out);
  }

  private count(channel: Channel, c: ChannelCounters, out: ChannelOutcome): ChannelOutcome {
    switch (out.result) {
      case 'pass':
        c.accepted++;
        break;
      case 'filtered':
        c.filtered++;
        break;
      case 'rejected':
        c.rejected++;
        break;
      case 'error':
        c.errored++;
        // Ids and codes only: the reason may quote message content.
        this.logger.warn('channel step failed', { channel: channel.name, version: channel.version, step: out.step, code: out.code });
        break;
    }
    return out;
  }

  /** Count a message handed to a destination queue of this channel. */
  countQueued(name: string, n = 1): void {
    this.counter(name).queued += n;
  }

  /** A copy of the counters, by channel name. */
  counters(): Record<string, ChannelCounters> {
    return Object.fromEntries([...this.stats].map(([k, v]) => [k, { ...v }]));
  }

  private counter(name: string): ChannelCounters {
    let c = this.stats.get(name);
    if (c === undefined) this.stats.set(name, (c = zero()));
    return c;
  }
}
