/**
 * The shared resolver's answer cache: (type, name) → an answer or a "no such record" verdict,
 * each for as long as the zone said it may be kept.
 *
 * Promises:
 * - an entry is served only before its expiry: the record's own TTL (the lowest in the answer,
 *   CNAMEs included), capped at `maxTtlSeconds`; a negative entry (NXDOMAIN, NODATA) lives for
 *   the SOA's negative TTL (RFC 2308 §5), capped at `maxNegativeTtlSeconds`; TTL 0 is never kept;
 * - only definite answers are stored: a SERVFAIL, REFUSED, timeout or unreachable server is
 *   the resolver's problem of the moment, never remembered (RFC 2308 §7 allows at most 5 min;
 *   we keep none, so a recovering resolver is asked again on the next message);
 * - at most `maxEntries` entries: the least recently used goes first, so a flood of distinct
 *   names (each sender domain is one) cannot grow memory without bound;
 * - answers are handed out as copies, so a caller that sorts or edits one cannot change what
 *   the next caller gets.
 */
import type { RecordData } from "./dns-message.ts";

export type CachedOutcome = { kind: "answer"; records: RecordData[] } | { kind: "negative"; code: "ENOTFOUND" | "ENODATA" };

export interface DnsAnswerCacheOptions {
  maxEntries?: number;
  maxTtlSeconds?: number;
  maxNegativeTtlSeconds?: number;
  /** Milliseconds; injectable so tests move time instead of waiting for it. */
  now?: () => number;
}

export const DNS_CACHE_DEFAULTS = Object.freeze({ maxEntries: 10_000, maxTtlSeconds: 3_600, maxNegativeTtlSeconds: 900 });

export class DnsAnswerCache {
  readonly #entries = new Map<string, { outcome: CachedOutcome; expires: number }>();
  readonly #maxEntries: number;
  readonly #maxTtlMs: number;
  readonly #maxNegativeTtlMs: number;
  readonly #now: () => number;

  constructor(options: DnsAnswerCacheOptions = {}) {
    this.#maxEntries = options.maxEntries ?? DNS_CACHE_DEFAULTS.maxEntries;
    this.#maxTtlMs = (options.maxTtlSeconds ?? DNS_CACHE_DEFAULTS.maxTtlSeconds) * 1000;
    this.#maxNegativeTtlMs = (options.maxNegativeTtlSeconds ?? DNS_CACHE_DEFAULTS.maxNegativeTtlSeconds) * 1000;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): CachedOutcome | null {
    const entry = this.#entries.get(key);
    if (entry === undefined) return null;
    if (entry.expires <= this.#now()) {
      this.#entries.delete(key);
      return null;
    }
    // re-inserted: Map order is then least recently used first
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.outcome.kind === "answer" ? { kind: "answer", records: entry.outcome.records.map(copyRecord) } : entry.outcome;
  }

  /** Keeps `outcome` for `ttlSeconds` (capped); a TTL of 0 or less keeps nothing. */
  set(key: string, outcome: CachedOutcome, ttlSeconds: number): void {
    const cap = outcome.kind === "answer" ? this.#maxTtlMs : this.#maxNegativeTtlMs;
    const lifetime = Math.min(ttlSeconds * 1000, cap);
    if (!(lifetime > 0)) return;
    this.#entries.delete(key);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    const stored = outcome.kind === "answer" ? { kind: "answer" as const, records: outcome.records.map(copyRecord) } : outcome;
    this.#entries.set(key, { outcome: stored, expires: this.#now() + lifetime });
  }
}

function copyRecord(record: RecordData): RecordData {
  if (typeof record === "string") return record;
  return Array.isArray(record) ? [...record] : { ...record };
}
