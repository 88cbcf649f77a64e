/**
 * Sends one message to one destination address: resolve its domain's delivery targets (MX or
 * a static transport), then try them in order until one gives a definite answer.
 *
 * Promises: a 5xx from any target is final for this destination (RFC 5321 §4.2.1); a
 * connection failure or 421 moves on to the next target (RFC 5321 §5.1); any other 4xx is a
 * temporary failure of this destination. The result always names the host that answered.
 */
import type { Readable } from "node:stream";
import { DeliveryTargetError, type DeliveryTarget } from "./mx-resolver.ts";
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
  durationMs: number;
}

export interface DestinationSenderOptions {
  resolveTargets: (domain: string) => Promise<DeliveryTarget[]>;
  pool: SmtpClientPool;
  maxTargets?: number;
  now?: () => number;
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
    const domain = destination.slice(destination.lastIndexOf("@") + 1);
    let targets: DeliveryTarget[];
    try {
      targets = await options.resolveTargets(domain);
    } catch (error) {
      if (error instanceof DeliveryTargetError) {
        return error.temporary
          ? outcome("temporary", 451, `4.4.3 ${error.message}`, null)
          : outcome("permanent", 550, `${error.code === "NULL_MX" ? "5.1.10" : "5.1.2"} ${error.message}`, null);
      }
      return outcome("temporary", 451, `4.4.3 cannot resolve ${domain}: ${(error as Error).message}`, null);
    }
    let last: AttemptOutcome = outcome("temporary", 451, `4.4.1 no delivery target for ${domain}`, null);
    for (const target of targets.slice(0, maxTargets)) {
      if (signal?.aborted) return outcome("temporary", 451, `4.4.7 delivery to ${domain} timed out`, last.upstream);
      const upstream = `${target.exchange}[${target.address}]:${target.port}`;
      try {
        const result = await options.pool.send(
          { address: target.address, port: target.port, exchange: target.exchange },
          { from: envelope.from, to: destination, size: envelope.size },
          message,
          signal,
        );
        return outcome("accepted", 250, result.response, upstream);
      } catch (error) {
        const failure = error as SendFailure;
        if (signal?.aborted) return outcome("temporary", 451, `4.4.7 delivery to ${upstream} timed out`, upstream);
        const code = failure.responseCode;
        if (code !== undefined && code >= 500) return outcome("permanent", code, failure.response ?? failure.message, upstream);
        if (code !== undefined && code >= 400 && code !== 421) return outcome("temporary", code, failure.response ?? failure.message, upstream);
        // No answer, a dropped connection or 421: this host is unavailable, try the next one.
        const reason = failure.response ?? describeConnectionFailure(failure);
        last = outcome("temporary", code ?? 451, code === undefined ? `4.4.1 ${reason}` : reason, upstream);
      }
    }
    return last;
  };
}

function describeConnectionFailure(failure: SendFailure): string {
  const message = failure.message.replace(/^Error: /, "");
  if (failure.code === "ETIMEDOUT") return `connection timed out: ${message}`;
  return `connection failed: ${message}`;
}
