/**
 * PendingWrites: the store writes a node makes after it has answered the sender — a relayed
 * copy's acceptance in the delivery ledger, the message's activity events — tracked so that
 * whatever needs them can wait for them, and nobody else does.
 *
 * Why they follow the reply instead of preceding it (issue 11): each is a round trip to the
 * store (the writer thread's commit on SQLite, a query on PostgreSQL), ~0.15 and ~0.3 ms one
 * message at a time, a quarter of the latency mailroute added over the sink, and neither
 * changes what the sender must hear. The destination's 250 is the fact the reply reports; the
 * acceptance row only tells a later retry of the same message that it was delivered, and a
 * sender that heard 250 does not retry. (A crash between the upstream's 250 and the sender's
 * reply leaves the same maybe-delivered intent as before: at-least-once, README "Delivery
 * guarantees".)
 *
 * Who waits: shutdown, before the store writer and the store close; the activity log and
 * analytics of this node, before they read (so an event is readable as soon as the sender has
 * its reply, as when the reply waited for it); tests.
 *
 * Promises: `track` never lets a write's failure go unhandled (whoever makes a write logs its
 * failure); `settled` resolves, never rejects, once every write tracked before the call has
 * settled; a write tracked later is not waited for; `settledWithin` does the same but gives up
 * after `ms` (a store that stopped answering must not hold shutdown forever), saying which.
 */
export class PendingWrites {
  readonly #inFlight = new Set<Promise<void>>();

  track(write: Promise<unknown>): void {
    const settled = write.then(
      () => undefined,
      () => undefined,
    );
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
  }

  /** Writes tracked and not yet settled. */
  get size(): number {
    return this.#inFlight.size;
  }

  settled(): Promise<void> {
    if (this.#inFlight.size === 0) return Promise.resolve();
    return Promise.all([...this.#inFlight]).then(() => undefined);
  }

  /** True once every write tracked before the call has settled; false if `ms` passed first. */
  async settledWithin(ms: number): Promise<boolean> {
    if (this.#inFlight.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const lapsed = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([this.settled().then(() => true as const), lapsed]);
    } finally {
      clearTimeout(timer);
    }
  }
}
