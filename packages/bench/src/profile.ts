// BENCH_PROFILE=1: times every statement a child sends through node-postgres
// (all three systems use the same pg), grouped by prepared-statement name or
// the statement's first words, and prints the totals when the child ends.
// pg_stat_statements is not preloaded on every server; this needs nothing.
import pg from 'pg';

interface Entry {
  calls: number;
  totalMs: number;
  maxMs: number;
}

const entries = new Map<string, Entry>();

function keyOf(arg: unknown): string {
  if (typeof arg === 'string') return arg.replace(/\s+/g, ' ').trim().slice(0, 70);
  const c = arg as { name?: string; text?: string };
  return c?.name ?? keyOf(c?.text ?? '?');
}

export function installProfiler(): void {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const key = keyOf(args[0]);
    const t0 = performance.now();
    const done = () => record(key, performance.now() - t0);
    // pg.Pool calls client.query with a callback; everyone else gets a promise.
    const last = args.length - 1;
    const cb = args[last];
    if (typeof cb === 'function') {
      args[last] = (...r: unknown[]) => {
        done();
        return (cb as (...a: unknown[]) => unknown)(...r);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(done, done);
    return result;
  };
}

function record(key: string, ms: number): void {
  const e = entries.get(key) ?? { calls: 0, totalMs: 0, maxMs: 0 };
  e.calls++;
  e.totalMs += ms;
  e.maxMs = Math.max(e.maxMs, ms);
  entries.set(key, e);
}

export function profileReport(): string {
  const rows = [...entries.entries()].sort((a, b) => b[1].totalMs - a[1].totalMs).slice(0, 15);
  const lines = rows.map(
    ([k, e]) =>
      `${e.totalMs.toFixed(0).padStart(8)} ms ${String(e.calls).padStart(7)} calls ${(e.totalMs / e.calls).toFixed(2).padStart(8)} ms avg ${e.maxMs.toFixed(1).padStart(7)} ms max  ${k}`,
  );
  return ['statement time as seen by the client (includes waiting for a pool connection, not for the pool):', ...lines].join('\n');
}
