// SPDX-License-Identifier: Apache-2.0
/**
 * The composition root: builds the journal, the ingestor and the listeners from a validated
 * {@link Config}, and shuts them down in the right order (stop accepting, finish in-flight
 * messages, commit, close the database).
 */
import { readFileSync } from 'node:fs';
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

/** Options of {@link createPipeline}. */
export interface PipelineOptions {
  journal: Journal;
  logger: Logger;
  /** Declared access configuration (the config file's `access`). */
  declared?: unknown;
  /** MSH-3/4 of our ACKs. */
  ack?: { sendingApplication: string; sendingFacility: string };
}

/**
 * The message path behind every interface: senders (with the first-run defaults), the record, and
 * the ingestor that ties them to the journal. The engine and `replay --data` build it the same way.
 */
export function createPipeline(options: PipelineOptions): { senders: SenderWiring; record: RecordService; ingestor: Ingestor } {
  const { journal, logger } = options;
  const senders = setupSenders({ journal, logger, declared: options.declared });
  const record = createRecordService(journal.database, senders.directory);
  const ingestor = new Ingestor({
    journal,
    logger,
    gate: senders.gate,
    record,
    sendingApplication: options.ack?.sendingApplication,
    sendingFacility: options.ack?.sendingFacility,
  });
  return { senders, record, ingestor };
}

/** Start the engine described by `config`. */
export async function startEngine(config: Config, logger: Logger): Promise<Engine> {
  const tlsOptions = loadTls(config);
  const journal = Journal.open({
    file: databasePath(config.dataDir),
    duplicateWindowMs: config.journal.duplicateWindowMs,
    maxBatchMessages: config.journal.maxBatchMessages,
    logger,
  });
  let senders: SenderWiring;
  let ingestor: Ingestor;
  try {
    ({ senders, ingestor } = createPipeline({ journal, logger, declared: config.access, ack: config.ack }));
  } catch (e) {
    journal.close();
    throw e;
  }
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
      }),
    });
  } catch (e) {
    await mllp?.close(0);
    journal.close();
    throw e;
  }
  const mllpListener = mllp;
  const httpServer = http;
  let closing: Promise<void> | undefined;
  logger.info('engine started', { mllpPort: mllpListener.port, httpPort: httpServer.port, dataDir: resolve(config.dataDir), tls: !!tlsOptions });
  return {
    config,
    journal,
    mllpPort: mllpListener.port,
    httpPort: httpServer.port,
    close: () =>
      (closing ??= (async () => {
        await Promise.all([mllpListener.close(config.mllp.shutdownTimeoutMs), httpServer.close()]);
        journal.close();
        logger.info('engine stopped', { ...journal.stats });
      })()),
  };
}
