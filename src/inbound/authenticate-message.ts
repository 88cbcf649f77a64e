/**
 * Authenticates one inbound message: SPF (RFC 7208) for the MAIL FROM (or HELO) identity,
 * every DKIM signature (RFC 6376), DMARC (RFC 9989) for the header From domain, and the ARC
 * chain (RFC 8617), through mailauth's authenticate() and the resolver it is handed.
 *
 * Promises:
 * - the message is read once, as a stream: mailauth keeps the header section (capped at
 *   1 MiB by header-cap.ts) and running body hashes, never the body, and gets no body at all
 *   when no DKIM-Signature or ARC field could need one (pass
 *   `spool.createReadStream()`, not `spool.toBuffer()`);
 * - it settles within `timeoutMs`. DNS answers still missing at `timeoutMs - wrap-up` count as
 *   timeouts (temperror, RFC 7208 §2.6.6 / RFC 6376 §6.1.2), leaving mailauth the wrap-up to
 *   finish; if it still has not, every method is temperror and the stream is destroyed.
 *   A DNS failure is never reported as fail/none, so policy can answer 4xx rather than 5xx;
 * - the result never trusts the message: Received, Return-Path and existing
 *   Authentication-Results headers are not used to decide anything;
 * - `authenticationResults` is one RFC 8601 header value with our hostname as authserv-id,
 *   possibly folded (CRLF + space) and never containing a line break that is not a fold.
 * Rejects only when the message stream itself fails (or timeoutMs is not a positive integer);
 * DNS problems are results, not errors.
 */
import type { Readable } from "node:stream";
import type { AuthenticateResult, DNSResolver } from "mailauth";
import { authenticate } from "./mailauth-authenticate.ts";
import type { DnsRecordResolver } from "./dns-txt-resolver.ts";
import { capHeaderSection, DEFAULT_MAX_HEADER_BYTES } from "./header-cap.ts";

export type AuthVerdict = "pass" | "fail" | "softfail" | "neutral" | "none" | "temperror" | "permerror" | "policy";
export type DmarcPolicy = "reject" | "quarantine" | "none";

export interface AuthenticateMessageInput {
  /** The message as received (DATA), without our own trace header. A stream is consumed. */
  message: Readable | Buffer;
  clientIp: string;
  helo: string;
  /** MAIL FROM; "" for the null sender, when SPF checks the HELO identity (RFC 7208 §2.4). */
  mailFrom: string;
  /** Our MTA name: the authserv-id of Authentication-Results (RFC 8601 §2.5). */
  hostname: string;
  resolver: DnsRecordResolver;
  timeoutMs: number;
}

export interface InboundAuthResult {
  spf: AuthVerdict;
  /** "pass" when any signature verified, else temperror if any key lookup failed, else the worst. */
  dkim: AuthVerdict;
  /** "permerror" when the From header names no domain or several (RFC 9989 §5.3.1). */
  dmarc: AuthVerdict;
  arc: AuthVerdict;
  /** The policy DMARC would apply (after sp/np and t=y), null when no record was found or DNS failed. */
  dmarcPolicy: DmarcPolicy | null;
  /** The RFC 5322 From domain (the DMARC author domain), lower-case; null when there is not exactly one. */
  headerFrom: string | null;
  /**
   * SPF passed for a domain aligned with headerFrom. Judged by DMARC when it evaluated a record;
   * without one, only an SPF domain identical to headerFrom counts (aligned in any mode).
   */
  spfAligned: boolean;
  /** As spfAligned, for a verified DKIM signature's d= domain. */
  dkimAligned: boolean;
  /** The value (after "Authentication-Results: ") to prepend to the forwarded copy. */
  authenticationResults: string;
  /**
   * mailauth's ARCResult (or false when ARC could not be evaluated: then do not seal). The
   * sealer later calls `sealMessage(copy, { signingDomain, selector, privateKey,
   * cv: arc.status.result, authResults: arc.authResults })`, and only when cv is "none" or
   * "pass" or `arc.status.shouldSeal` is set (RFC 8617 §5.1: never extend a failed chain).
   * `arc.authResults` equals `authenticationResults`. Opaque here so that mailauth's types
   * stay out of every module that passes a result along.
   */
  arcForSealing: unknown;
  raw: AuthSummary;
}

