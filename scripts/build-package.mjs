#!/usr/bin/env node
// Builds a publishable package from its directory (the package scripts run
// it as `node ../../scripts/build-package.mjs`): a clean dist/ from
// tsconfig.build.json, then any runtime folder copied in with
// `--copy <from>:<to>` (sluice copies the repository's drizzle/ to
// dist/drizzle, where migrate() finds it). A clean dist/ keeps files of
// deleted modules out of the tarball.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const copies = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] !== '--copy' || !args[i + 1]?.includes(':')) {
    console.error('usage: build-package.mjs [--copy <from>:<to>]...');
    process.exit(2);
  }
  copies.push(args[++i].split(':'));
}

rmSync('dist', { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
for (const [from, to] of copies) cpSync(from, to, { recursive: true });
