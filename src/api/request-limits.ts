/**
 * Request limits: a fixed-window count per API token (Cloudflare's 1,200 requests per five
 * minutes), a tighter one per client address for failed authentications (token guessing),
 * and a cap on request bodies being read at once (each may hold up to the body limit in
 * memory). Per node and in memory: a cluster of N nodes allows N times the rate, which is
 * the trade the README states.
 */
export interface WindowLimit {
  limit: number;
  windowMs: number;
}

export class FixedWindowCounter {
  readonly #limit: WindowLimit;
  readonly #counts = new Map<string, { start: number; count: number }>();
  readonly #now: () => number;

  constructor(limit: WindowLimit, now: () => number = Date.now) {
    this.#limit = limit;
    this.#now = now;
  }

  get limit(): WindowLimit {
    return this.#limit;
  }

  /** Counts one request for `key`; returns seconds to wait when over the limit, else 0. */
  hit(key: string): number {
    const now = this.#now();
    let slot = this.#counts.get(key);
    if (slot === undefined || now - slot.start >= this.#limit.windowMs) {
      // Drop stale windows now and then so the map stays bounded by active keys.
      if (this.#counts.size > 10_000) for (const [k, v] of this.#counts) if (now - v.start >= this.#limit.windowMs) this.#counts.delete(k);
      slot = { start: now, count: 0 };
      this.#counts.set(key, slot);
    }
    slot.count += 1;
    if (slot.count <= this.#limit.limit) return 0;
    return Math.max(1, Math.ceil((slot.start + this.#limit.windowMs - now) / 1000));
  }
}

export class ConcurrencyGate {
  readonly #max: number;
  #inUse = 0;

  constructor(max: number) {
    this.#max = max;
  }

  tryEnter(): boolean {
    if (this.#inUse >= this.#max) return false;
    this.#inUse += 1;
    return true;
  }

  leave(): void {
    this.#inUse = Math.max(0, this.#inUse - 1);
  }
}
