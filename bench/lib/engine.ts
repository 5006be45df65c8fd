// SPDX-License-Identifier: Apache-2.0
/**
 * Start `bin/tributary start` as a child process for a benchmark: a fresh temporary data
 * directory, free ports, wait for `READY mllp=<port> http=<port>`, and a stop() that sends SIGTERM
 * (SIGKILL after a bound) and removes the directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The CLI entry point. */
export const BIN = join(ROOT, 'bin', 'tributary');

/** Options of {@link spawnEngine}. */
export interface SpawnOptions {
  /** Extra Node flags for the engine process, e.g. `['--cpu-prof', '--cpu-prof-dir', dir]`. */
  nodeArgs?: string[];
  /** Engine configuration written to `<datadir>/bench-config.json` and passed with `--config`. */
  config?: Record<string, unknown>;
  /** Extra arguments after `start ...`. */
  args?: string[];
  /** Bound on waiting for READY, in ms (default 20 s). */
  readyTimeoutMs?: number;
}

/** A running engine child process. */
export interface SpawnedEngine {
  pid: number;
  mllpPort: number;
  httpPort: number;
  dataDir: string;
  /** The last few KiB of the engine's stderr (its log). */
  stderrTail(): string;
  /** SIGTERM, wait up to `timeoutMs` (SIGKILL after), then remove the data directory. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const TAIL_BYTES = 16 * 1024;

/** Spawn the engine and resolve once it printed READY. */
export function spawnEngine(options: SpawnOptions = {}): Promise<SpawnedEngine> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-bench-'));
  const args = [BIN, 'start', '--data', dataDir, '--mllp-port', '0', '--http-port', '0'];
  if (options.config) {
    const file = join(dataDir, 'bench-config.json');
    writeFileSync(file, JSON.stringify(options.config));
    args.push('--config', file);
  }
  args.push(...(options.args ?? []));
  const proc: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: ROOT,
  });
  let stdout = '';
  let stderr = '';
  // Always drain both pipes: a full pipe would block the engine's logging and skew the numbers.
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-TAIL_BYTES);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('exit', (code, signal) => r({ code, signal })),
  );
  let stopped: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  const stop = (timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
    (stopped ??= (async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
      return result;
    })());

  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      void stop(2000).then(() => reject(new Error(`engine not READY after ${options.readyTimeoutMs ?? 20_000} ms; stderr: ${stderr}`)));
    }, options.readyTimeoutMs ?? 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      if (stdout.length < TAIL_BYTES) stdout += d.toString('utf8');
      const m = /READY mllp=(\d+) http=(\d+)/.exec(stdout);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        resolvePromise({
          pid: proc.pid!,
          mllpPort: Number(m[1]),
          httpPort: Number(m[2]),
          dataDir,
          stderrTail: () => stderr,
          stop,
        });
      }
    });
    void exited.then(({ code, signal }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
      reject(new Error(`engine exited (code ${code}, signal ${signal}) before READY; stderr: ${stderr}`));
    });
  });
}