/** The compact, log-safe account of how the verdicts came about (no bodies, no signatures). */
export interface AuthSummary {
  spf: { result: AuthVerdict; domain: string | null; comment?: string };
  dkim: { domain: string; selector: string; result: AuthVerdict; aligned: boolean; comment?: string }[];
  dmarc: {
    result: AuthVerdict;
    policy: DmarcPolicy | null;
    policyDomain: string | null;
    alignedSpf: string | null;
    alignedDkim: string | null;
    skipReason?: string;
  };
  arc: { result: AuthVerdict; instance: number | null; comment?: string };
  /** True when the deadline passed before mailauth finished, and every verdict is temperror. */
  timedOut: boolean;
  /** True when the header section was longer than header-cap.ts lets a verifier read. */
  headerTruncated: boolean;
  ms: number;
}

// RFC 8601 §2.7 result keywords; mailauth's deprecated "temperr" and BIMI's extra words folded in
const VERDICTS: Readonly<Record<string, AuthVerdict>> = {
  pass: "pass",
  fail: "fail",
  softfail: "softfail",
  neutral: "neutral",
  none: "none",
  temperror: "temperror",
  temperr: "temperror",
  permerror: "permerror",
  policy: "policy",
  skipped: "none",
  declined: "none",
};
const POLICIES: ReadonlySet<string> = new Set(["reject", "quarantine", "none"]);
// the order in which a non-passing DKIM signature speaks for all of them
const DKIM_SEVERITY: readonly AuthVerdict[] = ["temperror", "fail", "permerror", "policy", "neutral"];
// an attacker can put hundreds of signatures on a message; the event log does not need them all
const MAX_LOGGED_SIGNATURES = 8;
// time left to mailauth after DNS is cut off: body hashing of the rest of a 25 MiB stream fits
const MAX_WRAP_UP_MS = 500;

export async function authenticateMessage(input: AuthenticateMessageInput): Promise<InboundAuthResult> {
  const started = Date.now();
  const { timeoutMs } = input;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new Error(`authenticateMessage: timeoutMs must be a positive integer, got ${timeoutMs}`);
  const wrapUpMs = Math.min(MAX_WRAP_UP_MS, Math.floor(timeoutMs / 4));
  const dnsDeadline = new AbortController();
  const dnsTimer = setTimeout(() => dnsDeadline.abort(), timeoutMs - wrapUpMs);
  let hardTimer: NodeJS.Timeout | undefined;
  const capped = capHeaderSection(input.message, DEFAULT_MAX_HEADER_BYTES, { bodyOnlyIfSigned: true });
  const running = authenticate(capped.message, {
    ip: input.clientIp,
    helo: input.helo,
    // undefined, not "": mailauth then checks postmaster@<helo>, as RFC 7208 §2.4 asks for bounces
    sender: input.mailFrom === "" ? undefined : input.mailFrom,
    mta: input.hostname,
    // mailauth's d.ts types the answer as TXT-only, but it also asks for A, AAAA, MX, PTR and
    // CNAME and reads them in dns.promises.resolve's shapes, which is what ours returns
    resolver: deadlineBound(input.resolver, dnsDeadline.signal) as unknown as DNSResolver,
    trustReceived: false,
    // BIMI is for mail clients showing logos; for a forwarder it is only extra DNS queries
    disableBimi: true,
  });
  try {
    const outcome = await Promise.race([
      running,
      new Promise<"timeout">((resolve) => {
        hardTimer = setTimeout(() => resolve("timeout"), timeoutMs);
      }),
    ]);
    if (outcome === "timeout") {
      // mailauth may still be reading; nobody will look at what it finds
      running.catch(() => undefined);
      for (const stream of [input.message, capped.message]) if (!Buffer.isBuffer(stream)) stream.destroy();
      return timedOut(input, Date.now() - started);
    }
    return summarise(outcome, input, { ms: Date.now() - started, headerTruncated: capped.overflowed() });
  } finally {
    clearTimeout(dnsTimer);
    clearTimeout(hardTimer);
  }
}

