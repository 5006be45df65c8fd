// SPDX-License-Identifier: Apache-2.0
/**
 * The composition root: builds the journal, the ingestor and the listeners from a validated
 * {@link Config}, and shuts them down in the right order (stop accepting, finish in-flight
 * messages, commit, close the database).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resourceLimits } from 'node:worker_threads';
import { join, resolve } from 'node:path';
import type { Config } from '../config/config.js';
import { TributaryError, errorMessage } from '../errors.js';
import { Ingestor } from '../ingest/ingest.js';
import { startHttpServer, type HttpServerHandle } from '../interfaces/http-server.js';
import { MllpListener, type MllpTlsOptions } from '../interfaces/mllp-listener.js';
import { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { setupSenders, type SenderWiring } from './senders.js';
import { createRecordService } from './record.js';
import type { RecordService } from '../record/index.js';
import { ChannelRegistry, Outbox, closeDefaultScriptExecutor, outboundDestinations } from '../channels/index.js';
import { OutboxDeliverer } from '../interfaces/outbound.js';

/** File name of the database inside the data directory. */
export const DATABASE_FILE = 'tributary.db';

/** Path of the database of a data directory. */
export function databasePath(dataDir: string): string {
  return join(resolve(dataDir), DATABASE_FILE);
}

/** A running engine. */
export interface Engine {
  readonly config: Config;
  readonly journal: Journal;
  readonly mllpPort: number;
  readonly httpPort: number;
  /** Graceful stop: no new connections, in-flight messages answered, journal closed. */
  close(): Promise<void>;
}

function loadTls(config: Config): MllpTlsOptions | undefined {
  const t = config.mllp.tls;
  if (!t) return undefined;
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new TributaryError('NET_TLS_FILES', { what, file, reason: (e as NodeJS.ErrnoException).code ?? errorMessage(e) });
    }
  };
  return {
    key: read('key', t.keyFile),
    cert: read('certificate', t.certFile),
    ca: t.caFile ? read('CA bundle', t.caFile) : undefined,
    requestClientCert: t.requestClientCert,
    requireClientCert: t.requireClientCert,
  };
}

/** The channel folder shipped with Tributary (the default record channel and the examples). */
export const BUILTIN_CHANNELS_DIR = fileURLToPath(new URL('../../channels', import.meta.url));

/**
 * The channel registry of a folder, loaded. A folder that does not exist means the built-in one
 * (whose only enabled channel takes ADT, ORU, MDM and SIU into the record).
 * @throws TributaryError `CHANNEL_INVALID` listing every problem
 */
export function openChannels(dir: string, logger: Logger): ChannelRegistry {
  let folder = resolve(dir);
  if (!existsSync(folder)) {
    logger.warn('no channel folder; using the built-in record channel', { dir: folder, builtin: BUILTIN_CHANNELS_DIR });
    folder = BUILTIN_CHANNELS_DIR;
  }
  const registry = new ChannelRegistry({ dir: folder, logger });
  registry.load();
  return registry;
}

/** Options of {@link createPipeline}. */
export interface PipelineOptions {
  journal: Journal;
  logger: Logger;
  /** The channels; absent: every admitted message goes to the record as it is. */
  channels?: ChannelRegistry;
  /** Wake the delivery of an outbox destination (after the commit that queued for it). */
  onQueued?: (destination: string) => void;
  /** Declared access configuration (the config file's `access`). */
  declared?: unknown;
  /** MSH-3/4 of our ACKs. */
  ack?: { sendingApplication: string; sendingFacility: string };
}

/**
 * The message path behind every interface: senders (with the first-run defaults), the record, and
 * the ingestor that ties them to the journal. The engine and `replay --data` build it the same way.
 */
export function createPipeline(options: PipelineOptions): { senders: SenderWiring; record: RecordService; outbox: Outbox; ingestor: Ingestor } {
  const { journal, logger } = options;
  const senders = setupSenders({ journal, logger, declared: options.declared });
  const record = createRecordService(journal.database, senders.directory);
  // Rows are remembered across messages; the journal says when a group rolled back.
  record.store.enableCache();
  journal.onGroupEnd((committed) => record.store.transactionEnded(committed));
  const outbox = new Outbox(journal.database);
  const ingestor = new Ingestor({
    journal,
    logger,
    gate: senders.gate,
    record,
    channels: options.channels,
    outbox,
    onQueued: options.onQueued,
    sendingApplication: options.ack?.sendingApplication,
    sendingFacility: options.ack?.sendingFacility,
  });
  return { senders, record, outbox, ingestor };
}

