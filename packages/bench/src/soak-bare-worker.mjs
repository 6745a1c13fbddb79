// The soak's reference process: the bench's bare node-postgres client
// (systems/bare-client.mjs, history kept) and nothing else, run by the same
// plain node with the same flags as soak-worker.mjs, so its RSS is the floor
// that V8 and node-postgres reach at this rate of jobs. Same stdout contract:
// once a second `<jobs handled> <heapUsed> <heapTotal> <external> <arrayBuffers>`
// (bytes), the first line once connected. SIGTERM stops it after the batches
// in flight are finished.
import { startBareClient } from './systems/bare-client.mjs';

const [url] = process.argv.slice(2);

let seen = 0;
const client = await startBareClient(url, { keepHistory: true, onJob: () => void seen++ });
const report = () => {
  const m = process.memoryUsage();
  process.stdout.write(`${seen} ${m.heapUsed} ${m.heapTotal} ${m.external} ${m.arrayBuffers}\n`);
};
report();
const timer = setInterval(report, 1_000);
process.once('SIGTERM', () => {
  clearInterval(timer);
  void client.stop();
});
