// A heartbeat keeps leases that lapse workerDeadAfterMs after the last beat
// landed. A tick beats, then hands back jobs (each step bounded by the beat's
// give-up time); counted from the tick's end, the next beat came that much
// later, and stalled hand-backs could take the whole lease. The next beat is
// due an interval after the last one began.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Heartbeat } from '../packages/sluice/src/worker/heartbeat.js';

describe('heartbeat pace', () => {
  it('beats an interval apart, start to start, when each tick takes most of the interval', async () => {
    const INTERVAL_MS = 1_000;
    const TICK_MS = 800;
    const began: number[] = [];
    const heartbeat = new Heartbeat(
      async () => {
        began.push(performance.now());
        await new Promise((r) => setTimeout(r, TICK_MS));
      },
      () => INTERVAL_MS,
      pino({ level: 'silent' }),
    );
    heartbeat.start();
    try {
      await new Promise((r) => setTimeout(r, 4 * INTERVAL_MS + TICK_MS / 2));
    } finally {
      await heartbeat.stop();
    }
    expect(began.length).toBeGreaterThanOrEqual(4);
    const gaps = began.slice(1).map((t, i) => t - began[i]!);
    // Counted from the tick's end, each gap was INTERVAL_MS + TICK_MS.
    for (const gap of gaps) expect(gap).toBeLessThan(INTERVAL_MS + TICK_MS / 2);
  });
});
