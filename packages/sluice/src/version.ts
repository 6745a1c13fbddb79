/** Recorded in sluice.workers so an operator sees which version each worker runs. */
export const SLUICE_VERSION = '0.1.0';
