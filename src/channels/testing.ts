// SPDX-License-Identifier: Apache-2.0
/**
 * Channel test cases: `<case>.hl7` files in a channel's tests folder, each with an optional
 * `<case>.expect.yaml` (default: `result: pass`) and, for a transformed message, an optional
 * expected output file. Only the channel itself runs here (routing by `source`, filter, steps);
 * what the record makes of the message (`ack`, `record`) is checked by the engine's runner
 * (src/engine/channel-tests.ts), which needs the whole path.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import { errorMessage } from '../errors.js';
import { Hl7Message } from '../hl7/index.js';
import type { Channel } from './load.js';
import { sourceMatches } from './route.js';
import { runChannel } from './run.js';
import type { SenderMeta } from './script.js';

/** The expectation file of a case. */
export interface ChannelTestExpectation {
  /** Default `pass`. */
  result?: 'pass' | 'filtered' | 'rejected' | 'error';
  /** The stopping step, e.g. `transform[2]`. */
  step?: string;
  /** A substring of the reason. */
  reason?: string;
  /** path → expected value after the channel (`null`: absent or empty). */
  fields?: Record<string, string | null>;
  /** A file (next to the case) with the whole expected output; line ends are compared as CR. */
  output?: string;
  /** Who sent it (default `{ interface: mllp }` with no sender or organisation). */
  sender?: SenderMeta;
  /** Whether the channel's `source` takes the message (default true). */
  routed?: boolean;
  /**
   * The ACK the whole path gives (this channel, then the record) in a throw-away data directory,
   * sent by its first-run demo sender: `AA`, `AR` or `AE`. Checked by `tributary channels test`.
   */
  ack?: string;
  /** Items the record must hold afterwards (payload: a subset to match). Checked with `ack`. */
  record?: Array<{ kind: string; key?: string; label?: string | null; count?: number; payload?: Record<string, unknown> }>;
}

/** The expectation file of a case (empty when there is none). */
export function readExpectation(caseFile: string): ChannelTestExpectation {
  const expectFile = caseFile.replace(/\.hl7$/, '.expect.yaml');
  return existsSync(expectFile) ? ((parse(readFileSync(expectFile, 'utf8')) as ChannelTestExpectation | null) ?? {}) : {};
}

/** The case files of a channel (its tests folder), sorted. */
export function caseFiles(channel: Channel): string[] {
  if (!existsSync(channel.testsDir)) return [];
  return readdirSync(channel.testsDir)
    .filter((n) => n.endsWith('.hl7') && !n.endsWith('.out.hl7'))
    .sort()
    .map((n) => join(channel.testsDir, n));
}

/** One case's result. */
export interface ChannelTestResult {
  channel: string;
  /** The case's .hl7 file, relative to the working directory. */
  file: string;
  ok: boolean;
  /** What differed, one line each. */
  problems: string[];
}

const normalise = (s: string): string => s.replace(/\r\n|\n/g, '\r').replace(/\r+$/, '');

/** Run the test cases of every channel given (disabled ones too: examples ship disabled). */
export function runChannelTests(channels: readonly Channel[]): ChannelTestResult[] {
  const results: ChannelTestResult[] = [];
  for (const channel of channels) {
    for (const file of caseFiles(channel)) {
      const problems: string[] = [];
      try {
        runCase(channel, file, problems);
      } catch (e) {
        problems.push(errorMessage(e));
      }
      results.push({ channel: channel.name, file: relative(process.cwd(), file), ok: problems.length === 0, problems });
    }
  }
  return results;
}

function runCase(channel: Channel, file: string, problems: string[]): void {
  const expect = readExpectation(file);
  const sender: SenderMeta = expect.sender ?? { interface: 'mllp', senderId: null, organisationId: null };
  const input = Hl7Message.parse(readFileSync(file, 'utf8'));
  const routed = sourceMatches(channel.source, input, sender);
  if (routed !== (expect.routed ?? true)) {
    problems.push(routed ? 'the channel takes this message; expected it not to (routed: false)' : 'the channel\'s source does not take this message');
    return;
  }
  if (!routed) return;
  const out = runChannel(channel, input, { sender });
  const want = expect.result ?? 'pass';
  if (out.result !== want) {
    problems.push(`expected ${want}, got ${out.result}${'reason' in out ? `: ${out.reason}` : ''}`);
    return;
  }
  if (out.result === 'rejected' || out.result === 'error') {
    if (expect.step !== undefined && out.step !== expect.step) problems.push(`expected step ${expect.step}, got ${out.step}`);
    if (expect.reason !== undefined && !out.reason.includes(expect.reason)) problems.push(`expected the reason to contain "${expect.reason}", got "${out.reason}"`);
  }
  if (out.result !== 'pass') return;
  for (const [path, value] of Object.entries(expect.fields ?? {})) {
    const got = out.message.get(path);
    const same = value === null ? got === undefined || got === '' : got === value;
    if (!same) problems.push(`${path}: expected ${JSON.stringify(value)}, got ${JSON.stringify(got ?? null)}`);
  }
  if (expect.output !== undefined) {
    const wantText = normalise(readFileSync(join(channel.testsDir, expect.output), 'utf8'));
    const gotText = normalise(out.message.toString());
    if (wantText !== gotText) {
      const w = wantText.split('\r');
      const g = gotText.split('\r');
      const i = w.findIndex((line, k) => line !== g[k]);
      const at = i < 0 ? w.length : i;
      problems.push(`output differs from ${expect.output} at segment ${at + 1}: expected ${JSON.stringify(w[at] ?? '(end)')}, got ${JSON.stringify(g[at] ?? '(end)')}`);
    }
  }
}
