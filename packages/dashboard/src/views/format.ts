// Small text formatters shared by the pages. Times are shown in UTC with a
// machine-readable <time> element beside a relative age.
import { html } from 'hono/html';

export type Html = ReturnType<typeof html>;

export function num(n: number): string {
  return n.toLocaleString('en-US');
}

export function pct(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '—';
  return `${(x * 100).toFixed(x < 0.1 ? 2 : 1)}%`;
}

/** "850 ms", "12.3 s", "4m 05s", "3h 12m", "2d 4h". */
export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '—';
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${Math.round(abs)} ms`;
  if (abs < 60_000) return `${(abs / 1000).toFixed(1)} s`;
  const s = Math.floor(abs / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

export function utc(d: Date): string {
  return d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

/** "3m 05s ago" / "in 12.0 s". */
export function relative(d: Date, now: number): string {
  const diff = d.getTime() - now;
  return diff <= 0 ? `${duration(-diff)} ago` : `in ${duration(diff)}`;
}

/** A timestamp as "<time>relative</time>" with the exact UTC time as its title. */
export function when(d: Date | null, now: number): Html | string {
  if (!d) return '—';
  return html`<time datetime="${d.toISOString()}" title="${utc(d)}">${relative(d, now)}</time>`;
}

/** JSON for display, pretty-printed and cut at maxChars. */
export function prettyJson(value: unknown, maxChars = 100_000): string {
  const text = JSON.stringify(value ?? null, null, 2) ?? 'null';
  return text.length > maxChars ? `${text.slice(0, maxChars)}\n… (${num(text.length - maxChars)} more characters)` : text;
}

/** A query string from the given values, leaving out empty ones. */
export function query(values: Record<string, string | number | null | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== null && v !== undefined && v !== '') params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}
