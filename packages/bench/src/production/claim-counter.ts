// Counts a worker process's statements, its claims, and the claims that
// returned no job, for the many-processes scenario. All three systems talk to PostgreSQL through
// the one copy of `pg` in this workspace, so the count sits on its Client:
// each system's claim statement is recognised by its text, and a claim that
// came back without rows found nothing.
import pg from 'pg';
import type { SystemKey } from '../systems/types.js';

/** How each system's claim reads (checked against the library versions the bench pins). */
const CLAIM_TEXT: Record<Exclude<SystemKey, 'bare'>, RegExp> = {
  sluice: /\bsluice\.claim\(/,
  graphile: /_private_jobs[\s\S]*skip locked/i,
  pgboss: /FOR UPDATE OF j SKIP LOCKED/,
};

export interface ClaimCounts {
  /** Every statement the process sent, claims included. */
  statements: number;
  claims: number;
  empty: number;
}

export function countClaims(system: SystemKey): ClaimCounts {
  const counts: ClaimCounts = { statements: 0, claims: 0, empty: 0 };
  const pattern = CLAIM_TEXT[system as keyof typeof CLAIM_TEXT];
  if (!pattern) return counts;
  const seen = (result: { rows?: unknown[] } | undefined) => {
    counts.claims += 1;
    if (!result?.rows?.length) counts.empty += 1;
  };
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0];
    counts.statements += 1;
    const text = typeof first === 'string' ? first : (first as { text?: unknown } | null)?.text;
    if (typeof text !== 'string' || !pattern.test(text)) return original.apply(this, args);
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      args[last] = (err: unknown, result: { rows?: unknown[] }) => {
        if (!err) seen(result);
        return (callback as (e: unknown, r: unknown) => unknown)(err, result);
      };
      return original.apply(this, args);
    }
    const out = original.apply(this, args) as Promise<{ rows?: unknown[] }>;
    return out.then((result) => {
      seen(result);
      return result;
    });
  } as typeof pg.Client.prototype.query;
  return counts;
}
