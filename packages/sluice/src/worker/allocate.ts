// Shares a worker's free room across its queues by weight.

/**
 * Deficit round-robin: each call hands out `room` claims in proportion to the
 * weights, carrying fractions over to the next call, so the shares converge
 * on the weights even when each refill is only a few slots.
 */
export class WeightedAllocator {
  private credit: number[];

  constructor(private weights: number[]) {
    this.credit = weights.map(() => 0);
  }

  setWeights(weights: number[]): void {
    this.weights = weights;
    if (this.credit.length !== weights.length) this.credit = weights.map(() => 0);
  }

  /** Shares of `room` for the queues whose flag in `active` is true. */
  next(room: number, active: readonly boolean[] = this.weights.map(() => true)): number[] {
    const total = this.weights.reduce((sum, w, i) => sum + (active[i] ? w : 0), 0);
    const shares = this.weights.map(() => 0);
    if (room <= 0 || total === 0) return shares;
    for (let i = 0; i < this.weights.length; i++) {
      if (active[i]) this.credit[i]! += (room * this.weights[i]!) / total;
    }
    let left = room;
    // Whole units first, then the largest fractions, so the shares add up to room.
    for (let i = 0; i < shares.length; i++) {
      if (!active[i]) continue;
      const whole = Math.min(Math.floor(this.credit[i]!), left);
      shares[i] = whole;
      this.credit[i]! -= whole;
      left -= whole;
    }
    const byCredit = shares.map((_, i) => i).filter((i) => active[i]).sort((a, b) => this.credit[b]! - this.credit[a]!);
    for (const i of byCredit) {
      if (left <= 0) break;
      shares[i]! += 1;
      this.credit[i]! -= 1;
      left -= 1;
    }
    return shares;
  }

  /** A queue that came back short has no backlog: it stops banking credit. */
  idle(index: number): void {
    this.credit[index] = Math.min(this.credit[index]!, 0);
  }
}
