/**
 * MTA-STS (RFC 8461) for outbound delivery: which policy a destination domain publishes, and
 * what it requires of a connection to one of its MX hosts.
 *
 * Promises of the resolver (`createMtaStsResolver`):
 * - discovery is the `_mta-sts.<domain>` TXT record (§3.1): exactly one record starting with
 *   `v=STSv1` carrying an `id`, or the domain has no policy;
 * - a fetched policy is cached for its max_age (§3.2) and re-fetched when the TXT id changes,
 *   and also once it is halfway to expiry or a day old, so a policy in use never lapses into the
 *   window where an attacker who strips the TXT record gets plain text (§10.2);
 * - a valid cached policy outlives a missing TXT record, a DNS failure and a failed fetch (§3.3,
 *   §10.2: those are exactly what a downgrade attacker can cause); an expired one does not;
 * - with no valid cached policy, a failed fetch means "no policy" (§3.3), and that policy id is
 *   not fetched again for `failureRetryMs` (§3.3 suggests at least 5 minutes) so a broken policy
 *   host does not add its timeout to every message;
 * - one call settles within `timeoutMs` (TXT and HTTPS together), concurrent calls for one
 *   domain share one lookup, and the cache holds at most `maxEntries` domains.
 *
 * The pure helpers `mxMatchesPolicy` (§4.1) and `tlsRequirementFor` (§4.2, §5) say what a
 * policy means for one MX; `outbound-tls.ts` turns that into SMTP client options.
 */
import { domainToASCII } from "node:url";
// first: mailauth's tools load libmime, whose charset converter and type list stay unloaded
import "../inbound/mailauth-stand-ins.ts";
import { parsePolicy, resolvePolicy } from "mailauth/lib/mta-sts.js";
import type { Logger } from "../analytics/structured-log.ts";
import { createPolicyFetcher, DEFAULT_POLICY_TIMEOUT_MS, type PolicyFetcher } from "./mta-sts-fetch.ts";

export type MtaStsMode = "enforce" | "testing" | "none";

export interface MtaStsPolicy {
  readonly mode: MtaStsMode;
  /** MX patterns, lower-case: "mx.example.com" or "*.example.com" (one left-most label). */
  readonly mx: readonly string[];
  /** Seconds the policy may be cached (RFC 8461 §3.2 max_age). */
  readonly maxAge: number;
  /** The TXT record's id the policy was fetched under. */
  readonly id: string;
}

/** `_mta-sts` TXT lookup: one string[] per record (character-strings), node:dns error codes on failure. */
export type TxtLookup = (name: string) => Promise<string[][]>;

export interface MtaStsResolverOptions {
  txtLookup: TxtLookup;
  /** Fetches the policy text; by default an HTTPS GET trusting Node's roots plus `ca`. */
  fetchPolicy?: PolicyFetcher;
  /** Extra trust roots (`--ca-file`, e.g. `loadCaFile(path)`) for the default fetcher; ignored with `fetchPolicy`. */
  ca?: string | Buffer | readonly string[] | null;
  /** Bound on one `policyFor` call, DNS and HTTPS together. */
  timeoutMs?: number;
  /** Clock in ms (tests move it). */
  now?: () => number;
  /** How long a cached answer is used before the TXT record is looked at again (default 5 min). */
  recheckMs?: number;
  /** After a failed fetch without a usable cache, how long that policy id is not fetched again. */
  failureRetryMs?: number;
  maxEntries?: number;
  logger?: Logger;
}

export type MtaStsResolver = (domain: string, options?: { signal?: AbortSignal }) => Promise<MtaStsPolicy | null>;

interface CacheEntry {
  policy: MtaStsPolicy | null;
  /** When `policy` stops being usable (ms). */
  expiresAt: number;
  fetchedAt: number;
  /** Last time the TXT record was consulted for this domain. */
  checkedAt: number;
  /** A policy id whose fetch failed, and when: not fetched again before failureRetryMs. */
  failed?: { id: string; at: number };
}

