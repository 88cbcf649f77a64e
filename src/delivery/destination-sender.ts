/**
 * Sends one message to one destination address: resolve its domain's delivery targets (MX or
 * a static transport), then try them in order until one gives a definite answer.
 *
 * Promises: a 5xx from any target is final for this destination (RFC 5321 §4.2.1); a
 * connection failure or 421 moves on to the next target (RFC 5321 §5.1); any other 4xx is a
 * temporary failure of this destination. The result always names the host that answered.
 *
 * MTA-STS (RFC 8461): the destination domain's policy is looked up alongside its targets
 * (never for a `--transport` route: the operator chose that hop). Under `enforce`, an MX the
 * policy does not list is skipped without connecting (§4.1, 4.7.4), and one that cannot give
 * STARTTLS with a valid certificate for its name is a temporary failure (§5.1, 4.7.4/4.7.5)
 * after which the next MX is tried; when none qualifies the destination fails temporarily,
 * so the sender hears 451 4.7.x and retries. Every failure's reply starts with its enhanced code.
 */
import type { Readable } from "node:stream";
import type { Logger } from "../analytics/structured-log.ts";
import type { MtaStsPolicy, MtaStsResolver } from "./mta-sts-policy.ts";
import { tlsRequirementFor } from "./mta-sts-policy.ts";
import { DeliveryTargetError, type DeliveryTarget } from "./mx-resolver.ts";
import { localFailure, type LocalFailure, type LocalFailureKind } from "./local-attempt.ts";
import { TlsPolicyError } from "./outbound-tls.ts";
import type { SendFailure, SmtpClientPool } from "./smtp-client-pool.ts";

export type AttemptStatus = "accepted" | "temporary" | "permanent";

export interface AttemptOutcome {
  destination: string;
  status: AttemptStatus;
  /** The upstream's reply line, or our own description when no upstream answered. */
  reply: string;
  /** SMTP code of that reply (ours when no upstream answered). */
  code: number;
  upstream: string | null;
  /** Already accepted in an earlier attempt of the same message (delivery ledger). */
  fromLedger?: boolean;
  /** Set when no upstream answered: what failed on our side (the reply is then ours, from the catalogue). */
  local?: LocalFailureKind;
  durationMs: number;
}

export interface DestinationSenderOptions {
  resolveTargets: (domain: string) => Promise<DeliveryTarget[]>;
  pool: SmtpClientPool;
  /** The destination domain's MTA-STS policy (`createMtaStsResolver`); absent: opportunistic TLS everywhere. */
  policyFor?: MtaStsResolver;
  /** True for a domain routed by `--transport`: no MTA-STS policy is looked up or applied. */
  isStaticRoute?: (domain: string) => boolean;
  /** Hosts actually tried per destination (MX hosts skipped by policy do not count). */
  maxTargets?: number;
  now?: () => number;
  logger?: Logger;
}

export type DestinationSender = (
  destination: string,
  envelope: { from: string; size: number },
  message: () => Readable,
  signal?: AbortSignal,
) => Promise<AttemptOutcome>;

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

