/**
 * The DNS resolver message authentication runs on: mailauth's `(name, rrtype) => Promise<answer>`
 * contract (the shape of `dns.promises.resolve`), backed by `node:dns/promises` with the
 * operator's `--dns-servers` ("host:port", IPv6 as "[::1]:53") instead of the system's.
 *
 * Promises:
 * - answers keep `dns.promises.resolve`'s shapes (TXT as string[][] of character-strings,
 *   MX as {exchange, priority}[], A/AAAA/PTR/CNAME as string[]), which is what mailauth reads;
 * - failures keep c-ares' error codes untouched: mailauth turns ENOTFOUND/ENODATA into
 *   "no record" (spf=none, "no key", no DMARC policy) and everything else (ETIMEOUT,
 *   ESERVFAIL, EREFUSED, ECONNREFUSED…) into temperror (RFC 7208 §2.6.6, RFC 6376 §6.1.2,
 *   RFC 9989 §4.10). Recoding them would turn a flaky resolver into a permanent verdict;
 * - each query is bounded by c-ares itself (timeout × tries, capped by maxTimeout) and can be
 *   cut short with an AbortSignal, which rejects with ECANCELLED;
 * - each query has its own Resolver, so cancelling one (`Resolver#cancel` cancels everything
 *   in flight on it) leaves other messages' lookups alone (as createSystemDns in
 *   delivery/mx-resolver.ts).
 */
import { Resolver } from "node:dns/promises";

/** What one lookup yields: the union `dns.promises.resolve` resolves with. */
export type DnsAnswer = Awaited<ReturnType<Resolver["resolve"]>>;

/**
 * mailauth calls it with two arguments; the third lets our own callers (the per-message
 * deadline in authenticate-message.ts) cancel a query that is still waiting.
 */
export type DnsRecordResolver = (name: string, rrtype: string, options?: { signal?: AbortSignal }) => Promise<DnsAnswer>;

export interface DnsTxtResolverOptions {
  /** `--dns-servers` entries; absent or empty means the system's resolvers. */
  servers?: readonly string[];
  /** c-ares' first-try timeout per query; it doubles on each retry up to maxTimeoutMs. */
  timeoutMs?: number;
  tries?: number;
  maxTimeoutMs?: number;
}

// 2 s + 4 s worst case per query: well inside a message's authentication budget, and the
// per-message deadline in authenticate-message.ts cuts anything longer short anyway
export const DEFAULT_QUERY_TIMEOUT_MS = 2_000;
export const DEFAULT_QUERY_TRIES = 2;
export const DEFAULT_QUERY_MAX_TIMEOUT_MS = 4_000;

export function createDnsTxtResolver(options: DnsTxtResolverOptions = {}): DnsRecordResolver {
  const resolverOptions = {
    timeout: positive(options.timeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS, "timeoutMs"),
    tries: positive(options.tries ?? DEFAULT_QUERY_TRIES, "tries"),
    maxTimeout: positive(options.maxTimeoutMs ?? DEFAULT_QUERY_MAX_TIMEOUT_MS, "maxTimeoutMs"),
  };
  const servers = options.servers && options.servers.length > 0 ? [...options.servers] : null;
  // refused here, at start-up, naming the entry, rather than as a temperror on every message
  for (const server of servers ?? []) {
    try {
      new Resolver().setServers([server]);
    } catch (error) {
      throw new Error(`DNS server "${server}": expected an IP address with optional :port`, { cause: error });
    }
  }

  return async function resolveRecords(name, rrtype, { signal } = {}) {
    if (signal?.aborted) throw cancelled(name, rrtype);
    const resolver = new Resolver(resolverOptions);
    if (servers !== null) resolver.setServers(servers);
    const cancel = (): void => resolver.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      return await resolver.resolve(name, rrtype);
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
  };
}

function cancelled(name: string, rrtype: string): Error {
  return Object.assign(new Error(`query${rrtype} ECANCELLED ${name}`), { code: "ECANCELLED", hostname: name });
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`DNS resolver option ${name}: expected a positive integer, got ${value}`);
  return value;
}
