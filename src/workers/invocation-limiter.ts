/**
 * Admission for Email Worker invocations: which waiting invocation may run next, so that the
 * memory worker mail holds stays bounded and a slow or hostile worker can only delay itself.
 *
 * Why: a running invocation holds its whole message in memory (the Runtime API hands a worker
 * the raw message, up to 25 MiB), so worker mail must wait for admission *before* its message
 * is read into memory; and one first-come queue shared by every worker let one slow worker's
 * backlog hold up all worker mail (issue 8: a trivial worker answered after 5.3 s instead of
 * 0.13 s behind 20 invocations of a slow one).
 *
 * Promises:
 * - At most `maxRunning` leases are held at once, at most `maxPerAccount` by one account and at
 *   most `maxPerWorker` by one worker of an account; together they cover at most `maxBytes` of
 *   message, except that one message larger than the whole budget is admitted when nothing else
 *   runs (it could never run otherwise).
 * - Capacity goes round-robin: to the account served least recently among those with a waiter
 *   that may be admitted, then likewise to a worker within it (one not served since it last
 *   went idle counts as never served); one worker's waiters are served
 *   first come, first served. A waiter that cannot be admitted (its worker or account at its
 *   cap, its message larger than what is left) never holds up one that can.
 * - acquire() settles within `waitMs`: with a lease, or with null when none came in time, so the
 *   caller can refuse with a temporary error before the sender's own deadline.
 * - release() is idempotent and hands the capacity on at once.
 */

export interface LimiterCapacity {
  /** Invocations running at once, all accounts together. */
  maxRunning: number;
  /** Invocations of one account running at once. Default: maxRunning. */
  maxPerAccount?: number;
  /** Invocations of one worker (of one account) running at once. Default: maxPerAccount. */
  maxPerWorker?: number;
  /** Message bytes held by running invocations together. Default: no bound. */
  maxBytes?: number;
}

export interface InvocationTicket {
  account: string;
  worker: string;
  /** The size of the message the invocation will hold in memory. */
  bytes: number;
}

export interface InvocationLease {
  /** How long the ticket waited for admission. */
  readonly waitedMs: number;
  release(): void;
}

interface Waiter {
  readonly ticket: InvocationTicket;
  readonly since: number;
  readonly timer: NodeJS.Timeout;
  readonly admit: (lease: InvocationLease) => void;
}

interface WorkerSlots {
  running: number;
  /** When it was last granted a lease (a sequence number; 0: never). */
  lastServed: number;
  readonly waiters: Waiter[];
}

interface AccountSlots {
  running: number;
  lastServed: number;
  readonly workers: Map<string, WorkerSlots>;
}

