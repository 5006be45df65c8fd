// SPDX-License-Identifier: Apache-2.0
/**
 * The channel file format as one JSON Schema (draft-07) for editors: `tributary channels schema`
 * prints it, and a YAML file that names it (`# yaml-language-server: $schema=…`) gets completion
 * and inline errors while an analyst types. It is built from the same schemas the loader checks
 * against (`schema.ts`), so it cannot drift from them: the step, destination and condition
 * variants become `oneOf`/`anyOf` lists, nested conditions a `$ref`, and a property with a default
 * is not required. The loader stays the authority: it also checks what a schema cannot (paths
 * against the segment list, table names, script files, exactly one comparison in a condition).
 */
import type { TSchema } from '@sinclair/typebox';
import { CONDITION_SCHEMAS, ChannelSchema, DESTINATION_SCHEMAS, STEP_SCHEMAS } from './schema.js';

type Json = Record<string, unknown>;

const CONDITION_REF = '#/definitions/condition';

/** A plain copy of a TypeBox schema (its symbol-keyed markers dropped). */
function plain(schema: TSchema): Json {
  return JSON.parse(JSON.stringify(schema)) as Json;
}

/** Object schemas, everywhere inside: a property with a default need not be written. */
function relax(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(relax);
  if (node === null || typeof node !== 'object') return node;
  const o = node as Json;
  for (const [k, v] of Object.entries(o)) o[k] = relax(v);
  const props = o.properties as Record<string, Json> | undefined;
  if (props !== undefined && Array.isArray(o.required)) {
    const required = (o.required as string[]).filter((k) => props[k] === undefined || !('default' in props[k]!));
    if (required.length > 0) o.required = required;
    else delete o.required;
  }
  return o;
}

/** A condition reference with a description. */
function condition(description: string): Json {
  return { $ref: CONDITION_REF, description };
}

/** The JSON Schema of a channel file. */
export function channelJsonSchema(): Json {
  const steps = Object.values(STEP_SCHEMAS).map((s) => {
    const j = plain(s);
    (j.properties as Json).when = condition('a condition; the step runs only when it holds');
    return j;
  });
  const destinations = Object.values(DESTINATION_SCHEMAS).map(plain);
  const conditions = Object.entries(CONDITION_SCHEMAS).map(([kind, s]) => {
    const j = plain(s);
    const props = j.properties as Json;
    if (kind === 'all' || kind === 'any') props[kind] = { type: 'array', minItems: 1, items: { $ref: CONDITION_REF } };
    if (kind === 'not') props.not = { $ref: CONDITION_REF };
    return j;
  });
  const top = plain(ChannelSchema);
  const props = top.properties as Json;
  props.transform = { ...(props.transform as Json), items: { oneOf: steps } };
  props.destinations = { ...(props.destinations as Json), items: { oneOf: destinations } };
  props.filter = condition('a condition; the channel takes the message only when it holds');
  return relax({
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Tributary channel file',
    description: 'One channel: which messages it takes, how it changes them, where it sends them (docs/channels.md).',
    ...top,
    definitions: { condition: { anyOf: conditions } },
  }) as Json;
}
