// SPDX-License-Identifier: Apache-2.0
/**
 * Compiled filter conditions and transformer steps. Compilation happens once per load (regular
 * expressions built, script contexts created); running a step is then a few map lookups and
 * `Hl7Message` calls.
 */
import { type ErrorCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { deleteValue, dropSegments, setValue, type MessageBox } from './edit.js';
import type { ConditionDefinition, StepDefinition } from './schema.js';
import type { LoadedScript, ScriptResult, SenderMeta } from './script.js';

/** What a step or condition needs besides the message. */
export interface StepEnv {
  channel: string;
  sender: SenderMeta;
  logger: Logger;
  timeoutMs: number;
  /**
   * Scripts wait for their answer in this thread ({@link LoadedScript.run}): then no step or
   * condition returns a promise. Otherwise ({@link LoadedScript.start}, the live path) a script
   * step or condition may return one, and only those do.
   */
  blocking: boolean;
}

/**
 * Why a run stops at a step: `rejected` (AR: the message is refused on purpose) or `error` (AE:
 * a script threw or timed out, or a step could not be applied). Thrown inside a run, caught by
 * `runChannel`; never leaves it.
 */
export class StepStop {
  constructor(
    readonly result: 'rejected' | 'error',
    readonly code: ErrorCode,
    readonly reason: string,
    readonly step: string,
  ) {}
}

/** A compiled condition: a promise only for a script condition (or one containing it) when `env.blocking` is false. */
export type Condition = (box: MessageBox, env: StepEnv) => boolean | Promise<boolean>;

/** A compiled step. */
export interface CompiledStep {
  /** Key path of the step in the channel file, e.g. `transform[2]`. */
  readonly label: string;
  readonly type: StepDefinition['type'];
  readonly when: Condition | null;
  /** A promise (of nothing useful) only for a script step when `env.blocking` is false. */
  run(box: MessageBox, env: StepEnv): void | Promise<unknown>;
}

/** Scripts of a channel, loaded once (a script used twice shares nothing: each step gets a context). */
export interface ScriptFactory {
  (file: string, kind: 'transform' | 'filter', label: string): LoadedScript;
}

function scriptOutcome(r: ScriptResult, env: StepEnv, label: string): boolean | undefined {
  switch (r.kind) {
    case 'ok':
      return undefined;
    case 'bool':
      return r.value;
    case 'reject':
      throw new StepStop('rejected', 'CHANNEL_REJECTED', r.reason, label);
    case 'timeout':
      throw new StepStop('error', 'CHANNEL_SCRIPT_TIMEOUT', `timed out after ${env.timeoutMs} ms`, label);
    case 'error':
      throw new StepStop('error', 'CHANNEL_SCRIPT_FAILED', r.reason, label);
  }
}

/** Run a script step or condition; a promise when it runs in another thread and `env.blocking` is false (rejects with a {@link StepStop}). */
function scriptResult(script: LoadedScript, box: MessageBox, env: StepEnv, label: string): boolean | undefined | Promise<boolean | undefined> {
  const r = env.blocking ? script.run(box, env.sender, env.logger, env.timeoutMs) : script.start(box, env.sender, env.logger, env.timeoutMs);
  return r instanceof Promise ? r.then((x) => scriptOutcome(x, env, label)) : scriptOutcome(r, env, label);
}

/** `parts` in order until one is false (`all`), or until one is true (`any`: `want` true); a promise once a part is one. */
function each(parts: Condition[], want: boolean, box: MessageBox, env: StepEnv, from = 0): boolean | Promise<boolean> {
  for (let i = from; i < parts.length; i++) {
    const v = parts[i]!(box, env);
    if (v instanceof Promise) return v.then((x) => (x === want ? want : each(parts, want, box, env, i + 1)));
    if (v === want) return want;
  }
  return !want;
}

/** Compile a validated condition. */
export function compileCondition(def: ConditionDefinition, label: string, scripts: ScriptFactory): Condition {
  if ('all' in def) {
    const parts = def.all.map((c, i) => compileCondition(c, `${label}.all[${i}]`, scripts));
    return (box, env) => each(parts, false, box, env);
  }
  if ('any' in def) {
    const parts = def.any.map((c, i) => compileCondition(c, `${label}.any[${i}]`, scripts));
    return (box, env) => each(parts, true, box, env);
  }
  if ('not' in def) {
    const inner = compileCondition(def.not, `${label}.not`, scripts);
    return (box, env) => {
      const v = inner(box, env);
      return v instanceof Promise ? v.then((x) => !x) : !v;
    };
  }
  if ('script' in def) {
    const sandbox = scripts(def.script, 'filter', label);
    return (box, env) => {
      const v = scriptResult(sandbox, box, env, label);
      return v instanceof Promise ? v.then((x) => x === true) : v === true;
    };
  }
  const path = def.path;
  if (def.equals !== undefined) {
    const want = def.equals;
    return (box) => box.msg.get(path) === want;
  }
  if (def.in !== undefined) {
    const set = new Set(def.in);
    return (box) => {
      const v = box.msg.get(path);
      return v !== undefined && set.has(v);
    };
  }
  if (def.matches !== undefined) {
    const re = new RegExp(def.matches);
    return (box) => re.test(box.msg.get(path) ?? '');
  }
  const exists = def.exists ?? true;
  return (box) => ((box.msg.get(path) ?? '') !== '') === exists;
}

/** Wrap a step body so a content error (`Hl7Error`, e.g. a missing segment) stops the run with the step. */
function guarded(label: string, body: (box: MessageBox, env: StepEnv) => void): (box: MessageBox, env: StepEnv) => void {
  return (box, env) => {
    try {
      body(box, env);
    } catch (e) {
      if (e instanceof StepStop) throw e;
      throw new StepStop('error', 'CHANNEL_STEP_FAILED', errorMessage(e), label);
    }
  };
}

/** Compile one validated step. `tables` are the channel's loaded lookup tables. */
export function compileStep(
  def: StepDefinition,
  label: string,
  tables: Record<string, Record<string, string>>,
  scripts: ScriptFactory,
): CompiledStep {
  const when = def.when === undefined ? null : compileCondition(def.when as ConditionDefinition, `${label}.when`, scripts);
  let run: CompiledStep['run'];
  switch (def.type) {
    case 'set': {
      const { path, value, create } = def;
      run = guarded(label, (box) => setValue(box, path, value, { create }));
      break;
    }
    case 'copy': {
      const { from, to, create } = def;
      run = guarded(label, (box) => {
        // Raw, so escape sequences and components travel unchanged.
        const v = box.msg.get(from, { raw: true });
        if (v === undefined) deleteValue(box, to);
        else setValue(box, to, v, { raw: true, create });
      });
      break;
    }
    case 'delete': {
      const { path } = def;
      run = guarded(label, (box) => deleteValue(box, path));
      break;
    }
    case 'map': {
      const table = tables[def.table] ?? {};
      const { path, onMissing, create } = def;
      const to = def.to ?? path;
      const fallback = def.default ?? '';
      const tableName = def.table;
      run = guarded(label, (box) => {
        const code = box.msg.get(path);
        const hit = code !== undefined && Object.prototype.hasOwnProperty.call(table, code) ? table[code] : undefined;
        if (hit !== undefined) return setValue(box, to, hit, { create });
        switch (onMissing) {
          case 'keep':
            if (to !== path && code !== undefined) setValue(box, to, code, { create });
            return;
          case 'default':
            return setValue(box, to, fallback, { create });
          case 'clear':
            return deleteValue(box, to);
          case 'reject':
            // The code itself may be PHI-adjacent; the reason names the table and the field only.
            throw new StepStop('rejected', 'CHANNEL_REJECTED', `${path} has no entry in table ${tableName}`, label);
        }
      });
      break;
    }
    case 'drop-segment': {
      const { segment } = def;
      run = guarded(label, (box) => {
        box.msg = dropSegments(box.msg, segment);
      });
      break;
    }
    case 'reject': {
      const { reason } = def;
      run = () => {
        throw new StepStop('rejected', 'CHANNEL_REJECTED', reason, label);
      };
      break;
    }
    case 'script': {
      const sandbox = scripts(def.file, 'transform', label);
      run = (box, env) => {
        const v = scriptResult(sandbox, box, env, label);
        if (v instanceof Promise) return v;
      };
      break;
    }
  }
  return { label, type: def.type, when, run };
}
