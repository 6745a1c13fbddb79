// The sign-in page: a token field, or user and password fields.
import { html } from 'hono/html';
import type { Html } from './format.js';
import { documentHead } from './head.js';

export function loginPage(o: { base: string; mode: 'token' | 'password'; next: string; error: string | null }): Html {
  return html`${documentHead(o.base, 'Sign in', false)}
<body class="login">
<main>
<form method="post" action="${o.base}/login" class="login-form">
<h1>sluice</h1>
${o.error ? html`<p class="notice error" role="alert">${o.error}</p>` : ''}
<input type="hidden" name="next" value="${o.next}">
${
  o.mode === 'token'
    ? html`<label>Access token <input type="password" name="token" autocomplete="current-password" required autofocus></label>`
    : html`<label>User <input name="user" autocomplete="username" required autofocus></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>`
}
<button class="action">Sign in</button>
</form>
</main>
</body>
</html>`;
}

export function messagePage(o: { base: string; title: string; text: string }): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${o.title} · sluice</title><link rel="icon" href="${o.base}/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${o.base}/assets/dashboard.css"></head>
<body class="login"><main><div class="login-form"><h1>${o.title}</h1><p>${o.text}</p></div></main></body></html>`;
}
