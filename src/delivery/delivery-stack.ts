/**
 * createDeliveryStack: the outbound half of the service, assembled from settings in one place
 * so `mailroute start` and the tests build exactly the same thing:
 *
 *   DNS (--dns-servers) → cached MX / --transport targets ─┐
 *   _mta-sts TXT + HTTPS policy (RFC 8461), --ca-file ─────┼→ destination sender → SMTP client pool
 *   trust: Node's roots + --ca-file, one secure context ───┘
 *
 * Promises:
 * - a broken `--ca-file`, `--dns-servers` entry or `--transport` spec throws here, at startup,
 *   naming the offending value, never later on a message;
 * - the trust store is parsed once and shared by every verifying connection (certificate-trust.ts);
 * - MTA-STS applies to MX delivery only: a `--transport` domain's hop is the operator's choice,
 *   so no policy is looked up for it (no TXT query, no HTTPS fetch) and it is never enforced;
 * - `close()` closes every pooled connection.
 */
import type { Logger } from "../analytics/structured-log.ts";
import { loadCaFile, verifyingContext } from "./certificate-trust.ts";
import { createDestinationSender, type DestinationSender } from "./destination-sender.ts";
import type { PolicyFetcher } from "./mta-sts-fetch.ts";
import { createMtaStsResolver } from "./mta-sts-policy.ts";
import { createSystemDns, createTargetResolver, parseTransportMap, toAsciiDomain, type DnsLookup } from "./mx-resolver.ts";
import { SmtpClientPool, type SmtpClientPoolOptions } from "./smtp-client-pool.ts";
import { cachingTargetResolver } from "./target-cache.ts";

export interface DeliveryStackOptions {
  /** Our EHLO name (`--hostname`). */
  hostname: string;
  /** Port for MX delivery (`--outbound-port`). */
  outboundPort: number;
  /** `--transport` spec: "domain=host:port,…"; "" for none. */
  transport: string;
  /** `--dns-servers` entries ("host:port"); empty means the system's resolvers. */
  dnsServers: readonly string[];
  /** `--ca-file`: extra roots for MX certificates under MTA-STS and for policy fetches; null for none. */
  caFile: string | null;
  /** Replaces the system DNS (tests). */
  dns?: DnsLookup;
  /** Outbound client timeouts and pool sizes (tests shorten them); trust always comes from `caFile`. */
  client?: Partial<Omit<SmtpClientPoolOptions, "trust">>;
  /** Replaces the HTTPS policy fetch (tests reach policy hosts on loopback with `createPolicyFetcher({ connect })`). */
  mtaStsFetch?: PolicyFetcher;
  logger: Logger;
}

export interface DeliveryStack {
  send: DestinationSender;
  pool: SmtpClientPool;
  close(): Promise<void>;
}

export function createDeliveryStack(options: DeliveryStackOptions): DeliveryStack {
  const { logger } = options;
  // --ca-file is read (and refused, naming the file) before anything else is built
  const extraRoots = options.caFile === null ? null : loadCaFile(options.caFile);
  const trust = verifyingContext(extraRoots);
  const dns = options.dns ?? createSystemDns(options.dnsServers.length > 0 ? options.dnsServers : undefined);
  const transports = parseTransportMap(options.transport);
  const resolveTargets = cachingTargetResolver(createTargetResolver({ dns, outboundPort: options.outboundPort, transports }));
  const policyFor = createMtaStsResolver({
    txtLookup: (name) => dns.resolveTxt(name),
    // the default fetcher trusts Node's roots plus these; an injected one brings its own trust
    ...(options.mtaStsFetch !== undefined ? { fetchPolicy: options.mtaStsFetch } : { ca: extraRoots }),
    logger,
  });
  const pool = new SmtpClientPool({ hostname: options.hostname, ...options.client, trust });
  const send = createDestinationSender({
    resolveTargets,
    pool,
    policyFor,
    // parseTransportMap keys are already in this form
    isStaticRoute: (domain) => transports.has(toAsciiDomain(domain)),
    logger,
  });
  logger.log("info", "delivery_ready", { transports: [...transports.keys()], ca_file: options.caFile });
  return {
    send,
    pool,
    close: () => pool.close(),
  };
}
