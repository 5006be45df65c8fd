// SPDX-License-Identifier: Apache-2.0
/**
 * The channel file format: one schema, defaults in one place. A channel file is YAML (or JSON) and
 * is validated against {@link ChannelSchema}; transformer steps, destinations and filter
 * conditions are validated against the variant their `type` (or key) names, so an analyst sees
 * `transform[2].path: …` instead of "no union branch matched". docs/channels.md lists every field.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const MiB = 1024 * 1024;

/** Interfaces a channel can take messages from (the `interface` of a received frame). */
export const INTERFACES = ['mllp', 'http', 'soap', 'replay'] as const;
/** One of {@link INTERFACES}. */
export type InterfaceName = (typeof INTERFACES)[number];

/** ACK modes: `auto` is original mode unless MSH-15/MSH-16 ask for enhanced mode. */
export const ACK_MODES = ['auto', 'original', 'enhanced'] as const;
/** One of {@link ACK_MODES}. */
export type AckMode = (typeof ACK_MODES)[number];

const literals = <T extends readonly string[]>(values: T, opts: Record<string, unknown> = {}) =>
  Type.Union(values.map((v) => Type.Literal(v)), opts);

const NonEmpty = (description?: string) => Type.String({ minLength: 1, ...(description ? { description } : {}) });
/** A field path in the grammar of `src/hl7/path.ts`, checked further by the loader. */
const Path = (description = 'field path, e.g. PID-3[2].1') => Type.String({ minLength: 1, description });

/** Defaults of the `limits` block (named with their units). */
export const DEFAULT_LIMITS = { scriptTimeoutMs: 50, maxMessageBytes: 16 * MiB } as const;

