// The static files (script, style sheet, icon), read once from the
// package's assets/ folder and served with a content hash as ETag. They are
// plain files: nothing to build.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Hono } from 'hono';
import type { DashEnv } from './context.js';

const FILES: Record<string, string> = {
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

const loaded = new Map(
  Object.entries(FILES).map(([file, type]) => {
    const body = readFileSync(new URL(`../assets/${file}`, import.meta.url));
    return [file, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` }];
  }),
);

export function assetRoutes(app: Hono<DashEnv>): void {
  app.get('/assets/:file', (c) => {
    const asset = loaded.get(c.req.param('file'));
    if (!asset) return c.text('not found', 404);
    c.header('ETag', asset.etag);
    c.header('Cache-Control', 'public, max-age=300');
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304);
    c.header('Content-Type', asset.type);
    return c.body(new Uint8Array(asset.body));
  });
}
