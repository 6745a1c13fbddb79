// A running job's abort switch (timeout, cancel, lost lease, shutdown).
// Most jobs end without being aborted and most handlers never read
// ctx.signal, so the AbortController — costly to create and to listen to,
// and made for every job it was the largest cost a worker spent per job —
// is made only when the handler asks for the signal.
export class JobAbort {
  private controller: AbortController | undefined;
  private listener: ((reason: unknown) => void) | undefined;
  aborted = false;
  reason: unknown = undefined;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** The first abort wins; later ones keep its reason. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    this.listener?.(reason);
  }

  /** The runner's own hook (one per job); called at once when already aborted. */
  onAbort(fn: (reason: unknown) => void): void {
    this.listener = fn;
    if (this.aborted) fn(this.reason);
  }
}
