// toNodeListener(): the dashboard as a Node (req, res) listener, for Express
// and Fastify. Express strips the mount path from req.url; the dashboard's
// routes include its basePath, so the full path (originalUrl) is put back.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';

export type NodeListener = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export function toNodeListener(app: Pick<Hono<any>, 'fetch'>): NodeListener {
  const listener = getRequestListener(app.fetch);
  return (req, res) => {
    const original = (req as IncomingMessage & { originalUrl?: string }).originalUrl;
    if (typeof original === 'string') req.url = original;
    return listener(req, res);
  };
}
