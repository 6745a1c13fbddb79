// This process's own counters: what its worker finished, by queue, job name
// and result, and how busy it is now. Unlike the database gauges these differ
// per process; sum them across instances.
import type { EventEmitter } from 'node:events';
import type { Registry } from 'prom-client';
import { promClient } from '../optional-deps.js';

/** What the metrics need from a Worker: its job events and its load. */
export interface ObservedWorker extends Pick<EventEmitter, 'on' | 'off'> {
  readonly load: { running: number; buffered: number; pendingAcks: number };
}

interface JobEventLike {
  name: string;
  queue: string;
  result: string;
}

/** Registers the worker's counters and gauges on the registry; returns a function that detaches them. */
export function observeWorker(worker: ObservedWorker, registry: Registry): () => void {
  const { Counter, Gauge } = promClient();
  const registers = [registry];
  const finished = new Counter({
    name: 'sluice_worker_jobs_total',
    help: 'Attempts this process finished, by queue, job name and result (completed, retry, dead, stale)',
    labelNames: ['queue', 'name', 'result'],
    registers,
  });
  new Gauge({ name: 'sluice_worker_jobs_running', help: 'Handlers running in this process', registers, collect() { this.set(worker.load.running); } });
  new Gauge({ name: 'sluice_worker_jobs_buffered', help: 'Jobs claimed by this process and not started yet', registers, collect() { this.set(worker.load.buffered); } });
  new Gauge({ name: 'sluice_worker_acks_pending', help: 'Results of this process not written to the database yet', registers, collect() { this.set(worker.load.pendingAcks); } });
  const onJob = (e: JobEventLike) => finished.inc({ queue: e.queue, name: e.name, result: e.result });
  worker.on('job', onJob);
  return () => worker.off('job', onJob);
}
