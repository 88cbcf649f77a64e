/**
 * How often this thread's event loop turned while some work ran: a callback re-armed with
 * setImmediate counts each turn. Work done synchronously (a key operation inline) lets none
 * through. Work handed to libuv's pool or another thread, n hand-offs one after the other, lets
 * at least n − 1 through: the first answer can come before the loop's first turn (this thread
 * held up after handing it off, as on a loaded machine), every later one is waited for.
 */
export async function eventLoopTurnsWhile<T>(work: () => Promise<T>): Promise<{ turns: number; result: T }> {
  let turns = 0;
  let working = true;
  const turn = (): void => {
    if (!working) return;
    turns++;
    setImmediate(turn);
  };
  setImmediate(turn);
  try {
    const result = await work();
    return { turns, result };
  } finally {
    working = false;
  }
}

/**
 * Whether `promise` settles within `hops` microtasks of now, before this thread's event loop
 * turns at all: work done on this thread (synchronously, or through promises only) does; work
 * whose answer comes from another thread or from I/O never can, however fast it is, since that
 * answer is delivered by the event loop.
 */
export async function settlesWithinMicrotasks(promise: Promise<unknown>, hops = 1_000): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let hop = 0; hop < hops && !settled; hop++) await null;
  return settled;
}
