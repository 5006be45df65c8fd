// SPDX-License-Identifier: Apache-2.0
/**
 * The engine configuration: one schema, defaults in one place (with units in their names), validated
 * once, reporting every problem with its key path. The CLI only builds the input object; it never
 * validates anything itself.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { readFileSync } from 'node:fs';
import { TributaryError, errorMessage } from '../errors.js';

const MiB = 1024 * 1024;

const Port = (def: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: def, description });

const TlsSchema = Type.Object(
  {
    keyFile: Type.String({ minLength: 1, description: 'PEM private key' }),
    certFile: Type.String({ minLength: 1, description: 'PEM certificate chain' }),
    caFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA bundle for client certificates' })),
    requestClientCert: Type.Boolean({ default: false, description: 'ask senders for a client certificate' }),
    requireClientCert: Type.Boolean({
      default: false,
      description: 'refuse connections without a client certificate signed by caFile',
    }),
  },
  { additionalProperties: false },
);

/** JSON schema of the engine configuration file. */
export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1, default: './data', description: 'where tributary.db lives' }),
    host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'address the listeners bind' }),
    mllp: Type.Object(
      {
        port: Port(2575, 'MLLP port; 0 picks a free one'),
        maxFrameBytes: Type.Integer({ minimum: 1024, default: 16 * MiB }),
        idleTimeoutMs: Type.Integer({ minimum: 0, default: 300_000, description: '0 disables' }),
        maxConnections: Type.Integer({ minimum: 1, default: 2000 }),
        maxConnectionsPerIp: Type.Integer({ minimum: 1, default: 500 }),
        maxInFlightPerConnection: Type.Integer({
          minimum: 1,
          default: 64,
          description: 'frames read but not yet answered before reading pauses',
        }),
        shutdownTimeoutMs: Type.Integer({ minimum: 0, default: 10_000 }),
        tls: Type.Optional(TlsSchema),
      },
      { additionalProperties: false, default: {} },
    ),
    http: Type.Object(
      {
        port: Port(8080, 'HTTP port; 0 picks a free one'),
        maxBodyBytes: Type.Integer({ minimum: 1024, default: 16 * MiB, description: 'larger request bodies get 413' }),
        trustProxy: Type.Union([Type.Literal(false), Type.Array(Type.String({ minLength: 1 }))], {
          default: false,
          description: 'addresses/CIDRs of reverse proxies whose X-Forwarded-For is believed; false: none',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    journal: Type.Object(
      {
        duplicateWindowMs: Type.Integer({
          minimum: 0,
          default: 24 * 60 * 60 * 1000,
          description: 'same sender + MSH-10 inside this window is a duplicate; 0 disables',
        }),
        maxBatchMessages: Type.Integer({ minimum: 1, default: 2000, description: 'rows per group commit' }),
        oversizePrefixBytes: Type.Integer({ minimum: 0, default: 64 * 1024 }),
      },
      { additionalProperties: false, default: {} },
    ),
    ack: Type.Object(
      {
        sendingApplication: Type.String({ default: 'TRIBUTARY' }),
        sendingFacility: Type.String({ default: 'TRIBUTARY' }),
      },
      { additionalProperties: false, default: {} },
    ),
    channels: Type.Object(
      {
        dir: Type.String({ minLength: 1, default: './channels', description: 'the channel folder; missing: the built-in record channel' }),
        watch: Type.Boolean({ default: true, description: 'reload channels when their files change' }),
      },
      { additionalProperties: false, default: {} },
    ),
    access: Type.Optional(
      Type.Unknown({
        description: 'declared organisations, teams, aliases, senders, credentials and grants (docs/senders.md), applied at start',
      }),
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['error', 'warn', 'info', 'debug'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
        bodies: Type.Boolean({ default: false, description: 'log message bodies (PHI!) for debugging' }),
        json: Type.Optional(Type.Boolean({ description: 'default: JSON when stderr is not a TTY' })),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

/** The validated, frozen engine configuration. */
export type Config = Readonly<Static<typeof ConfigSchema>>;
/** What a caller may pass: any subset, validated by {@link loadConfig}. */
export type ConfigInput = Record<string, unknown>;

/** One configuration problem with its dotted key path. */
export interface ConfigIssue {
  path: string;
  message: string;
}

function keyPath(pointer: string): string {
  // TypeBox reports JSON pointers ("/mllp/port"); users read dotted paths ("mllp.port").
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '') || '(root)';
}

function collectIssues(schema: TSchema, value: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(schema, value)) {
    const path = keyPath(e.path);
    // A union reports one error per branch; one line per key is what a user needs.
    if (seen.has(path)) continue;
    seen.add(path);
    let message = e.message;
    if (message === 'Unexpected property') message = 'unknown key';
    const anyOf = (e.schema as { anyOf?: Array<{ const?: unknown }> }).anyOf;
    if (anyOf && anyOf.every((b) => b.const !== undefined)) {
      message = `expected one of ${anyOf.map((b) => JSON.stringify(b.const)).join(', ')}`;
    }
    issues.push({ path, message });
  }
  return issues;
}

/** Deep-merge plain objects (later wins); arrays and scalars are replaced. */
export function mergeConfig(...inputs: ConfigInput[]): ConfigInput {
  const out: ConfigInput = {};
  for (const input of inputs) {
    for (const [k, v] of Object.entries(input)) {
      if (v === undefined) continue;
      const prev = out[k];
      out[k] =
        v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
          ? mergeConfig(prev as ConfigInput, v as ConfigInput)
          : v;
    }
  }
  return out;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Validate a configuration input, fill the defaults and freeze it.
 * @throws TributaryError `CONFIG_INVALID` listing every problem as `key.path: message`.
 */
export function loadConfig(input: ConfigInput = {}): Config {
  const value = Value.Default(ConfigSchema, Value.Clone(input));
  const issues = collectIssues(ConfigSchema, value);
  if (issues.length > 0) {
    throw new TributaryError('CONFIG_INVALID', {
      issues: issues.map((i) => `  ${i.path}: ${i.message}`).join('\n'),
      count: issues.length,
    });
  }
  return deepFreeze(value as Config);
}

/**
 * Read a JSON configuration file (not yet validated; merge it with CLI flags, then call
 * {@link loadConfig}).
 * @throws TributaryError `CONFIG_UNREADABLE`
 */
export function readConfigFile(file: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TributaryError('CONFIG_UNREADABLE', { file, reason: (e as NodeJS.ErrnoException).code ?? errorMessage(e) });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the top level must be an object');
    return parsed as ConfigInput;
  } catch (e) {
    throw new TributaryError('CONFIG_UNREADABLE', { file, reason: `not valid JSON: ${errorMessage(e)}` });
  }
}
