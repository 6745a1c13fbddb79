#!/usr/bin/env node
// The published package's `sluice` command: the compiled CLI, run by plain
// node (no TypeScript loader). In the workspace, bin/sluice.js runs src/ under tsx.
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
