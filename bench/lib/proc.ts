// SPDX-License-Identifier: Apache-2.0
/** Process accounting from Linux /proc: CPU time (utime + stime) and resident memory of a pid. */
import { readFileSync, readdirSync } from 'node:fs';

/** Linux USER_HZ: /proc/PID/stat counts CPU time in ticks of 10 ms on every mainstream kernel. */
const CLOCK_TICKS_PER_SECOND = 100;

/** One reading of a process. */
export interface ProcSample {
  /** User + system CPU time so far, in milliseconds (10 ms resolution), all threads. */
  cpuMs: number;
  /**
   * The same per thread (by thread id). The busiest one over a run is the engine's event loop
   * (it frames, parses, applies and commits; `tributary start` runs it on a thread of its own): the
   * other threads (checkpoints, the WAL sync, GC helpers, scripts) run beside it, so that thread's
   * CPU per message is what bounds the throughput.
   */
  threadCpuMs: Record<string, number>;
  /** Current resident set size, KiB (VmRSS). */
  rssKb: number;
  /** Peak resident set size since start, KiB (VmHWM). */
  hwmKb: number;
}

/** Read CPU and memory of `pid`; null when the process is gone or /proc is unavailable. */
export function readProc(pid: number | undefined): ProcSample | null {
  if (!pid) return null;
  try {
    const cpuMs = ticksMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const threadCpuMs: Record<string, number> = {};
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        threadCpuMs[tid] = ticksMs(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { cpuMs, threadCpuMs, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** The most CPU any one thread used between two samples, in ms (0 when unknown). */
export function busiestThreadMs(before: ProcSample, after: ProcSample): number {
  let most = 0;
  for (const [tid, ms] of Object.entries(after.threadCpuMs)) most = Math.max(most, ms - (before.threadCpuMs[tid] ?? 0));
  return most;
}

/** utime + stime of a /proc stat line, in ms. */
function ticksMs(stat: string): number {
  // The command name (field 2) may contain spaces; fields after the last ')' are positional.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLOCK_TICKS_PER_SECOND; // fields 14, 15
}

/** Facts about this machine for the report. */
export function machineFacts(): Record<string, string | number> {
  const read = (f: string): string => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const cpuinfo = read('/proc/cpuinfo');
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(read('/proc/meminfo'))?.[1] ?? 0);
  return {
    cpus: (cpuinfo.match(/^processor\s*:/gm) ?? []).length,
    cpuModel: model,
    memoryGiB: Math.round((memKb / 1024 / 1024) * 10) / 10,
    node: process.version,
    kernel: read('/proc/sys/kernel/osrelease').trim(),
  };
}
