// SPDX-License-Identifier: Apache-2.0
/**
 * Channels: which messages go where and how they are changed on the way, as plain files in a
 * folder (YAML or JSON), checked before they run and safe to reload. The supported surface; see
 * docs/channels.md.
 */
export {
  ACK_MODES,
  ChannelSchema,
  CONDITION_SCHEMAS,
  DEFAULT_LIMITS,
  DESTINATION_SCHEMAS,
  INTERFACES,
  STANDARD_SEGMENTS,
  STEP_SCHEMAS,
  isKnownSegment,
  type AckMode,
  type ChannelDefinition,
  type ConditionDefinition,
  type Destination,
  type DestinationType,
  type InterfaceName,
  type StepDefinition,
  type StepType,
} from './schema.js';
export { compileChannels, formatIssue, loadChannels, validateChannels, type Channel, type ChannelIssue, type ChannelLoad, type ChannelLoadOptions } from './load.js';
export { channelJsonSchema } from './json-schema.js';
export { InlineScriptExecutor, WorkerScriptExecutor, closeDefaultScriptExecutor, defaultScriptExecutor, type WorkerExecutorStats, type WorkerScriptExecutorOptions } from './executor.js';
export { compileTypePatterns, route, routingType, sourceMatches, typePatternProblem } from './route.js';
export { ackModeFor, runChannel, runChannelLive, type ChannelOutcome, type RunContext } from './run.js';
export { ChannelRegistry, type ChannelCounters, type ChannelRegistryOptions, type ReloadResult } from './registry.js';
export { caseFiles, readExpectation, runChannelTests, type ChannelTestExpectation, type ChannelTestResult } from './testing.js';
export type { LoadedScript, ScriptExecutor, ScriptLoadOptions, ScriptResult, SenderMeta } from './script.js';
export type { FilterScript, ScriptContext, ScriptMessage, ScriptSender, TransformScript } from './script-api.js';
export {
  Outbox,
  OUTBOX_STATUSES,
  destinationKey,
  migrateOutbox,
  outboundDestinations,
  type EnqueueInput,
  type OutboundDestination,
  type OutboxCounts,
  type OutboxItem,
  type OutboxListFilter,
  type OutboxStatus,
} from './outbox.js';
