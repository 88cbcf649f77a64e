/**
 * Delivery targets for a destination domain: the ordered (exchange, address, port) list the SMTP
 * client tries, first to last. DNS is injected; `createSystemDns` is the real one.
 *
 * RFC 5321 §5.1: MX records by preference, equal preferences in random order; no MX at all means
 * the domain itself is the implicit MX (preference 0). RFC 7505: a null MX means the domain accepts
 * no mail. Static transports (`--transport`) bypass MX lookup for exactly their domain.
 *
 * Promises: resolves with at least one target or rejects with a DeliveryTargetError whose
 * `temporary` says whether the sender should retry (never anything else); settles within
 * `timeoutMs` of the call, however slow the DNS; IPv6 addresses come before IPv4 within each
 * exchange; no address appears twice; at most MAX_TARGETS targets.
 */
import { Resolver } from "node:dns/promises";
import { isIP } from "node:net";
import { domainToASCII } from "node:url";

export interface DnsQueryOptions {
  signal?: AbortSignal;
}

/** The slice of `node:dns/promises` delivery needs; rejections carry its error codes (ENOTFOUND, ENODATA…). */
export interface DnsLookup {
  resolveMx(name: string, options?: DnsQueryOptions): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string, options?: DnsQueryOptions): Promise<string[]>;
  resolve6(name: string, options?: DnsQueryOptions): Promise<string[]>;
  /** One string[] of character-strings per record; MTA-STS discovery (`_mta-sts.<domain>`, RFC 8461 §3.1) reads it. */
  resolveTxt(name: string, options?: DnsQueryOptions): Promise<string[][]>;
}

export interface DeliveryTarget {
  /** The MX host (or transport host, or the domain itself for an implicit MX), lower-case ASCII. */
  exchange: string;
  address: string;
  port: number;
  family: 4 | 6;
  preference: number;
}

export interface TransportRoute {
  host: string;
  port: number;
}

export type DeliveryTargetErrorCode =
  /** RFC 7505: the domain publishes a null MX (permanent; RFC 7505 §4.2 suggests 5.1.10). */
  | "NULL_MX"
  /** The domain does not exist (permanent). */
  | "NXDOMAIN"
  /** The input is not a domain name that can be looked up (permanent). */
  | "BAD_DOMAIN"
  /** No exchange has an address: usually a broken or half-updated zone, so retried (temporary). */
  | "NO_ADDRESS"
  /** SERVFAIL, refused, unreachable resolver or timeout (temporary). */
  | "DNS_TEMPFAIL";

const PERMANENT_CODES: ReadonlySet<DeliveryTargetErrorCode> = new Set(["NULL_MX", "NXDOMAIN", "BAD_DOMAIN"]);

export class DeliveryTargetError extends Error {
  override readonly name = "DeliveryTargetError";
  readonly code: DeliveryTargetErrorCode;
  /** Derived from the code, so a code can never be temporary in one place and permanent in another. */
  readonly temporary: boolean;
  readonly domain: string;

  constructor(code: DeliveryTargetErrorCode, domain: string, reason: string, options?: { cause?: unknown }) {
    super(`domain "${domain}": ${reason}`, options);
    this.code = code;
    this.temporary = !PERMANENT_CODES.has(code);
    this.domain = domain;
  }
}

export interface TargetResolverOptions {
  dns: DnsLookup;
  /** Port for MX (and implicit MX) targets: 25 in production, a sink's port in tests. */
  outboundPort: number;
  /** Static routes by destination domain; keys are matched after IDNA + lower-casing. */
  transports?: ReadonlyMap<string, TransportRoute>;
  /** Bounds the whole resolution, MX and address lookups together. */
  timeoutMs?: number;
  /** Orders equal-preference MX records; injectable so tests can pin the order. */
  random?: () => number;
}

export type TargetResolver = (domain: string, options?: { signal?: AbortSignal }) => Promise<DeliveryTarget[]>;

export const DEFAULT_DNS_TIMEOUT_MS = 10_000;
// the client gives up long before trying this many; more would only spend DNS queries
export const MAX_TARGETS = 10;
// a hostile zone can publish hundreds of MX records; each costs two address queries
const MAX_EXCHANGES = 10;

