/**
 * The one shared DNS resolver (DESIGN §2), built from `--dns-servers`: message authentication
 * (mailauth's `(name, rrtype) => Promise<answer>` hook, the shape of `dns.promises.resolve`),
 * reverse DNS, DNSBL and delivery's MX/address/MTA-STS lookups all go through one instance,
 * and so through one cache.
 *
 * Promises:
 * - answers keep `dns.promises.resolve`'s shapes (TXT as string[][] of character-strings,
 *   MX as {exchange, priority}[], A/AAAA/PTR/CNAME as string[]), which is what mailauth reads;
 *   a CNAME chain in the answer is followed (at most MAX_CNAME_HOPS), as c-ares does;
 * - failures keep c-ares' error codes: mailauth turns ENOTFOUND/ENODATA into "no record"
 *   (spf=none, "no key", no DMARC policy) and everything else (ETIMEOUT, ESERVFAIL, EREFUSED,
 *   ECONNREFUSED…) into temperror (RFC 7208 §2.6.6, RFC 6376 §6.1.2, RFC 9989 §4.10).
 *   Recoding them would turn a flaky resolver into a permanent verdict;
 * - answers are cached for their TTL, "no such record" for the SOA's negative TTL (RFC 2308),
 *   both capped and the cache bounded (dns-answer-cache.ts); failures are never cached;
 * - concurrent identical questions share one query on the wire (ten messages from one sender
 *   domain arriving together cost one SPF lookup);
 * - each query is bounded: `tries` rounds over the servers, the timeout doubling per round up
 *   to maxTimeout, as c-ares does (2 s + 4 s by default). A caller's AbortSignal rejects that
 *   caller at once with ECANCELLED and leaves everyone else sharing the query alone.
 *
 * It speaks DNS itself (dns-message.ts, dns-exchange.ts) because `node:dns` reports no TTL
 * for TXT, MX or PTR, and a cache that guesses lifetimes serves stale SPF and DKIM keys.
 */
import { randomInt } from "node:crypto";
import { getServers } from "node:dns";
import { isIP } from "node:net";
import { DnsAnswerCache, type CachedOutcome, type DnsAnswerCacheOptions } from "./dns-answer-cache.ts";
import { exchange, failure, type DnsServerAddress } from "./dns-exchange.ts";
import { DnsFormatError, isDnsRecordType, type DnsRecordType, type DnsResponse, type RecordData } from "./dns-message.ts";

/** What one lookup yields: the union `dns.promises.resolve` resolves with. */
export type DnsAnswer = string[] | string[][] | { exchange: string; priority: number }[];

/**
 * mailauth calls it with two arguments; the third lets our own callers (the per-message
 * deadline in authenticate-message.ts) stop waiting for a query.
 */
export type DnsRecordResolver = (name: string, rrtype: string, options?: { signal?: AbortSignal }) => Promise<DnsAnswer>;

export interface DnsTxtResolverOptions {
  /** `--dns-servers` entries; absent or empty means the system's resolvers. */
  servers?: readonly string[];
  /** First-round timeout per query; it doubles on each round up to maxTimeoutMs. */
  timeoutMs?: number;
  tries?: number;
  maxTimeoutMs?: number;
  cache?: DnsAnswerCacheOptions;
  /** Told of every query that failed on every server and round (timeouts, SERVFAIL, REFUSED…), for metrics. */
  onFailure?: (type: string, code: string) => void;
}

// 2 s + 4 s worst case per query: well inside a message's authentication budget, and the
// per-message deadline in authenticate-message.ts cuts anything longer short anyway
export const DEFAULT_QUERY_TIMEOUT_MS = 2_000;
export const DEFAULT_QUERY_TRIES = 2;
export const DEFAULT_QUERY_MAX_TIMEOUT_MS = 4_000;
// RFC 1034 §3.6.2 chains end somewhere; a loop in someone's zone must not cost more
const MAX_CNAME_HOPS = 8;

// RFC 1035 §4.1.1 response codes; anything else counts as a server failure (temperror)
const RCODE_ERRORS: Readonly<Record<number, string>> = { 1: "EFORMERR", 2: "ESERVFAIL", 3: "ENOTFOUND", 4: "ENOTIMP", 5: "EREFUSED" };

