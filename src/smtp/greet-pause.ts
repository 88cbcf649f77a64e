/**
 * The pre-greeting pause (Postfix postscreen's "pregreet" test): a client that talks before the
 * 220 greeting is a bot that does not wait for replies, and smtp-server refuses it with
 * "421 … You talk too soon". smtp-server pauses 100 ms before every greeting to catch them,
 * which costs every connection those 100 ms: with one message per connection (how most MTAs
 * deliver) it bounded a 10-session load to ~80 msg/s.
 *
 * Promises:
 * - a client address is paused `pauseMs` until it has passed once (waited for the greeting);
 *   then it is greeted at once for `rememberMs` (postscreen's cache, 24 h by default), so
 *   returning senders pay nothing and a new bot is still caught on its first connection;
 * - trusted networks are never paused; `pauseMs` 0 turns the test off;
 * - memory is bounded: at most `maxRemembered` addresses, the least recently passed forgotten
 *   first; time is passed in.
 */
export interface GreetPauseOptions {
  /** Pause before the greeting for a client not known to wait for it, ms; 0: never pause. */
  pauseMs: number;
  /** How long a client that waited is greeted at once, ms. */
  rememberMs?: number;
  maxRemembered?: number;
  trusted?: (address: string) => boolean;
  now?: () => number;
  /** Told of each test's outcome (logging, metrics). */
  onVerdict?: (address: string, verdict: "passed" | "talked-early") => void;
}

export interface GreetPause {
  /** ms to wait before greeting this client (0: greet now). */
  pauseFor(address: string): number;
  /** The pause ended: whether the client stayed silent through it. */
  settle(address: string, talkedEarly: boolean): void;
  readonly remembered: number;
}

export const DEFAULT_GREET_PAUSE_MS = 100;
const DAY_MS = 86_400_000;

export function createGreetPause(options: GreetPauseOptions): GreetPause {
  const rememberMs = options.rememberMs ?? DAY_MS;
  const maxRemembered = options.maxRemembered ?? 100_000;
  const now = options.now ?? Date.now;
  // address → when it passed; Map order is pass order, refreshed on each pass
  const passedAt = new Map<string, number>();
  return {
    pauseFor(address) {
      if (options.pauseMs === 0 || options.trusted?.(address)) return 0;
      const at = passedAt.get(address);
      if (at !== undefined && now() - at < rememberMs) return 0;
      return options.pauseMs;
    },
    settle(address, talkedEarly) {
      if (talkedEarly) {
        passedAt.delete(address);
      } else {
        passedAt.delete(address);
        passedAt.set(address, now());
        if (passedAt.size > maxRemembered) passedAt.delete(passedAt.keys().next().value!);
      }
      options.onVerdict?.(address, talkedEarly ? "talked-early" : "passed");
    },
    get remembered() {
      return passedAt.size;
    },
  };
}