export function createTargetResolver(options: TargetResolverOptions): TargetResolver {
  const { dns, outboundPort } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
  const random = options.random ?? Math.random;
  // keys normalised once here, so "Example.COM" and "bücher.de" routes match what resolve() looks up
  const transports = new Map<string, TransportRoute>();
  for (const [domain, route] of options.transports ?? []) {
    const key = toAsciiDomain(domain);
    if (!key) throw new Error(`transport "${domain}": not a domain name`);
    transports.set(key, Object.freeze({ ...route }));
  }

  return async function resolveDeliveryTargets(domain, { signal: external } = {}) {
    const ascii = toAsciiDomain(domain);
    if (!ascii) throw new DeliveryTargetError("BAD_DOMAIN", domain, "not a domain name");

    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(timeoutError(timeoutMs)), timeoutMs);
    const signal = external ? AbortSignal.any([deadline.signal, external]) : deadline.signal;
    try {
      const transport = transports.get(ascii);
      const exchanges = transport
        ? [{ exchange: transport.host, preference: 0, port: transport.port }]
        : (await lookupExchanges(dns, ascii, signal, random)).map((mx) => ({ ...mx, port: outboundPort }));
      return await targetsFor(dns, ascii, exchanges, signal);
    } finally {
      clearTimeout(timer);
    }
  };
}

interface Exchange {
  exchange: string;
  preference: number;
}

/** The exchanges to try, best first; throws the domain-level verdicts (null MX, NXDOMAIN, tempfail). */
async function lookupExchanges(dns: DnsLookup, domain: string, signal: AbortSignal, random: () => number): Promise<Exchange[]> {
  let records: { exchange: string; priority: number }[];
  try {
    records = await bounded((s) => dns.resolveMx(domain, { signal: s }), signal);
  } catch (error) {
    const kind = failureKind(error);
    if (kind === "NXDOMAIN") throw new DeliveryTargetError("NXDOMAIN", domain, "domain does not exist", { cause: error });
    if (kind === "BADNAME") throw new DeliveryTargetError("BAD_DOMAIN", domain, "not a domain name", { cause: error });
    if (kind === "TEMPFAIL") throw new DeliveryTargetError("DNS_TEMPFAIL", domain, `MX lookup failed (${describe(error)})`, { cause: error });
    records = [];
  }

  // RFC 5321 §5.1: no MX records at all: the domain itself is the exchange
  if (records.length === 0) return [{ exchange: domain, preference: 0 }];

  const usable = records.filter((record) => !isNullMx(record.exchange));
  // RFC 7505 §3: a null MX means the domain accepts no mail; a zone that (wrongly) mixes it with
  // real MX records still gets its real ones tried
  if (usable.length === 0) throw new DeliveryTargetError("NULL_MX", domain, "publishes a null MX, accepts no mail (RFC 7505)");

  const byPreference = new Map<number, Exchange[]>();
  for (const record of usable) {
    const exchange = { exchange: normaliseName(record.exchange), preference: record.priority };
    const group = byPreference.get(record.priority);
    if (group) group.push(exchange);
    else byPreference.set(record.priority, [exchange]);
  }
  return [...byPreference.keys()]
    .sort((a, b) => a - b)
    // RFC 5321 §5.1: equal preferences in random order, to spread load across them
    .flatMap((preference) => shuffle(byPreference.get(preference) ?? [], random))
    .slice(0, MAX_EXCHANGES);
}

async function targetsFor(
  dns: DnsLookup,
  domain: string,
  exchanges: readonly (Exchange & { port: number })[],
  signal: AbortSignal,
): Promise<DeliveryTarget[]> {
  // all exchanges at once: one slow exchange must not eat the deadline of the ones behind it
  const resolved = await Promise.all(exchanges.map((mx) => addressesOf(dns, mx.exchange, signal)));
  const targets: DeliveryTarget[] = [];
  const seen = new Set<string>();
  const failures: string[] = [];
  for (const [index, mx] of exchanges.entries()) {
    const { addresses, tempfail } = resolved[index] ?? { addresses: [] };
    if (tempfail !== undefined) failures.push(`${mx.exchange}: ${describe(tempfail)}`);
    for (const { address, family } of addresses) {
      // two MX names for one host would only make the client retry a host that just failed
      if (seen.has(address)) continue;
      seen.add(address);
      targets.push({ exchange: mx.exchange, address, port: mx.port, family, preference: mx.preference });
    }
  }
  if (targets.length > 0) return targets.slice(0, MAX_TARGETS);

  const names = exchanges.map((mx) => mx.exchange).join(", ");
  if (failures.length > 0) throw new DeliveryTargetError("DNS_TEMPFAIL", domain, `address lookup failed (${failures.join("; ")})`);
  throw new DeliveryTargetError("NO_ADDRESS", domain, `no A or AAAA record for ${names}`);
}