export function createDestinationSender(options: DestinationSenderOptions): DestinationSender {
  const maxTargets = options.maxTargets ?? 5;
  const now = options.now ?? Date.now;

  return async function sendToDestination(destination, envelope, message, signal) {
    const started = now();
    const outcome = (status: AttemptStatus, code: number, reply: string, upstream: string | null): AttemptOutcome => ({
      destination,
      status,
      code,
      reply: oneLine(reply),
      upstream,
      durationMs: now() - started,
    });
    const ours = (failure: LocalFailure, upstream: string | null): AttemptOutcome => ({ ...outcome(failure.status, failure.code, failure.reply, upstream), local: failure.local });
    const domain = destination.slice(destination.lastIndexOf("@") + 1);
    // started before the targets are resolved so a cold policy costs no extra round trip;
    // settled into a value so an early return leaves no unhandled rejection behind
    const policyLookup: Promise<{ policy: MtaStsPolicy | null } | { error: unknown }> =
      options.policyFor === undefined || options.isStaticRoute?.(domain) === true
        ? Promise.resolve({ policy: null })
        : options.policyFor(domain, { signal }).then(
            (policy) => ({ policy }),
            (error: unknown) => ({ error }),
          );
    let targets: DeliveryTarget[];
    try {
      targets = await options.resolveTargets(domain);
    } catch (error) {
      if (error instanceof DeliveryTargetError) {
        if (error.temporary) return ours(localFailure("dns-failed", { domain, detail: error.message }), null);
        return ours(localFailure(error.code === "NULL_MX" ? "null-mx" : "no-such-domain", { detail: error.message }), null);
      }
      return ours(localFailure("dns-failed", { domain, detail: (error as Error).message }), null);
    }
    const looked = await policyLookup;
    if ("error" in looked) {
      // the resolver itself settles every lookup failure as "no policy" (RFC 8461 §3.3); what
      // reaches here is our deadline, or a fault that must not turn into unchecked delivery
      if (signal?.aborted) return ours(localFailure("timed-out", { target: domain }), null);
      return ours(localFailure("mta-sts-unknown", { domain, detail: (looked.error as Error)?.message ?? String(looked.error) }), null);
    }
    const { policy } = looked;

    let last: AttemptOutcome = ours(localFailure("no-target", { domain }), null);
    let tried = 0;
    for (const target of targets) {
      if (tried >= maxTargets) break;
      if (signal?.aborted) return ours(localFailure("timed-out", { target: domain }), last.upstream);
      const upstream = `${target.exchange}[${target.address}]:${target.port}`;
      const requirement = tlsRequirementFor(policy, target.exchange);
      if ("refuse" in requirement) {
        // RFC 8461 §4.1: an MX the enforce policy does not list is no candidate; not connected to
        const skipped = new TlsPolicyError("mx-not-listed", requirement.servername, "");
        options.logger?.log("warn", "mta_sts_mx_skipped", { domain, upstream, enhanced: skipped.enhanced, policy_id: policy?.id });
        // a host that was actually tried explains the failure better than a skip
        if (tried === 0) last = ours(tlsFailure(skipped), upstream);
        continue;
      }
      tried++;
      try {
        const result = await options.pool.send(
          { address: target.address, port: target.port, exchange: target.exchange, tls: requirement },
          { from: envelope.from, to: destination, size: envelope.size },
          message,
          signal,
        );
        return outcome("accepted", 250, result.response, upstream);
      } catch (error) {
        const failure = error as SendFailure;
        if (signal?.aborted) return ours(localFailure("timed-out", { target: upstream }), upstream);
        if (error instanceof TlsPolicyError) {
          // RFC 8461 §5.1: temporary whatever the host answered (a server without STARTTLS says 500); next MX
          options.logger?.log("warn", "mta_sts_tls_failed", { domain, upstream, enhanced: error.enhanced, kind: error.kind, policy_id: policy?.id, error: error.message });
          last = ours(tlsFailure(error), upstream);
          continue;
        }
        const code = failure.responseCode;
        if (code !== undefined && code >= 500) return outcome("permanent", code, failure.response ?? failure.message, upstream);
        if (code !== undefined && code >= 400 && code !== 421) return outcome("temporary", code, failure.response ?? failure.message, upstream);
        // No answer, a dropped connection or 421: this host is unavailable, try the next one.
        last = code === undefined ? ours(localFailure("unreachable", { detail: describeConnectionFailure(failure) }), upstream) : outcome("temporary", code, failure.response ?? failure.message, upstream);
      }
    }
    return last;
  };
}

function tlsFailure(error: TlsPolicyError): LocalFailure {
  return localFailure("tls-policy", { detail: error.message }, error.enhanced);
}

function describeConnectionFailure(failure: SendFailure): string {
  const message = failure.message.replace(/^Error: /, "");
  if (failure.code === "ETIMEDOUT") return `connection timed out: ${message}`;
  return `connection failed: ${message}`;
}
