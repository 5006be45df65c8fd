// SPDX-License-Identifier: Apache-2.0
/** Small statistics and formatting helpers for the benchmark reports. */

/** Latency summary in ms, rounded to µs. */
export interface LatencySummary {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/** Round to 3 decimals (null stays null). */
export function r3(x: number | null | undefined): number | null {
  return x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 1000) / 1000;
}

/** Nearest-rank percentiles of `values` (sorted in place). */
export function summarizeLatency(values: Float64Array): LatencySummary {
  const n = values.length;
  if (n === 0) return { p50: null, p95: null, p99: null, max: null, mean: null };
  values.sort();
  const pct = (p: number): number => values[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i]!;
  return { p50: r3(pct(50)), p95: r3(pct(95)), p99: r3(pct(99)), max: r3(values[n - 1]!), mean: r3(sum / n) };
}

/** A plain-text two-column table. */
export function formatTable(rows: Array<[string, string]>): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

/** `12345.6` → `12,346`. */
export function thousands(x: number | null): string {
  return x === null ? '–' : Math.round(x).toLocaleString('en-US');
}
