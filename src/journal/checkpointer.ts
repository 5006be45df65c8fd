// SPDX-License-Identifier: Apache-2.0
/**
 * WAL checkpoints on a thread of their own. SQLite checkpoints inside the COMMIT that takes the
 * write-ahead log past `wal_autocheckpoint` pages: it copies those pages into the database file and
 * syncs both files, on the thread that committed, and under a steady feed that was 8% of the
 * engine thread (perf, pipelined ADT). Here a worker thread with its own connection runs
 * `PRAGMA wal_checkpoint(PASSIVE)` every few milliseconds instead, which never blocks the writer,
 * while the engine's connection sets `wal_autocheckpoint = 0`.
 *
 * The log starts again from its beginning only when a checkpoint has copied every frame before
 * the next write transaction begins, and under a steady feed the next group always begins first:
 * the log would grow without end. So once the worker sees it past
 * {@link CheckpointerOptions.restartFrames}, the writer runs `wal_checkpoint(RESTART)` itself
 * ({@link Checkpointer.restartDue}): it copies only the few frames since the worker's last round and
 * makes the next transaction write from the start of the file. If the worker fails, the writer's
 * connection goes back to SQLite's own checkpoints.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Options of {@link Checkpointer}. */
export interface CheckpointerOptions {
  /** The database file (WAL mode). */
  file: string;
  /** Pause between rounds, ms (default 20). */
  intervalMs?: number;
  /** Frames in the log past which the writer restarts it (default 4,096: 16 MiB of 4 KiB pages). */
  restartFrames?: number;
  /** Told once when the worker fails (the caller turns SQLite's own checkpoints back on). */
  onError?: (err: Error) => void;
}

// Slots of the shared control array.
const STOP = 0;
const LOG_FRAMES = 1;

// CommonJS, evaluated as the worker's entry: no compiled file to find, the same under tsx and dist.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const ctl = new Int32Array(workerData.sab);
const db = new Database(workerData.file, { fileMustExist: true });
try {
  db.pragma('busy_timeout = 100');
  while (Atomics.load(ctl, ${STOP}) === 0) {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    Atomics.store(ctl, ${LOG_FRAMES}, r.log > 0 ? r.log : 0);
    Atomics.wait(ctl, ${STOP}, 0, workerData.intervalMs);
  }
} finally {
  db.close();
}
`;

/** A worker thread that checkpoints one database's write-ahead log. */
export class Checkpointer {
  private readonly worker: Worker;
  private readonly ctl: Int32Array;
  private readonly restartFrames: number;
  /** The worker failed: the writer must checkpoint again. */
  failed = false;
  private readonly exited: Promise<void>;

  /** Start the worker (it opens its own connection to `options.file`). */
  constructor(options: CheckpointerOptions) {
    const sab = new SharedArrayBuffer(2 * 4);
    this.ctl = new Int32Array(sab);
    this.restartFrames = options.restartFrames ?? 4096;
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { file: options.file, sab, sqlite, intervalMs: options.intervalMs ?? 20 },
      // Not the engine's flags (an inspector port, a CPU profile): this thread needs none.
      execArgv: [],
    });
    // It must never keep the process alive on its own.
    this.worker.unref();
    const fail = (err: Error): void => {
      if (this.failed) return;
      this.failed = true;
      options.onError?.(err);
    };
    this.worker.on('error', fail);
    this.exited = new Promise<void>((resolve) =>
      this.worker.once('exit', (code) => {
        // Gone without being asked (terminated, or its loop ended): nobody checkpoints any more.
        if (Atomics.load(this.ctl, STOP) === 0) fail(new Error(`the checkpoint worker exited (code ${code})`));
        resolve();
      }),
    );
  }

  /**
   * True when the writer should restart the log now: the worker's last round saw more than
   * `restartFrames` frames in it. {@link restarted} clears it.
   */
  get restartDue(): boolean {
    return Atomics.load(this.ctl, LOG_FRAMES) > this.restartFrames;
  }

  /** The writer restarted the log. */
  restarted(): void {
    Atomics.store(this.ctl, LOG_FRAMES, 0);
  }

  /** Stop the worker after its current round; resolves once it has closed its connection and exited. */
  stop(): Promise<void> {
    Atomics.store(this.ctl, STOP, 1);
    Atomics.notify(this.ctl, STOP);
    return this.exited;
  }
}
