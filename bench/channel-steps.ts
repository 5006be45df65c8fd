// SPDX-License-Identifier: Apache-2.0
/**
 * Cost of channel steps per message: plain parse only; parse + 5 declarative steps; parse + 5
 * declarative steps + 1 script step (node:vm context with a time limit). Run:
 *   node --import=tsx bench/channel-steps.ts
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadChannels, runChannel, type Channel } from '../src/channels/index.js';
import { Hl7Message } from '../src/hl7/index.js';

const MESSAGE =
  'MSH|^~\\&|PAS|RXX|TRIBUTARY|TRIBUTARY|20250314081530||ADT^A01^ADT_A01|C1|P|2.5.1\r' +
  'EVN|A01|20250314081500\r' +
  'PID|1||H123^^^RXX^MR~9434765919^^^NHS^NH||DOE^ALEX||19800101|U|||1 TEST STREET^^LEEDS^^LS1 1AA\r' +
  'PV1|1|I|WARD7^BED1|EM||||||PSY\r' +
  'ZXX|internal\r';

const STEPS = `  - { type: set, path: PID-3.4, value: NHS }
  - { type: copy, from: 'PID-3[2].1', to: PID-2 }
  - { type: delete, path: PID-8 }
  - { type: map, path: PV1-10, table: services }
  - { type: drop-segment, segment: ZXX }
`;

function channel(dir: string, name: string, steps: string): Channel {
  const d = join(dir, name);
  rmSync(d, { recursive: true, force: true });
  writeFileSync(join(dir, 's.js'), "export default function (msg, ctx) { msg.set('PV1-3.2', ctx.lookup('services', msg.get('PV1-10'), 'GEN')); }\n");
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\nsource: { types: ['ADT^*'] }\ntables: { services: { PSY: MENTAL_HEALTH } }\ntransform:\n${steps}`);
  const [c] = loadChannels(dir).filter((x) => x.name === name);
  rmSync(file);
  return c!;
}

function measure(label: string, fn: () => void, n: number): void {
  for (let i = 0; i < Math.min(n, 20_000); i++) fn(); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  console.log(`${label.padEnd(40)} ${us.toFixed(2).padStart(8)} µs/message  (${n} messages)`);
}

const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-channels-'));
try {
  const declarative = channel(dir, 'declarative', STEPS);
  const scripted = channel(dir, 'scripted', STEPS + '  - { type: script, file: s.js }\n');
  const sender = { interface: 'mllp' };
  const n = Number(process.env.N ?? 200_000);
  const check = runChannel(scripted, Hl7Message.parse(MESSAGE), { sender });
  if (check.result !== 'pass' || check.message.get('PV1-3.2') !== 'GEN') throw new Error(`bench channel broken: ${JSON.stringify(check)}`);
  console.log(`node ${process.version}, ${MESSAGE.length}-byte ADT^A01`);
  measure('parse only', () => void Hl7Message.parse(MESSAGE).messageType, n);
  measure('parse + 5 declarative steps + encode', () => {
    const out = runChannel(declarative, Hl7Message.parse(MESSAGE), { sender });
    if (out.result === 'pass') out.message.toString();
  }, n);
  measure('parse + 5 declarative + 1 script + encode', () => {
    const out = runChannel(scripted, Hl7Message.parse(MESSAGE), { sender });
    if (out.result === 'pass') out.message.toString();
  }, n);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
