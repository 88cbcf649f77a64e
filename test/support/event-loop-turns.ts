/**
 * How often this thread's event loop turned while some work ran: a callback re-armed with
 * setImmediate counts each turn. Work done synchronously (a key operation inline) lets none
 * through; work handed to libuv's pool lets at least one through per hand-off.
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