/** The resolver, with every query after the deadline (or still waiting at it) failing as ETIMEOUT. */
function deadlineBound(resolver: DnsRecordResolver, signal: AbortSignal): DnsRecordResolver {
  return function boundedQuery(name, rrtype) {
    if (signal.aborted) return Promise.reject(deadlineError(name, rrtype));
    return new Promise((resolve, reject) => {
      const onDeadline = (): void => reject(deadlineError(name, rrtype));
      signal.addEventListener("abort", onDeadline, { once: true });
      // async wrapper: a resolver that throws synchronously still settles this promise
      (async () => resolver(name, rrtype, { signal }))()
        .then(resolve, reject)
        .finally(() => signal.removeEventListener("abort", onDeadline));
    });
  };
}

function deadlineError(name: string, rrtype: string): Error {
  // ETIMEOUT, the code c-ares uses, is the one mailauth reports as temperror in every method
  return Object.assign(new Error(`${rrtype} ${name}: authentication deadline passed`), { code: "ETIMEOUT" });
}

function summarise(result: AuthenticateResult, input: AuthenticateMessageInput, run: { ms: number; headerTruncated: boolean }): InboundAuthResult {
  const spfResult = result.spf || null;
  const spf = verdict(spfResult?.status.result);
  const spfDomain = spfResult ? lower(spfResult.domain) : null;

  // mailauth reports an unsigned message as one result row with no domain: that is "none", not a signature
  const signatures = result.dkim.results.filter((row) => row.signingDomain).map((row) => ({
    domain: lower(row.signingDomain ?? ""),
    selector: row.selector ?? "",
    result: verdict(row.status.result),
    mailauthAligned: Boolean(row.status.aligned),
    ...(row.status.comment ? { comment: String(row.status.comment) } : {}),
  }));
  const dkim = signatures.some((s) => s.result === "pass")
    ? "pass"
    : (DKIM_SEVERITY.find((level) => signatures.some((s) => s.result === level)) ?? "none");

  const dmarcResult = result.dmarc || null;
  const skipReason = result.dmarcSkipReason;
  // RFC 9989 §5.3.1: no single author domain, no DMARC; reported, not silently "none", because
  // several From domains is a way to slip a forged one past a p=reject policy
  const dmarc: AuthVerdict = dmarcResult ? verdict(dmarcResult.status.result) : skipReason ? "permerror" : "none";
  const recordEvaluated = dmarcResult !== null && (dmarc === "pass" || dmarc === "fail") && dmarcResult.alignment !== undefined;
  const dmarcPolicy = recordEvaluated && POLICIES.has(dmarcResult.policy) ? (dmarcResult.policy as DmarcPolicy) : null;
  const headerFrom = dmarcResult ? lower(dmarcResult.status.header?.from ?? "") || null : singleFromDomain(result.dkim.headerFrom);

  // DMARC's own verdict when it evaluated a record; otherwise (no record, DNS error) only a
  // passing identifier identical to the From domain, which aligns in relaxed and strict mode alike
  const passedSpfDomains = spf === "pass" && spfDomain !== null ? [spfDomain] : [];
  const passedDkimDomains = signatures.filter((s) => s.result === "pass").map((s) => s.domain);
  const alignedSpf = recordEvaluated ? lower(dmarcResult.alignment.spf.result ?? "") || null : identicalTo(headerFrom, passedSpfDomains);
  const alignedDkim = recordEvaluated ? lower(dmarcResult.alignment.dkim.result ?? "") || null : identicalTo(headerFrom, passedDkimDomains);

  const arcResult = result.arc || null;
  const arc = arcResult ? verdict(arcResult.status.result) : "none";

  let authenticationResults = authResultsValue(result.headers, input.hostname);
  if (!dmarcResult && skipReason) authenticationResults += `;\r\n dmarc=permerror (${skipReason.replace(/[^a-z]+/g, " ")})`;
  // the ARC-Authentication-Results of our seal must say what our Authentication-Results says
  if (arcResult) arcResult.authResults = authenticationResults;

  return {
    spf,
    dkim,
    dmarc,
    arc,
    dmarcPolicy,
    headerFrom,
    spfAligned: alignedSpf !== null,
    dkimAligned: alignedDkim !== null,
    authenticationResults,
    arcForSealing: arcResult ?? false,
    raw: {
      spf: { result: spf, domain: spfDomain, ...(spfResult?.status.comment ? { comment: String(spfResult.status.comment) } : {}) },
      dkim: signatures.slice(0, MAX_LOGGED_SIGNATURES).map(({ mailauthAligned, ...s }) => ({
        ...s,
        // with a record, mailauth re-marks passing signatures from DMARC's verdict; without
        // one its flag is only a public-suffix guess, so the identical-domain rule applies
        aligned: s.result === "pass" && (recordEvaluated ? mailauthAligned : s.domain === headerFrom),
      })),
      dmarc: {
        result: dmarc,
        policy: dmarcPolicy,
        policyDomain: dmarcResult?.policyDomain ? lower(dmarcResult.policyDomain) : null,
        alignedSpf,
        alignedDkim,
        ...(skipReason ? { skipReason } : {}),
      },
      arc: {
        result: arc,
        instance: arcResult && typeof arcResult.i === "number" && arcResult.i > 0 ? arcResult.i : null,
        ...(arcResult?.status.comment ? { comment: String(arcResult.status.comment) } : {}),
      },
      timedOut: false,
      headerTruncated: run.headerTruncated,
      ms: run.ms,
    },
  };
}