interface Addresses {
  addresses: { address: string; family: 4 | 6 }[];
  /** Set when a lookup failed for a reason other than "no such record", so the verdict is not final. */
  tempfail?: unknown;
}

async function addressesOf(dns: DnsLookup, host: string, signal: AbortSignal): Promise<Addresses> {
  // an MX pointing at an IP literal breaks RFC 5321 §5.1, but refusing it would only lose mail
  const literal = isIP(host);
  if (literal === 4 || literal === 6) return { addresses: [{ address: host, family: literal }] };

  // both families even when one fails: a server that drops AAAA queries still has A records
  const [v6, v4] = await Promise.allSettled([
    bounded((s) => dns.resolve6(host, { signal: s }), signal),
    bounded((s) => dns.resolve4(host, { signal: s }), signal),
  ]);
  const result: Addresses = { addresses: [] };
  for (const [outcome, family] of [[v6, 6], [v4, 4]] as const) {
    if (outcome.status === "fulfilled") {
      for (const address of outcome.value) result.addresses.push({ address, family });
    } else if (failureKind(outcome.reason) === "TEMPFAIL") {
      result.tempfail ??= outcome.reason;
    }
  }
  return result;
}

/** The lookup, or a rejection when `signal` aborts first (for DnsLookups that ignore the signal). */
function bounded<T>(query: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    // async wrapper: a DnsLookup that throws synchronously still settles this promise
    (async () => query(signal))()
      .then(resolve, reject)
      .finally(() => signal.removeEventListener("abort", onAbort));
  });
}

type FailureKind = "NXDOMAIN" | "NODATA" | "BADNAME" | "TEMPFAIL";

function failureKind(error: unknown): FailureKind {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ENOTFOUND") return "NXDOMAIN";
  if (code === "ENODATA") return "NODATA";
  if (code === "EBADNAME") return "BADNAME";
  // ESERVFAIL, ETIMEOUT, ECONNREFUSED, EREFUSED, ECANCELLED and anything unforeseen: retrying later is safe, bouncing is not
  return "TEMPFAIL";
}

function describe(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : error instanceof Error ? error.message : String(error);
}

function timeoutError(ms: number): Error {
  return Object.assign(new Error(`DNS lookup timed out after ${ms} ms`), { code: "ETIMEOUT" });
}

function abortReason(signal: AbortSignal): unknown {
  return (signal.reason as { code?: unknown } | undefined)?.code === "ETIMEOUT"
    ? signal.reason
    : Object.assign(new Error("DNS lookup aborted"), { code: "ECANCELLED", cause: signal.reason });
}

function isNullMx(exchange: string): boolean {
  return exchange === "" || exchange === ".";
}