export function createDnsTxtResolver(options: DnsTxtResolverOptions = {}): DnsRecordResolver {
  const timeoutMs = positive(options.timeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS, "timeoutMs");
  const tries = positive(options.tries ?? DEFAULT_QUERY_TRIES, "tries");
  const maxTimeoutMs = positive(options.maxTimeoutMs ?? DEFAULT_QUERY_MAX_TIMEOUT_MS, "maxTimeoutMs");
  // refused here, at start-up, naming the entry, rather than as a temperror on every message
  const configured = options.servers && options.servers.length > 0 ? options.servers : getServers();
  // no --dns-servers and no resolv.conf: a local resolver, as c-ares itself assumes
  const servers = (configured.length > 0 ? configured : ["127.0.0.1"]).map(parseServer);
  const cache = new DnsAnswerCache(options.cache);
  const inFlight = new Map<string, SharedQuery>();

  async function ask(name: string, type: DnsRecordType, signal: AbortSignal): Promise<CachedOutcome> {
    let lastError: Error = failure("ETIMEOUT", { name, type });
    for (let round = 0; round < tries; round++) {
      const roundTimeout = Math.min(timeoutMs * 2 ** round, maxTimeoutMs);
      for (const server of servers) {
        let response: DnsResponse;
        try {
          response = await exchange(server, { id: randomInt(0, 65_536), name, type, timeoutMs: roundTimeout, signal });
        } catch (error) {
          // a name that cannot be asked (a label over 63 bytes…): c-ares' EBADNAME, at once
          if (error instanceof DnsFormatError) throw failure("EBADNAME", { name, type }, error);
          lastError = error as Error;
          if (signal.aborted) throw lastError;
          continue;
        }
        const outcome = verdict(response, name, type);
        if (outcome.kind === "failure") {
          // another server (or a later round) may do better, as c-ares moves on after SERVFAIL
          lastError = failure(outcome.code, { name, type });
          continue;
        }
        cache.set(cacheKey(name, type), outcome.outcome, outcome.ttl);
        return outcome.outcome;
      }
    }
    options.onFailure?.(type, String((lastError as { code?: unknown }).code ?? "ETIMEOUT"));
    throw lastError;
  }

  return async function resolveRecords(name, rrtype, { signal } = {}) {
    const type = rrtype.toUpperCase();
    if (!isDnsRecordType(type)) throw Object.assign(new Error(`query ${rrtype} ENOTIMP ${name}: record type not supported`), { code: "ENOTIMP", hostname: name });
    if (signal?.aborted) throw failure("ECANCELLED", { name, type });
    const key = cacheKey(name, type);
    const cached = cache.get(key);
    if (cached !== null) return answerOf(cached, name, type);
    let shared = inFlight.get(key);
    if (shared === undefined) {
      const controller = new AbortController();
      const query: SharedQuery = { promise: ask(name, type, controller.signal), controller, waiting: 0 };
      query.promise.catch(() => undefined).finally(() => {
        if (inFlight.get(key) === query) inFlight.delete(key);
      });
      inFlight.set(key, query);
      shared = query;
    }
    return answerOf(await waitFor(shared, signal, name, type, () => inFlight.get(key) === shared && inFlight.delete(key)), name, type);
  };
}

/** One query on the wire and the callers waiting for it; the last one to give up cancels it. */
interface SharedQuery {
  promise: Promise<CachedOutcome>;
  controller: AbortController;
  waiting: number;
}

type Verdict = { kind: "failure"; code: string } | { kind: "definite"; outcome: CachedOutcome; ttl: number };

/** What a response means for (name, type): records, "no such record" (and for how long), or a failure. */
function verdict(response: DnsResponse, name: string, type: DnsRecordType): Verdict {
  if (response.rcode === 3) return { kind: "definite", outcome: { kind: "negative", code: "ENOTFOUND" }, ttl: response.negativeTtl ?? 0 };
  if (response.rcode !== 0) return { kind: "failure", code: RCODE_ERRORS[response.rcode] ?? "ESERVFAIL" };
  let owner = name.toLowerCase().replace(/\.$/, "");
  let ttl = Number.POSITIVE_INFINITY;
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    const records = response.answers.filter((record) => record.name === owner && record.type === type);
    if (records.length > 0) {
      for (const record of records) ttl = Math.min(ttl, record.ttl);
      return { kind: "definite", outcome: { kind: "answer", records: records.map((record) => record.data) }, ttl };
    }
    const alias = type === "CNAME" ? undefined : response.answers.find((record) => record.name === owner && record.type === "CNAME");
    if (alias === undefined) break;
    ttl = Math.min(ttl, alias.ttl);
    owner = alias.data as string;
  }
  // NODATA (RFC 2308 §2.2): cacheable only with an SOA, and no longer than any alias on the way
  return { kind: "definite", outcome: { kind: "negative", code: "ENODATA" }, ttl: Math.min(ttl, response.negativeTtl ?? 0) };
}

function answerOf(outcome: CachedOutcome, name: string, type: DnsRecordType): DnsAnswer {
  if (outcome.kind === "negative") throw failure(outcome.code, { name, type });
  return outcome.records as RecordData[] as DnsAnswer;
}

/**
 * The shared query's outcome, or ECANCELLED for this caller alone when its signal aborts first.
 * When every caller has given up, the query is cancelled and forgotten, so the next caller
 * starts afresh instead of joining a query that may already be about to time out.
 */
function waitFor(shared: SharedQuery, signal: AbortSignal | undefined, name: string, type: DnsRecordType, forget: () => void): Promise<CachedOutcome> {
  shared.waiting++;
  return new Promise<CachedOutcome>((resolve, reject) => {
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      signal?.removeEventListener("abort", onAbort);
      if (--shared.waiting === 0 && signal?.aborted === true) {
        forget();
        shared.controller.abort();
      }
    };
    const onAbort = (): void => {
      leave();
      reject(failure("ECANCELLED", { name, type }));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    shared.promise.then(
      (outcome) => {
        leave();
        resolve(outcome);
      },
      (error: unknown) => {
        leave();
        reject(error);
      },
    );
  });
}

function cacheKey(name: string, type: DnsRecordType): string {
  return `${type} ${name.toLowerCase().replace(/\.$/, "")}`;
}

/** "192.0.2.1", "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]:5353" (the forms Resolver#setServers takes). */
function parseServer(entry: string): DnsServerAddress {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(entry);
  const plain = /^([^:[\]]+)(?::(\d{1,5}))?$/.exec(entry);
  const host = bracketed?.[1] ?? plain?.[1] ?? (isIP(entry) === 6 ? entry : null);
  const port = Number(bracketed?.[2] ?? plain?.[2] ?? 53);
  if (host === null || isIP(host) === 0 || !(port >= 1 && port <= 65_535)) {
    throw new Error(`DNS server "${entry}": expected an IP address with optional :port`);
  }
  return { host, port };
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`DNS resolver option ${name}: expected a positive integer, got ${value}`);
  return value;
}