/** Nothing known: every method temperror, so no policy can turn the deadline into a 5xx. */
function timedOut(input: AuthenticateMessageInput, ms: number): InboundAuthResult {
  const comment = "(authentication timed out)";
  return {
    spf: "temperror",
    dkim: "temperror",
    dmarc: "temperror",
    arc: "temperror",
    dmarcPolicy: null,
    headerFrom: null,
    spfAligned: false,
    dkimAligned: false,
    authenticationResults: `${authservId(input.hostname)};\r\n spf=temperror ${comment};\r\n dkim=temperror ${comment};\r\n dmarc=temperror ${comment}`,
    // an unknown chain must not be sealed as if it were none
    arcForSealing: false,
    raw: {
      spf: { result: "temperror", domain: null, comment: "timed out" },
      dkim: [],
      dmarc: { result: "temperror", policy: null, policyDomain: null, alignedSpf: null, alignedDkim: null },
      arc: { result: "temperror", instance: null },
      timedOut: true,
      headerTruncated: false,
      ms,
    },
  };
}

/**
 * The Authentication-Results value out of mailauth's header block (Received-SPF first, then
 * Authentication-Results, folded). Any CR or LF that is not part of a fold is flattened, so
 * whatever a sender put in a comment cannot start a header field of its own.
 */
function authResultsValue(headers: string, hostname: string): string {
  const fields = headers.split(/\r?\n(?![ \t])/);
  const field = fields.find((f) => /^authentication-results:/i.test(f));
  if (field === undefined) return `${authservId(hostname)}; none`;
  return field
    .slice(field.indexOf(":") + 1)
    .replace(/^[ \t]+/, "")
    .replace(/\r?\n(?=[ \t])/g, "\u0000")
    .replace(/[\r\n]+/g, " ")
    .replace(/\u0000/g, "\r\n");
}

function authservId(hostname: string): string {
  // RFC 8601 §2.2: authserv-id is a value (token or quoted-string); a hostname is a token
  return hostname.replace(/[^A-Za-z0-9.-]/g, "") || "unknown";
}

function verdict(result: string | undefined): AuthVerdict {
  // anything mailauth adds later is treated as an error rather than guessed at
  return result === undefined ? "none" : (VERDICTS[result] ?? "permerror");
}

function lower(domain: string): string {
  return domain.trim().toLowerCase().replace(/\.$/, "");
}

function identicalTo(headerFrom: string | null, domains: readonly string[]): string | null {
  return headerFrom !== null && domains.includes(headerFrom) ? headerFrom : null;
}

function singleFromDomain(addresses: readonly string[]): string | null {
  const domains = new Set(addresses.map((address) => lower(address.slice(address.lastIndexOf("@") + 1))).filter(Boolean));
  return domains.size === 1 ? ([...domains][0] ?? null) : null;
}
