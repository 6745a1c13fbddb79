// The start of every page up to <body>: charset, viewport, referrer policy,
// title, icon and stylesheet; the signed-in pages add their script.
import { html } from 'hono/html';
import type { Html } from './format.js';

export function documentHead(base: string, title: string, withScript: boolean): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title} · sluice</title>
<link rel="icon" href="${base}/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${base}/assets/dashboard.css">
${withScript ? html`<script src="${base}/assets/dashboard.js" defer></script>\n` : ''}</head>`;
}
