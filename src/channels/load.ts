// SPDX-License-Identifier: Apache-2.0
/**
 * Reading a channel folder: find the channel files, parse them, validate every one against the
 * schema and the rules the schema cannot express (paths, segments, tables, scripts, duplicate
 * names), and compile them. Every problem of every file is collected before anything is reported,
 * as `file: key.path: message`, so one `channels validate` run lists all of them.
 *
 * Layout: every `.yaml`/`.yml`/`.json` file directly in the folder is a channel (its scripts and
 * tables sit next to it, its tests in `tests/<file name>/`); in a subfolder, a file named
 * `channel.yaml` (or `.yml`/`.json`) makes that folder a channel (tests in its `tests/`).
 * Subfolders without one are searched further; `tests/` folders never hold channels.
 */
import { type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { parseDocument } from 'yaml';
import { TributaryError, errorMessage } from '../errors.js';
import { parsePath } from '../hl7/index.js';
import { compileGlobs, compileTypePatterns, typePatternProblem, type CompiledSource } from './route.js';
import {
  CONDITION_SCHEMAS,
  ChannelSchema,
  DESTINATION_SCHEMAS,
  STEP_SCHEMAS,
  isKnownSegment,
  type ChannelDefinition,
  type ConditionDefinition,
  type StepDefinition,
} from './schema.js';
import { defaultScriptExecutor } from './executor.js';
import { compileScript, type LoadedScript, type ScriptExecutor } from './script.js';
import { compileCondition, compileStep, type CompiledStep, type Condition, type ScriptFactory } from './steps.js';

/** One problem in a channel folder. */
export interface ChannelIssue {
  /** The file, as `dir` joined with its path in the folder (e.g. `channels/adt.yaml`). */
  file: string;
  /** Dotted key path in the file (`transform[2].path`), or `(file)` for the file as a whole. */
  path: string;
  message: string;
}

/** `file: path: message`, the one-line form. */
export function formatIssue(i: ChannelIssue): string {
  return `${i.file}: ${i.path}: ${i.message}`;
}

/** A loaded, compiled channel. */
export interface Channel {
  readonly name: string;
  readonly enabled: boolean;
  readonly description: string | undefined;
  /** The channel file as shown to users (`channels/adt.yaml`). */
  readonly file: string;
  /** Absolute folder of its scripts and tables. */
  readonly folder: string;
  /** Absolute folder of its test cases (may not exist). */
  readonly testsDir: string;
  /** Content hash (channel file, scripts, table files): changes whenever any of them changes. */
  readonly version: string;
  /** The validated definition, defaults filled. */
  readonly definition: Readonly<ChannelDefinition>;
  /** Compiled `source` (routing). */
  readonly source: CompiledSource;
  /** Compiled filter, or null. */
  readonly filter: Condition | null;
  /** Compiled transformer steps, in order. */
  readonly steps: readonly CompiledStep[];
  /** Has a script (step or condition): its live runs wait for the script worker (`runChannelLive`). */
  readonly scripted: boolean;
  /** The loaded lookup tables. */
  readonly tables: Readonly<Record<string, Record<string, string>>>;
}

/** Result of {@link compileChannels}. */
export interface ChannelLoad {
  channels: Channel[];
  issues: ChannelIssue[];
}

const CHANNEL_EXT = new Set(['.yaml', '.yml', '.json']);

interface Found {
  abs: string;
  display: string;
  folder: string;
  testsDir: string;
}

/** Find the channel files of a folder (sorted, so load order and routing order are stable). */
function discover(dir: string, issues: ChannelIssue[]): Found[] {
  const root = resolve(dir);
  const found: Found[] = [];
  let top: string[];
  try {
    if (!statSync(root).isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
    top = readdirSync(root).sort();
  } catch (e) {
    issues.push({ file: dir, path: '(folder)', message: `cannot read the channel folder: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}` });
    return [];
  }
  for (const name of top) {
    const abs = join(root, name);
    if (name.startsWith('.')) continue;
    if (statSync(abs).isFile() && CHANNEL_EXT.has(extname(name))) {
      found.push({ abs, display: join(dir, name), folder: root, testsDir: join(root, 'tests', basename(name, extname(name))) });
    }
  }
  const walk = (absDir: string, displayDir: string): void => {
    const names = readdirSync(absDir).sort();
    const own = names.find((n) => /^channel\.(ya?ml|json)$/.test(n));
    if (own !== undefined) {
      found.push({ abs: join(absDir, own), display: join(displayDir, own), folder: absDir, testsDir: join(absDir, 'tests') });
      return;
    }
    for (const n of names) {
      const p = join(absDir, n);
      if (n.startsWith('.') || n === 'tests' || n === 'node_modules' || !statSync(p).isDirectory()) continue;
      walk(p, join(displayDir, n));
    }
  };
  for (const name of top) {
    const abs = join(root, name);
    if (name.startsWith('.') || name === 'tests' || name === 'node_modules' || !statSync(abs).isDirectory()) continue;
    walk(abs, join(dir, name));
  }
  return found;
}

/** JSON pointer → dotted key path with [n] for array items. */
function keyPath(prefix: string, pointer: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const rest = parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
  if (!prefix) return rest || '(root)';
  return rest === '' ? prefix : rest.startsWith('[') ? prefix + rest : `${prefix}.${rest}`;
}

/** Validate `value` (defaults filled in place) and report each key once, as the config layer does. */
function schemaIssues(schema: TSchema, value: unknown, prefix: string, report: (path: string, message: string) => void): void {
  const seen = new Set<string>();
  for (const e of Value.Errors(schema, value)) {
    const path = keyPath(prefix, e.path);
    if (seen.has(path)) continue;
    seen.add(path);
    let message = e.message;
    if (message === 'Unexpected property') message = 'unknown key';
    if (message === 'Expected required property') message = 'required, missing';
    const anyOf = (e.schema as { anyOf?: Array<{ const?: unknown }> }).anyOf;
    if (anyOf && anyOf.length > 0 && anyOf.every((b) => b.const !== undefined)) {
      message = `expected one of ${anyOf.map((b) => JSON.stringify(b.const)).join(', ')}`;
    }
    report(path, message);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Everything known about one file while it is checked. */
class FileCheck {
  readonly issues: ChannelIssue[] = [];
  /** Files (relative to the folder) that make up the channel's version. */
  readonly parts = new Map<string, string>();
  /** Loaded scripts by step label (`transform[2]`, `filter.any[0]`). */
  readonly sandboxes = new Map<string, LoadedScript>();
  /** Set once the top level is read: what script contexts are created with. */
  scriptEnv: { channel: string; timeoutMs: number; tables: Record<string, Record<string, string>> } | null = null;
  /** The channel's name, once read (for the duplicate check, even when the file has other problems). */
  name: string | undefined;

  constructor(
    readonly found: Found,
    readonly dir: string,
    readonly executor: ScriptExecutor,
  ) {}

  report = (path: string, message: string): void => {
    this.issues.push({ file: this.found.display, path, message });
  };

  /** A field path: grammar of src/hl7/path.ts, a known segment. */
  checkPath(value: unknown, at: string): void {
    if (typeof value !== 'string') return;
    let segment: string;
    try {
      segment = parsePath(value).segment;
    } catch (e) {
      this.report(at, errorMessage(e));
      return;
    }
    if (!isKnownSegment(segment)) this.report(at, `unknown segment "${segment}" (not a standard HL7 v2 segment nor a Z-segment)`);
  }

  /** A file next to the channel: relative, inside its folder, existing. Returns the absolute path. */
  sibling(value: string, at: string, what: string): string | null {
    const abs = resolve(this.found.folder, value);
    const rel = relative(this.found.folder, abs);
    if (isAbsolute(value) || rel.startsWith('..') || rel.split(sep).includes('..')) {
      this.report(at, `${what} "${value}" must be a file next to the channel (inside ${relative(process.cwd(), this.found.folder) || '.'})`);
      return null;
    }
    if (!existsSync(abs) || !statSync(abs).isFile()) {
      this.report(at, `${what} file "${value}" not found`);
      return null;
    }
    return abs;
  }

  script(value: unknown, at: string, kind: 'transform' | 'filter'): void {
    if (typeof value !== 'string' || value === '') return;
    const abs = this.sibling(value, at, 'script');
    if (abs === null) return;
    const compiled = compileScript(abs);
    if ('problem' in compiled) {
      this.report(at, `script ${value}: ${compiled.problem}`);
      return;
    }
    this.parts.set(normalize(value), readFileSync(abs, 'utf8'));
    if (this.scriptEnv === null) return;
    const label = at.replace(/\.(file|script)$/, '');
    try {
      this.sandboxes.set(label, this.executor.load(compiled.code, { file: abs, kind, step: label, ...this.scriptEnv }));
    } catch (e) {
      // Loads but fails at its top level: throws, loops, exports no function.
      this.report(at, `script ${value}: ${errorMessage(e)}`);
    }
  }

  condition(value: unknown, at: string, depth = 0): void {
    if (depth > 20) {
      this.report(at, 'conditions nested too deeply');
      return;
    }
    if (!isObject(value)) {
      this.report(at, 'expected a condition: { path, equals | in | matches | exists }, { all }, { any }, { not } or { script }');
      return;
    }
    const key = (['all', 'any', 'not', 'script', 'path'] as const).find((k) => k in value);
    if (key === undefined) {
      this.report(at, `unknown condition with keys ${Object.keys(value).join(', ') || '(none)'}: expected path, all, any, not or script`);
      return;
    }
    schemaIssues(CONDITION_SCHEMAS[key], value, at, this.report);
    switch (key) {
      case 'all':
      case 'any': {
        const list = value[key];
        if (Array.isArray(list)) list.forEach((c, i) => this.condition(c, `${at}.${key}[${i}]`, depth + 1));
        return;
      }
      case 'not':
        this.condition(value.not, `${at}.not`, depth + 1);
        return;
      case 'script':
        this.script(value.script, `${at}.script`, 'filter');
        return;
      case 'path': {
        this.checkPath(value.path, `${at}.path`);
        const ops = ['equals', 'in', 'matches', 'exists'].filter((k) => k in value);
        if (ops.length !== 1) this.report(at, `a field condition needs exactly one of equals, in, matches, exists (got ${ops.join(', ') || 'none'})`);
        if (typeof value.matches === 'string') {
          try {
            new RegExp(value.matches);
          } catch (e) {
            this.report(`${at}.matches`, `invalid regular expression: ${errorMessage(e)}`);
          }
        }
      }
    }
  }

  tables(def: Record<string, unknown>): Record<string, Record<string, string>> {
    const out: Record<string, Record<string, string>> = {};
    if (!isObject(def.tables)) return out;
    for (const [name, spec] of Object.entries(def.tables)) {
      const at = `tables.${name}`;
      if (isObject(spec)) {
        out[name] = spec as Record<string, string>;
        continue;
      }
      if (typeof spec !== 'string' || spec === '') continue;
      const abs = this.sibling(spec, at, 'table');
      if (abs === null) continue;
      const text = readFileSync(abs, 'utf8');
      this.parts.set(normalize(spec), text);
      const t = readTable(abs, text, (m) => this.report(at, `${spec}: ${m}`));
      if (t) out[name] = t;
    }
    return out;
  }

  step(step: unknown, at: string, tableNames: ReadonlySet<string>): void {
    if (!isObject(step)) {
      this.report(at, 'expected a step object with a type');
      return;
    }
    const type = step.type;
    if (typeof type !== 'string' || !(type in STEP_SCHEMAS)) {
      this.report(`${at}.type`, `unknown step type ${JSON.stringify(type ?? null)}: expected one of ${Object.keys(STEP_SCHEMAS).join(', ')}`);
      return;
    }
    const schema = STEP_SCHEMAS[type as keyof typeof STEP_SCHEMAS];
    Value.Default(schema, step);
    schemaIssues(schema, step, at, this.report);
    for (const k of ['path', 'from', 'to'] as const) if (k in step) this.checkPath(step[k], `${at}.${k}`);
    if (step.when !== undefined) this.condition(step.when, `${at}.when`);
    switch (type) {
      case 'map':
        if (typeof step.table === 'string' && !tableNames.has(step.table)) this.report(`${at}.table`, `no table "${step.table}" in tables`);
        if (step.onMissing === 'default' && step.default === undefined) this.report(`${at}.default`, 'onMissing: default needs a default value');
        break;
      case 'drop-segment':
        if (typeof step.segment === 'string') {
          if (step.segment === 'MSH') this.report(`${at}.segment`, 'MSH cannot be dropped');
          else if (!/^[A-Z0-9]{3}$/.test(step.segment) || !isKnownSegment(step.segment)) this.report(`${at}.segment`, `unknown segment "${step.segment}"`);
        }
        break;
      case 'script':
        this.script(step.file, `${at}.file`, 'transform');
        break;
    }
  }

  destination(d: unknown, at: string): void {
    const type = isObject(d) ? d.type : undefined;
    if (typeof type !== 'string' || !(type in DESTINATION_SCHEMAS)) {
      this.report(`${at}.type`, `unknown destination type ${JSON.stringify(type ?? null)}: expected one of ${Object.keys(DESTINATION_SCHEMAS).join(', ')}`);
      return;
    }
    const schema = DESTINATION_SCHEMAS[type as keyof typeof DESTINATION_SCHEMAS];
    Value.Default(schema, d);
    schemaIssues(schema, d, at, this.report);
  }
}

/** Read a table file: `.csv` (code,value per line; `#` comments), `.yaml`/`.yml`/`.json` (a map). */
function readTable(abs: string, text: string, report: (m: string) => void): Record<string, string> | null {
  const ext = extname(abs);
  if (ext === '.csv') {
    const out: Record<string, string> = {};
    text.split(/\r\n|\r|\n/).forEach((line, i) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      const comma = line.indexOf(',');
      if (comma < 0) report(`line ${i + 1}: expected code,value`);
      else out[line.slice(0, comma).trim()] = line.slice(comma + 1).trim();
    });
    return out;
  }
  if (ext !== '.yaml' && ext !== '.yml' && ext !== '.json') {
    report('a table file must be .csv, .yaml, .yml or .json');
    return null;
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    report(firstLine(doc.errors[0]!.message));
    return null;
  }
  const v: unknown = doc.toJS();
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string' || typeof x === 'number')) {
    report('expected a map of code: value');
    return null;
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
}

const firstLine = (s: string): string => s.split('\n')[0] ?? s;

/** Parse and check one file; returns the definition when the file has no problem. */
function checkFile(check: FileCheck): { def: ChannelDefinition; tables: Record<string, Record<string, string>> } | null {
  const { found, report } = check;
  let text: string;
  try {
    text = readFileSync(found.abs, 'utf8');
  } catch (e) {
    report('(file)', `cannot read: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
    return null;
  }
  check.parts.set(basename(found.abs), text);
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    // The first error only: the ones after it are mostly its echoes.
    report('(file)', `not valid YAML: ${firstLine(doc.errors[0]!.message).replace(/:$/, '')}`);
    return null;
  }
  const raw: unknown = doc.toJS();
  if (!isObject(raw)) {
    report('(root)', raw == null ? 'the file is empty; expected a channel' : 'expected a map of keys (name, source, transform, …)');
    return null;
  }
  const def = Value.Default(ChannelSchema, raw) as Record<string, unknown>;
  if (typeof def.name === 'string') check.name = def.name;
  schemaIssues(ChannelSchema, def, '', report);
  const source = isObject(def.source) ? def.source : {};
  if (Array.isArray(source.types)) {
    source.types.forEach((p, i) => {
      const problem = typeof p === 'string' ? typePatternProblem(p) : null;
      if (problem) report(`source.types[${i}]`, problem);
    });
  }
  const tables = check.tables(def);
  const limits = isObject(def.limits) ? def.limits : {};
  if (typeof def.name === 'string' && typeof limits.scriptTimeoutMs === 'number') {
    check.scriptEnv = { channel: def.name, timeoutMs: limits.scriptTimeoutMs, tables };
  }
  if (def.filter !== undefined) check.condition(def.filter, 'filter');
  if (Array.isArray(def.transform)) {
    const names = new Set(Object.keys(isObject(def.tables) ? def.tables : {}));
    def.transform.forEach((s, i) => check.step(s, `transform[${i}]`, names));
  }
  if (Array.isArray(def.destinations)) def.destinations.forEach((d, i) => check.destination(d, `destinations[${i}]`));
  return check.issues.length === 0 ? { def: def as unknown as ChannelDefinition, tables } : null;
}

function versionOf(parts: Map<string, string>): string {
  const h = createHash('sha256');
  for (const k of [...parts.keys()].sort()) h.update(`${k}\0${parts.get(k)}\0`);
  return h.digest('hex').slice(0, 12);
}

function compileSource(def: ChannelDefinition): CompiledSource {
  const s = def.source;
  const set = (a: readonly string[]): ReadonlySet<string> | null => (a.length === 0 ? null : new Set(a));
  return {
    types: compileTypePatterns(s.types),
    interfaces: set(s.interfaces),
    senders: set(s.senders),
    organisations: set(s.organisations),
    applications: compileGlobs(s.applications),
    facilities: compileGlobs(s.facilities),
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Options of {@link compileChannels} and {@link loadChannels}. */
export interface ChannelLoadOptions {
  /** Where scripts run; default {@link defaultScriptExecutor} (one worker thread per process). */
  executor?: ScriptExecutor;
}

/**
 * Validate and compile every channel of a folder. Never throws for a problem in the files: every
 * problem is in `issues` (then `channels` holds only the channels without problems).
 */
export function compileChannels(dir: string, options: ChannelLoadOptions = {}): ChannelLoad {
  // Asked for only when a script loads: a folder without scripts never starts the worker.
  let executor = options.executor;
  const scripts: ScriptExecutor = { load: (code, o) => (executor ??= defaultScriptExecutor()).load(code, o) };
  const issues: ChannelIssue[] = [];
  const channels: Channel[] = [];
  const byName = new Map<string, string>();
  for (const found of discover(dir, issues)) {
    const check = new FileCheck(found, dir, scripts);
    const ok = checkFile(check);
    const name = check.name;
    if (name !== undefined) {
      const other = byName.get(name);
      if (other !== undefined) check.report('name', `duplicate channel name "${name}" (also in ${other})`);
      else byName.set(name, found.display);
    }
    if (!ok || check.issues.length > 0) {
      issues.push(...check.issues);
      continue;
    }
    const def = ok.def;
    const sandboxes: ScriptFactory = (_file, _kind, label) => {
      const s = check.sandboxes.get(label);
      if (s === undefined) throw new Error(`${label}: script not loaded`);
      return s;
    };
    try {
      const filter = def.filter === undefined ? null : compileCondition(def.filter as ConditionDefinition, 'filter', sandboxes);
      const steps = def.transform.map((s, i) => compileStep(s as StepDefinition, `transform[${i}]`, ok.tables, sandboxes));
      channels.push({
        name: def.name,
        enabled: def.enabled,
        description: def.description,
        file: found.display,
        folder: found.folder,
        testsDir: found.testsDir,
        version: versionOf(check.parts),
        definition: deepFreeze(def),
        source: compileSource(def),
        filter,
        steps,
        scripted: check.sandboxes.size > 0,
        tables: deepFreeze(ok.tables),
      });
    } catch (e) {
      issues.push({ file: found.display, path: '(channel)', message: errorMessage(e) });
    }
  }
  return { channels, issues };
}

/** Every problem of a channel folder (empty when all channels are valid). */
export function validateChannels(dir: string, options: ChannelLoadOptions = {}): ChannelIssue[] {
  return compileChannels(dir, options).issues;
}

/**
 * Load and compile every channel of a folder.
 * @throws TributaryError `CHANNEL_INVALID` listing every problem, one per line
 */
export function loadChannels(dir: string, options: ChannelLoadOptions = {}): Channel[] {
  const { channels, issues } = compileChannels(dir, options);
  if (issues.length > 0) throw invalid(issues);
  return channels;
}

/** The `CHANNEL_INVALID` error for a list of problems. */
export function invalid(issues: readonly ChannelIssue[]): TributaryError {
  return new TributaryError('CHANNEL_INVALID', { count: issues.length, issues: issues.map((i) => `  ${formatIssue(i)}`).join('\n') });
}

/** Where a channel file's tests live, for a display path (used by docs and the CLI). */
export function testsFolderOf(channel: Pick<Channel, 'testsDir'>): string {
  return relative(process.cwd(), channel.testsDir) || '.';
}