function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/** IDNA (ASCII) lower-case form without the trailing dot; "" when it is not a domain name (the form transport keys take). */
export function toAsciiDomain(domain: string): string {
  const trimmed = domain.trim().replace(/\.$/, "");
  return trimmed ? domainToASCII(trimmed) : "";
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

export interface SystemDnsOptions {
  /** First-try timeout per query; c-ares doubles it on each retry. */
  timeoutMs?: number;
  tries?: number;
}

/**
 * `node:dns/promises` with `servers` ("host:port", IPv6 as "[::1]:53") instead of the system's.
 * Each query gets its own Resolver so that aborting one (`resolver.cancel()` cancels everything
 * in flight) leaves concurrent lookups for other messages alone; a Resolver costs ~50 µs.
 */
export function createSystemDns(servers?: readonly string[], options: SystemDnsOptions = {}): DnsLookup {
  // defaults keep c-ares itself bounded (2 s + 4 s) inside DEFAULT_DNS_TIMEOUT_MS
  const resolverOptions = { timeout: options.timeoutMs ?? 2_000, tries: options.tries ?? 2, maxTimeout: 4_000 };
  const serverList = servers ? [...servers] : undefined;
  if (serverList) {
    for (const server of serverList) {
      try {
        new Resolver().setServers([server]);
      } catch (error) {
        throw new Error(`DNS server "${server}": expected an IP address with optional :port`, { cause: error });
      }
    }
  }

  async function query<T>(run: (resolver: Resolver) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    const resolver = new Resolver(resolverOptions);
    if (serverList) resolver.setServers(serverList);
    const cancel = (): void => resolver.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      return await run(resolver);
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
  }

  return {
    resolveMx: (name, { signal } = {}) => query((resolver) => resolver.resolveMx(name), signal),
    resolve4: (name, { signal } = {}) => query((resolver) => resolver.resolve4(name), signal),
    resolve6: (name, { signal } = {}) => query((resolver) => resolver.resolve6(name), signal),
    resolveTxt: (name, { signal } = {}) => query((resolver) => resolver.resolveTxt(name), signal),
  };
}

/** A `(name, rrtype) => answer` resolver: the shared one (inbound/dns-txt-resolver.ts) has this shape. */
export type RecordQuery = (name: string, rrtype: string, options?: DnsQueryOptions) => Promise<unknown>;

/**
 * Delivery's DnsLookup on the service's one shared, caching resolver (DESIGN §2), so MX,
 * address and MTA-STS lookups share the cache and the bounds of every other lookup.
 */
export function dnsLookupFrom(query: RecordQuery): DnsLookup {
  return {
    resolveMx: async (name, options) => (await query(name, "MX", options)) as { exchange: string; priority: number }[],
    resolve4: async (name, options) => (await query(name, "A", options)) as string[],
    resolve6: async (name, options) => (await query(name, "AAAA", options)) as string[],
    resolveTxt: async (name, options) => (await query(name, "TXT", options)) as string[][],
  };
}

/**
 * Parses `--transport`: "example.com=127.0.0.1:2526,other.org=[::1]:25,third.net=relay.local:587".
 * Every entry needs a port; an IPv6 host is bracketed (RFC 3986 §3.2.2) so its colons are not the port's.
 */
export function parseTransportMap(spec: string): Map<string, TransportRoute> {
  const routes = new Map<string, TransportRoute>();
  for (const raw of spec.split(",")) {
    const entry = raw.trim();
    // tolerate "a=…,,b=…" and a trailing comma: lists built in shell scripts often have them
    if (!entry) continue;
    const fail = (reason: string): never => {
      throw new Error(`transport "${entry}": ${reason}`);
    };
    const equals = entry.indexOf("=");
    if (equals < 0) fail("expected domain=host:port");
    const domainPart = entry.slice(0, equals).trim();
    const domain = toAsciiDomain(domainPart);
    if (!domain) fail(`"${domainPart}" is not a domain name`);
    if (routes.has(domain)) fail(`domain "${domain}" already has a transport`);
    routes.set(domain, Object.freeze(parseHostPort(entry.slice(equals + 1).trim(), fail)));
  }
  return routes;
}

function parseHostPort(target: string, fail: (reason: string) => never): TransportRoute {
  const bracketed = /^\[([^\]]*)\]:(\d+)$/.exec(target);
  const plain = /^([^:[\]]+):(\d+)$/.exec(target);
  const match = bracketed ?? plain;
  if (!match) {
    if (isIP(target) === 6 || (target.match(/:/g) ?? []).length > 1) fail(`IPv6 address must be bracketed, as in [::1]:25`);
    return fail(`expected host:port after "=", got "${target}"`);
  }
  const [, rawHost = "", rawPort = ""] = match;
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) fail(`port ${rawPort} is out of range 1-65535`);
  if (bracketed) {
    if (isIP(rawHost) !== 6) fail(`"[${rawHost}]" is not an IPv6 address`);
    return { host: rawHost.toLowerCase(), port };
  }
  if (isIP(rawHost) === 4) return { host: rawHost, port };
  const host = toAsciiDomain(rawHost);
  if (!host) fail(`"${rawHost}" is not a host name or IP address`);
  return { host, port };
}
