/**
 * Bounds how many Email Worker invocations run at once. Each invocation holds its message in
 * memory (the runtime API hands workers the whole raw message, up to 25 MiB), so without a bound
 * a burst of worker mail could hold gigabytes. Callers beyond the bound wait their turn, in order.
 */
export class InvocationLimiter {
  readonly #max: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`invocation limit ${max} is not a positive whole number`);
    this.#max = max;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter, so the count never dips and overshoots.
      if (next !== undefined) next();
      else this.#running--;
    }
  }
}