function positiveWhole(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} ${value} is not a positive whole number`);
  return value;
}

export class InvocationLimiter {
  readonly #maxRunning: number;
  readonly #maxPerAccount: number;
  readonly #maxPerWorker: number;
  readonly #maxBytes: number;
  readonly #accounts = new Map<string, AccountSlots>();
  #served = 0;
  #running = 0;
  #bytes = 0;
  #waiting = 0;

  constructor(capacity: LimiterCapacity) {
    this.#maxRunning = positiveWhole("maxRunning", capacity.maxRunning);
    this.#maxPerAccount = Math.min(this.#maxRunning, positiveWhole("maxPerAccount", capacity.maxPerAccount ?? this.#maxRunning));
    this.#maxPerWorker = Math.min(this.#maxPerAccount, positiveWhole("maxPerWorker", capacity.maxPerWorker ?? this.#maxPerAccount));
    const maxBytes = capacity.maxBytes ?? Number.POSITIVE_INFINITY;
    if (!(maxBytes > 0)) throw new RangeError(`maxBytes ${maxBytes} is not a positive number`);
    this.#maxBytes = maxBytes;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting;
  }

  /** Message bytes held by running invocations. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Running and waiting invocations of one account, or of one of its workers. */
  usage(account: string, worker?: string): { running: number; waiting: number } {
    const slots = this.#accounts.get(account);
    if (slots === undefined) return { running: 0, waiting: 0 };
    if (worker !== undefined) {
      const one = slots.workers.get(worker);
      return { running: one?.running ?? 0, waiting: one?.waiters.length ?? 0 };
    }
    let waiting = 0;
    for (const one of slots.workers.values()) waiting += one.waiters.length;
    return { running: slots.running, waiting };
  }

  /** A lease for `ticket`, or null when none could be granted within `waitMs`. */
  acquire(ticket: InvocationTicket, waitMs: number): Promise<InvocationLease | null> {
    const account = this.#accountSlots(ticket.account);
    const worker = this.#workerSlots(account, ticket.worker);
    // first come, first served within a worker: a newcomer never overtakes its own worker's queue
    if (worker.waiters.length === 0 && this.#admits(account, worker, ticket.bytes)) return Promise.resolve(this.#grant(ticket, 0));
    if (!(waitMs > 0)) {
      this.#forgetIdle(ticket.account);
      return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      const since = performance.now();
      const waiter: Waiter = {
        ticket,
        since,
        admit: resolve,
        timer: setTimeout(() => {
          const index = worker.waiters.indexOf(waiter);
          if (index < 0) return;
          worker.waiters.splice(index, 1);
          this.#waiting--;
          this.#forgetIdle(ticket.account);
          resolve(null);
        }, waitMs),
      };
      // a waiting invocation alone must not keep the process alive (its caller's socket does)
      waiter.timer.unref();
      worker.waiters.push(waiter);
      this.#waiting++;
    });
  }

  #accountSlots(name: string): AccountSlots {
    let slots = this.#accounts.get(name);
    if (slots === undefined) this.#accounts.set(name, (slots = { running: 0, lastServed: 0, workers: new Map() }));
    return slots;
  }

  #workerSlots(account: AccountSlots, name: string): WorkerSlots {
    let slots = account.workers.get(name);
    if (slots === undefined) account.workers.set(name, (slots = { running: 0, lastServed: 0, waiters: [] }));
    return slots;
  }

  #admits(account: AccountSlots, worker: WorkerSlots, bytes: number): boolean {
    if (this.#running >= this.#maxRunning || account.running >= this.#maxPerAccount || worker.running >= this.#maxPerWorker) return false;
    return this.#running === 0 || this.#bytes + bytes <= this.#maxBytes;
  }

  #grant(ticket: InvocationTicket, waitedMs: number): InvocationLease {
    const account = this.#accountSlots(ticket.account);
    const worker = this.#workerSlots(account, ticket.worker);
    this.#running++;
    this.#bytes += ticket.bytes;
    account.running++;
    worker.running++;
    account.lastServed = worker.lastServed = ++this.#served;
    let released = false;
    return {
      waitedMs,
      release: () => {
        if (released) return;
        released = true;
        this.#running--;
        this.#bytes -= ticket.bytes;
        account.running--;
        worker.running--;
        this.#forgetIdle(ticket.account);
        this.#dispatch();
      },
    };
  }

  /** Grants leases to waiters while one may be admitted, in round-robin order. */
  #dispatch(): void {
    while (this.#waiting > 0 && this.#running < this.#maxRunning) {
      const next = this.#nextAdmissible();
      if (next === null) return;
      const [worker, waiter] = next;
      worker.waiters.shift();
      this.#waiting--;
      clearTimeout(waiter.timer);
      waiter.admit(this.#grant(waiter.ticket, performance.now() - waiter.since));
    }
  }

  /** The head waiter of the least recently served worker of the least recently served account, among those admissible. */
  #nextAdmissible(): [WorkerSlots, Waiter] | null {
    let best: { account: AccountSlots; worker: WorkerSlots; head: Waiter } | null = null;
    for (const account of this.#accounts.values()) {
      if (account.running >= this.#maxPerAccount || (best !== null && account.lastServed >= best.account.lastServed)) continue;
      let chosen: { worker: WorkerSlots; head: Waiter } | null = null;
      for (const worker of account.workers.values()) {
        const head = worker.waiters[0];
        if (head === undefined || (chosen !== null && worker.lastServed >= chosen.worker.lastServed)) continue;
        if (this.#admits(account, worker, head.ticket.bytes)) chosen = { worker, head };
      }
      if (chosen !== null) best = { account, ...chosen };
    }
    return best === null ? null : [best.worker, best.head];
  }

  /** Drops bookkeeping of an account (and its workers) with nothing running or waiting. */
  #forgetIdle(name: string): void {
    const account = this.#accounts.get(name);
    if (account === undefined) return;
    for (const [workerName, worker] of account.workers) {
      if (worker.running === 0 && worker.waiters.length === 0) account.workers.delete(workerName);
    }
    if (account.running === 0 && account.workers.size === 0) this.#accounts.delete(name);
  }
}