/** The top level of a channel file. Steps, destinations and conditions are checked per variant. */
export const ChannelSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-z0-9][a-z0-9._-]{0,63}$',
      description: 'unique channel name: lower case letters, digits, . _ -',
    }),
    description: Type.Optional(Type.String()),
    enabled: Type.Boolean({ default: true, description: 'a disabled channel is loaded and validated but never routed to' }),
    source: Type.Object(
      {
        types: Type.Array(Type.String(), {
          minItems: 1,
          description: 'message type patterns TYPE^TRIGGER with * and ?, e.g. ADT^A0*',
        }),
        interfaces: Type.Array(literals(INTERFACES), { default: [], description: 'empty: any interface' }),
        senders: Type.Array(NonEmpty(), { default: [], description: 'sender ids; empty: any sender' }),
        organisations: Type.Array(NonEmpty(), { default: [], description: 'acting organisation ids; empty: any' }),
        applications: Type.Array(Type.String(), { default: [], description: 'MSH-3.1 patterns with * and ?; empty: any' }),
        facilities: Type.Array(Type.String(), { default: [], description: 'MSH-4.1 patterns with * and ?; empty: any' }),
      },
      { additionalProperties: false },
    ),
    filter: Type.Optional(Type.Unknown({ description: 'a condition; the channel takes the message only when it holds' })),
    tables: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_-]+$' }), Type.Union([Type.Record(Type.String(), Type.String()), NonEmpty()]), {
      default: {},
      description: 'lookup tables: inline code → value maps, or a .csv/.yaml/.json file next to the channel',
    }),
    transform: Type.Array(Type.Unknown(), { default: [], description: 'ordered transformer steps' }),
    destinations: Type.Array(Type.Unknown(), { minItems: 1, default: [{ type: 'record' }] }),
    ack: Type.Object(
      { mode: literals(ACK_MODES, { default: 'auto' }) },
      { additionalProperties: false, default: {} },
    ),
    limits: Type.Object(
      {
        scriptTimeoutMs: Type.Integer({ minimum: 1, maximum: 10_000, default: DEFAULT_LIMITS.scriptTimeoutMs, description: 'per script step, per message' }),
        maxMessageBytes: Type.Integer({ minimum: 1024, default: DEFAULT_LIMITS.maxMessageBytes, description: 'larger messages are rejected (AR)' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

const when = Type.Optional(Type.Unknown({ description: 'a condition; the step runs only when it holds' }));
const create = Type.Boolean({ default: false, description: 'append the segment when the message has none' });

/** Transformer step schemas, by `type`. */
export const STEP_SCHEMAS = {
  set: Type.Object({ type: Type.Literal('set'), path: Path(), value: Type.String(), create, when }, { additionalProperties: false }),
  copy: Type.Object({ type: Type.Literal('copy'), from: Path(), to: Path(), create, when }, { additionalProperties: false }),
  delete: Type.Object({ type: Type.Literal('delete'), path: Path(), when }, { additionalProperties: false }),
  map: Type.Object(
    {
      type: Type.Literal('map'),
      path: Path('the code to look up'),
      to: Type.Optional(Path('where the mapped value goes; default: path')),
      table: NonEmpty('a table name from `tables`'),
      onMissing: literals(['keep', 'default', 'clear', 'reject'] as const, { default: 'keep' }),
      default: Type.Optional(Type.String()),
      create,
      when,
    },
    { additionalProperties: false },
  ),
  'drop-segment': Type.Object(
    { type: Type.Literal('drop-segment'), segment: Type.String({ description: 'segment id; every occurrence is dropped' }), when },
    { additionalProperties: false },
  ),
  reject: Type.Object({ type: Type.Literal('reject'), reason: NonEmpty(), when }, { additionalProperties: false }),
  script: Type.Object(
    { type: Type.Literal('script'), file: NonEmpty('a .ts or .js file next to the channel'), when },
    { additionalProperties: false },
  ),
} as const;

/** Step types, in documentation order. */
export type StepType = keyof typeof STEP_SCHEMAS;
/** One validated step, as written (defaults filled). */
export type StepDefinition = { [K in StepType]: Static<(typeof STEP_SCHEMAS)[K]> }[StepType];

/** Destination schemas, by `type`. Validated and represented only: delivery is separate work. */
export const DESTINATION_SCHEMAS = {
  record: Type.Object({ type: Type.Literal('record'), name: Type.Optional(NonEmpty()) }, { additionalProperties: false }),
  file: Type.Object(
    {
      type: Type.Literal('file'),
      name: Type.Optional(NonEmpty()),
      folder: NonEmpty('folder the transformed message is written to (relative: to the engine working directory)'),
      extension: Type.String({ pattern: '^\\.[A-Za-z0-9]{1,8}$', default: '.hl7' }),
    },
    { additionalProperties: false },
  ),
  mllp: Type.Object(
    {
      type: Type.Literal('mllp'),
      name: Type.Optional(NonEmpty()),
      host: NonEmpty(),
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      tls: Type.Boolean({ default: false }),
      ackTimeoutMs: Type.Integer({ minimum: 1, default: 10_000 }),
      retryDelayMs: Type.Integer({ minimum: 0, default: 5_000 }),
    },
    { additionalProperties: false },
  ),
  http: Type.Object(
    {
      type: Type.Literal('http'),
      name: Type.Optional(NonEmpty()),
      url: Type.String({ pattern: '^https?://[^\\s/]+', description: 'http:// or https:// URL' }),
      headers: Type.Record(Type.String(), Type.String(), { default: {} }),
      timeoutMs: Type.Integer({ minimum: 1, default: 10_000 }),
      retryDelayMs: Type.Integer({ minimum: 0, default: 5_000 }),
    },
    { additionalProperties: false },
  ),
} as const;

/** Destination types. */
export type DestinationType = keyof typeof DESTINATION_SCHEMAS;
/** One validated destination (defaults filled). */
export type Destination = { [K in DestinationType]: Static<(typeof DESTINATION_SCHEMAS)[K]> }[DestinationType];

/**
 * Condition schemas, by their distinguishing key: a field test (`path` with exactly one of
 * `equals`, `in`, `matches`, `exists`), `all`/`any` of conditions, `not`, or a filter `script`.
 */
export const CONDITION_SCHEMAS = {
  path: Type.Object(
    {
      path: Path(),
      equals: Type.Optional(Type.String()),
      in: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
      matches: Type.Optional(Type.String({ minLength: 1, description: 'a JavaScript regular expression' })),
      exists: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
  all: Type.Object({ all: Type.Array(Type.Unknown(), { minItems: 1 }) }, { additionalProperties: false }),
  any: Type.Object({ any: Type.Array(Type.Unknown(), { minItems: 1 }) }, { additionalProperties: false }),
  not: Type.Object({ not: Type.Unknown() }, { additionalProperties: false }),
  script: Type.Object({ script: NonEmpty('a .ts or .js file whose default export returns true or false') }, { additionalProperties: false }),
} as const satisfies Record<string, TSchema>;

/** A validated channel file (defaults filled; steps, destinations and conditions checked). */
export interface ChannelDefinition extends Omit<Static<typeof ChannelSchema>, 'transform' | 'destinations' | 'filter'> {
  transform: StepDefinition[];
  destinations: Destination[];
  filter?: ConditionDefinition;
}

/** A validated condition. */
export type ConditionDefinition =
  | { path: string; equals?: string; in?: string[]; matches?: string; exists?: boolean }
  | { all: ConditionDefinition[] }
  | { any: ConditionDefinition[] }
  | { not: ConditionDefinition }
  | { script: string };

/**
 * Standard HL7 v2 segment ids (v2.1–v2.8). Paths may name these or any Z-segment (`Z` + two
 * letters or digits); anything else is almost always a typo (`PIX` for `PID`).
 */
export const STANDARD_SEGMENTS: ReadonlySet<string> = new Set(
  (
    'ABS ACC ADD ADJ AFF AIG AIL AIP AIS AL1 APR ARQ ARV AUT BHS BLC BLG BPO BPX BTS BTX BUI CDM CDO CER CM0 CM1 CM2 ' +
    'CNS CON CSP CSR CSS CTD CTI DB1 DEV DG1 DMI DON DRG DSC DSP ECD ECR EDU EQL EQP EQU ERQ ERR EVN FAC FHS FT1 FTS ' +
    'GOL GP1 GP2 GT1 IAM IAR IIM ILT IN1 IN2 IN3 INV IPC IPR ISD ITM IVC IVT LAN LCC LCH LDP LOC LRL MFA MFE MFI MRG ' +
    'MSA MSH NCK NDS NK1 NPU NSC NST NTE OBR OBX ODS ODT OH1 OH2 OH3 OH4 OM1 OM2 OM3 OM4 OM5 OM6 OM7 ORC ORG OVR ' +
    'PAC PCE PCR PD1 PDA PDC PEO PES PID PKG PMT PR1 PRA PRB PRC PRD PRT PSG PSH PSL PSS PTH PV1 PV2 PYE QAK QID QPD ' +
    'QRD QRF QRI RCP RDF RDT REL RF1 RFI RGS RMI ROL RQ1 RQD RXA RXC RXD RXE RXG RXO RXR RXV SAC SCD SCH SCP SDD ' +
    'SFT SGH SGT SHP SID SLT SPM SPR STF STZ TCC TCD TQ1 TQ2 TXA UAC UB1 UB2 URD URS VAR VND VTQ'
  ).split(' '),
);

/** True for a standard segment id or a Z-segment. */
export function isKnownSegment(id: string): boolean {
  return STANDARD_SEGMENTS.has(id) || /^Z[A-Z0-9]{2}$/.test(id);
}
