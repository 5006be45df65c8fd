// SPDX-License-Identifier: Apache-2.0
/**
 * Summarise a V8 `.cpuprofile` (from `node --cpu-prof`): self time per function and per area
 * (our src/, node internals, better-sqlite3, GC, idle).
 *
 *   node --import=tsx bench/profile-summary.ts /tmp/prof/CPU.*.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values: v, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' } }, allowPositionals: true });
if (positionals.length === 0) {
  process.stderr.write('usage: profile-summary.ts FILE.cpuprofile... [--top N]\n');
  process.exit(2);
}
const top = Math.max(1, Math.min(200, Number(v.top)));

function area(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'V8/native (program)';
  if (url.includes('/src/') || url.includes('/dist/')) {
    const m = /\/(?:src|dist)\/([^/]+)\//.exec(url);
    return `tributary ${m?.[1] ?? ''}`.trim();
  }
  if (url.includes('better-sqlite3')) return 'better-sqlite3 (JS side)';
  if (url.includes('node_modules')) return `dependency ${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? ''}`;
  if (url.startsWith('node:')) return `node ${url.replace(/^node:(internal\/)?/, '').split('/')[0]}`;
  if (url === '') return `native ${fn || '(anonymous)'}`.slice(0, 40);
  return 'other';
}

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const short = url.replace(/^file:\/\/.*?\/(src|dist|node_modules)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const a = area(url, functionName);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
    if (functionName === '(idle)') idle += us;
  }
  const busy = total - idle;
  const pct = (us: number): string => `${((100 * us) / busy).toFixed(1)}%`;
  process.stdout.write(`${file}\n  profiled ${(total / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s (percentages are of busy time)\n`);
  process.stdout.write('  by area:\n');
  for (const [a, us] of [...byArea].filter(([a]) => a !== 'idle').sort((x, y) => y[1] - x[1]).slice(0, 15)) {
    process.stdout.write(`    ${pct(us).padStart(6)}  ${a}\n`);
  }
  process.stdout.write(`  top ${top} functions by self time:\n`);
  for (const [k, us] of [...byFn].filter(([k]) => !k.startsWith('(idle)')).sort((x, y) => y[1] - x[1]).slice(0, top)) {
    process.stdout.write(`    ${pct(us).padStart(6)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}\n`);
  }
}
