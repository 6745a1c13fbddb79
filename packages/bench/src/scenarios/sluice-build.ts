// sluice's build (packages/sluice/dist), for scenarios that run the package as
// it is published: plain node on JavaScript. Built with the workspace's tsc
// when dist/ is missing or older than any file in src/.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE = fileURLToPath(new URL('../../../sluice/', import.meta.url));

function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtimeMs(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Path of sluice's built entry point (dist/index.js), building it first when stale. */
export function sluiceDist(): string {
  const entry = join(PACKAGE, 'dist', 'index.js');
  const sources = Math.max(newestMtimeMs(join(PACKAGE, 'src')), statSync(join(PACKAGE, 'tsconfig.json')).mtimeMs);
  if (!existsSync(entry) || statSync(entry).mtimeMs < sources) {
    const tsc = createRequire(join(PACKAGE, '..', '..', 'package.json')).resolve('typescript/bin/tsc');
    console.error('[bench] building sluice (packages/sluice/dist)');
    try {
      execFileSync(process.execPath, [tsc, '-p', join(PACKAGE, 'tsconfig.json')], { stdio: 'inherit' });
    } catch (err) {
      // tsc emits despite type errors (someone's edit in progress): run that build, and say so.
      if (!existsSync(entry) || statSync(entry).mtimeMs < sources) throw err;
      console.error('[bench] sluice built with type errors (above); running that build');
    }
  }
  return entry;
}
