/**
 * DNS block list (DNSBL) checks of a connecting client's IP address (RFC 5782), one set of
 * lookups per address, answered from a small cache when seen recently.
 *
 * Promises:
 * - `check` never rejects, and settles within `timeoutMs` of the call (plus a tick), however
 *   slow the DNS: the SMTP greeting waits on it;
 * - every zone is queried in parallel; the verdict names the first zone, in configured
 *   order, that lists the address, with the return codes it gave (RFC 5782 §2.1: A records
 *   in 127.0.0.0/8);
 * - NXDOMAIN and NODATA mean "not listed" (RFC 5782 §2.1);
 * - fails open: a zone that times out, fails, refuses the query or answers outside
 *   127.0.0.0/8 counts as not listing, and is reported in `unavailable` so the operator
 *   can see it in the log. A block list is a third party: refusing mail whenever its DNS is
 *   slow would turn its outage into ours and bounce legitimate senders, while a listed
 *   client let through still meets authentication, limits and the spam score;
 * - loopback, private, link-local, CGNAT, multicast and unspecified addresses are never
 *   queried (see SPECIAL_USE);
 * - at most `maxCacheEntries` verdicts are cached, each for `cacheTtlMs`; concurrent checks
 *   of one address share one set of queries, so a client opening ten connections at once
 *   costs one lookup per zone.
 */
import { BlockList } from "node:net";
import { parseIpAddress, reversedLabels, type IpAddress } from "./ip-address.ts";

/** An A lookup, as `node:dns/promises` (or mx-resolver's `createSystemDns().resolve4`) does it. */
export type LookupA = (name: string, options?: { signal?: AbortSignal }) => Promise<string[]>;

export interface DnsblCheckerOptions {
  /** e.g. ["zen.spamhaus.org"]; none turns checking off (the dev default). */
  zones: readonly string[];
  /** Rejects with code ENOTFOUND (NXDOMAIN) or ENODATA for "no such record", as node:dns does. */
  lookupA: LookupA;
  timeoutMs?: number;
  cacheTtlMs?: number;
  maxCacheEntries?: number;
  /** Milliseconds; used for cache expiry only. */
  now?: () => number;
  /** Told of each zone query that gave no answer (timeout, DNS error), for metrics; a listing is not one. */
  onUnavailable?: (zone: string, reason: string) => void;
}

export interface ZoneUnavailable {
  readonly zone: string;
  /** "timeout", "refused 127.255.255.254", "answer 203.0.113.1 outside 127.0.0.0/8", or the DNS error code. */
  readonly reason: string;
}

export type DnsblVerdict =
  | { readonly listed: false; readonly unavailable: readonly ZoneUnavailable[] }
  | { readonly listed: true; readonly zone: string; readonly codes: readonly string[] };

export interface DnsblChecker {
  check(ip: string): Promise<DnsblVerdict>;
  readonly zones: readonly string[];
  /** Cached verdicts, for metrics and tests: never above maxCacheEntries. */
  readonly cacheSize: number;
}

export const DNSBL_DEFAULTS = Object.freeze({ timeoutMs: 2_000, cacheTtlMs: 300_000, maxCacheEntries: 10_000 });

/**
 * Never queried: a block list knows nothing about them, a query would tell the list operator
 * about our internal network, and 127.0.0.2 is the very address RFC 5782 §5 has every DNSBL
 * list as its test entry, so a local client there would be refused. RFC 6890 ranges that are
 * never a client's public source; documentation ranges are left in, lists just don't list them.
 */
const SPECIAL_USE = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // RFC 1918
  ["100.64.0.0", 10], // RFC 6598 carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local
  ["172.16.0.0", 12], // RFC 1918
  ["192.168.0.0", 16], // RFC 1918
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, and broadcast
] as const) {
  SPECIAL_USE.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["fc00::", 7], // RFC 4193 unique local
  ["fe80::", 10], // link-local
  ["ff00::", 8], // multicast
] as const) {
  SPECIAL_USE.addSubnet(network, prefix, "ipv6");
}

