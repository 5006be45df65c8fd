// SPDX-License-Identifier: Apache-2.0
/**
 * `tributary start` runs the whole CLI on a worker thread of its own, sized for a message engine,
 * while the process's main thread only starts it, passes signals on and exits with its exit code.
 *
 * Why: V8 reads heap sizes only when a thread starts, so flags the caller may leave out
 * (`node bin/tributary start`) cannot give the engine the young generation it needs. Each message
 * allocates some tens of KB that live until its group is on disk; with V8's default 16 MB
 * semi-spaces the scavenger ran every few hundred messages and copied the messages in flight each
 * time. With 64 MB the engine cost 5–10% less CPU per message, the channel script path about 20%
 * less (docs/benchmarks.md §0, §7). With 128 MB ({@link ENGINE_YOUNG_GENERATION_MB}) the
 * scavenges under a pipelined load also stopped promoting about 10 MB each into the old
 * generation, where the next mark-compact freed it again: scavenge time per message about 40% less
 * and about 7% more messages a second, with a lower peak RSS (docs/benchmarks.md §0).
 *
 * This module imports nothing but `node:worker_threads`: the main thread stays a small isolate (the
 * commands and their dependencies load once, on the engine's thread). A leaf of the CLI layer.
 */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

/** The engine thread's young generation in MB: three times the semi-space size, so 128 MB semi-spaces. */
export const ENGINE_YOUNG_GENERATION_MB = 384;

/** The signals the main thread passes to the engine thread (graceful stop). */
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * Run the CLI module at `entry` (its `main(argv)`) on an engine thread and end the process with
 * its exit code. An uncaught exception there is printed as Node prints one, exit code 1.
 */
export function runOnEngineThread(entry: URL, argv: string[]): void {
  const worker = new Worker(new URL('./thread-entry.js', import.meta.url), {
    workerData: { entry: entry.href, argv },
    resourceLimits: { maxYoungGenerationSizeMb: ENGINE_YOUNG_GENERATION_MB },
  });
  let signals = 0;
  for (const s of SIGNALS) {
    process.on(s, () => {
      // The first asks the engine to finish what is in flight; a second one stops it now, as a
      // second Ctrl-C always did (exit code as if killed by that signal).
      if (++signals === 1) worker.postMessage({ signal: s });
      else process.exit(128 + (s === 'SIGINT' ? 2 : 15));
    });
  }
  let failed = false;
  worker.on('error', (e) => {
    failed = true;
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  });
  worker.on('exit', (code) => process.exit(failed ? 1 : code));
}

/**
 * Call `onSignal` when the process gets SIGTERM or SIGINT: on the main thread from the process, on
 * the engine thread from the main thread's message. Returns a function that stops listening.
 */
export function onStopSignal(onSignal: (signal: string) => void): () => void {
  if (isMainThread || parentPort === null) {
    const handlers = SIGNALS.map((s) => [s, () => onSignal(s)] as const);
    for (const [s, h] of handlers) process.once(s, h);
    return () => {
      for (const [s, h] of handlers) process.off(s, h);
    };
  }
  const port = parentPort;
  const listener = (m: unknown): void => {
    const signal = (m as { signal?: unknown } | null)?.signal;
    if (typeof signal === 'string') onSignal(signal);
  };
  port.on('message', listener);
  return () => {
    port.off('message', listener);
    // Nothing else listens: let the thread end once the engine has closed.
    port.unref();
  };
}
