// SPDX-License-Identifier: Apache-2.0
/**
 * Channel scripts: compiling a script file (esbuild, CommonJS, async lowered onto the missing
 * `Promise`, imports refused) and the contracts between the channel steps and whatever runs the
 * compiled code (a {@link ScriptExecutor}: see `executor.ts`). What a script can reach is decided in
 * `sandbox.ts`; where it runs and how it is stopped is decided by the executor.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import esbuild from 'esbuild';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { MessageBox } from './edit.js';

/** Who sent the message (what routing and scripts may see). */
export interface SenderMeta {
  /** `mllp`, `http`, `soap` or `replay`. */
  interface: string;
  /** The authenticated sender's id, or null. */
  senderId?: string | null;
  /** The acting organisation's id, or null. */
  organisationId?: string | null;
}

/** What one script call produced. */
export type ScriptResult =
  | { kind: 'ok' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'reject'; reason: string }
  | { kind: 'error'; reason: string }
  | { kind: 'timeout' };

/** Options of {@link ScriptSandbox.load}. */
export interface ScriptLoadOptions {
  /** Absolute path of the .ts/.js file. */
  file: string;
  /** `transform` scripts change the message; `filter` scripts return true/false and may not change it. */
  kind: 'transform' | 'filter';
  /** The channel's lookup tables (copied into the context). */
  tables: Record<string, Record<string, string>>;
  channel: string;
  /** Step label for log lines, e.g. `transform[2]`. */
  step: string;
  /** Time limit of each call (the module's top-level code gets at least {@link LOAD_TIMEOUT_MS}). */
  timeoutMs: number;
}

export { LOAD_TIMEOUT_MS } from './protocol.js';

/** One loaded script step, ready to run on messages. */
export interface LoadedScript {
  /**
   * Run the script on `box` (its message may be replaced by the changed one) within `timeoutMs`,
   * waiting in this thread for the answer (CLI channel tests, benchmarks). Never throws: every
   * failure is a {@link ScriptResult}.
   */
  run(box: MessageBox, sender: SenderMeta, logger: Logger, timeoutMs: number): ScriptResult;
  /**
   * The same without blocking this thread (the live message path): the result, or a promise of it
   * when the script runs in another thread. The promise never rejects, and `box` is updated before
   * it settles.
   */
  start(box: MessageBox, sender: SenderMeta, logger: Logger, timeoutMs: number): ScriptResult | Promise<ScriptResult>;
}

/**
 * Loads compiled scripts and runs them with a time limit, isolated from the engine (see
 * docs/channels.md "Isolation and its cost").
 */
export interface ScriptExecutor {
  /**
   * Run the module's top-level code once and keep the script for {@link LoadedScript.run}.
   * @throws Error with a one-line reason when the module does not compile, throws, loops or exports no function
   */
  load(code: string, options: ScriptLoadOptions): LoadedScript;
}

/** Options of esbuild: CommonJS, and every async feature lowered onto the (absent) Promise. */
const TRANSFORM = {
  format: 'cjs',
  target: 'es2022',
  supported: { 'async-await': false, 'async-generator': false, 'for-await': false, 'dynamic-import': false, 'top-level-await': false },
} as const;

/**
 * Compile a script file to the CommonJS text the sandbox runs.
 * @returns the code, or the problem (`file:line:column: message`) when it cannot be used
 */
export function compileScript(file: string): { code: string } | { problem: string } {
  const ext = extname(file);
  if (ext !== '.ts' && ext !== '.js' && ext !== '.mts' && ext !== '.mjs') return { problem: 'a script must be a .ts or .js file' };
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (e) {
    return { problem: `cannot read the script: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}` };
  }
  let code: string;
  try {
    code = esbuild.transformSync(source, { ...TRANSFORM, loader: ext === '.ts' || ext === '.mts' ? 'ts' : 'js', sourcefile: file }).code;
  } catch (e) {
    const first = (e as { errors?: Array<{ text: string; location?: { line: number; column: number } | null }> }).errors?.[0];
    if (first) return { problem: `does not compile: ${first.location ? `line ${first.location.line}:${first.location.column + 1}: ` : ''}${first.text}` };
    return { problem: `does not compile: ${errorMessage(e)}` };
  }
  // Imports compile to require(), which the sandbox does not have: say so at load time instead.
  if (/\brequire\s*\(/.test(code)) return { problem: 'scripts cannot import modules (no import, import() or require in the sandbox)' };
  return { code };
}