/** Start the engine described by `config`. */
export async function startEngine(config: Config, logger: Logger): Promise<Engine> {
  const tlsOptions = loadTls(config);
  const journal = Journal.open({
    file: databasePath(config.dataDir),
    duplicateWindowMs: config.journal.duplicateWindowMs,
    maxBatchMessages: config.journal.maxBatchMessages,
    logger,
    backgroundCheckpoints: true,
  });
  let senders: SenderWiring;
  let ingestor: Ingestor;
  let channels: ChannelRegistry;
  let deliverer: OutboxDeliverer;
  try {
    channels = openChannels(config.channels.dir, logger);
    let outbox: Outbox;
    ({ senders, ingestor, outbox } = createPipeline({
      journal,
      logger,
      declared: config.access,
      ack: config.ack,
      channels,
      onQueued: (destination) => deliverer.kick(destination),
    }));
    // Outbound destinations are delivered from the outbox, one lane per destination, in order.
    deliverer = new OutboxDeliverer({ outbox, destinations: outboundDestinations(channels.channels()), logger });
    deliverer.start();
  } catch (e) {
    journal.close();
    throw e;
  }
  // Hot reload: a valid edit takes effect for the next message; an invalid one is logged (by the
  // registry, with every problem) and the channels in force keep running.
  const stopWatching = config.channels.watch
    ? channels.watch((r) => {
        if (r.ok) void deliverer.setDestinations(outboundDestinations(r.channels));
      })
    : () => undefined;
  let mllp: MllpListener | undefined;
  let http: HttpServerHandle | undefined;
  try {
    mllp = await MllpListener.listen({
      host: config.host,
      port: config.mllp.port,
      ingestor,
      journal,
      logger,
      maxFrameBytes: config.mllp.maxFrameBytes,
      oversizePrefixBytes: config.journal.oversizePrefixBytes,
      idleTimeoutMs: config.mllp.idleTimeoutMs,
      maxConnections: config.mllp.maxConnections,
      maxConnectionsPerIp: config.mllp.maxConnectionsPerIp,
      maxInFlightPerConnection: config.mllp.maxInFlightPerConnection,
      tls: tlsOptions,
      senders: senders.connections,
    });
    const listener = mllp;
    const started = Date.now();
    http = await startHttpServer({
      host: config.host,
      port: config.http.port,
      ingestor,
      logger,
      maxBodyBytes: config.http.maxBodyBytes,
      trustProxy: config.http.trustProxy,
      allowAddress: senders.httpAllowAddress,
      authenticate: senders.httpAuthenticate,
      anonymous: senders.httpAnonymous,
      health: () => ({
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
        mllp: { ...listener.stats },
        journal: { ...journal.stats },
        channels: { versions: channels.versions(), counters: channels.counters() },
      }),
    });
  } catch (e) {
    stopWatching();
    await mllp?.close(0);
    await deliverer.stop();
    journal.close();
    throw e;
  }
  const mllpListener = mllp;
  const httpServer = http;
  let closing: Promise<void> | undefined;
  logger.info('engine started', {
    mllpPort: mllpListener.port,
    httpPort: httpServer.port,
    dataDir: resolve(config.dataDir),
    tls: !!tlsOptions,
    // The young generation this thread was given (cli/thread.ts); null on a main thread (V8's default).
    youngGenerationMb: resourceLimits.maxYoungGenerationSizeMb ?? null,
  });
  return {
    config,
    journal,
    mllpPort: mllpListener.port,
    httpPort: httpServer.port,
    close: () =>
      (closing ??= (async () => {
        stopWatching();
        await Promise.all([mllpListener.close(config.mllp.shutdownTimeoutMs), httpServer.close()]);
        await deliverer.stop();
        // Every message is answered: the script worker has nothing left to run.
        const scriptWorker = await closeDefaultScriptExecutor();
        journal.close();
        logger.info('engine stopped', { ...journal.stats, ...(scriptWorker ? { scriptWorker } : {}) });
      })()),
  };
}
