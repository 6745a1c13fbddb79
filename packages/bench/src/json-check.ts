// Micro-benchmark: what refusing payloads JSON cannot carry costs per payload
// on enqueue's path. Compares plain JSON.stringify (no check), sluice's
// jsonText (stringify plus one allocation-free walk), and a stringify
// replacer doing the same checks. Run: npx tsx packages/bench/src/json-check.ts
import { jsonText } from '../../sluice/src/json-text.js';

const payload = (i: number) => ({
  to: `user${i}@example.com`,
  subject: 'Welcome to the service',
  userId: 12_345 + i,
  tags: ['a', 'b'],
  meta: { plan: 'pro', trial: false, score: 0.5 },
});
const payloads = Array.from({ length: 1_000 }, (_, i) => payload(i));

function replacer(_key: string, v: unknown): unknown {
  if (typeof v === 'number' ? !Number.isFinite(v) : typeof v === 'function' || typeof v === 'symbol') throw new Error('unstorable');
  return v;
}

const variants: Record<string, (p: unknown) => unknown> = {
  'JSON.stringify (no check)': (p) => JSON.stringify(p),
  'jsonText (stringify + walk)': (p) => jsonText(p),
  'JSON.stringify with a replacer': (p) => JSON.stringify(p, replacer),
};

const ROUNDS = 15;
const WARMUP = 3;
const PASSES = 300;
const samples = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, f] of Object.entries(variants)) {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < PASSES; r++) for (const p of payloads) f(p);
    const ns = Number(process.hrtime.bigint() - t0) / (PASSES * payloads.length);
    if (round >= WARMUP) samples.set(name, [...(samples.get(name) ?? []), ns]);
  }
}
for (const [name, ns] of samples) {
  ns.sort((a, b) => a - b);
  console.log(`${name.padEnd(34)} min ${ns[0]!.toFixed(0).padStart(5)} ns  median ${ns[ns.length >> 1]!.toFixed(0).padStart(5)} ns per payload`);
}
