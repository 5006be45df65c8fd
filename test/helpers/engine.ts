// SPDX-License-Identifier: Apache-2.0
/** Start engines for tests: in-process (fast) or as a real `bin/tributary start` child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { loadConfig, mergeConfig, type ConfigInput } from '../../src/config/config.js';
import { startEngine, type Engine } from '../../src/engine/engine.js';
import { silentLogger } from '../../src/log.js';

/** The repository root. */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The CLI entry. */
export const BIN = join(ROOT, 'bin', 'tributary');

/** A temporary directory removed after the test. */
export function tempDir(t: ExecutionContext, prefix = 'tributary-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An in-process engine on loopback with free ports, closed after the test. */
export async function inProcessEngine(t: ExecutionContext, overrides: ConfigInput = {}): Promise<Engine> {
  const dataDir = tempDir(t);
  const config = loadConfig(mergeConfig({ dataDir, host: '127.0.0.1', mllp: { port: 0 }, http: { port: 0 } }, overrides));
  const engine = await startEngine(config, silentLogger);
  t.teardown(() => engine.close());
  return engine;
}

/** A `tributary start` child process. */
export interface EngineProcess {
  proc: ChildProcess;
  mllpPort: number;
  httpPort: number;
  /** stderr so far (logs). */
  stderr(): string;
  /** Resolves with the exit code / signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Run `bin/tributary start --data DIR --mllp-port 0 --http-port 0 ...args` and wait for READY. */
export function spawnEngine(dataDir: string, args: string[] = [], timeoutMs = 20_000): Promise<EngineProcess> {
  const proc = spawn(process.execPath, [BIN, 'start', '--data', dataDir, '--mllp-port', '0', '--http-port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`engine not READY after ${timeoutMs} ms; stderr: ${err}`));
    }, timeoutMs);
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY mllp=(\d+) http=(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePromise({ proc, mllpPort: Number(m[1]), httpPort: Number(m[2]), stderr: () => err, exited });
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`engine exited with ${code} before READY; stderr: ${err}`));
    });
  });
}

/** Run the CLI to completion. */
export function runCli(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const proc = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    // 'close', not 'exit': a loaded machine may end the process before its pipes are read to the end.
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}
