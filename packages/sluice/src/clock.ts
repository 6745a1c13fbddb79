// Durations and deadlines in the process are measured on the monotonic
// clock: the wall clock can step (NTP, a VM resumed, an operator's `date`),
// and a deadline taken from it then passes early or never. Wall time is
// still what a job's run_at and every timestamp stored in the database use.
// Whole milliseconds, as Date.now() gives: sums and differences of them stay exact.
export function monotonicMs(): number {
  return Math.floor(performance.now());
}
