// SPDX-License-Identifier: Apache-2.0
/**
 * Logging: winston to stderr (stdout is reserved for command output such as the READY line),
 * JSON when stderr is not a terminal. Log lines carry ids, control numbers, sizes and reason codes,
 * never message bodies: callers pass bodies only through {@link Logger.body}, which drops them
 * unless `log.bodies` is on.
 */
import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { isatty } from 'node:tty';
import { isMainThread } from 'node:worker_threads';
import winston from 'winston';

/** The logger every layer receives (an options-object dependency, never a global). */
export interface Logger {
  error(msg: string, meta?: Record<string, unknown>): void;
  warn(msg: string, meta?: Record<string, unknown>): void;
  info(msg: string, meta?: Record<string, unknown>): void;
  debug(msg: string, meta?: Record<string, unknown>): void;
  /** True when message bodies may be logged (`--log-bodies`); callers skip building them otherwise. */
  readonly bodies: boolean;
  /** Log a message body, only when body logging was switched on (PHI!). */
  body(msg: string, body: string, meta?: Record<string, unknown>): void;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: 'error' | 'warn' | 'info' | 'debug';
  /** JSON lines; default: when stderr is not a TTY. */
  json?: boolean;
  /** Allow {@link Logger.body} to print message bodies. */
  bodies?: boolean;
  /** Where to write; default process.stderr. */
  stream?: NodeJS.WritableStream;
}

/**
 * The process's stdout (fd 1) or stderr (fd 2), written in order with everything else the process
 * writes there. On the main thread that is `process.stdout`/`process.stderr` (synchronous for files
 * and pipes on Linux). On a worker thread (`tributary start` runs the engine on one, see
 * cli/thread.ts) those go through the main thread asynchronously, so a log line could come after a
 * READY the worker wrote later: there the bytes go to the descriptor directly, as the main thread
 * would write them.
 */
export function processStream(fd: 1 | 2): NodeJS.WritableStream & { isTTY?: boolean } {
  if (isMainThread) return fd === 1 ? process.stdout : process.stderr;
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      try {
        // All of it: a pipe may take part of a write, and a non-blocking one may refuse for now.
        for (let off = 0; off < chunk.length; ) {
          try {
            off += writeSync(fd, chunk, off);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          }
        }
        callback();
      } catch (e) {
        // The reader went away (`tributary start | head`): the end of the output, not an error, as
        // on the main thread (cli/main.ts).
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') process.exit(process.exitCode ?? 0);
        callback(e as Error);
      }
    },
  });
  return Object.assign(stream, { isTTY: isatty(fd) });
}

/** Build a winston-backed {@link Logger}. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const stderr = options.stream ?? processStream(2);
  const json = options.json ?? !(stderr as { isTTY?: boolean }).isTTY;
  const w = winston.createLogger({
    level: options.level ?? 'info',
    format: json
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
          winston.format.printf(({ timestamp, level, message, ...meta }) => {
            const rest = Object.keys(meta).length ? ' ' + JSON.stringify(meta) : '';
            return `${String(timestamp)} ${level} ${String(message)}${rest}`;
          }),
        ),
    transports: [new winston.transports.Stream({ stream: stderr })],
  });
  const bodies = options.bodies ?? false;
  // Checked here: winston formats (timestamps, JSON) a line before its level filter drops it,
  // which cost about 2% of the engine's CPU for per-message debug lines at level info.
  const rank = { error: 0, warn: 1, info: 2, debug: 3 }[options.level ?? 'info'];
  return {
    bodies,
    error: (m, meta) => w.error(m, meta),
    warn: (m, meta) => rank >= 1 && w.warn(m, meta),
    info: (m, meta) => rank >= 2 && w.info(m, meta),
    debug: (m, meta) => rank >= 3 && w.debug(m, meta),
    body: (m, body, meta) => {
      if (bodies) w.info(m, { ...meta, body });
    },
  };
}

/** A logger that drops everything (tests and library use without logging). */
export const silentLogger: Logger = {
  bodies: false,
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  body: () => {},
};