const DEFAULT_RECHECK_MS = 5 * 60_000;
const DEFAULT_FAILURE_RETRY_MS = 5 * 60_000;
const DEFAULT_MAX_ENTRIES = 10_000;
// RFC 8461 §10.2 suggests refreshing cached policies daily
const REFRESH_AFTER_MS = 86_400_000;

export function createMtaStsResolver(options: MtaStsResolverOptions): MtaStsResolver {
  const fetchPolicy = options.fetchPolicy ?? createPolicyFetcher({ ca: options.ca, timeoutMs: options.timeoutMs });
  const timeoutMs = options.timeoutMs ?? DEFAULT_POLICY_TIMEOUT_MS;
  const now = options.now ?? Date.now;
  const recheckMs = options.recheckMs ?? DEFAULT_RECHECK_MS;
  const failureRetryMs = options.failureRetryMs ?? DEFAULT_FAILURE_RETRY_MS;
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const logger = options.logger;
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<MtaStsPolicy | null>>();

  function remember(domain: string, entry: CacheEntry): void {
    // re-inserted so Map order is least recently refreshed first: that one goes when full
    cache.delete(domain);
    cache.set(domain, entry);
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string);
  }

  async function refresh(domain: string, signal: AbortSignal): Promise<MtaStsPolicy | null> {
    const started = now();
    const entry = cache.get(domain);
    const cached = entry?.policy && entry.expiresAt > started ? entry.policy : null;
    const keepCached = (failed = entry?.failed): MtaStsPolicy | null => {
      // an expired policy is forgotten here, so the entry answers "none" until the next recheck
      remember(domain, { policy: cached, expiresAt: cached === null ? 0 : (entry?.expiresAt ?? 0), fetchedAt: entry?.fetchedAt ?? 0, checkedAt: started, ...(failed ? { failed } : {}) });
      return cached;
    };

    let id: string | null;
    try {
      id = await bounded(discoverId(options.txtLookup, domain), signal);
    } catch (error) {
      // SERVFAIL or timeout: nothing learnt; a valid cached policy stays in force (§10.2)
      logger?.log("warn", "mta_sts_lookup_failed", { domain, error, cached: cached?.mode ?? null });
      return keepCached();
    }
    // §3.1 no (usable) record; §10.2: a cached policy is not given up because its TXT vanished
    if (id === null) return keepCached();

    const age = started - (entry?.fetchedAt ?? 0);
    const due = cached === null || cached.id !== id || age > Math.min(REFRESH_AFTER_MS, (cached.maxAge * 1000) / 2);
    if (!due) return keepCached();
    if (entry?.failed?.id === id && started - entry.failed.at < failureRetryMs) return keepCached();

    try {
      const text = await bounded(fetchPolicy(domain, { signal }), signal);
      const policy = toPolicy(parsePolicy(text), id);
      const fetchedAt = now();
      remember(domain, { policy, fetchedAt, expiresAt: fetchedAt + policy.maxAge * 1000, checkedAt: fetchedAt });
      logger?.log("info", "mta_sts_policy_fetched", { domain, id, mode: policy.mode, max_age: policy.maxAge, mx: policy.mx });
      return policy;
    } catch (error) {
      // §3.3: with a valid cached policy it applies; without one, deliver as if there were none
      logger?.log("warn", "mta_sts_fetch_failed", { domain, id, error, cached: cached?.mode ?? null });
      return keepCached({ id, at: started });
    }
  }

  return async function policyFor(domain, { signal: external } = {}) {
    const ascii = toAsciiDomain(domain);
    if (ascii === "") return null;
    const entry = cache.get(ascii);
    const at = now();
    if (entry !== undefined && at - entry.checkedAt < recheckMs && (entry.policy === null || entry.expiresAt > at)) return entry.policy;

    let pending = inFlight.get(ascii);
    if (pending === undefined) {
      const deadline = AbortSignal.timeout(timeoutMs);
      pending = refresh(ascii, deadline).finally(() => inFlight.delete(ascii));
      inFlight.set(ascii, pending);
    }
    // a caller that gives up does not cancel the lookup others share; it just stops waiting
    return external === undefined ? pending : bounded(pending, external);
  };
}

