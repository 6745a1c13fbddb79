// One system's worker (or its install) in a process of its own, on the Node
// that system needs, for the production scenarios. Prints READY once its
// worker runs; stops it on SIGTERM.
//
//   node --import tsx process.ts <system> <url> install|idle|run [optionsJson]
import { loadSystem } from '../systems/load.js';
import type { SystemKey } from '../systems/types.js';

const [system, url, mode, optionsJson] = process.argv.slice(2) as [SystemKey, string, string, string | undefined];
const sys = await loadSystem(system);
if (mode === 'install') {
  await sys.install(url);
} else {
  const options = optionsJson ? (JSON.parse(optionsJson) as Record<string, unknown>) : {};
  let done = 0;
  const worker = await sys.startWorker(url, options, () => {
    done += 1;
  });
  process.stdout.write('READY\n');
  // The parent reads the count on demand: a line per job would cost the worker more than its job.
  process.on('SIGUSR2', () => process.stdout.write(`DONE ${done}\n`));
  process.once('SIGTERM', () => {
    void worker.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