// RFC 5782 §2.1: a listing is an A record in 127.0.0.0/8
const LISTING = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
// Spamhaus answers 127.255.255.252 (typo in the zone name), .254 (query came through a public
// resolver such as 8.8.8.8 or 1.1.1.1) and .255 (too many queries) instead of refusing: these
// say nothing about the client, and treating them as listings would refuse every sender
const QUERY_REFUSED = /^127\.255\.255\.\d{1,3}$/;
// node:dns codes for "the name or the record does not exist": a definite "not listed"
const NOT_FOUND = new Set(["ENOTFOUND", "ENODATA"]);
const ZONE_NAME = /^(?=.{1,188}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;

type ZoneAnswer = { kind: "listed"; codes: string[] } | { kind: "clear" } | { kind: "unavailable"; reason: string };

export function createDnsblChecker(options: DnsblCheckerOptions): DnsblChecker {
  const zones = Object.freeze([...new Set(options.zones.map(normalizeZone))]);
  const timeoutMs = positive("timeoutMs", options.timeoutMs ?? DNSBL_DEFAULTS.timeoutMs);
  const cacheTtlMs = positive("cacheTtlMs", options.cacheTtlMs ?? DNSBL_DEFAULTS.cacheTtlMs);
  const maxCacheEntries = positive("maxCacheEntries", options.maxCacheEntries ?? DNSBL_DEFAULTS.maxCacheEntries);
  const lookupA = options.lookupA;
  const now = options.now ?? Date.now;
  // insertion order is expiry order (one TTL for all, a clock that only moves forward),
  // so the first entry is always the next to expire and the first to evict
  const cache = new Map<string, { verdict: DnsblVerdict; expires: number }>();
  const inFlight = new Map<string, Promise<DnsblVerdict>>();

  async function queryZone(labels: string, zone: string): Promise<ZoneAnswer> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<ZoneAnswer>((resolve) => {
      timer = setTimeout(() => resolve({ kind: "unavailable", reason: "timeout" }), timeoutMs);
    });
    // through a Promise so that a lookup throwing synchronously fails open like any other
    const answered = new Promise<string[]>((resolve) => resolve(lookupA(`${labels}.${zone}`, { signal: controller.signal }))).then(classify, (error: unknown): ZoneAnswer => {
      const code = (error as { code?: unknown } | null)?.code;
      if (typeof code === "string" && NOT_FOUND.has(code)) return { kind: "clear" };
      return { kind: "unavailable", reason: typeof code === "string" ? code : String(error) };
    });
    try {
      return await Promise.race([answered, timedOut]);
    } finally {
      clearTimeout(timer);
      // cancel a lookup we stopped waiting for, so a dead list costs no more than the timeout
      controller.abort();
    }
  }

  async function lookup(ip: IpAddress): Promise<DnsblVerdict> {
    const labels = reversedLabels(ip);
    const answers = await Promise.all(zones.map((zone) => queryZone(labels, zone)));
    const unavailable: ZoneUnavailable[] = [];
    for (const [index, answer] of answers.entries()) {
      const zone = zones[index]!;
      if (answer.kind === "listed") return Object.freeze({ listed: true, zone, codes: Object.freeze(answer.codes) });
      if (answer.kind === "unavailable") {
        unavailable.push(Object.freeze({ zone, reason: answer.reason }));
        options.onUnavailable?.(zone, answer.reason);
      }
    }
    return Object.freeze({ listed: false, unavailable: Object.freeze(unavailable) });
  }

  function remember(key: string, verdict: DnsblVerdict): void {
    // a zone that did not answer says nothing about the address: caching that would let a
    // listed client through for the whole TTL after one slow query
    if (!verdict.listed && verdict.unavailable.length > 0) return;
    const at = now();
    cache.delete(key);
    for (const [oldKey, entry] of cache) {
      if (entry.expires > at && cache.size < maxCacheEntries) break;
      cache.delete(oldKey);
    }
    cache.set(key, { verdict, expires: at + cacheTtlMs });
  }

  return {
    zones,
    get cacheSize() {
      return cache.size;
    },
    async check(input: string): Promise<DnsblVerdict> {
      const ip = parseIpAddress(input);
      if (zones.length === 0 || ip === null || SPECIAL_USE.check(ip.text, ip.family === 4 ? "ipv4" : "ipv6")) return NOT_LISTED;
      const cached = cache.get(ip.text);
      if (cached !== undefined) {
        if (cached.expires > now()) return cached.verdict;
        cache.delete(ip.text);
      }
      const pending = inFlight.get(ip.text);
      if (pending !== undefined) return pending;
      const started = lookup(ip).then((verdict) => {
        remember(ip.text, verdict);
        return verdict;
      });
      inFlight.set(ip.text, started);
      try {
        return await started;
      } finally {
        inFlight.delete(ip.text);
      }
    },
  };
}

const NOT_LISTED: DnsblVerdict = Object.freeze({ listed: false, unavailable: Object.freeze([]) });

function classify(addresses: string[]): ZoneAnswer {
  const codes = [...new Set(addresses.filter((address) => LISTING.test(address) && !QUERY_REFUSED.test(address)))];
  if (codes.length > 0) return { kind: "listed", codes: codes.sort(byNumericValue) };
  const refused = addresses.find((address) => QUERY_REFUSED.test(address));
  if (refused !== undefined) return { kind: "unavailable", reason: `refused ${refused}` };
  // an answer outside 127/8 is not a listing: typically a resolver that rewrites NXDOMAIN to
  // an advertising page, which would otherwise "list" every client on the internet
  if (addresses.length > 0) return { kind: "unavailable", reason: `answer ${addresses[0]} outside 127.0.0.0/8` };
  return { kind: "clear" };
}

function byNumericValue(a: string, b: string): number {
  const value = (address: string) => address.split(".").reduce((sum, octet) => sum * 256 + Number(octet), 0);
  return value(a) - value(b);
}

function normalizeZone(zone: string): string {
  const name = zone.trim().toLowerCase().replace(/\.$/, "");
  // 188: the 64 characters of an IPv6 query name plus the zone must fit in 253 (RFC 1035 §2.3.4)
  if (!ZONE_NAME.test(name)) throw new Error(`dnsbl zone "${zone}": not a domain name of at most 188 characters`);
  return name;
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`dnsbl ${name}: expected a whole number above 0, got ${value}`);
  return value;
}