/** The policy id from `_mta-sts.<domain>`, null when there is no usable record (§3.1); throws on DNS failure. */
async function discoverId(txtLookup: TxtLookup, domain: string): Promise<string | null> {
  try {
    // mailauth applies §3.1: records not starting with v=STSv1 are ignored, then exactly one must remain
    const id = await resolvePolicy(domain, { resolver: (name: string) => txtLookup(name) });
    return typeof id === "string" && id !== "" ? id : null;
  } catch (error) {
    // §3.1: "If the number of resulting records is not one … assume [no] available MTA-STS Policy"
    if ((error as { code?: unknown }).code === "multi_sts_records") return null;
    throw error;
  }
}

function toPolicy(parsed: ReturnType<typeof parsePolicy>, id: string): MtaStsPolicy {
  return Object.freeze({
    mode: parsed.mode,
    mx: Object.freeze((parsed.mx ?? []).map(normaliseName)),
    maxAge: parsed.maxAge ?? 0,
    id,
  });
}

/**
 * RFC 8461 §4.1: does `mxHost` match one of the policy's `mx` patterns? A pattern is a host name,
 * or "*." + a domain where the wildcard stands for exactly one whole left-most label
 * ("*.example.com" matches "mx1.example.com", not "example.com" nor "a.b.example.com").
 */
export function mxMatchesPolicy(mxHost: string, policy: Pick<MtaStsPolicy, "mx">): boolean {
  const host = toAsciiDomain(mxHost);
  if (host === "" || host.includes("*")) return false;
  return policy.mx.some((raw) => {
    const pattern = raw.trim();
    if (!pattern.startsWith("*.")) return toAsciiDomain(pattern) === host;
    const suffix = `.${toAsciiDomain(pattern.slice(2))}`;
    if (suffix === "." || suffix.includes("*")) return false;
    const label = host.slice(0, host.length - suffix.length);
    return host.endsWith(suffix) && label.length > 0 && !label.includes(".");
  });
}

export type TlsRequirement =
  | {
      /** STARTTLS is mandatory: no encryption, no delivery. */
      readonly requireTls: boolean;
      /** The certificate must chain to a trusted root and name `servername` (a DNS-ID). */
      readonly verifyCertificate: boolean;
      /** The MX host name: SNI, and the name the certificate is checked against. */
      readonly servername: string;
      /** The policy behind this requirement, for logs (null: the domain has none). */
      readonly mode: MtaStsMode | null;
    }
  | { readonly refuse: "mx-not-listed"; readonly servername: string; readonly mode: "enforce" };

/**
 * What delivering to `mxHost` requires under `policy` (RFC 8461 §5):
 * - no policy, `none`, or `testing`: opportunistic STARTTLS, certificate not checked (testing
 *   only reports failures, through TLSRPT, and never withholds mail);
 * - `enforce`, MX listed: STARTTLS with a certificate valid for the MX name, or no delivery;
 * - `enforce`, MX not listed: do not connect at all (try the next MX).
 */
export function tlsRequirementFor(policy: MtaStsPolicy | null, mxHost: string): TlsRequirement {
  const servername = toAsciiDomain(mxHost) || mxHost.toLowerCase();
  if (policy === null || policy.mode !== "enforce") {
    return Object.freeze({ requireTls: false, verifyCertificate: false, servername, mode: policy?.mode ?? null });
  }
  if (!mxMatchesPolicy(mxHost, policy)) return Object.freeze({ refuse: "mx-not-listed", servername, mode: "enforce" });
  return Object.freeze({ requireTls: true, verifyCertificate: true, servername, mode: "enforce" });
}

/** Lower-case A-label form without the trailing dot; "" when it is not a domain name. */
function toAsciiDomain(name: string): string {
  const trimmed = name.trim().replace(/\.$/, "");
  return trimmed === "" ? "" : domainToASCII(trimmed);
}

function normaliseName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}

/** `work`, or a rejection as soon as `signal` aborts (a lookup that ignores signals still ends our wait). */
function bounded<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
