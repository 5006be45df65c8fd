// SPDX-License-Identifier: Apache-2.0
/** `tributary start`: run the engine until SIGTERM/SIGINT. */
import { loadConfig, mergeConfig, readConfigFile, type ConfigInput } from '../config/config.js';
import { startEngine } from '../engine/engine.js';
import { createLogger } from '../log.js';
import type { CliIO } from './common.js';
import { onStopSignal } from './thread.js';

/** Flags of `tributary start`. */
export interface StartArgs {
  config?: string;
  data?: string;
  host?: string;
  mllpPort?: number;
  httpPort?: number;
  logBodies?: boolean;
  logLevel?: string;
  channels?: string;
}

/** Build the config input from a file and flags (flags win). Validation happens in loadConfig. */
export function startConfigInput(args: StartArgs): ConfigInput {
  const fromFile = args.config ? readConfigFile(args.config) : {};
  const fromFlags: ConfigInput = {
    dataDir: args.data,
    host: args.host,
    mllp: args.mllpPort !== undefined ? { port: args.mllpPort } : undefined,
    http: args.httpPort !== undefined ? { port: args.httpPort } : undefined,
    log: { bodies: args.logBodies ? true : undefined, level: args.logLevel },
    channels: args.channels !== undefined ? { dir: args.channels } : undefined,
  };
  return mergeConfig(fromFile, fromFlags);
}

/** Start the engine; resolves when it has stopped after a signal. */
export async function runStart(args: StartArgs, io: CliIO): Promise<number> {
  const config = loadConfig(startConfigInput(args));
  const logger = createLogger({ level: config.log.level as 'info', bodies: config.log.bodies, json: config.log.json });
  const engine = await startEngine(config, logger);
  io.stdout.write(`READY mllp=${engine.mllpPort} http=${engine.httpPort}\n`);
  await new Promise<void>((resolve) => {
    const stopListening = onStopSignal((signal) => {
      stopListening();
      logger.info('signal received; finishing in-flight messages', { signal });
      engine.close().then(resolve, resolve);
    });
  });
  return 0;
}
