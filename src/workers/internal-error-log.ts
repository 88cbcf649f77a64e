/**
 * The real reasons behind workerd's "internal error; reference = <id>". When a worker's fetch()
 * is refused by the network policy or its DNS lookup fails, the worker only gets that opaque
 * text; workerd writes the reason to its stderr under the same id (jsg/util.c++: an "error:"
 * line, then a "stack:" line ending in "wdErrId = <id>"). This reads those lines and answers,
 * per reference, what happened, in words an operator can act on.
 *
 * Promises: keeps at most MAX_REMEMBERED reasons (the newest); never keeps the stack line itself
 * (it names the server's install path); a reason is at most 500 characters.
 */

const MAX_REMEMBERED = 256;
const REFERENCE = /\binternal error; reference = ([0-9a-v]{24})\b/g;
const LOGGED_ID = /\bwdErrId = ([0-9a-v]{24})\b/;
// "workerd/jsg/util.c++:374: error: e = kj/async-io-unix.c++:1650: failed: connect() blocked by restrictPeers()"
const ERROR_LINE = /^\S+:\d+: error: (.*)$/;

/** workerd's exception text → what the operator should read. */
export function describeInternalError(logged: string): string {
  const text = logged
    .replace(/; (?:sentryErrorContext|wdErrId) = .*$/, "")
    .replace(/^e = /, "")
    // kj's "<file>:<line>: <type>: " prefix says where in workerd, not what happened
    .replace(/^\S+\.c\+\+:\d+: [a-z]+: /, "")
    .trim();
  if (/connect\(\) blocked by restrictPeers\(\)/.test(text)) {
    return "fetch() refused by the network policy: the address is loopback, private or link-local, and not allowed by --worker-fetch-allow";
  }
  const dns = /^DNS lookup failed\.; params\.host = ([^;]*);.*gai_strerror\(status\) = (.*)$/.exec(text);
  if (dns !== null) return `fetch() failed: DNS lookup of ${dns[1]} failed: ${dns[2]}`;
  return text.slice(0, 500) || "workerd logged no reason";
}

/** The references named in `text`, each once. */
export function internalErrorReferences(text: string): string[] {
  return [...new Set([...text.matchAll(REFERENCE)].map((match) => match[1]!))];
}

export class InternalErrorLog {
  readonly #reasons = new Map<string, string>();
  readonly #waiting = new Map<string, Set<() => void>>();
  /** The last "error:" line, until the line carrying its id arrives. */
  #pending: string | null = null;

  /** One line of workerd's stderr, in order. */
  line(text: string): void {
    const id = LOGGED_ID.exec(text)?.[1];
    if (id === undefined) {
      this.#pending = ERROR_LINE.exec(text)?.[1] ?? null;
      return;
    }
    const own = text.startsWith("stack:") ? null : (ERROR_LINE.exec(text)?.[1] ?? null);
    const logged = own ?? this.#pending;
    this.#pending = null;
    if (logged === null) return;
    this.#reasons.set(id, describeInternalError(logged));
    if (this.#reasons.size > MAX_REMEMBERED) this.#reasons.delete(this.#reasons.keys().next().value!);
    for (const wake of this.#waiting.get(id) ?? []) wake();
    this.#waiting.delete(id);
  }

  /** What workerd logged for `reference`; waits up to `withinMs` for a line still in the pipe. */
  async reason(reference: string, withinMs: number): Promise<string | null> {
    const known = this.#reasons.get(reference);
    if (known !== undefined || withinMs <= 0) return known ?? null;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, withinMs);
      const waiters = this.#waiting.get(reference) ?? new Set();
      this.#waiting.set(reference, waiters);
      waiters.add(done);
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
    });
    if (this.#waiting.get(reference)?.size === 0) this.#waiting.delete(reference);
    return this.#reasons.get(reference) ?? null;
  }
}
